"""Taking a document out of the index: listed in `.qaignore`, the index rebuilt without it, and only
then, if asked, its file deleted. A failure at any step leaves the corpus folder as it was."""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable
from pathlib import Path

from qa.errors import QAError
from qa.index.build import BuildSummary
from qa.index.loaded import DocumentInfo
from qa.ingest.corpus import IGNORE_FILE, set_ignored


def remove_document(corpus: Path, info: DocumentInfo, delete_file: bool,
                    rebuild: Callable[[], BuildSummary]) -> BuildSummary:
    """List `info`'s file in `corpus/.qaignore`, `rebuild()`, then delete the file if asked (and
    unlist it); the summary's `note` says what became of the file. A failed rebuild unlists it
    again (the document stays indexed) and raises."""
    try:
        set_ignored(corpus, info.path, True)
    except OSError as error:
        raise QAError(f"could not record the removal in {corpus}/{IGNORE_FILE} ({error.strerror or error});"
                      " nothing was changed") from None
    try:
        summary = rebuild()
    except BaseException:
        with contextlib.suppress(OSError):
            set_ignored(corpus, info.path, False)  # as it was: the document stays indexed
        raise
    note = f"its file {info.path} stays in {corpus}/ (listed in {IGNORE_FILE})"
    if delete_file:
        try:
            (corpus / info.path).unlink(missing_ok=True)
            note = f"its file {info.path} was deleted"
        except OSError as error:
            note = f"its file {info.path} could not be deleted ({error.strerror or error}); it stays listed in {IGNORE_FILE}"
        else:
            with contextlib.suppress(OSError):  # a stale line for a deleted file is harmless
                set_ignored(corpus, info.path, False)
    return dataclasses.replace(summary, note=f"removed {info.title}; {note}")
