"""A small semantic parser for questions over one table: it matches the question's words to the
table's headers and cells, picks an operation by its wording, and computes the answer.

Operations: lookup (the answer column of the rows that match the named cells, `qa.tables.match`),
first/last (by row order), argmax/argmin ("most", "highest", "least"…), count ("how many" rows),
sum/average, the difference of two named rows ("how many more"), the row before/after a named one,
and the comparisons of `qa.tables.compare`; "other than X" leaves X's rows out, and a summary row
("Total") counts only when named. Measured on WikiTableQuestions (`scripts/eval_tables.py`).
"""

from __future__ import annotations

import dataclasses
import re

from qa.tables.compare import THAN_ROW, WHEN_CHOICE, WORD_CHOICE, choose, duration, option_kept, same, than_row, word_choice
from qa.tables.match import PERSON, column_scores, first_place, label_column, mentioned_cells, numeric_column
from qa.tables.parse import COUNT, FIRST, LESS, MORE, UNDECIDED, Parse, TableAnswer, format_number, matching_rows
from qa.tables.periods import read_periods
from qa.tables.table import Table, normalized, summary_label
from qa.text import WORD_NUMBERS, word_tokens

_LAST = re.compile(r"\b(?:last|final|bottom|latest)\b")
_SUM = re.compile(r"\b(?:total|sum|combined|altogether|in all)\b")
_AVERAGE = re.compile(r"\b(?:average|mean)\b")
_DIFFERENCE = re.compile(r"\b(?:how many more|how much more|how many less|how much less|how many fewer|difference|"
                         r"how many \w+ (?:were |was |are |passed )?between)\b")
_NEXT = re.compile(r"\b(?:after|next|below|following|succeeded|succeeding)\b")
_PREVIOUS = re.compile(r"\b(?:before|previous|above|preceding|preceded|prior)\b")
_BESIDE = re.compile(r"\b(?:(?P<before>before|ahead of|above|prior to|in front of)|after|behind|below)\b(?! \d)")
_NOT = re.compile(r"\b(?:not|n't|never)\b")
_WHO_ASKS = re.compile(r"\s*(?:who|whom)\b", re.IGNORECASE)
_YEAR_WORDS = re.compile(r"\b(?:what year|which year|when)\b")
_WHO = re.compile(r"^\s*(?:who|whom|whose)\b|\b(?:which|what) (?:person|player|athlete|candidate|driver|team|country|nation|name)\b")
_FILTER = re.compile(r"\b(?P<op>more than|over|greater than|at least|less than|under|fewer than|at most|below|above|"
                     r"or more|or less|or fewer|or better|after|before|since)\s*(?P<n>-?\d[\d,]*(?:\.\d+)?|"
                     + "|".join(WORD_NUMBERS) + r")\b")
_EXCLUDED = re.compile(r"\b(?:other than|besides|except(?: for)?|aside from|apart from|excluding) (?P<what>[^,?]+)",
                       re.IGNORECASE)
_TOP = re.compile(r"\b(?:top|best|first|winner|winning|highest ranked|highest ranking)\b")
_RANKING = re.compile(r"^\s*(?:rank|ranking|place|pos|position|seed|no|#)\.?\s*$", re.IGNORECASE)  # 1 is the top
_SUPERLATIVE_AMOUNT = re.compile(r"\b(?:most|least|highest|lowest|largest|smallest|greatest|fewest|maximum|minimum)"
                                 r" (?:number|amount|total)\b")


