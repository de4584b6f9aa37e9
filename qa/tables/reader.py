"""A small semantic parser for questions over one table: it matches the question's words to the
table's headers and cells, picks an operation by its wording, and computes the answer.

Operations: lookup (the answer column of the rows that match the named cells, `qa.tables.match`),
first/last (by row order), argmax/argmin ("most", "highest", "least"…), count ("how many" rows),
sum/average, the difference of two named rows ("how many more"), the choice between two named
rows ("A or B"), the row before/after a named one, the other rows sharing a named row's value
("the same time as X"); "other than X" leaves X's rows out, and a summary row ("Total") counts
only when named. Measured on WikiTableQuestions (`scripts/eval_tables.py`).
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass

from qa.tables.match import column_scores, first_place, label_column, mentioned_cells, numeric_column
from qa.tables.table import Table, normalized
from qa.text import WORD_NUMBERS, date_key, terms, word_tokens

_MORE = re.compile(r"\b(?:most|highest|largest|greatest|biggest|longest|maximum|max|top|best|tallest|heaviest|"
                   r"oldest|latest|more|higher|larger|greater|longer|bigger)\b")
_LESS = re.compile(r"\b(?:least|lowest|smallest|fewest|shortest|minimum|min|worst|youngest|earliest|newest|"
                   r"less|lower|smaller|fewer|shorter)\b")
_FIRST = re.compile(r"\b(?:first|top|earliest|previous to|before)\b")
_LAST = re.compile(r"\b(?:last|final|bottom|latest)\b")
_COUNT = re.compile(r"\b(?:how many|number of|count|total number)\b")
_SUM = re.compile(r"\b(?:total|sum|combined|altogether|in all)\b")
_AVERAGE = re.compile(r"\b(?:average|mean)\b")
_DIFFERENCE = re.compile(r"\b(?:how many more|how much more|how many less|how much less|how many fewer|difference)\b")
_NEXT = re.compile(r"\b(?:after|next|below|following|succeeded)\b")
_PREVIOUS = re.compile(r"\b(?:before|previous|above|preceding|prior)\b")
_YEAR_WORDS = re.compile(r"\b(?:what year|which year|when)\b")
_WHO = re.compile(r"^\s*(?:who|whom|whose)\b|\b(?:which|what) (?:person|player|athlete|candidate|driver|team|country|nation|name)\b")
_FILTER = re.compile(r"\b(?P<op>more than|over|greater than|at least|less than|under|fewer than|at most|below|above|"
                     r"or more|or less|or fewer|or better)\s*(?P<n>-?\d[\d,]*(?:\.\d+)?|"
                     + "|".join(WORD_NUMBERS) + r")\b")
_EXCLUDED = re.compile(r"\b(?:other than|besides|except(?: for)?|aside from|apart from|excluding) (?P<what>[^,?]+)",
                       re.IGNORECASE)
_UP, _DOWN = r"more|higher|larger|greater|bigger|longer|increased?|before|above", r"less|fewer|lower|smaller|shorter|decreased?|after|below"
_WORD_CHOICE = re.compile(rf"\b(?:(?P<up>{_UP}) or (?P<down>{_DOWN})|(?P<down2>{_DOWN}) or (?P<up2>{_UP}))\b")
_WHEN_CHOICE = re.compile(r"\b(?:(?P<early>earlier|earliest|sooner|first|older|oldest)|later|latest|newer|newest|last)\b")
_SAME = re.compile(r"\bsame (?P<what>[\w ]+?) as (?P<other>.+)$")
_RANKING = re.compile(r"^\s*(?:rank|ranking|place|pos|position|seed|no|#)\.?\s*$", re.IGNORECASE)  # 1 is the top
_SUPERLATIVE_AMOUNT = re.compile(r"\b(?:most|least|highest|lowest|largest|smallest|greatest|fewest|maximum|minimum)"
                                 r" (?:number|amount|total)\b")


@dataclass(frozen=True)
class TableAnswer:
    values: tuple[str, ...]  # the answer: cells as written, or a computed number
    rows: tuple[int, ...]  # the rows it rests on (0-based, in the table's order)
    operation: str  # "lookup", "argmax", "count"…
    column: int | None  # the answer column (None for a count)


def answer_column(question: str, table: Table, conditions: set[int], scores: list[float]) -> int:
    """The column the answer is read from: the named column that is no condition, else by the
    question word ("when"/"what year": a year or date column), else the first column."""
    words = word_tokens(question)
    named = sorted((j for j in range(len(table.header)) if scores[j] > 0 and j not in conditions),
                   key=lambda j: (-scores[j], first_place(words, table.header[j])))
    if named:
        return named[0]
    q = normalized(question)
    if re.search(r"\bhow long\b", q):
        timed = [j for j, header in enumerate(table.header) if re.search(r"time|duration|length", header, re.IGNORECASE)]
        if timed and timed[0] not in conditions:
            return timed[0]
    if _YEAR_WORDS.search(q):
        for j, header in enumerate(table.header):
            if re.search(r"year|date|season", header, re.IGNORECASE) and j not in conditions:
                return j
    if re.search(r"\b(?:how many|how much)\b", q):
        return next((j for j in range(len(table.header)) if table.numeric(j) and j not in conditions), 0)
    return label_column(question, table, conditions, scores)


def numeric_filter(question: str, table: Table, scores: list[float], avoid: set[int]) -> tuple[list[int], int] | None:
    """The rows a numeric condition keeps ("more than 600", "at least three") and its column, or None."""
    match = _FILTER.search(normalized(question))
    if not match:
        return None
    raw = match["n"]
    limit = float(WORD_NUMBERS[raw]) if raw in WORD_NUMBERS else float(raw.replace(",", ""))
    column = numeric_column(table, scores, avoid)
    if column is None:
        return None
    op = match["op"]
    keep = {"more than": lambda v: v > limit, "over": lambda v: v > limit, "greater than": lambda v: v > limit,
            "above": lambda v: v > limit, "at least": lambda v: v >= limit, "less than": lambda v: v < limit,
            "under": lambda v: v < limit, "fewer than": lambda v: v < limit, "below": lambda v: v < limit,
            "at most": lambda v: v <= limit}.get(op, lambda v: v <= limit)
    return [i for i in range(len(table.rows)) if table.numbers[i][column] is not None and keep(table.numbers[i][column])], column


def _format(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:.2f}".rstrip("0").rstrip(".")


@dataclass(frozen=True)
class _Parse:
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
        return _matching_rows(self.table, self.cells)


_UNDECIDED = object()  # a step that does not apply: the next one is tried


def read_table(question: str, table: Table) -> TableAnswer | None:
    """The answer to `question` from `table`, or None when no operation fits."""
    if not table.rows or not table.header:
        return None
    excluded = _EXCLUDED.search(question)
    if excluded:  # "other than X, …": read the table without X's rows
        named = {i for i, _ in mentioned_cells(excluded["what"], table)}
        kept = [i for i in range(len(table.rows)) if i not in named]
        if named and kept:
            found = read_table(question[:excluded.start()] + question[excluded.end():],
                               Table(table.header, [table.rows[i] for i in kept], [table.numbers[i] for i in kept]))
            return dataclasses.replace(found, rows=tuple(kept[i] for i in found.rows)) if found else None
    cells, scores = mentioned_cells(question, table), column_scores(question, table)
    p = _Parse(question, normalized(question), table, cells, scores, answer_column(question, table, {j for _, j in cells}, scores))
    for step in (_same, _compared, _aggregated, _located):
        answer = step(p)
        if answer is not _UNDECIDED:
            return answer
    return None


def _same(p: _Parse):  # noqa: ANN202 - TableAnswer | None | _UNDECIDED
    """The other rows that share a named row's value in a named column ("which athlete had the same
    time as X?": the athletes; "how many … the same length as X?": how many)."""
    match = _SAME.search(p.q)
    if not match:
        return _UNDECIDED
    column = next((j for j, h in enumerate(p.table.header) if terms(h) & terms(match["what"])), None)
    named = mentioned_cells(match["other"], p.table)
    if column is None or not named:
        return _UNDECIDED
    row, named_column = named[0]
    value = normalized(p.table.rows[row][column])
    rows = [i for i in range(len(p.table.rows)) if i != row and not p.table.is_summary(i)
            and normalized(p.table.rows[i][column]) == value]
    if _COUNT.search(p.q):
        return TableAnswer((str(len(rows)),), tuple(rows), "count", None)
    before = column_scores(p.q[:match.start()], p.table)
    asked = [j for j in range(len(p.table.header)) if before[j] > 0 and j != column]
    j = max(asked, key=lambda j: before[j]) if asked else named_column
    values = tuple(dict.fromkeys(p.table.rows[i][j] for i in rows if p.table.rows[i][j]))
    return TableAnswer(values, tuple(rows), "same", j) if values else None


