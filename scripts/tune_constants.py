"""Measure a tuning constant of the answering path on the TUNE articles (never on REPORT): the
product runs on them (whole articles as the corpus) once per value, evidence mode, and prints
retrieval and answer figures. The figure beside each constant in the code comes from here.

    .venv/bin/python scripts/tune_constants.py qa.answer.retrieve.SENTENCE_POOL 1 2 4 8
    .venv/bin/python scripts/tune_constants.py qa.text.STEM_PREFIX 3 4 5 99
    .venv/bin/python scripts/tune_constants.py qa.answer.reader.MAX_ANSWER_TOKENS 15 30 45
"""

from __future__ import annotations

import argparse
import importlib
import time
from pathlib import Path

from qa.config import Settings
from qa.training.calibration import prepare
from qa.evaluation.evaluate import evaluate, summarize
from qa.training.splits import DATA, dev_splits
from qa.models.locate import BUNDLED_READER

COLUMNS = ("hit@1", "hit@3", "squad_f1", "HasAns_f1", "correct_abstention", "false_abstention")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("constant", help="module.NAME, e.g. qa.answer.retrieve.SENTENCE_POOL")
    parser.add_argument("values", nargs="+", type=float)
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--work", type=Path, default=Path(".reader-train") / "constants")
    args = parser.parse_args()
    module_name, _, name = args.constant.rpartition(".")
    module = importlib.import_module(module_name)
    shipped = getattr(module, name)
    settings = Settings.from_env()
    pipeline, questions = prepare(dev_splits(args.data)["tune"], args.work, BUNDLED_READER, settings)
    print(f"{name} on TUNE ({len(questions)} questions; shipped: {shipped})")
    print(f"{'value':>8} " + " ".join(f"{c:>18}" for c in COLUMNS) + "  ms/question")
    for value in args.values:
        setattr(module, name, type(shipped)(value))
        began = time.perf_counter()
        overall = summarize(evaluate(pipeline, questions, settings.k, "evidence"), settings.k)["overall"]
        ms = 1000 * (time.perf_counter() - began) / len(questions)
        print(f"{value:>8g} " + " ".join(f"{overall.get(c) or 0.0:>18.3f}" for c in COLUMNS) + f"  {ms:.0f}", flush=True)
    setattr(module, name, shipped)


if __name__ == "__main__":
    main()
