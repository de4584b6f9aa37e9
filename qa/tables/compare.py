"""The table reader's comparisons: of two named rows ("A or B", "more or less", "before or
after", earlier by a date column), rows beside a named one ("the same time as X", "more votes than
X"), and how long a named row lasted (from, until).
"""

from __future__ import annotations

import re

from qa.tables.match import column_scores, label_column, mentioned_cells, numeric_column
from qa.tables.parse import COUNT, FIRST, LESS, MORE, UNDECIDED, Parse, TableAnswer, matching_rows
from qa.tables.table import Table, normalized
from qa.text import date_key, terms

_UP = r"more|higher|larger|greater|bigger|longer|increased?|before|above"
_DOWN = r"less|fewer|lower|smaller|shorter|decreased?|after|below"
WORD_CHOICE = re.compile(rf"\b(?:(?P<up>{_UP}) or (?P<down>{_DOWN})|(?P<down2>{_DOWN}) or (?P<up2>{_UP}))\b")
WHEN_CHOICE = re.compile(r"\b(?:(?P<early>earlier|earliest|sooner|first|older|oldest)|later|latest|newer|newest|last)\b")
THAN_ROW = re.compile(r"\b(?P<word>more|higher|greater|larger|bigger|fewer|less|lower|smaller)\b[\w ]*? than (?P<other>.+)$")
_YEAR_RANGE = re.compile(r"(\d{4})\s*[–-]\s*(\d{4})")
_SAME = re.compile(r"\bsame (?P<what>[\w ]+?) as (?P<other>.+)$")


def same(p: Parse):  # noqa: ANN202 - TableAnswer | None | UNDECIDED
    """The other rows that share a named row's value in a named column ("which athlete had the same
    time as X?": the athletes; "how many … the same length as X?": how many)."""
    match = _SAME.search(p.q)
    if not match:
        return UNDECIDED
    scores = column_scores(match["what"], p.table)
    column = max(range(len(scores)), key=lambda j: scores[j]) if any(scores) else None
    if column is None and re.search(r"\b(?:year|date|day|month|time)\b", match["what"]):
        column = date_column(p.table, scores, set())  # "started the same year as X": the dates
    named = mentioned_cells(match["other"], p.table) or mentioned_cells(p.q[:match.start()], p.table)  # "X has the same … as which?"
    if column is None or not named:
        return UNDECIDED
    row, named_column = named[0]
    part = 1 if re.search(r"\byear\b", match["what"]) else 2 if re.search(r"\bmonth\b", match["what"]) else 0

    def key(cell: str) -> object:  # "the same year": the years of two dates
        return (date_key(cell) or ())[:part] or None if part else normalized(cell)

    value = key(p.table.rows[row][column])
    rows = [i for i in range(len(p.table.rows)) if i != row and not p.table.is_summary(i)
            and value is not None and key(p.table.rows[i][column]) == value]
    if COUNT.search(p.q):
        return TableAnswer((str(len(rows)),), tuple(rows), "count", None)
    before = column_scores(p.q[:match.start()], p.table)
    asked = [j for j in range(len(p.table.header)) if before[j] > 0 and j != column]
    j = max(asked, key=lambda j: before[j]) if asked else named_column
    values = tuple(dict.fromkeys(p.table.rows[i][j] for i in rows if p.table.rows[i][j]))
    return TableAnswer(values, tuple(rows), "same", j) if values else None


def than_row(p: Parse, than: re.Match):  # noqa: ANN202 - TableAnswer | None | UNDECIDED
    """"How many candidates had more votes than X?": the rows whose amount beats X's (how many, or which)."""
    row = mentioned_cells(than["other"], p.table)[0][0]
    number = numeric_column(p.table, p.scores, p.conditions)
    if number is None or p.table.numbers[row][number] is None:
        return UNDECIDED
    more = than["word"] in ("more", "higher", "greater", "larger", "bigger")
    rows = [i for i in range(len(p.table.rows)) if not p.table.is_summary(i) and p.table.numbers[i][number] is not None
            and (p.table.numbers[i][number] > p.table.numbers[row][number]) == more
            and p.table.numbers[i][number] != p.table.numbers[row][number]]
    if COUNT.search(p.q):
        return TableAnswer((str(len(rows)),), tuple(rows), "count", None)
    j = label_column(p.question, p.table, {number}, p.scores)
    return TableAnswer(tuple(p.table.rows[i][j] for i in rows), tuple(rows), "filter", j) if rows else None