def _compared(p: _Parse):  # noqa: ANN202 - TableAnswer | None | _UNDECIDED
    """The difference of two named rows, the choice between two, or a superlative of an amount."""
    q, table = p.q, p.table
    if _DIFFERENCE.search(q) and len(p.rows) >= 2:
        number = numeric_column(table, p.scores, p.conditions)
        if number is not None:
            a, b = (table.numbers[i][number] for i in p.rows[:2])
            if a is not None and b is not None:
                return TableAnswer((_format(abs(a - b)),), tuple(p.rows[:2]), "difference", number)
    if _WORD_CHOICE.search(q) and len(p.rows) >= 2:
        return _word_choice(p)
    if " or " in q and len(p.rows) >= 2:
        found = _option_kept(p)
        if found is not None:
            return found
    if " or " in q and len(p.rows) >= 2 and (_MORE.search(q) or _LESS.search(q) or _FIRST.search(q) or _WHEN_CHOICE.search(q)):
        return _choose(q, table, p.cells, p.scores, p.conditions)
    if _SUPERLATIVE_AMOUNT.search(q):
        return _superlative(q, table, p.cells, p.scores, p.conditions, p.target)
    return _UNDECIDED


def _word_choice(p: _Parse):  # noqa: ANN202 - TableAnswer | None
    """"Does A have more or less X than B?", "before or after": the word that holds for the row
    named first, by the numeric column (or, for before/after, above/below, by row order)."""
    match = _WORD_CHOICE.search(p.q)
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


