"""Sentence-sized units of a text, with their offsets: the one sentence splitter every stage uses
(chunking packs them, the reader and the verifier read them, answers are split by them).

A unit is a sentence; a list line stands alone; an "Infobox" paragraph is one unit. A run of
text longer than `HARD_MAX_CHARS` with no sentence end (a pathological file) is cut at
whitespace, so memory and model input stay bounded.

>>> text = "It rained. Mr. Kim left! Then 日本。終わり"
>>> [text[a:b] for a, b in sentence_spans(text)]
['It rained.', 'Mr. Kim left!', 'Then 日本。', '終わり']
"""

from __future__ import annotations

import re
from collections.abc import Iterator

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
