"""Measure the table reader (`qa.tables.reader`) on WikiTableQuestions or TAT-QA, each question
against its own table, scored as WikiTableQuestions' evaluator scores (the answer set must equal
the gold set; numbers compared as numbers, other values as normalised text).

    .venv/bin/python scripts/eval_tables.py ../shared/data/tables/wtq_dev.jsonl     # choose on dev
    .venv/bin/python scripts/eval_tables.py ../shared/data/tables/wtq_test.jsonl    # report on test
    .venv/bin/python scripts/eval_tables.py ../shared/data/tables/tatqa_dev.jsonl   # TAT-QA, the same

Prints accuracy overall and by `kind` (partly heuristic labels, see the data's SOURCES.md), and
how often the reader gave no answer. TAT-QA is read from its tables only (its paragraphs are the
span reader's), so its questions answered from the table alone (`answer_from` "table") are also
scored apart; its `scale` ("million") is not asked of the reader, so a number is right without it.
"""

from __future__ import annotations

import argparse
import collections
import json
from pathlib import Path

from qa.evaluation.tables import load_table
from qa.tables.reader import read_table
from qa.tables.table import same_answers


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("questions", type=Path)
    parser.add_argument("--show", type=int, default=0, help="print this many wrong answers")
    args = parser.parse_args()
    root = args.questions.parent
    totals, right, unanswered, wrong = collections.Counter(), collections.Counter(), 0, []
    from_table = collections.Counter()  # TAT-QA: (questions, right) answered from the table alone
    for line in args.questions.read_text(encoding="utf-8").splitlines():
        q = json.loads(line)
        answer = read_table(q["question"], load_table(root / q["table"]))
        totals[q["kind"]] += 1
        is_right = answer is not None and same_answers(answer.values, q["answers"])
        if q.get("answer_from") == "table":
            from_table.update({"questions": 1, "right": int(is_right)})
        if answer is None:
            unanswered += 1
        elif is_right:
            right[q["kind"]] += 1
        else:
            wrong.append((q["kind"], q["question"], answer.operation, answer.values[:3], q["answers"]))
    n = sum(totals.values())
    print(f"{args.questions.name}: accuracy {sum(right.values()) / n:.3f} ({sum(right.values())}/{n}); "
          f"no answer {unanswered / n:.3f}")
    if from_table:
        print(f"  answered from the table alone: {from_table['right'] / from_table['questions']:.3f} "
              f"({from_table['right']}/{from_table['questions']})")
    for kind in sorted(totals):
        print(f"  {kind:10} {right[kind] / totals[kind]:.3f} ({right[kind]}/{totals[kind]})")
    for row in wrong[:args.show]:
        print(" | ".join(map(str, row)))


if __name__ == "__main__":
    main()
