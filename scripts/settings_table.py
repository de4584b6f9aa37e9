"""Write the settings table of docs/usage.md from `qa.config.Settings` (each field's default and
what it does), or with --check say whether the docs hold it as the code makes it.

    .venv/bin/python scripts/settings_table.py [--check]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from qa.config import settings_table

USAGE = Path(__file__).resolve().parent.parent / "docs" / "usage.md"
HEADER = "| variable | default | what it does |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only check; exit 1 when the table differs")
    args = parser.parse_args()
    text = USAGE.read_text(encoding="utf-8")
    start = text.index(HEADER)
    end = text.find("\n\n", start)
    end = len(text) if end < 0 else end + 1
    if args.check:
        sys.exit(0 if text[start:end] == settings_table() else 1)
    USAGE.write_text(text[:start] + settings_table() + text[end:], encoding="utf-8")
    print(f"wrote the settings table in {USAGE}")


if __name__ == "__main__":
    main()
