"""Tables whose columns are periods (a financial statement: "Sales | 2019 | 2018 | 2017"): the
question names a line (a row's label) and one or more years, and asks for a value, the change
from one year to another (as an amount or a percentage), an average or a total over the years,
or the year in which the line was largest. Measured on TAT-QA (`scripts/eval_tables.py`).
"""

from __future__ import annotations

import re

from qa.tables.parse import LESS, MORE, TableAnswer, format_number
from qa.tables.table import Table
from qa.text import terms

_YEAR = re.compile(r"\b(?:FY\s?(?P<short>\d\d)\b|(?P<year>(?:19|20)\d\d))", re.IGNORECASE)
_PERCENT_CHANGE = re.compile(r"\b(?:percent(?:age)? (?:change|increase|decrease|growth)|% change|growth rate)\b")
_CHANGE = re.compile(r"\b(?:change|increase|decrease|difference|grow(?:th)?|decline)\b")
_AVERAGE = re.compile(r"\b(?:average|mean)\b")
_TOTAL = re.compile(r"\b(?:sum|combined|in total|total of|altogether|together)\b")
_SHARE = re.compile(r"\b(?P<kind>ratio|proportion|percentage) of (?:the )?(?P<part>.+?) (?:to|in|of|over|as a (?:percentage|proportion) of) "
                    r"(?:the )?(?P<whole>.+?)(?: in| for| as of| at|\?|$)")
_WHICH_YEAR = re.compile(r"\b(?:which|what) (?:years?|periods?|fiscal years?|fy)\b")


def years_in(text: str) -> list[int]:
    """The years a text names, in order ("FY18" is 2018).

    >>> years_in("change from FY18 to 2019"), years_in("Year ended March 31, 2018 (in millions)")
    ([2018, 2019], [2018])
    """
    return [2000 + int(m["short"]) if m["short"] else int(m["year"]) for m in _YEAR.finditer(text)]


def period_columns(table: Table, question: str) -> dict[int, int]:
    """Year → the column holding it (of several columns of one year, the one whose header shares
    most words with the question, then the first)."""
    words, best = terms(question), {}
    for j, header in enumerate(table.header[1:], start=1):
        found = years_in(header)
        if len(found) != 1 or not any(table.numbers[i][j] is not None for i in range(len(table.rows))):
            continue
        score = len(words & terms(header))
        if found[0] not in best or score > best[found[0]][1]:
            best[found[0]] = (j, score)
    return {year: j for year, (j, _) in best.items()}


def line_of(table: Table, question: str) -> int | None:
    """The row whose label (first cell) the question names best: most of the label's words in the
    question, at least half of them; of equals, the longer label."""
    words, best, best_key = terms(question) | _plain(question), None, (0.0, 0)
    for i, row in enumerate(table.rows):
        label = terms(row[0]) or _plain(row[0])  # "Other" is all stopword
        if not label or all(n is None for n in table.numbers[i][1:]):
            continue
        key = (len(words & label) / len(label), len(label & words))
        if key[0] >= 0.5 and key > best_key:
            best, best_key = i, key
    return best


def _share(table: Table, columns: dict[int, int], match: re.Match, asked: list[int]) -> TableAnswer | None:
    """One line over another in a year (the one asked, else the latest): a ratio, or a percentage."""
    part, whole = line_of(table, match["part"]), line_of(table, match["whole"])
    year = asked[0] if asked else max(columns)
    if part is None or whole is None or part == whole:
        return None
    a, b = table.numbers[part][columns[year]], table.numbers[whole][columns[year]]
    if a is None or not b:
        return None
    ratio = a / b * (1 if match["kind"] in ("ratio", "proportion") else 100)
    return TableAnswer((f"{ratio:.2f}",), (part, whole), "ratio" if match["kind"] != "percentage" else "percentage",
                       columns[year], (columns[year],))


def _year_as_written(table: Table, column: int, year: int) -> str:
    """A year column's header as the table writes it ("2010/11"), else the year."""
    header = table.header[column].strip()
    return header if re.fullmatch(r"(?:FY\s?)?\d{4}(?:[/–-]\d{2,4})?", header) else str(year)