def duration(p: Parse) -> TableAnswer | None:
    """"How long did X hold office?": the years between the named row's first two dates (from,
    until), or the years a range in one of its cells spans ("1901–1905": 5 years)."""
    if any(re.search(r"time|duration|length", h, re.IGNORECASE) for h in p.table.header):
        return None
    spans = [m for cell in p.table.rows[p.rows[0]] if (m := _YEAR_RANGE.fullmatch(cell.strip()))]
    if spans:
        years = int(spans[0][2]) - int(spans[0][1]) + 1
    else:
        dated = [j for j in range(len(p.table.header)) if _holds_dates(p.table, j)]
        if len(dated) < 2:
            return None
        start, end = (date_key(p.table.rows[p.rows[0]][j]) for j in dated[:2])
        if not start or not end or end[0] < start[0]:
            return None
        years = end[0] - start[0]
    return TableAnswer((f"{years} year" + ("s" if years != 1 else ""),), (p.rows[0],), "duration", None)


def word_choice(p: Parse):  # noqa: ANN202 - TableAnswer | None
    """"Does A have more or less X than B?", "before or after": the word that holds for the row
    named first, by the numeric column (or, for before/after, above/below, by row order)."""
    match = WORD_CHOICE.search(p.q)
    words = (match["up"], match["down"]) if match["up"] else (match["up2"], match["down2"])
    places = {i: p.q.find(normalized(p.table.rows[i][j])) for i, j in p.cells}
    subject, other = sorted(dict.fromkeys(i for i, _ in p.cells), key=lambda i: (places[i] < 0, places[i]))[:2]
    if words[0] in ("before", "above"):
        up = subject < other
    else:
        number = numeric_column(p.table, p.scores, p.conditions)
        a, b = (None, None) if number is None else (p.table.numbers[subject][number], p.table.numbers[other][number])
        if a is None or b is None or a == b:
            return None
        up = a > b
    return TableAnswer((words[0] if up else words[1],), (subject, other), "more or less", None)


def option_kept(p: Parse) -> TableAnswer | None:
    """"Did A or B have a D tyre?": of two options named in one column, the one whose row holds the
    other named cells; None unless exactly one does."""
    columns = [j for _, j in p.cells]
    options = next((j for j in dict.fromkeys(columns) if len({i for i, c in p.cells if c == j}) == 2), None)
    others = [(i, j) for i, j in p.cells if j != options]
    if options is None or not others:
        return None
    kept = set(matching_rows(p.table, others))
    chosen = [i for i, j in p.cells if j == options and i in kept]
    if len(chosen) != 1:
        return None
    return TableAnswer((p.table.rows[chosen[0]][options],), (chosen[0],), "choice", options)


def choose(q: str, table: Table, cells, scores, conditions) -> TableAnswer | None:  # noqa: ANN001
    """"A or B": the one of the two named rows that the comparative picks, its named cell given."""
    (i1, j1), (i2, j2) = cells[0], next(((i, j) for i, j in cells[1:] if i != cells[0][0]), cells[0])
    if i1 == i2:
        return None
    listed = re.search(r"\b(?:listed|list|table|chart|appears?)\b", q)  # "who is listed first": row order
    dated = date_column(table, scores, conditions) if WHEN_CHOICE.search(q) and not listed else None
    if dated is not None and date_key(table.rows[i1][dated]) and date_key(table.rows[i2][dated]):
        earlier = date_key(table.rows[i1][dated]) <= date_key(table.rows[i2][dated])
        pick = i1 if earlier == (WHEN_CHOICE.search(q)["early"] is not None) else i2
    elif FIRST.search(q) and not (MORE.search(q) or LESS.search(q)):
        pick = min(i1, i2)
    else:
        number = numeric_column(table, scores, conditions)
        if number is None:
            return None
        a, b = table.numbers[i1][number], table.numbers[i2][number]
        if a is None or b is None:
            return None
        more = bool(MORE.search(q))
        pick = i1 if (a > b) == more else i2
    j = j1 if pick == i1 else j2
    return TableAnswer((table.rows[pick][j],), (pick,), "choice", j)


def date_column(table: Table, scores: list[float], avoid: set[int]) -> int | None:
    """The column of dates the question names (or the first), where most filled cells read as one."""
    dated = [j for j in range(len(table.header)) if j not in avoid and not table.numeric(j) and _holds_dates(table, j)]
    return max(dated, key=lambda j: scores[j]) if dated else None


def _holds_dates(table: Table, j: int) -> bool:
    """Whether most filled cells of column `j` say a date."""
    filled = [c for c in table.column(j) if c]
    return sum(date_key(c) is not None for c in filled) >= 0.7 * max(1, len(filled))