def answer_column(question: str, table: Table, conditions: set[int], scores: list[float]) -> int:
    """The column the answer is read from: the named column that is no condition, else by the
    question word ("when"/"what year": a year or date column), else the first column."""
    words = word_tokens(question)
    named = sorted((j for j in range(len(table.header)) if scores[j] > 0 and j not in conditions),
                   key=lambda j: (-scores[j], first_place(words, table.header[j])))
    people = [j for j in range(len(table.header)) if PERSON.search(table.header[j]) and j not in conditions and not table.numeric(j)]
    if named and people and _WHO_ASKS.match(question) and not PERSON.search(table.header[named[0]]):
        return people[0]  # "who was the first to hold this office?": the name, not "Took office"
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
    raw, op = match["n"], match["op"]
    limit = float(WORD_NUMBERS[raw]) if raw in WORD_NUMBERS else float(raw.replace(",", ""))
    column = numeric_column(table, scores, avoid)
    if op in ("after", "before", "since"):  # "before 2006": the years before it, else no filter
        years = [j for j in range(len(table.header)) if table.dated(j) and j not in avoid]
        if not re.fullmatch(r"\d{4}", raw) or not years:
            return None
        column = years[0]
    if column is None:
        return None
    unit = re.match(r"\s*(?:-\s*)?(minute|min|hour|hr)s?\b", normalized(question)[match.end():])
    if unit and any(":" in cell for cell in table.column(column)):  # "under 39 minutes" against 38:29.7 (seconds)
        limit *= 60 if unit[1].startswith("min") else 3600
    keep = {"more than": lambda v: v > limit, "over": lambda v: v > limit, "greater than": lambda v: v > limit,
            "above": lambda v: v > limit, "at least": lambda v: v >= limit, "less than": lambda v: v < limit,
            "under": lambda v: v < limit, "fewer than": lambda v: v < limit, "below": lambda v: v < limit,
            "at most": lambda v: v <= limit, "after": lambda v: v > limit, "before": lambda v: v < limit,
            "since": lambda v: v >= limit}.get(op, lambda v: v <= limit)
    return [i for i in range(len(table.rows)) if table.numbers[i][column] is not None and keep(table.numbers[i][column])], column


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
    periodic = read_periods(question, table)  # a statement's line over years ("Sales | 2019 | 2018")
    if periodic is not None:
        return periodic
    cells, scores = mentioned_cells(question, table), column_scores(question, table)
    threshold = _FILTER.search(normalized(question))
    if threshold:  # "more than 1500 units": a threshold, not the row holding 1500
        cells = [(i, j) for i, j in cells if normalized(table.rows[i][j]) != threshold["n"]]
    p = Parse(question, normalized(question), table, cells, scores, answer_column(question, table, {j for _, j in cells}, scores))
    for step in (same, _compared, _aggregated, _located):
        answer = step(p)
        if answer is not UNDECIDED:
            return answer
    return None


def _compared(p: Parse):  # noqa: ANN202 - TableAnswer | None | UNDECIDED
    """The difference of two named rows, the choice between two, or a superlative of an amount."""
    q, table = p.q, p.table
    named = [j for j in range(len(table.header)) if p.scores[j] > 0.5 and table.numeric(j)]
    if _DIFFERENCE.search(q) and len(p.rows) < 2 and len(named) == 2:  # "how many more bronze medals than silver?"
        rows = p.matching()
        a, b = (sum(v for i in rows if (v := table.numbers[i][j]) is not None) for j in named)
        return TableAnswer((format_number(abs(a - b)),), tuple(rows), "difference of sums", named[0])
    if _DIFFERENCE.search(q) and len(p.rows) >= 2:
        number = numeric_column(table, p.scores, p.conditions)
        if number is not None:
            a, b = (table.numbers[i][number] for i in p.rows[:2])
            if a is not None and b is not None:
                return TableAnswer((format_number(abs(a - b)),), tuple(p.rows[:2]), "difference", number)
    if WORD_CHOICE.search(q) and len(p.rows) >= 2:
        return word_choice(p)
    than = THAN_ROW.search(q)
    if than and not re.match(r"\s*-?\d", than["other"]) and mentioned_cells(than["other"], table):
        return than_row(p, than)
    if re.search(r"\bhow long\b", q) and p.rows:
        found = duration(p)
        if found is not None:
            return found
    if " or " in q and len(p.rows) >= 2:
        found = option_kept(p)
        if found is not None:
            return found
    if " or " in q and len(p.rows) >= 2 and (MORE.search(q) or LESS.search(q) or FIRST.search(q) or WHEN_CHOICE.search(q)):
        return choose(q, table, p.cells, p.scores, p.conditions)
    if _SUPERLATIVE_AMOUNT.search(q):
        return _superlative(q, table, p.cells, p.scores, p.conditions, p.target)
    return UNDECIDED


