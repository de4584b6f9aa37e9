"""Settings: defaults, QA_* variables, overrides, and clear errors for values that cannot work."""

import pytest

from qa.config import Settings
from qa.errors import SettingsError


def test_settings_are_validated_with_clear_errors():
    with pytest.raises(SettingsError, match="answer mode"):
        Settings.from_env({"QA_ANSWER_MODE": "poetry"})
    with pytest.raises(SettingsError, match="whole number"):
        Settings.from_env({"QA_K": "many"})
    with pytest.raises(SettingsError, match="overlap"):
        Settings(chunk_tokens=50, chunk_overlap_tokens=50)
    with pytest.raises(SettingsError, match=r"threads must be at most \d+ \(the cores of this machine\), not 10000"):
        Settings.from_env({"QA_THREADS": "10000"})
    with pytest.raises(SettingsError, match="max_file_mb must be at least 1"):
        Settings.from_env({"QA_MAX_FILE_MB": "0"})
    assert Settings.from_env({"QA_K": "7", "QA_MODEL": "/m"}, k=None).k == 7
    assert Settings.from_env({"QA_K": "7"}, k=3).k == 3
    with pytest.raises(SettingsError, match="min_support must be more than 0 and at most 1"):
        Settings.from_env({"QA_MIN_SUPPORT": "1.5"})
    with pytest.raises(SettingsError, match="prompt_sentences must be at least 1"):
        Settings.from_env({"QA_PROMPT_SENTENCES": "0"})
    assert Settings.from_env({"QA_MIN_SUPPORT": "0.5", "QA_PROMPT_SENTENCES": "6"}).min_support == 0.5


def test_the_settings_table_in_the_docs_is_the_one_the_code_makes():
    """docs/usage.md holds `settings_table()` as is: one row per field of `Settings`, each with
    its default and what it does (`scripts/settings_table.py` writes it)."""
    import dataclasses
    from pathlib import Path

    from qa.config import Settings, settings_table

    text = (Path(__file__).resolve().parent.parent / "docs" / "usage.md").read_text(encoding="utf-8")
    assert settings_table() in text, "run scripts/settings_table.py"
    table = settings_table().splitlines()[2:]
    assert [row.split("`")[1] for row in table] == [f"QA_{f.name.upper()}" for f in dataclasses.fields(Settings)]
    assert all(f.metadata["what"] for f in dataclasses.fields(Settings))