def _option_kept(p: _Parse) -> TableAnswer | None:
    """"Did A or B have a D tyre?": of two options named in one column, the one whose row holds the
    other named cells; None unless exactly one does."""
    columns = [j for _, j in p.cells]
    options = next((j for j in dict.fromkeys(columns) if len({i for i, c in p.cells if c == j}) == 2), None)
    others = [(i, j) for i, j in p.cells if j != options]
    if options is None or not others:
        return None
    kept = set(_matching_rows(p.table, others))
    chosen = [i for i, j in p.cells if j == options and i in kept]
    if len(chosen) != 1:
        return None
    return TableAnswer((p.table.rows[chosen[0]][options],), (chosen[0],), "choice", options)


def _aggregated(p: _Parse):  # noqa: ANN202 - TableAnswer | None | _UNDECIDED
    """A numeric filter ("more than 600"), a count, a sum or an average."""
    q, table = p.q, p.table
    filtered = numeric_filter(p.question, table, p.scores, p.conditions)
    if filtered is not None and (_COUNT.search(q) or not p.cells):
        rows, column = filtered
        rows = [i for i in rows if i in set(p.matching())]
        if _COUNT.search(q):
            return TableAnswer((str(len(rows)),), tuple(rows), "count", None)
        j = label_column(p.question, table, p.conditions | {column}, p.scores)
        return TableAnswer(tuple(dict.fromkeys(table.rows[i][j] for i in rows)), tuple(rows), "filter", j) if rows else None
    named_numeric = [j for j in range(len(table.header)) if p.scores[j] > 0.5 and table.numeric(j) and j not in p.conditions]
    summed = _AVERAGE.search(q) or (_SUM.search(q) and named_numeric and not p.rows)  # "total number of silver medals"
    total = _SUM.search(q.replace("total number", ""))
    if _COUNT.search(q) and not summed and not (total and not re.search(r"\bhow many total\b", q)):
        if named_numeric and p.rows:
            return TableAnswer((table.rows[p.rows[0]][named_numeric[0]],), (p.rows[0],), "lookup", named_numeric[0])
        rows = p.matching()
        return TableAnswer((str(len(rows)),), tuple(rows), "count", None)
    if summed or (_SUM.search(q) and not _COUNT.search(q)):
        number = named_numeric[0] if named_numeric else numeric_column(table, p.scores, p.conditions)
        rows = p.matching()
        values = [v for i in rows if (v := table.numbers[i][number]) is not None] if number is not None else []
        if values:
            total = sum(values) / len(values) if _AVERAGE.search(q) else sum(values)
            return TableAnswer((_format(total),), tuple(rows), "average" if _AVERAGE.search(q) else "sum", number)
    return _UNDECIDED


def _located(p: _Parse):  # noqa: ANN202 - TableAnswer | None
    """The row after or before a named one, a superlative, the first or last row, or a lookup."""
    q, table, target = p.q, p.table, p.target
    if p.rows and (_NEXT.search(q) or _PREVIOUS.search(q)) and not (_MORE.search(q) or _LESS.search(q)):
        i = p.rows[0] + (1 if _NEXT.search(q) else -1)
        if 0 <= i < len(table.rows):
            j = target if p.scores[target] > 0 and target not in p.conditions else p.cells[0][1]  # else: the same column
            return TableAnswer((table.rows[i][j],), (i,), "next" if _NEXT.search(q) else "previous", j)
    if _MORE.search(q) or _LESS.search(q):
        return _superlative(q, table, p.cells, p.scores, p.conditions, target)
    if _FIRST.search(q) or _LAST.search(q):
        rows = p.matching()
        if rows:
            i = rows[0] if _FIRST.search(q) else rows[-1]
            j = label_column(q, table, p.conditions, p.scores) if _WHO.search(q) and table.numeric(target) else target
            return TableAnswer((table.rows[i][j],), (i,), "first" if _FIRST.search(q) else "last", j)
    if p.cells:
        rows = _matching_rows(table, p.cells)
        values = tuple(dict.fromkeys(table.rows[i][target] for i in rows if table.rows[i][target]))
        if values:
            return TableAnswer(values, tuple(rows), "lookup", target)
    return None