def _aggregated(p: Parse):  # noqa: ANN202 - TableAnswer | None | UNDECIDED
    """A numeric filter ("more than 600"), a count, a sum or an average."""
    q, table = p.q, p.table
    filtered = numeric_filter(p.question, table, p.scores, p.conditions)
    if filtered is not None and (COUNT.search(q) or not p.cells):
        rows, column = filtered
        if _NOT.search(q):  # "did the attendance not reach over 10,000?"
            rows = [i for i in range(len(table.rows)) if i not in set(rows) and table.numbers[i][column] is not None]
        kept = set(p.matching())
        rows = [i for i in rows if i in kept]
        if COUNT.search(q):
            return TableAnswer((str(len(rows)),), tuple(rows), "count", None)
        asked = [j for j in range(len(table.header)) if p.scores[j] > 0 and j not in p.conditions | {column}]
        j = max(asked, key=lambda j: p.scores[j]) if asked else label_column(p.question, table, p.conditions | {column}, p.scores)
        return TableAnswer(tuple(dict.fromkeys(table.rows[i][j] for i in rows)), tuple(rows), "filter", j) if rows else None
    named_numeric = sorted((j for j in range(len(table.header)) if p.scores[j] > 0.5 and table.numeric(j)
                            and j not in p.conditions and not table.identifier(j) and not table.dated(j)),
                           key=lambda j: (-p.scores[j], first_place(word_tokens(q), table.header[j])))
    summed = _AVERAGE.search(q) or (_SUM.search(q) and named_numeric and not p.rows)  # "total number of silver medals"
    total = _SUM.search(q.replace("total number", ""))
    if COUNT.search(q) and not summed and not (total and not re.search(r"\bhow many total\b", q)):
        named_values = {normalized(table.rows[i][j]) for i, j in p.cells}
        if named_numeric and len(p.rows) >= 2 and len(named_values) >= 2:  # "how many medals did China, Japan and Korea collect?"
            values = [v for i in p.rows if (v := table.numbers[i][named_numeric[0]]) is not None]
            return TableAnswer((format_number(sum(values)),), tuple(p.rows), "sum", named_numeric[0]) if values else None
        if named_numeric and p.rows:
            rows = p.matching()
            if len(rows) > 1:  # "how many units were shipped to Vietnam?" over Vietnam's rows
                values = [v for i in rows if (v := table.numbers[i][named_numeric[0]]) is not None]
                return TableAnswer((format_number(sum(values)),), tuple(rows), "sum", named_numeric[0]) if values else None
            return TableAnswer((table.rows[p.rows[0]][named_numeric[0]],), (p.rows[0],), "lookup", named_numeric[0])
        rows = p.matching()
        beside = _BESIDE.search(q)
        if beside and len(rows) == 1 and p.cells:  # "how many athletes finished before X?": the rows above X's
            others = range(rows[0]) if beside["before"] else range(rows[0] + 1, len(table.rows))
            counted = [i for i in others if not table.is_summary(i)]
            return TableAnswer((str(len(counted)),), tuple(counted), "count", None)
        named = [j for j in range(len(table.header)) if p.scores[j] > 0 and table.numeric(j) and j not in p.conditions]
        if (_NOT.search(q) or re.search(r"\b(?:no|zero)\b", q)) and named and not p.cells:  # "did not score in cup play"
            rows = [i for i in rows if not table.numbers[i][named[0]]]
            return TableAnswer((str(len(rows)),), tuple(rows), "count", None)
        if _NOT.search(q) and p.cells:  # "how many locomotives are not standard gauge?"
            rows = [i for i in range(len(table.rows)) if i not in set(rows) and not table.is_summary(i)]
            return TableAnswer((str(len(rows)),), tuple(rows), "count", None)
        amount = _amount_column(p) if len(rows) == 1 else None
        if amount is not None:  # "how many goals did X score?": X's one row holds the amount
            return TableAnswer((table.rows[rows[0]][amount],), (rows[0],), "lookup", amount)
        return TableAnswer((str(len(rows)),), tuple(rows), "count", None)
    if summed or (_SUM.search(q) and not COUNT.search(q)):
        return _summed(p, named_numeric)
    return UNDECIDED


