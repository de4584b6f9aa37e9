"""Yes/no questions, measured apart: how often the product answers "Yes"/"No" right, end to end.

    .venv/bin/python scripts/eval_yesno.py [--split tune|report] [--limit N] [--model READER_FOLDER]

Two held-out sets, neither trained on:
- boolq: BoolQ dev (`../shared/data/yesno/boolq_dev.jsonl`, CC BY-SA 3.0): every passage a document of
  one corpus; `--split tune` takes the questions at even line positions (choices are made there),
  `report` the odd ones.
- squad: the answerable questions of the SQuAD 2.0 tune or report articles (whole articles as the
  corpus) turned into yes/no questions as training turns train questions (`qa.training.yesno`):
  about half ask about the gold answer ("Yes"), the rest about another name or number ("No").
Prints, per set: accuracy of the answered ones, the share answered, and accuracy counting every
question not answered as wrong; and how many questions of the SQuAD split that are not yes/no
questions the rule (`qa.answer.yesno.is_yes_no`) takes for one (they would get "Yes"/"No").
"""

from __future__ import annotations

import argparse
from pathlib import Path

from qa.config import Settings
from qa.evaluation.evaluate import evaluate
from qa.training.yesno import boolq_questions, pipeline_for, squad_yes_no
from qa.models.locate import BUNDLED_READER


def report(name: str, records: list[dict]) -> None:
    answered = [r for r in records if not r.get("abstained", True)]
    right = [r["squad_exact"] for r in answered]
    gold_yes = sum(r["gold"] == ["yes"] for r in records)
    print(f"{name}: {len(records)} questions ({gold_yes} yes), answered {len(answered) / len(records):.3f}, "
          f"accuracy of answered {sum(right) / max(1, len(right)):.3f}, accuracy counting not answered as wrong "
          f"{sum(right) / len(records):.3f}, tentative {sum(r.get('outcome') == 'tentative' for r in records) / len(records):.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--split", choices=["tune", "report"], default="tune")
    parser.add_argument("--limit", type=int, default=600, help="questions per set (0: all)")
    parser.add_argument("--model", type=Path, default=BUNDLED_READER)
    parser.add_argument("--work", type=Path, default=Path(".reader-train/yesno"))
    args = parser.parse_args()
    settings = Settings.from_env()

    questions = boolq_questions(args.work / args.split / "boolq" / "corpus", args.split, args.limit)
    pipeline = pipeline_for(args.work / args.split / "boolq", args.model, settings)
    report(f"boolq dev ({args.split})", evaluate(pipeline, questions, settings.k, "evidence"))

    questions, flagged, total = squad_yes_no(args.work / args.split / "squad" / "corpus", args.split, args.limit)
    pipeline = pipeline_for(args.work / args.split / "squad", args.model, settings)
    report(f"SQuAD {args.split} articles as yes/no", evaluate(pipeline, questions, settings.k, "evidence"))
    print(f"SQuAD {args.split} articles: {flagged} of {total} questions taken for yes/no questions by the rule")


if __name__ == "__main__":
    main()
