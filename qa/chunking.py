"""Structure-aware splitting of a `Document` into `Chunk`s that keep their source offsets.

Sections first (from `qa.corpus.parse_sections`), then sentence-sized units inside each section,
packed greedily up to a token budget, with whole trailing sentences repeated at the start of the
next chunk as overlap. A chunk never starts or ends inside a sentence; list lines are units of
their own and an "Infobox" block is one unit. The only exception: a single run of text longer
than `HARD_MAX_CHARS` with no sentence end (a pathological file) is cut at whitespace, so
memory and model input stay bounded.

Every chunk satisfies `doc.text[chunk.start:chunk.end] == chunk.text`.

>>> text = "It rained. Mr. Kim left! Then 日本。終わり"
>>> [text[a:b] for a, b in sentence_spans(text)]
['It rained.', 'Mr. Kim left!', 'Then 日本。', '終わり']
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from qa.corpus import parse_sections
from qa.types import Chunk, Document, Section, make_id

TokenCounter = Callable[[Sequence[str]], list[int]]
HARD_MAX_CHARS = 2000

_PARAGRAPH_BREAK = re.compile(r"\n[ \t]*\n\s*")
_LIST_LINE = re.compile(r"^[ \t]*(?:[-*+•]|\d+[.)])[ \t]+")
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
    return [span for block in unit_blocks(text, start, end) for span in block]


def unit_blocks(text: str, start: int = 0, end: int | None = None) -> list[list[tuple[int, int]]]:
    """Units grouped into blocks that chunks never cross: an "Infobox" paragraph is a block
    of one unit; the prose between such blocks is another."""
    end = len(text) if end is None else end
    blocks: list[list[tuple[int, int]]] = [[]]
    for p_start, p_end in _split(text, start, end, _PARAGRAPH_BREAK):
        if text.startswith("Infobox", p_start):
            blocks += [[(p_start, p_end)], []]
            continue
        for l_start, l_end in _lines_of_lists(text, p_start, p_end):
            for span in _sentences(text, l_start, l_end):
                blocks[-1].extend(_cap(text, *span))
    return [block for block in blocks if block]


def _split(text: str, start: int, end: int, pattern: re.Pattern[str]) -> list[tuple[int, int]]:
    """Pieces of text[start:end] between matches of `pattern`, trimmed, empty ones dropped."""
    pieces, pos = [], start
    for match in pattern.finditer(text, start, end):
        pieces.append((pos, match.start()))
        pos = match.end()
    pieces.append((pos, end))
    return [trimmed for a, b in pieces if (trimmed := _trim(text, a, b))]


def _trim(text: str, start: int, end: int) -> tuple[int, int] | None:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return (start, end) if start < end else None


def _lines_of_lists(text: str, start: int, end: int) -> list[tuple[int, int]]:
    """A paragraph split so that each list line stands alone; prose lines stay together."""
    lines, pos = [], start
    for line in text[start:end].split("\n"):
        lines.append((pos, pos + len(line), bool(_LIST_LINE.match(line))))
        pos += len(line) + 1
    groups: list[tuple[int, int]] = []
    prev_item = False
    for a, b, is_item in lines:
        if groups and not is_item and not prev_item:
            groups[-1] = (groups[-1][0], b)
        else:
            groups.append((a, b))
        prev_item = is_item
    return [trimmed for a, b in groups if (trimmed := _trim(text, a, b))]


def _sentences(text: str, start: int, end: int) -> list[tuple[int, int]]:
    spans, pos = [], start
    for match in _SENTENCE_END.finditer(text, start, end):
        close = match.end("close") if match.group("close") is not None else match.end("cjk_close")
        if close >= end:
            continue
        if _ABBREVIATION.search(text[max(pos, match.start() - 12) : match.start()]):
            continue
        spans.append((pos, close))
        pos = match.end()
    spans.append((pos, end))
    return [trimmed for a, b in spans if (trimmed := _trim(text, a, b))]


def _cap(text: str, start: int, end: int) -> list[tuple[int, int]]:
    """Cut a unit longer than HARD_MAX_CHARS at whitespace (or hard, if it has none)."""
    pieces = []
    while end - start > HARD_MAX_CHARS:
        cut = text.rfind(" ", start + HARD_MAX_CHARS // 2, start + HARD_MAX_CHARS)
        cut = cut if cut > start else start + HARD_MAX_CHARS
        if trimmed := _trim(text, start, cut):
            pieces.append(trimmed)
        start = cut
    if trimmed := _trim(text, start, end):
        pieces.append(trimmed)
    return pieces


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


@dataclass(frozen=True, slots=True)
class Split:
    """A document's chunks, the sentence units they are made of (document offsets, in order),
    and for each chunk the [first, end) range of its units."""

    chunks: list[Chunk]
    units: list[tuple[int, int]]
    unit_ranges: list[tuple[int, int]]


def document_sections(doc: Document) -> list[tuple[Section, int | None]]:
    """(section, page): a PDF's pages (chunks never cross them), else its heading sections."""
    if doc.page_starts:
        ends = [*doc.page_starts[1:], len(doc.text)]
        pages = zip(doc.page_starts, ends)
        return [(Section("", a, b), n) for n, (a, b) in enumerate(pages, start=1) if doc.text[a:b].strip()]
    return [(section, None) for section in parse_sections(doc.text)]


def split_document(doc: Document, count_tokens: TokenCounter, budget: int, overlap: int) -> Split:
    """Split `doc` into chunks of at most `budget` tokens (see module docstring)."""
    split = Split([], [], [])
    for section, page in document_sections(doc):
        for units in unit_blocks(doc.text, section.start, section.end):
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