def _summed(p: Parse, named_numeric: list[int]):  # noqa: ANN202 - TableAnswer | None | UNDECIDED
    """A sum or an average of the matching rows' named column (no column named: their count)."""
    q, table = p.q, p.table
    number = named_numeric[0] if named_numeric else numeric_column(table, p.scores, p.conditions)
    rows = p.matching()
    if number is not None and p.scores[number] == 0 and not _AVERAGE.search(q):  # "the total number of models"
        return TableAnswer((str(len(rows)),), tuple(rows), "count", None)
    values = [v for i in rows if (v := table.numbers[i][number]) is not None] if number is not None else []
    if len(values) == 1 and not _AVERAGE.search(q):  # one row: its cell as written ("25.036")
        row = next(i for i in rows if table.numbers[i][number] is not None)
        return TableAnswer((table.rows[row][number],), (row,), "lookup", number)
    if values:
        total = sum(values) / len(values) if _AVERAGE.search(q) else sum(values)
        return TableAnswer((format_number(total),), tuple(rows), "average" if _AVERAGE.search(q) else "sum", number)
    return UNDECIDED


def _amount_column(p: Parse) -> int | None:
    """The numeric column a "how many" about one named row reads: the one the question names, else
    a "Total" column; None when neither."""
    numeric = [j for j in range(len(p.table.header)) if p.table.numeric(j) and j not in p.conditions]
    named = [j for j in numeric if p.scores[j] > 0]
    if named:
        return max(named, key=lambda j: p.scores[j])
    return next((j for j in numeric if summary_label(normalized(p.table.header[j]))), None)


def _located(p: Parse):  # noqa: ANN202 - TableAnswer | None
    """The row after or before a named one, a superlative, the first or last row, or a lookup."""
    q, table, target = p.q, p.table, p.target
    if p.rows and (_NEXT.search(q) or _PREVIOUS.search(q)) and not (MORE.search(q) or LESS.search(q)):
        i = p.rows[0] + (1 if _NEXT.search(q) else -1)
        if 0 <= i < len(table.rows):
            words = word_tokens(q)  # the column asked for, even the named cell's own ("what company is below Apple?")
            named = sorted((j for j in range(len(table.header)) if p.scores[j] > 0),
                           key=lambda j: (-p.scores[j], first_place(words, table.header[j])))
            j = named[0] if named else p.cells[0][1]  # else: the same column
            return TableAnswer((table.rows[i][j],), (i,), "next" if _NEXT.search(q) else "previous", j)
    if MORE.search(q) or LESS.search(q):
        return _superlative(q, table, p.cells, p.scores, p.conditions, target)
    if FIRST.search(q) or _LAST.search(q):
        rows = p.matching()
        if rows:
            i = rows[0] if FIRST.search(q) else rows[-1]
            j = label_column(q, table, p.conditions, p.scores) if _WHO.search(q) and table.numeric(target) else target
            return TableAnswer((table.rows[i][j],), (i,), "first" if FIRST.search(q) else "last", j)
    if p.cells:
        rows = matching_rows(table, p.cells)
        if _NOT.search(q) and len({j for _, j in p.cells}) == 1:  # "which golfer was not from the United States?"
            rows = [i for i in range(len(table.rows)) if i not in set(rows) and not table.is_summary(i)]
        values = tuple(dict.fromkeys(table.rows[i][target] for i in rows if table.rows[i][target]))
        if values:
            return TableAnswer(values, tuple(rows), "lookup", target)
    return None