def _matching_rows(table: Table, cells: list[tuple[int, int]]) -> list[int]:
    """The rows that hold every named value (in its column, as whole words); of several values
    named in one column, any of them. A summary row ("Total") only when named."""
    wanted: dict[int, set[str]] = {}
    for i, j in cells:
        wanted.setdefault(j, set()).add(normalized(table.rows[i][j]))
    named = {i for i, _ in cells}
    return [i for i, row in enumerate(table.rows) if all(normalized(row[j]) in values for j, values in wanted.items())
            and (i in named or not table.is_summary(i))]


def _superlative(q: str, table: Table, cells, scores, conditions, target) -> TableAnswer | None:  # noqa: ANN001
    numeric_named = any(scores[j] > 0 and table.numeric(j) for j in range(len(table.header)))
    if not numeric_named and scores[target] > 0 and not table.numeric(target):
        return _most_frequent(q, table, cells, target)  # "which year had the most competitions?": rows per value
    number = numeric_column(table, scores, conditions | {target} if table.numeric(target) is False else conditions)
    if number is None:
        return None
    rows = _matching_rows(table, cells)
    rows = [i for i in rows if table.numbers[i][number] is not None]
    if not rows:
        return None
    most = bool(_MORE.search(q)) and not (_LESS.search(q) and _LESS.search(q).start() < _MORE.search(q).start())
    if _RANKING.search(table.header[number]) and re.search(r"\b(?:top|best|highest|first)\b", q):
        most = not most  # "the top ranking athlete": rank 1
    best = (max if most else min)(rows, key=lambda i: table.numbers[i][number])
    asks_amount = re.search(r"\b(?:how many|how much|what (?:is|was) the (?:most|least|highest|lowest|largest|smallest|greatest|biggest|fewest|longest|shortest))\b", q)
    column = target if (target != number or asks_amount) else label_column(q, table, conditions | {number}, scores)
    if _WHO.search(q) and table.numeric(column):
        column = label_column(q, table, conditions | {number}, scores)
    return TableAnswer((table.rows[best][column],), (best,), "argmax" if most else "argmin", column)


def _most_frequent(q: str, table: Table, cells, column: int) -> TableAnswer | None:  # noqa: ANN001
    """The value of `column` on the most (or fewest) rows."""
    rows = _matching_rows(table, cells)
    counts: dict[str, list[int]] = {}
    for i in rows:
        if table.rows[i][column]:
            counts.setdefault(table.rows[i][column], []).append(i)
    if not counts:
        return None
    most = bool(_MORE.search(q)) and not (_LESS.search(q) and _LESS.search(q).start() < _MORE.search(q).start())
    value = (max if most else min)(counts, key=lambda v: len(counts[v]))
    return TableAnswer((value,), tuple(counts[value]), "most frequent" if most else "least frequent", column)


def _choose(q: str, table: Table, cells, scores, conditions) -> TableAnswer | None:  # noqa: ANN001
    """"A or B": the one of the two named rows that the comparative picks, its named cell given."""
    (i1, j1), (i2, j2) = cells[0], next(((i, j) for i, j in cells[1:] if i != cells[0][0]), cells[0])
    if i1 == i2:
        return None
    dated = _date_column(table, scores, conditions) if _WHEN_CHOICE.search(q) else None
    if dated is not None and date_key(table.rows[i1][dated]) and date_key(table.rows[i2][dated]):
        earlier = date_key(table.rows[i1][dated]) <= date_key(table.rows[i2][dated])
        pick = i1 if earlier == (_WHEN_CHOICE.search(q)["early"] is not None) else i2
    elif _FIRST.search(q) and not (_MORE.search(q) or _LESS.search(q)):
        pick = min(i1, i2)
    else:
        number = numeric_column(table, scores, conditions)
        if number is None:
            return None
        a, b = table.numbers[i1][number], table.numbers[i2][number]
        if a is None or b is None:
            return None
        more = bool(_MORE.search(q))
        pick = i1 if (a > b) == more else i2
    j = j1 if pick == i1 else j2
    return TableAnswer((table.rows[pick][j],), (pick,), "choice", j)


def _date_column(table: Table, scores: list[float], avoid: set[int]) -> int | None:
    """The column of dates the question names (or the first), where most filled cells read as one."""
    dated = [j for j in range(len(table.header)) if j not in avoid and not table.numeric(j)
             and sum(date_key(c) is not None for c in table.column(j) if c) >= 0.7 * max(1, sum(map(bool, table.column(j))))]
    return max(dated, key=lambda j: scores[j]) if dated else None
