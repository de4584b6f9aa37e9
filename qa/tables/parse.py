"""What the table reader's steps share: the words that pick an operation, a question matched to
a table (`Parse`), the rows it names, and the answer (`TableAnswer`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from qa.tables.table import Table, normalized

MORE = re.compile(r"\b(?:most|highest|largest|greatest|biggest|longest|maximum|max|top|best|tallest|heaviest|"
                  r"oldest|latest|more|higher|larger|greater|longer|bigger)\b")
LESS = re.compile(r"\b(?:least|lowest|smallest|fewest|shortest|minimum|min|worst|youngest|earliest|newest|fastest|quickest|"
                  r"less|lower|smaller|fewer|shorter|faster|quicker)\b")
FIRST = re.compile(r"\b(?:first|top|earliest|previous to|before)\b")
COUNT = re.compile(r"\b(?:how many|number of|count|total number)\b")


@dataclass(frozen=True)
class TableAnswer:
    values: tuple[str, ...]  # the answer: cells as written, or a computed number
    rows: tuple[int, ...]  # the rows it rests on (0-based, in the table's order)
    operation: str  # "lookup", "argmax", "count"…
    column: int | None  # the answer column (None for a count)
    columns: tuple[int, ...] = ()  # a statement's year columns it was computed over, earliest first


def format_number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:.2f}".rstrip("0").rstrip(".")


@dataclass(frozen=True)
class Parse:
    """A question matched to a table: its named cells, how much it names each column, the answer column."""

    question: str
    q: str  # normalised
    table: Table
    cells: list[tuple[int, int]]
    scores: list[float]
    target: int

    @property
    def rows(self) -> list[int]:
        return sorted({i for i, _ in self.cells})

    @property
    def conditions(self) -> set[int]:
        return {j for _, j in self.cells}

    def matching(self) -> list[int]:
        return matching_rows(self.table, self.cells)


UNDECIDED = object()  # a step that does not apply: the next one is tried


def matching_rows(table: Table, cells: list[tuple[int, int]]) -> list[int]:
    """The rows that hold every named value (in its column, as whole words); of several values
    named in one column, any of them; a value found in several columns ("18" games played, or 18
    points), in any of them. A summary row ("Total") only when named. When no row holds them all,
    bare numbers are let go ("norway in the men's 15 kilometre": Norway's rows, not rank 15's)."""
    rows = _holding(table, cells)
    worded = [(i, j) for i, j in cells if not normalized(table.rows[i][j]).isdigit()]
    return rows if rows or not worded or len(worded) == len(cells) else _holding(table, worded)


def _holding(table: Table, cells: list[tuple[int, int]]) -> list[int]:
    columns: dict[str, set[int]] = {}
    for i, j in cells:
        columns.setdefault(normalized(table.rows[i][j]), set()).add(j)
    wanted: dict[int, set[str]] = {}
    for value, where in columns.items():
        if len(where) == 1:
            wanted.setdefault(next(iter(where)), set()).add(value)
    spread = {value: where for value, where in columns.items() if len(where) > 1}
    named = {i for i, _ in cells}
    return [i for i, row in enumerate(table.rows) if all(normalized(row[j]) in values for j, values in wanted.items())
            and all(any(normalized(row[j]) == value for j in where) for value, where in spread.items())
            and (i in named or not table.is_summary(i))]