def _superlative(q: str, table: Table, cells, scores, conditions, target) -> TableAnswer | None:  # noqa: ANN001
    numeric_named = any(scores[j] > 0 and table.numeric(j) for j in range(len(table.header)))
    column = [normalized(c) for i, c in enumerate(table.column(target)) if c and not table.is_summary(i)]
    if not numeric_named and scores[target] > 0 and not table.numeric(target) and len(set(column)) < len(column):
        return _most_frequent(q, table, cells, target)  # "which year had the most competitions?": rows per value
    number = numeric_column(table, scores, conditions | {target} if table.numeric(target) is False else conditions)
    ranking = next((j for j, h in enumerate(table.header) if _RANKING.search(h) and table.numeric(j)), None)
    if ranking is not None and (number is None or scores[number] == 0) and _TOP.search(q):
        number = ranking  # "who was the top finisher?": rank 1
    if number is None:
        return None
    rows = matching_rows(table, cells)
    rows = [i for i in rows if table.numbers[i][number] is not None]
    if not rows:
        return None
    most = bool(MORE.search(q)) and not (LESS.search(q) and LESS.search(q).start() < MORE.search(q).start())
    if _RANKING.search(table.header[number]) and re.search(r"\b(?:top|best|highest|first)\b|\brank\w* higher\b", q):
        most = not most  # "the top ranking athlete": rank 1
    best = (max if most else min)(rows, key=lambda i: table.numbers[i][number])
    asks_amount = re.search(r"\b(?:how many|how much|what (?:is|was) the (?:most|least|highest|lowest|largest|smallest|greatest|biggest|fewest|longest|shortest))\b", q)
    column = target if (target != number or asks_amount) else label_column(q, table, conditions | {number}, scores)
    if _WHO.search(q) and table.numeric(column):
        column = label_column(q, table, conditions | {number}, scores)
    labels = [normalized(table.rows[i][column]) for i in rows]
    if column != number and not table.numeric(column) and not asks_amount and 2 * len(set(labels)) <= len(labels) \
            and numeric_named and not _RANKING.search(table.header[number]) and not table.dated(number):
        return _largest_total(table, rows, column, number, most)  # "which country had the most revenue?" over orders
    return TableAnswer((table.rows[best][column],), (best,), "argmax" if most else "argmin", column)


def _largest_total(table: Table, rows: list[int], column: int, number: int, most: bool) -> TableAnswer:
    """The value of `column` whose rows' `number`s add up to the most (or least)."""
    groups: dict[str, list[int]] = {}
    for i in rows:
        groups.setdefault(normalized(table.rows[i][column]), []).append(i)
    key = (max if most else min)(groups, key=lambda g: sum(table.numbers[i][number] for i in groups[g]))
    chosen = groups[key]
    return TableAnswer((table.rows[chosen[0]][column],), tuple(chosen), "largest total" if most else "smallest total",
                       column, (number,))


def _most_frequent(q: str, table: Table, cells, column: int) -> TableAnswer | None:  # noqa: ANN001
    """The value of `column` on the most (or fewest) rows."""
    rows = matching_rows(table, cells)
    counts: dict[str, list[int]] = {}
    for i in rows:
        if table.rows[i][column]:
            counts.setdefault(table.rows[i][column], []).append(i)
    if not counts:
        return None
    most = bool(MORE.search(q)) and not (LESS.search(q) and LESS.search(q).start() < MORE.search(q).start())
    value = (max if most else min)(counts, key=lambda v: len(counts[v]))
    return TableAnswer((value,), tuple(counts[value]), "most frequent" if most else "least frequent", column)


