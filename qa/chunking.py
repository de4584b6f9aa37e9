"""Structure-aware splitting of a `Document` into `Chunk`s that keep their source offsets.

Sections first (from `qa.corpus.parse_sections`), then sentence-sized units inside each section,
packed greedily up to a token budget, with whole trailing sentences repeated at the start of the
next chunk as overlap. A chunk never starts or ends inside a sentence; list lines are units of
their own and an "Infobox" block is one unit. The only exception: a single run of text longer
than `HARD_MAX_CHARS` with no sentence end (a pathological file) is cut at whitespace, so
memory and model input stay bounded. A file is split into at most `max_units` units (the
`QA_MAX_UNITS_PER_FILE` setting); the text past them is left out, so a file of millions of
one-word lines costs what its first units cost.

Every chunk satisfies `doc.text[chunk.start:chunk.end] == chunk.text`.

>>> text = "It rained. Mr. Kim left! Then 日本。終わり"
>>> [text[a:b] for a, b in sentence_spans(text)]
['It rained.', 'Mr. Kim left!', 'Then 日本。', '終わり']
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from qa.corpus import iter_sections
from qa.types import Chunk, Document, Section, make_id

TokenCounter = Callable[[Sequence[str]], list[int]]
HARD_MAX_CHARS = 2000

_PARAGRAPH_BREAK = re.compile(r"\n[ \t]*\n\s*")
_LIST_LINE = re.compile(r"[ \t]*(?:[-*+•]|\d+[.)])[ \t]+")  # matched at a line start
# A sentence ends at . ! ? (plus closing quotes/brackets) followed by whitespace and a capital,
# digit, quote or non-ASCII letter; or right after a CJK full stop.
_SENTENCE_END = re.compile(
    r"""(?<=[.!?])(?P<close>[")'\]”’]*)\s+(?=[A-Z0-9"'(\[“‘¿¡]|[^\x00-\x7f])"""
    r"""|(?<=[。！？])(?P<cjk_close>[」』）"”]*)\s*"""
)
_ABBREVIATION = re.compile(
    r"(?:\b(?:Mr|Mrs|Ms|Dr|Prof|St|Sr|Jr|Gen|Col|Lt|Sgt|Capt|Gov|Sen|Rep|Rev|vs|etc|approx|No|Vol|pp|Fig|Inc|Ltd|Co|Corp|Jan|Feb|Mar|Apr|Jun|Jul|Aug|Sep|Sept|Oct|Nov|Dec)|\b[A-Z]|\b(?:e\.g|i\.e|U\.S|U\.K|a\.m|p\.m))\.$"
)


def count_words(texts: Sequence[str]) -> list[int]:
    """A model-free token counter (about 1.3 tokens per word) for tests and fakes."""
    return [max(1, round(len(t.split()) * 1.3)) for t in texts]


def sentence_spans(text: str, start: int = 0, end: int | None = None) -> list[tuple[int, int]]:
    """(start, end) offsets of the sentence-sized units in `text[start:end]`, whitespace trimmed."""
    return [(a, b) for _, a, b in _unit_stream(text, start, len(text) if end is None else end)]


def unit_blocks(text: str, start: int = 0, end: int | None = None, limit: int | None = None) -> list[list[tuple[int, int]]]:
    """Units grouped into blocks that chunks never cross: an "Infobox" paragraph is a block
    of one unit; the prose between such blocks is another. At most `limit` units (None: all);
    the text is walked lazily, so a huge file costs memory for the units kept, not its lines."""
    blocks: list[list[tuple[int, int]]] = []
    block_number = -1
    for count, (block, a, b) in enumerate(_unit_stream(text, start, len(text) if end is None else end)):
        if limit is not None and count >= limit:
            break
        if block != block_number:
            blocks.append([])
            block_number = block
        blocks[-1].append((a, b))
    return blocks


def _unit_stream(text: str, start: int, end: int) -> Iterator[tuple[int, int, int]]:
    """(block number, start, end) of each unit, in order (see `unit_blocks`)."""
    block = 0
    for p_start, p_end in _split(text, start, end, _PARAGRAPH_BREAK):
        if text.startswith("Infobox", p_start):
            yield block + 1, p_start, p_end
            block += 2
            continue
        for l_start, l_end in _lines_of_lists(text, p_start, p_end):
            for s_start, s_end in _sentences(text, l_start, l_end):
                for a, b in _cap(text, s_start, s_end):
                    yield block, a, b


def _split(text: str, start: int, end: int, pattern: re.Pattern[str]) -> Iterator[tuple[int, int]]:
    """Pieces of text[start:end] between matches of `pattern`, trimmed, empty ones dropped."""
    pos = start
    for match in pattern.finditer(text, start, end):
        if trimmed := _trim(text, pos, match.start()):
            yield trimmed
        pos = match.end()
    if trimmed := _trim(text, pos, end):
        yield trimmed


def _trim(text: str, start: int, end: int) -> tuple[int, int] | None:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return (start, end) if start < end else None


def _lines_of_lists(text: str, start: int, end: int) -> Iterator[tuple[int, int]]:
    """A paragraph split so that each list line stands alone; prose lines stay together."""
    group: tuple[int, int] | None = None
    prev_item = False
    pos = start
    while pos <= end:
        line_end = text.find("\n", pos, end)
        line_end = end if line_end < 0 else line_end
        is_item = bool(_LIST_LINE.match(text, pos, line_end))
        if group is not None and not is_item and not prev_item:
            group = (group[0], line_end)
        else:
            if group is not None and (trimmed := _trim(text, *group)):
                yield trimmed
            group = (pos, line_end)
        prev_item = is_item
        pos = line_end + 1
    if group is not None and (trimmed := _trim(text, *group)):
        yield trimmed


def _sentences(text: str, start: int, end: int) -> Iterator[tuple[int, int]]:
    pos = start
    for match in _SENTENCE_END.finditer(text, start, end):
        close = match.end("close") if match.group("close") is not None else match.end("cjk_close")
        if close >= end:
            continue
        if _ABBREVIATION.search(text[max(pos, match.start() - 12) : match.start()]):
            continue
        if trimmed := _trim(text, pos, close):
            yield trimmed
        pos = match.end()
    if trimmed := _trim(text, pos, end):
        yield trimmed


def _cap(text: str, start: int, end: int) -> Iterator[tuple[int, int]]:
    """Cut a unit longer than HARD_MAX_CHARS at whitespace (or hard, if it has none)."""
    while end - start > HARD_MAX_CHARS:
        cut = text.rfind(" ", start + HARD_MAX_CHARS // 2, start + HARD_MAX_CHARS)
        cut = cut if cut > start else start + HARD_MAX_CHARS
        if trimmed := _trim(text, start, cut):
            yield trimmed
        start = cut
    if trimmed := _trim(text, start, end):
        yield trimmed


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
    """(section, page): a PDF's pages (chunks never cross them), else its heading sections."""
    if doc.page_starts:
        ends = [*doc.page_starts[1:], len(doc.text)]
        pages = zip(doc.page_starts, ends)
        return ((Section("", a, b), n) for n, (a, b) in enumerate(pages, start=1) if doc.text[a:b].strip())
    return ((section, None) for section in iter_sections(doc.text))


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


def chunk_document(doc: Document, count_tokens: TokenCounter, budget: int, overlap: int) -> list[Chunk]:
    return split_document(doc, count_tokens, budget, overlap).chunks


def embedding_text(title: str, section: str, text: str) -> str:
    """What the retrievers index for a chunk or a sentence: its heading path gives context."""
    heading = " > ".join(part for part in (title, section) if part)
    return f"{heading}\n{text}"
