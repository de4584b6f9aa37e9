"""Answer time for questions over a spreadsheet against questions over text: prints figures,
asserts nothing.

    .venv/bin/python scripts/bench_tables.py [--corpus DIR] [--rows 1000] [--repeat 3]

Copies the corpus (the bundled one by default) into a temporary folder with a generated
spreadsheet of `--rows` orders (order, country, units shipped, revenue, date, agent), indexes it
with the real models, then answers the first ten questions of eval/questions.jsonl (text) and
eight questions about the sheet (lookups, largest, counts, sums), `--repeat` times each, and
prints the whole answer's p50/p95 for each kind, their ratio, and how many questions of each kind
the table reader answered (text questions: none should be).
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

from qa.config import Settings
from qa.evaluation.evaluate import percentile
from qa.index.build import build_index
from qa.models.embedders import get_embedder

SHEET_QUESTIONS = (
    "Which country had the most revenue?", "How many orders were shipped to Vietnam?",
    "How many units were shipped to Japan?", "What is the total revenue of orders to Korea?",
    "Which agent handled order 17?", "What is the average revenue?",
    "How many orders had more than 1500 units shipped?", "Which country had the fewest units shipped?",
)
COUNTRIES = ("Japan", "Korea", "China", "Vietnam", "Thailand", "India", "France", "Germany", "Brazil", "Chile")


def write_sheet(path: Path, rows: int) -> None:
    import openpyxl

    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = "Orders"
    sheet.append(["Order", "Country", "Units shipped", "Revenue", "Date", "Agent"])
    pick = random.Random(0)
    for n in range(1, rows + 1):
        sheet.append([n, pick.choice(COUNTRIES), pick.randint(1, 2000), round(pick.random() * 100, 1),
                      f"{pick.randint(1, 28)} March 20{pick.randint(10, 24)}", f"Agent {pick.randint(1, 50)}"])
    book.save(path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=None)
    parser.add_argument("--rows", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    from qa.pipeline import Pipeline

    base = Settings.from_env(corpus_dir=args.corpus)
    texts = [json.loads(line)["question"] for line in Path("eval/questions.jsonl").read_text().splitlines()[:10]]
    with tempfile.TemporaryDirectory() as tmp:
        corpus = Path(tmp) / "corpus"
        shutil.copytree(base.corpus_dir, corpus)
        write_sheet(corpus / "orders.xlsx", args.rows)
        settings = Settings.from_env(corpus_dir=corpus, index_dir=Path(tmp) / "index")
        build_index(settings, get_embedder(settings.embed_model, settings.threads, cache_dir=settings.cache_dir,
                                           precision=settings.encoder_precision, alone=True), progress=False)
        pipeline = Pipeline(settings)
        pipeline.warm_up()
        timings: dict[str, list[float]] = {"text": [], "sheet": []}
        by_table = {"text": 0, "sheet": 0}  # answers the table reader gave, per kind
        for _ in range(args.repeat):
            for kind, questions in (("text", texts), ("sheet", SHEET_QUESTIONS)):
                for question in questions:
                    answer = pipeline.ask(question, mode="evidence")
                    timings[kind].append(answer.timings["total_ms"])
                    by_table[kind] += answer.model == "table-reader"
        for kind, ms in timings.items():
            print(f"{kind:6s} questions: whole answer p50 {statistics.median(ms):6.0f} ms   p95 {percentile(ms, 95):6.0f} ms")
        print(f"sheet / text (p50): {statistics.median(timings['sheet']) / statistics.median(timings['text']):.2f}; "
              f"answered by the table reader: {by_table['sheet'] // args.repeat} of {len(SHEET_QUESTIONS)} sheet questions, "
              f"{by_table['text'] // args.repeat} of {len(texts)} text questions")
    return 0


if __name__ == "__main__":
    sys.exit(main())
