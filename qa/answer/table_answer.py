"""Questions over a table (a spreadsheet's sheet, a CSV file): when retrieval ranks one of its rows
first, the table reader (`qa.tables.reader`) reads the whole table — every row of that sheet —
and, when its answer is a cell (a lookup, the largest or smallest, the first or last, the row
after or before a named one, the one of two), that cell is the short answer and its row the
quoted, cited proof: "**Japan** — “Row 4: Country: Japan; Revenue: 61.4” [1]". A computed answer
(a count, a sum or average, a difference, the rows a numeric condition keeps) is the headline, with
the rows it was computed from quoted and cited: "**2** — 2 of 3 rows: “Row 3: …” [1] · “Row 4: …” [2]".
No parse, or a count of no rows, is left to the span reader.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from qa.answer.answerer import evidence_answer
from qa.answer.compose import marker_of
from qa.index.loaded import Index
from qa.tables.match import column_scores
from qa.tables.parse import format_number
from qa.tables.reader import TableAnswer, read_table
from qa.tables.table import ROW_LINE, Table, row_cells, table_of
from qa.types import ANSWERED, Answer, Chunk, Citation, Passage, Reading

CELL_OPERATIONS = ("lookup", "argmax", "argmin", "first", "last", "next", "previous", "choice")
COMPUTED_OPERATIONS = ("count", "sum", "average", "difference", "filter", "change", "percentage change", "largest total",
                       "smallest total")
MAX_QUOTED_ROWS = 8  # a computed answer quotes and cites this many of its rows, then says how many more
TABLE_CONFIDENCE = 0.9  # reported as the answer's confidence: the parse found the cell it names (not calibrated)
MAX_TABLE_ROWS = 5000  # a larger sheet is left to the span reader
TABLE_RANKS = 3  # a row this high in the ranking sends a question naming its columns to the table reader


def table_rows(index: Index, top: Chunk) -> list[tuple[Chunk, re.Match]]:
    """Every row of the table `top` belongs to (the same document and page, so the same sheet),
    in order, each once: (the chunk holding it, its "Row N: …" line)."""
    first, end = index.rows_of(top.doc_id)
    rows, seen = [], set()
    for chunk in index.chunks[first:end]:
        if chunk.page != top.page:
            continue
        for line in ROW_LINE.finditer(chunk.text):
            start = chunk.start + line.start()
            if start not in seen:
                seen.add(start)
                rows.append((chunk, line))
    return sorted(rows, key=lambda row: row[0].start + row[1].start())[:MAX_TABLE_ROWS + 1]


def as_table(rows: Sequence[tuple[Chunk, re.Match]]) -> tuple[Table, list[dict[str, tuple[int, int]]]]:
    """The table, and per row each cell's offsets in its line (for the answer span)."""
    parsed = [row_cells(line) for _, line in rows]
    return table_of(parsed), [{key: (a, b) for key, (_, a, b) in cells.items()} for cells in parsed]


def table_answer(question: str, passages: Sequence[Passage], index: Index) -> Answer | None:
    """The table reader's answer when the best passage is a table row, or a row ranks in the top
    three and the question names one of its table's columns ("Which agent handled order 17?"
    beside an article); None otherwise (see the module's text)."""
    ranked = next((n for n, p in enumerate(passages[:TABLE_RANKS]) if ROW_LINE.search(p.chunk.text)), None)
    if ranked is None:
        return None
    if ranked > 0:  # a text passage ranks first: only a question naming the table's columns, checked on this
        lines = ROW_LINE.finditer(passages[ranked].chunk.text)  # passage's own rows, before reading the whole table
        header = list(dict.fromkeys(key for line in lines for key in row_cells(line)))
        if not any(column_scores(question, Table(header, []))):
            return None
    rows = table_rows(index, passages[ranked].chunk)
    if len(rows) > MAX_TABLE_ROWS:
        return None
    table, spans = as_table(rows)
    if len(table.rows) != len(rows):
        return None  # an empty row was dropped: the row numbers would not line up
    found = read_table(question, table)
    if found is not None and found.operation in COMPUTED_OPERATIONS:
        return computed_answer(question, found, table, rows, passages)
    if found is None or found.operation not in CELL_OPERATIONS or found.column is None or len(found.values) != 1:
        return None
    row = next((i for i in found.rows if table.rows[i][found.column] == found.values[0]), None)
    key = table.header[found.column] if row is not None else None
    if row is None or key not in spans[row] or not found.values[0]:
        return None
    chunk, line = rows[row]
    shown = list(passages)
    marker = marker_of(shown, chunk)  # the row's passage is shown, so it can be cited
    line_start = chunk.start + line.start()
    a, b = spans[row][key]
    if line.group(0)[a:b] != found.values[0]:
        return None  # a cell holding "; " split the line otherwise than the table: no verbatim span
    reading = Reading(marker, chunk.chunk_id, found.values[0], line_start + a, line_start + b, line.group(0),
                      line_start, line_start + len(line.group(0)), 0.0, 0.0, TABLE_CONFIDENCE)
    text, citations = evidence_answer(reading, shown)
    return Answer(question, text, tuple(citations), tuple(shown), abstained=False, mode="evidence",
                  model="table-reader", raw_text=text, short_answer=reading, readings=(reading,), outcome=ANSWERED)


