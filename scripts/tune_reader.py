"""Choose how the product reads, on TUNE articles only: what the reader reads around each
candidate sentence (`reader_context`), how many candidates (`reader_windows`) and how the
candidates are ranked (cosine + `evidence_overlap_weight` × word overlap).

    .venv/bin/python scripts/tune_reader.py [--model qa/reader_model]    # ~2 minutes a variant

For each variant the product retrieves and reads every TUNE question (whole articles as the
corpus); the calibration (margin + window score) and threshold are fitted leave-one-article-out
(on two TUNE articles, scored on the third), as `diagnose_reader.py` does. Prints SQuAD 2.0 F1,
HasAns F1, NoAns accuracy, windows read and the time per question (retrieval and reading).
"""

from __future__ import annotations

import dataclasses
import time

import numpy as np

from qa.config import Settings
from qa.training.calibration import leave_one_article_out, prepare, reader_arguments, window_rows
from qa.training.splits import dev_splits

# (reader_context, reader_windows, the weight of word overlap in ranking candidate sentences)
VARIANTS = (("sentence", 8, 0.5), ("wide", 8, 0.5), ("sentence", 4, 0.5), ("sentence", 12, 0.5),
            ("sentence", 8, 0.0), ("sentence", 8, 1.0))


def main() -> None:
    args = reader_arguments(__doc__.splitlines()[0])
    tune = dev_splits(args.data)["tune"]
    print("context   windows overlap | SQuAD2 F1 | HasAns F1 | NoAns | windows read | ms/question")
    for context, count, weight in VARIANTS:
        settings = dataclasses.replace(Settings.from_env(), reader_context=context, reader_windows=count,
                                       evidence_overlap_weight=weight)
        pipeline, questions = prepare(tune, args.work / "tune", args.model, settings)
        began = time.perf_counter()
        rows = window_rows(pipeline, questions)
        seconds = time.perf_counter() - began
        f1, has, no = leave_one_article_out(rows, ("margin", "window"))
        read = np.mean([len(q["windows"]) for q in rows])
        print(f"{context:9s} {count:7d} {weight:7.1f} | {f1:9.3f} | {has:9.3f} | {no:5.3f} | {read:12.1f} | "
              f"{1000 * seconds / len(rows):.0f} (with retrieval)", flush=True)


if __name__ == "__main__":
    main()
