"""`qa eval` over questions about tables (WikiTableQuestions, TAT-QA: each line names its
`table`, a CSV file beside the question file): all the file's tables together become the corpus,
one CSV document each (with its `paragraphs`, TAT-QA's report text, as a text document beside it),
and an answer is right when its values equal the gold set, numbers as numbers (WikiTableQuestions'
denotation match, `qa.tables.table.table_correct`).
"""

from __future__ import annotations

import csv
import re
from pathlib import Path

from qa.evaluation.evaluate import Question, first_record, load_questions
from qa.tables.table import Table


def is_table_file(path: Path) -> bool:
    """Whether a JSON Lines question file's first question names a table."""
    return isinstance(first_record(path).get("table"), str)


def table_rows(path: Path) -> list[list[str]]:
    """A table file's rows: WikiTableQuestions' CSV escapes quotes as \\", TAT-QA's is plain CSV."""
    with path.open(encoding="utf-8", newline="") as f:
        if "tatqa" in path.parts:
            return list(csv.reader(f))
        return list(csv.reader(f, escapechar="\\", doublequote=False))


def load_table(path: Path) -> Table:
    return Table.from_rows(table_rows(path))


def table_corpus(path: Path, folder: Path) -> tuple[list[Question], list[str]]:
    """Writes each table the questions name into `folder` as a plain CSV document (named by its
    page title when the file gives one) and returns the questions (typed by their `kind`) and the
    problems of the lines skipped."""
    questions, problems = load_questions(path)
    folder.mkdir(parents=True, exist_ok=True)
    names: dict[str, str] = {}
    kept = []
    for q in questions:
        table = q.extra.get("table")
        source = path.parent / table if isinstance(table, str) else None
        if source is None or not source.is_file() or path.parent.resolve() not in source.resolve().parents:
            problems.append(f"{path}: {q.id}: skipped: its table is not a file beside the question file")
            continue
        if table not in names:
            title = re.sub(r"[^\w.-]+", "_", str(q.extra.get("title") or source.stem), flags=re.ASCII).strip("._")[:60]
            names[table] = f"{len(names) + 1:04d}_{title or 'table'}.csv"
            with (folder / names[table]).open("w", encoding="utf-8", newline="") as out:
                csv.writer(out).writerows(table_rows(source))
        text, beside = path.parent / str(q.extra.get("paragraphs") or ""), (folder / names[table]).with_suffix(".txt")
        if q.extra.get("paragraphs") and not beside.exists() and text.is_file() and path.parent.resolve() in text.resolve().parents:
            beside.write_bytes(text.read_bytes())  # TAT-QA: the report's text beside its table
        kept.append(Question(q.id, q.question, q.answers, type=str(q.extra.get("kind") or q.type),
                             extra={**q.extra, "document": names[table]}))
    return kept, problems