def computed_answer(question: str, found: TableAnswer, table: Table, rows: Sequence[tuple[Chunk, re.Match]],
                    passages: Sequence[Passage]) -> Answer | None:
    """A computed value as the headline, then what it was computed from and the rows quoted, each
    cited (the first `MAX_QUOTED_ROWS`); None when it rests on no row."""
    if not found.rows or not found.values:
        return None
    shown, citations, quoted = list(passages), [], []
    for i in found.rows[:MAX_QUOTED_ROWS]:
        chunk, line = rows[i]
        marker = marker_of(shown, chunk)
        start = chunk.start + line.start()
        citations.append(Citation(marker, chunk.chunk_id, line.group(0), start, start + len(line.group(0)), chunk.page))
        quoted.append(f"“{line.group(0)}” [{marker}]")
    more = len(found.rows) - len(quoted)
    text = f"{computed_from(found, table)}: " + " · ".join(quoted) + (f" · and {more} more" if more > 0 else "")
    return Answer(question, text, tuple(citations), tuple(shown), abstained=False, mode="evidence", model="table-reader",
                  raw_text=text, outcome=ANSWERED,
                  headline=", ".join(found.values) + ("%" if found.operation == "percentage change" else ""))


def computed_from(found: TableAnswer, table: Table) -> str:
    """What a computed value was computed from, in words: "2 of 3 rows", "the sum of Revenue over 3 rows".

    >>> t = Table.from_rows([["Country", "Revenue"], ["Japan", "61.4"], ["Korea", "0"]])
    >>> computed_from(TableAnswer(("61.4",), (0, 1), "sum", 1), t), computed_from(TableAnswer(("2",), (0, 1), "count", None), t)
    ('the sum of Revenue over 2 rows', '2 of 2 rows')
    >>> s = Table.from_rows([["Item", "2019", "2018"], ["Other", "44.1", "56.7"]])
    >>> computed_from(TableAnswer(("-12.6",), (0,), "change", 1, (2, 1)), s)
    'the change of Other from 2018 (56.7) to 2019 (44.1)'
    """
    n, column = len(found.rows), table.header[found.column] if found.column is not None else ""
    rows = f"{n} row" + ("s" if n != 1 else "")
    if found.operation in ("largest total", "smallest total"):  # "which country had the most revenue?" over orders
        (number,) = found.columns
        total = format_number(sum(table.numbers[i][number] or 0 for i in found.rows))
        return f"the {found.operation} of {table.header[number]} by {column}: {total} over {rows}"
    if found.columns:  # a statement's line over years: "Other, from 2018 (56.7) to 2019 (44.1)"
        line = table.rows[found.rows[0]]
        years = [f"{table.header[j]} ({line[j]})" for j in found.columns]
        if found.operation in ("change", "percentage change"):
            return f"the {found.operation} of {line[0]} from {years[0]} to {years[-1]}"
        return f"the {found.operation} of {line[0]} over {' and '.join(years)}"
    if found.operation == "count":
        return f"{n} of {len(table.rows)} rows"
    if found.operation in ("sum", "average"):
        return f"the {found.operation} of {column} over {rows}"
    if found.operation == "difference":
        a, b = (table.rows[i][found.column] for i in found.rows[:2])
        return f"the difference of {column}: {a} and {b}"
    return f"{rows} of {len(table.rows)}"
