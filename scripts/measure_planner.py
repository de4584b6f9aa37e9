"""Measure the question planner's rules (`qa.answer.planner.plan`): how often HotpotQA's
comparison questions are split, how often its bridge questions and SQuAD's single-fact tune
questions are (wrongly) split. No model runs.

    .venv/bin/python scripts/measure_planner.py            # the choose half of HotpotQA (rules are tuned here)
    .venv/bin/python scripts/measure_planner.py --report   # the report half

HotpotQA (`../shared/data/multihop/`, train 100 + dev 1,009) is split by question once: the
first hex digit of sha256(_id) even → choose, odd → report.
"""

from __future__ import annotations

import argparse
import collections
import hashlib
import json
from pathlib import Path

from qa.answer.planner import plan
from qa.training.splits import DATA, dev_splits

MULTIHOP = DATA.parent / "multihop"
ROOT = Path(__file__).resolve().parents[1]


def half(question_id: str) -> str:
    return "choose" if int(hashlib.sha256(question_id.encode()).hexdigest()[0], 16) % 2 == 0 else "report"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--report", action="store_true", help="the report half (else the choose half)")
    parser.add_argument("--show", type=int, default=0, help="print this many missed comparisons and false splits")
    args = parser.parse_args()
    wanted = "report" if args.report else "choose"
    rows = [json.loads(line) for name in ("hotpotqa_train_100.jsonl", "hotpotqa_dev_1009.jsonl")
            for line in (MULTIHOP / name).read_text(encoding="utf-8").splitlines()]
    rows = [r for r in rows if half(r["_id"]) == wanted]
    split = collections.Counter()
    totals = collections.Counter(r["type"] for r in rows)
    kinds = collections.Counter()
    missed, false = [], []
    for r in rows:
        found = plan(r["question"])
        if found:
            split[r["type"]] += 1
            kinds[found.kind] += 1
            if r["type"] == "bridge":
                false.append((r["question"], found.parts))
        elif r["type"] == "comparison":
            missed.append(r["question"])
    squad = [q.question for a in dev_splits(DATA)["tune"] for q in a.questions]
    squad_split = [q for q in squad if plan(q)]
    print(f"HotpotQA {wanted} half: comparisons split {split['comparison'] / totals['comparison']:.3f} "
          f"({split['comparison']}/{totals['comparison']}); bridges split {split['bridge'] / totals['bridge']:.3f} "
          f"({split['bridge']}/{totals['bridge']}); kinds {dict(kinds)}")
    print(f"SQuAD tune questions split: {len(squad_split) / len(squad):.4f} ({len(squad_split)}/{len(squad)})")
    own = [json.loads(line)["question"] for line in (ROOT / "eval" / "questions.jsonl").read_text(encoding="utf-8").splitlines()]
    print(f"own set (eval/questions.jsonl) split: {sum(plan(q) is not None for q in own)}/{len(own)}")
    for q in missed[:args.show]:
        print("missed:", q)
    for q, parts in false[:args.show]:
        print("bridge split:", q, "->", parts)
    for q in squad_split[:args.show]:
        print("squad split:", q, "->", plan(q).parts)


if __name__ == "__main__":
    main()
