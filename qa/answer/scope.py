"""Which documents a question is about: the documents a person or client names ("Search in", `--doc`,
the answers API's `documents`), resolved against the loaded index."""

from __future__ import annotations

from collections.abc import Sequence

from qa.errors import QAError
from qa.index.loaded import Index


def documents_named(index: Index, names: Sequence[str]) -> list[str]:
    """The ids of the indexed documents `names` designate — each an id, a path, a file name or a
    title (case-insensitive) — or a `QAError` naming what matches nothing. Empty: all documents."""
    if isinstance(names, str):
        names = [names]
    chosen = []
    for name in names:
        if not isinstance(name, str):
            raise QAError(f"a document is named by text, not {name!r}")
        wanted = name.strip().casefold()
        matches = [d.doc_id for d in index.documents.values()
                   if wanted in (d.doc_id.casefold(), d.path.casefold(), d.path.rsplit("/", 1)[-1].casefold(),
                                 d.title.casefold())]
        if not matches:
            raise QAError(f"no indexed document is named {name!r}; the documents are listed in the Index tab (`qa search`)")
        chosen += [m for m in matches if m not in chosen]
    return chosen
