"""The key that signs what the page keeps in the browser: made once, kept 0600, replaced when damaged."""

import logging
import stat
from pathlib import Path

import pytest

from qa.app.browser_key import browser_key
from qa.config import Settings


def settings_in(folder: Path) -> Settings:
    return Settings(corpus_dir=folder / "corpus", index_dir=folder / "index")


def test_a_key_is_made_once_and_kept_private(tmp_path: Path):
    key = browser_key(settings_in(tmp_path))
    path = tmp_path / ".docqa-browser-key"
    assert len(key) == 64 and path.read_text() == key and stat.S_IMODE(path.stat().st_mode) == 0o600
    path.chmod(0o644)
    assert browser_key(settings_in(tmp_path)) == key and stat.S_IMODE(path.stat().st_mode) == 0o600


@pytest.mark.parametrize("damage", [b"\xff\xfe", b"", b"short", "folder"])
def test_a_damaged_key_is_replaced_with_a_warning(tmp_path: Path, damage, caplog):
    path = tmp_path / ".docqa-browser-key"
    if damage == "folder":
        path.mkdir()
    else:
        path.write_bytes(damage)
        path.chmod(0o644)
    with caplog.at_level(logging.WARNING):
        key = browser_key(settings_in(tmp_path))
    assert len(key) == 64 and path.read_text() == key and stat.S_IMODE(path.stat().st_mode) == 0o600
    assert "damaged" in caplog.text
