"""Where the reader loses answers: measured on TUNE articles (and training articles for the
over-fitting check), never on REPORT.

    .venv/bin/python scripts/diagnose_reader.py            # ~5 minutes on 2 CPU cores

Prints:
- HasAns F1 when every answerable question is answered (no threshold), by the most probable
  window and by the best window in hindsight (the oracle over the windows read);
- SQuAD 2.0 F1 / HasAns / NoAns of calibrations over other per-window features, each scored
  leave-one-article-out (fit and threshold on two TUNE articles, scored on the third);
- the reader alone on the window that holds the answer (F1), and how often an unanswerable
  question gets a positive margin somewhere in its paragraph, on training vs TUNE articles.
"""

from __future__ import annotations

import random

import numpy as np

from qa.answer.reader import window_at, window_budget
from qa.config import Settings
from qa.training.calibration import leave_one_article_out, prepare, reader_arguments, window_rows
from qa.training.splits import dev_splits, train_articles
from qa.evaluation.squad import f1_score
from qa.sentences import sentence_spans

FEATURE_SETS = (
    ("margin",), ("margin", "window"), ("margin", "window", "span"), ("margin", "window", "dense"),
    ("margin", "window", "bm25"), ("margin", "window", "fused"), ("margin", "window", "rank"),
    ("margin", "window", "agree"), ("margin", "window", "answer_in_question"),
)


def gold_windows(pipeline, articles, rng: random.Random, n: int = 300) -> tuple[float, float]:  # noqa: ANN001
    """(F1 on the window holding the answer, share of unanswerable questions with a positive
    margin in some window of their paragraph), over a sample of the articles' questions."""
    reader, count_tokens = pipeline.reader, pipeline.reader.count_tokens

    def paragraph_windows(q):  # noqa: ANN001, ANN202
        spans = sentence_spans(q.context)
        counts = count_tokens([q.context[a:b] for a, b in spans])
        budget = window_budget(count_tokens, q.question)
        return spans, [window_at(q.context, 0, spans, counts, c, budget) for c in range(len(spans))]

    answerable = [q for a in articles for q in a.questions if q.answers]
    f1s = []
    for q in rng.sample(answerable, min(n, len(answerable))):
        spans, windows = paragraph_windows(q)
        centre = next((i for i, (a, b) in enumerate(spans) if a <= q.answer_starts[0] < b), None)
        if centre is not None:
            (r,) = reader.read(q.question, [windows[centre]])
            f1s.append(max(f1_score(r.text, g) for g in q.answers))
    unanswerable = [q for a in articles for q in a.questions if not q.answers]
    positive = [max(r.margin for r in reader.read(q.question, paragraph_windows(q)[1])) > 0
                for q in rng.sample(unanswerable, min(n, len(unanswerable)))]
    return float(np.mean(f1s)), float(np.mean(positive))


def main() -> None:
    args = reader_arguments(__doc__.splitlines()[0])
    splits = {**dev_splits(args.data), "train": train_articles(args.data)}
    pipeline, questions = prepare(splits["tune"], args.work / "diagnose", args.model, Settings.from_env())
    rows = window_rows(pipeline, questions)
    answerable = [q for q in rows if q["answerable"] and q["windows"]]
    forced = np.mean([max(q["windows"], key=lambda r: r["margin"])["f1"] for q in answerable])
    oracle = np.mean([max(r["f1"] for r in q["windows"]) for q in answerable])
    print(f"TUNE, answering every answerable question: HasAns F1 {forced:.3f} by the largest margin, "
          f"{oracle:.3f} by the best window in hindsight")
    print("calibration features, leave-one-article-out on TUNE: SQuAD2 F1 / HasAns F1 / NoAns")
    for names in FEATURE_SETS:
        print(f"  {' + '.join(names):40s} " + " / ".join(f"{x:.3f}" for x in leave_one_article_out(rows, names)))
    rng = random.Random(1)
    for split in ("train", "tune"):
        f1, positive = gold_windows(pipeline, splits[split], rng)
        print(f"{split}: F1 on the window holding the answer {f1:.3f}; unanswerable with a positive margin {positive:.3f}")


if __name__ == "__main__":
    main()
