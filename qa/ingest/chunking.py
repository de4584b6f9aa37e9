"""Structure-aware splitting of a `Document` into `Chunk`s that keep their source offsets.

Sections first (from `qa.ingest.corpus.parse_sections`), then sentence-sized units inside each
section (`qa.sentences`), packed greedily up to a token budget, with whole trailing sentences
repeated at the start of the next chunk as overlap. A chunk never starts or ends inside a unit
and never crosses an "Infobox" block. A file is split into at most `max_units` units (the
`QA_MAX_UNITS_PER_FILE` setting); the text past them is left out, so a file of millions of
one-word lines costs what its first units cost.

Every chunk satisfies `doc.text[chunk.start:chunk.end] == chunk.text`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from qa.ingest.readers import heading_of, iter_sections
from qa.sentences import unit_blocks
from qa.types import Chunk, Document, Section, make_id

TokenCounter = Callable[[Sequence[str]], list[int]]

def pack(token_counts: Sequence[int], budget: int, overlap: int) -> list[tuple[int, int]]:
    """Greedy packing of units into [i, j) groups of at most `budget` tokens (a unit larger than
    the budget stands alone); each group after the first repeats trailing units of the previous
    one worth at most `overlap` tokens.

    >>> pack([50, 50, 50, 50], budget=100, overlap=50)
    [(0, 2), (1, 3), (2, 4)]
    """
    groups, i, n = [], 0, len(token_counts)
    while i < n:
        j, used = i, 0
        while j < n and (j == i or used + token_counts[j] <= budget):
            used += token_counts[j]
            j += 1
        groups.append((i, j))
        if j >= n:
            break
        k, carried = j, 0
        while k - 1 > i and carried + token_counts[k - 1] <= overlap:
            carried += token_counts[k - 1]
            k -= 1
        i = k
    return groups


@dataclass(slots=True)
class Split:
    """A document's chunks, the sentence units they are made of (document offsets, in order),
    and for each chunk the [first, end) range of its units; `cut` when the document had more
    units than allowed and its end was left out."""

    chunks: list[Chunk]
    units: list[tuple[int, int]]
    unit_ranges: list[tuple[int, int]]
    cut: bool = False


def document_sections(doc: Document) -> Iterator[tuple[Section, int | None]]:
    """(section, page): the pages of a PDF, a deck or a workbook (chunks never cross them), each
    named by its heading line when it starts with one (a slide's title, a sheet's name), else the
    document's heading sections."""
    if doc.page_starts:
        ends = [*doc.page_starts[1:], len(doc.text)]
        pages = zip(doc.page_starts, ends)
        return ((Section(page_heading(doc.text[a:b]), a, b), n) for n, (a, b) in enumerate(pages, start=1)
                if doc.text[a:b].strip())
    return ((section, None) for section in iter_sections(doc.text))


def page_heading(page: str) -> str:
    """The heading a page starts with ("## Exports 2024" → "Exports 2024"), or "".

    >>> page_heading("## Exports 2024\\n\\nRow 1: …"), page_heading("Results\\n\\nWe found…")
    ('Exports 2024', '')
    """
    heading = heading_of(page.lstrip().split("\n", 1)[0])
    return heading[1] if heading else ""


def split_document(doc: Document, count_tokens: TokenCounter, budget: int, overlap: int,
                   max_units: int | None = None) -> Split:
    """Split `doc` into chunks of at most `budget` tokens (see module docstring), from at most
    `max_units` sentence units (None: all); past that the rest of the document is left out."""
    split = Split([], [], [])
    for section, page in document_sections(doc):
        left = None if max_units is None else max_units - len(split.units)
        if left is not None and left <= 0:
            split.cut = True
            break
        for units in unit_blocks(doc.text, section.start, section.end, limit=None if left is None else left + 1):
            if left is not None and len(units) > left:
                units, split.cut = units[:left], True
            if not units:
                break
            left = None if left is None else left - len(units)
            base = len(split.units)
            split.units.extend(units)
            counts = count_tokens([doc.text[a:b] for a, b in units])
            for i, j in pack(counts, budget, overlap):
                start, end = units[i][0], units[j - 1][1]
                text = doc.text[start:end]
                chunk_id = make_id(doc.doc_id, start, text)
                split.chunks.append(Chunk(chunk_id, doc.doc_id, section.path, text, start, end, page))
                split.unit_ranges.append((base + i, base + j))
    return split


def embedding_text(title: str, section: str, text: str) -> str:
    """What the retrievers index for a chunk or a sentence: its heading path gives context."""
    heading = " > ".join(part for part in (title, section) if part)
    return f"{heading}\n{text}"
