"""A table as a table reader needs it: its header, its rows of cells as written, and each cell's
value typed — a number (thousands separators, currency signs, percent and footnote marks
dropped), a year, or text.

`Table.from_rows` takes rows as read (the first is the header); `table_from_text` reads a
spreadsheet's or CSV's passages back ("Row 3: Country: Japan; Exports: 12", as
`qa.ingest.office.table_lines` writes them).
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field

_NUMBER = re.compile(r"^[^\d\-−+.]{0,3}([\-−+]?\d[\d,]*(?:\.\d+)?|[\-−]?\.\d+)\s*(%|(?:[a-zA-Z]{0,3}|metres|meters|miles|points|seconds|minutes|years|tonnes|tons|pounds|feet|inches|games|goals|votes)\.?)?\s*(?:\[[^\]]*\])?$")
_FOOTNOTE = re.compile(r"\s*\[[^\]]*\]\s*$")
_CLOCK = re.compile(r"^(?:(?P<h>\d+):)?(?P<m>\d{1,2}):(?P<s>\d{2}(?:\.\d+)?)$")
_ACCOUNTING = re.compile(r"^\$?\s*\(\s*(\$?\s*\d[\d,]*(?:\.\d+)?)\s*\)$")
_YEAR_CELL = re.compile(r"^(?:FY\s?)?(?:1[89]|20)\d\d$|^FY\s?\d\d$", re.IGNORECASE)
_IDENTIFIER = re.compile(r"^\s*(?:#|no\.?|n[o°º]|id|order|serial(?: no\.?)?|code)\s*$", re.IGNORECASE)
_TRAILING_MARKS = re.compile(r"(?:(?<!^)\[[^\]]*\]|\[\d+\]|[•♦†‡*#+])*$")  # footnotes: "27 [1]", "Paris*"
_DETAILS = re.compile(r"(?<!^)(?: \([^)]*\))*$")  # "Varbergs GIF (D3)": the details, not the name
_SUMMARY = re.compile(r"^(?:grand |sub-?)?totals?\b")


def answer_key(value: str) -> object:
    """A value as WikiTableQuestions' evaluator compares it: a number when it reads as one, else
    normalised text."""
    number = number_of(value)
    return round(number, 4) if number is not None else normalized(value)


def same_answers(predicted: Sequence[str], gold: Sequence[str]) -> bool:
    """Whether two answer sets are equal, numbers as numbers.

    >>> same_answers(("1,935",), ["1935"]), same_answers(("Japan", "Korea"), ["korea", "japan"]), same_answers(("4",), ["5"])
    (True, True, False)
    """
    return {answer_key(v) for v in predicted} == {answer_key(g) for g in gold}


def table_correct(short_text: str, gold: tuple[str, ...]) -> bool:
    """Whether the words that answer are the gold set: as one value, or (several expected) the
    values a computed answer lists ("Japan, Korea").

    >>> table_correct("Japan, Korea", ("korea", "japan")), table_correct("1,935", ("1935",)), table_correct("", ("1",))
    (True, True, False)
    """
    if not short_text:
        return False
    return same_answers((short_text,), gold) or (len(gold) > 1 and same_answers(short_text.split(", "), gold))


def number_of(cell: str) -> float | None:
    """The number a cell holds, or None: "1,935" → 1935.0, "$3.5" → 3.5, "12%" → 12.0, "-4" → -4.0,
    "27 [1]" → 27.0; "1-4", "10,000 m" with its unit kept short ("m") → 10000.0; a time in seconds;
    "(38)" → -38.0.

    >>> [number_of(c) for c in ("1,935", "$3.5", "12%", "−4", "27 [1]", "10,000 m", "1-4", "Japan", "", "2:05.5", "(38)")]
    [1935.0, 3.5, 12.0, -4.0, 27.0, 10000.0, None, None, None, 125.5, -38.0]
    """
    clock = _CLOCK.match(cell.strip())
    if clock:  # a time: "1:23.45" → 83.45 seconds
        h, m, sec = (float(clock["h"] or 0), float(clock["m"]), float(clock["s"]))
        return h * 3600 + m * 60 + sec
    negative = _ACCOUNTING.match(cell.strip())  # "(38)": minus 38, as accounts write it
    if negative:
        value = number_of(negative[1])
        return None if value is None else -value
    match = _NUMBER.match(_FOOTNOTE.sub("", cell.strip()))
    if not match:
        return None
    try:
        return float(match.group(1).replace(",", "").replace("−", "-"))
    except ValueError:
        return None


@functools.lru_cache(maxsize=1 << 16)  # a sheet's cells are compared many times per question
def normalized(text: str) -> str:
    """Text compared as WikiTableQuestions' evaluator compares it: accents dropped, dashes made
    "-", footnote marks and trailing details in parentheses dropped, quotes and a trailing period
    removed, lower case, spaces collapsed.

    >>> normalized(" Café  “Noir”. "), normalized("Varbergs GIF (D3)"), normalized("2010–11 [1]")
    ('cafe noir', 'varbergs gif', '2010-11')
    """
    text = "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))
    text = re.sub(r"[‐‑‒–—―−]", "-", text.casefold())
    text = _TRAILING_MARKS.sub("", text.strip())
    text = _DETAILS.sub("", text.strip())
    text = re.sub(r"[‘’´`\"“”]", "", text)
    text = re.sub(r"\s+", " ", text).strip()
    return text[:-1].strip() if text.endswith(".") else text


def header_rows(rows: Sequence[Sequence[str]]) -> int:
    """How many leading rows make the header: the first, and, when it has empty cells (a title
    spanning columns, a blank corner), each next row that holds no number but years and either
    starts blank or names only years beside its label (",,2019,2018" / ",Note,£m,£m" under
    ",,Years Ended September 30,"); three at most.

    >>> header_rows([["", "Years Ended", ""], ["", "2019", "2018"], ["Sales", "1,496.5", "1,202.9"]])
    2
    >>> header_rows([["Rank", "Name"], ["", "Yevgeny Kulikov"]]), header_rows([["", "2019"], ["", "39.17"]])
    (1, 1)
    """
    if not rows or all(rows[0]):
        return min(1, len(rows))
    top = 1
    while top < min(3, len(rows) - 1):
        row = rows[top]
        rest = [c for c in row[1:] if c]
        if any(number_of(c) is not None and not _YEAR_CELL.match(c) for c in rest):
            break
        if row[0] and not all(_YEAR_CELL.match(c) for c in rest):
            break
        top += 1
    return top


def _spread(rows: list[list[str]]) -> list[list[str]]:
    """Header rows with a title spanning columns written over each of them (all rows but the last)."""
    spread = []
    for n, row in enumerate(rows):
        row = list(row)
        if n < len(rows) - 1:
            for j in range(2, len(row)):
                row[j] = row[j] or row[j - 1]
        spread.append(row)
    return spread


def summary_label(text: str) -> bool:
    """Whether a (normalised) cell labels a summary row: "total", "grand total - value", "totals"."""
    return bool(_SUMMARY.match(text))


@dataclass
class Table:
    header: list[str]
    rows: list[list[str]]
    numbers: list[list[float | None]] = field(default_factory=list)

    @classmethod
    def from_rows(cls, rows: Sequence[Sequence[str]]) -> Table:
        """The first row is the header, with the rows under it that continue it (see
        `header_rows`) joined in; short rows are padded with empty cells."""
        rows = [[str(c).strip() for c in row] for row in rows]
        width = max(map(len, rows), default=0)
        rows = [row + [""] * (width - len(row)) for row in rows]
        top = header_rows(rows)
        header = [" ".join(filter(None, (row[j] for row in _spread(rows[:top])))) for j in range(width)] if rows else []
        body = [row for row in rows[top:] if any(row)]
        return cls(header, body, [[number_of(c) for c in row] for row in body])

    def column(self, j: int) -> list[str]:
        return [row[j] for row in self.rows]

    def is_summary(self, i: int) -> bool:
        """Whether row `i` sums up the others ("Total", "Grand total - value", "Totals"): it counts
        as no row of its own in a count, a sum or a superlative.

        >>> t = Table.from_rows([["Nation", "Gold"], ["Japan", "3"], ["Total", "3"]])
        >>> t.is_summary(0), t.is_summary(1)
        (False, True)
        """
        text = [normalized(c) for c in self.rows[i] if c and number_of(c) is None][:2]
        return any(summary_label(c) for c in text)

    def identifier(self, j: int) -> bool:
        """Whether column `j` numbers the rows ("#", "No.", "Order" 1, 2, 3…) rather than measures them.

        >>> Table.from_rows([["#", "Units"], ["1", "80"], ["2", "80"], ["3", "12"]]).identifier(0)
        True
        """
        values = [n for n in (row[j] for row in self.numbers) if n is not None]
        if _IDENTIFIER.match(self.header[j]):
            return True
        return len(values) >= 3 and values == list(range(int(values[0]), int(values[0]) + len(values)))

    def dated(self, j: int) -> bool:
        """Whether column `j` holds years (never summed): most of its numbers are whole years 1000–2100."""
        values = [n for n in (row[j] for row in self.numbers) if n is not None]
        return bool(values) and sum(float(n).is_integer() and 1000 <= n <= 2100 for n in values) >= 0.7 * len(values)

    def numeric(self, j: int) -> bool:
        """Whether most of the column's filled cells are numbers."""
        filled = [n for row, n in zip(self.rows, (r[j] for r in self.numbers), strict=True) if row[j]]
        return bool(filled) and sum(n is not None for n in filled) >= 0.7 * len(filled)