def _largest_line(table: Table, q: str, column: int) -> TableAnswer | None:
    """"Which power had the least capacity in 2007?": the line (its label) largest or smallest that year."""
    lines = [i for i in range(len(table.rows)) if table.numbers[i][column] is not None and table.rows[i][0]
             and not table.is_summary(i)]
    if not lines:
        return None
    best = (max if MORE.search(q) and not LESS.search(q) else min)(lines, key=lambda i: table.numbers[i][column])
    return TableAnswer((table.rows[best][0],), (best,), "argmax" if MORE.search(q) else "argmin", 0)


def _plain(text: str) -> set[str]:
    return set(re.findall(r"\w+", text.casefold()))


def read_periods(question: str, table: Table) -> TableAnswer | None:
    """The answer when `table` has two or more year columns and the question names one of its
    lines; None otherwise (the table is then read as rows of things)."""
    columns = period_columns(table, question)
    if len(columns) < 2:
        return None
    q = question.casefold()
    shared = _SHARE.search(q)
    found = _share(table, columns, shared, [y for y in years_in(question) if y in columns]) if shared else None
    if found is not None:  # "the ratio of A to B in 2018", "the percentage of A in total B"
        return found
    row = line_of(table, question)
    asked = [y for y in dict.fromkeys(years_in(question)) if y in columns]
    if row is None and _WHICH_YEAR.search(q) and not (MORE.search(q) or LESS.search(q)) and not asked:
        return TableAnswer(tuple(_year_as_written(table, j, y) for y, j in columns.items()), (), "years", None)
    if row is None:
        return _largest_line(table, q, columns[asked[0]]) if len(asked) == 1 and (MORE.search(q) or LESS.search(q)) else None
    value = {y: table.numbers[row][j] for y, j in columns.items()}
    if len(asked) == 2 and " or " in q and (MORE.search(q) or LESS.search(q)) and None not in (value[asked[0]], value[asked[1]]):
        pick = (max if MORE.search(q) else min)(asked, key=lambda y: value[y])  # "did 2010/11 or 2011/12 make more?"
        return TableAnswer((_year_as_written(table, columns[pick], pick),), (row,), "choice", columns[pick])
    if _WHICH_YEAR.search(q) and not (MORE.search(q) or LESS.search(q)) and not asked:  # "in which years was X calculated?"
        known = [y for y in columns if value[y] is not None]
        return TableAnswer(tuple(_year_as_written(table, columns[y], y) for y in known), (row,), "years", None) if known else None
    if _WHICH_YEAR.search(q) and (MORE.search(q) or LESS.search(q)):
        known = [y for y in columns if value[y] is not None]
        pick = (max if MORE.search(q) and not LESS.search(q) else min)(known, key=lambda y: value[y])
        return TableAnswer((_year_as_written(table, columns[pick], pick),), (row,), "argmax" if MORE.search(q) else "argmin",
                           columns[pick])
    if len(asked) == 1 and _AVERAGE.search(q) and asked[0] - 1 in columns:
        asked.append(asked[0] - 1)  # "the 2019 average balance": of the year's opening and closing
    elif len(asked) < 2 and (_AVERAGE.search(q) or _CHANGE.search(q)):
        asked = sorted(columns, reverse=True)[:2] if _CHANGE.search(q) else sorted(columns, reverse=True)
    if any(value[y] is None for y in asked) or not asked:
        return None
    later, earlier = max(asked), min(asked)
    if _PERCENT_CHANGE.search(q) and len(asked) >= 2 and value[earlier]:
        change = (value[later] - value[earlier]) / abs(value[earlier]) * 100
        return TableAnswer((f"{change:.2f}",), (row,), "percentage change", columns[later], (columns[earlier], columns[later]))
    if _CHANGE.search(q) and len(asked) >= 2:
        return TableAnswer((format_number(value[later] - value[earlier]),), (row,), "change", columns[later],
                           (columns[earlier], columns[later]))
    if _AVERAGE.search(q):
        return TableAnswer((format_number(sum(value[y] for y in asked) / len(asked)),), (row,), "average", columns[later],
                           tuple(columns[y] for y in sorted(asked)))
    summed = _TOTAL.search(q) or (re.search(r"\btotal\b", q) and "total" not in table.rows[row][0].casefold())
    if summed and len(asked) >= 2:
        return TableAnswer((format_number(sum(value[y] for y in asked)),), (row,), "sum", columns[later],
                           tuple(columns[y] for y in sorted(asked)))
    return TableAnswer(tuple(table.rows[row][columns[y]] for y in asked), (row,), "lookup", columns[asked[0]])