ROW_LINE = re.compile(r"^Row (\d+): (.*)$", re.MULTILINE)  # a row passage, as `qa.ingest.office.table_lines` writes it


def row_cells(line: re.Match) -> dict[str, tuple[str, int, int]]:
    """A row passage's cells: header → (value, its start and end in the line).

    >>> row_cells(ROW_LINE.match("Row 3: Country: Japan; Exports: 12"))
    {'Country': ('Japan', 16, 21), 'Exports': ('12', 32, 34)}
    """
    cells, pos = {}, line.start(2) - line.start()
    for part in line.group(2).split("; "):
        key, sep, value = part.partition(": ")
        if sep:
            cells[key.strip()] = (value.strip(), pos + len(key) + 2, pos + len(part))
        pos += len(part) + 2
    return cells


def table_of(rows: Sequence[dict[str, tuple[str, int, int]]]) -> Table:
    """The table of rows parsed by `row_cells`; a header first met in a later row goes before the
    header that follows it there ("Column 1", the labels, of rows under a units row).

    >>> table_of([{"Note": ("£m", 0, 0), "2019": ("£m", 0, 0)}, {"Column 1": ("UK", 0, 0), "2019": ("24.5", 0, 0)}]).header
    ['Note', 'Column 1', '2019']
    """
    header: list[str] = []
    for cells in rows:
        keys = list(cells)
        for n, key in enumerate(keys):
            if key not in header:
                after = next((k for k in keys[n + 1:] if k in header), None)
                header.insert(header.index(after) if after else len(header), key)
    return Table.from_rows([header, *[[cells[h][0] if h in cells else "" for h in header] for cells in rows]])


def table_from_text(text: str) -> Table | None:
    """A table read back from its row passages ("Row N: Header: value; …"), or None when the text
    holds none."""
    rows = [row_cells(line) for line in ROW_LINE.finditer(text)]
    return table_of(rows) if rows else None
