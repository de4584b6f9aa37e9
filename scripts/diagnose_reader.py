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
import sys
from pathlib import Path

import numpy as np
from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from calibrate_reader import fit_logistic, parse_arguments, prepare  # noqa: E402
from train_reader import dev_splits, train_articles  # noqa: E402

from qa.sentences import sentence_spans  # noqa: E402
from qa.config import Settings  # noqa: E402
from qa.answer.reader import window_at, window_budget  # noqa: E402
from qa.evaluation.squad import f1_score  # noqa: E402
from qa.text import normalize_answer as normalize  # noqa: E402
from qa.text import overlap, terms  # noqa: E402

FEATURE_SETS = (
    ("margin",), ("margin", "window"), ("margin", "window", "span"), ("margin", "window", "dense"),
    ("margin", "window", "bm25"), ("margin", "window", "fused"), ("margin", "window", "rank"),
    ("margin", "window", "agree"), ("margin", "window", "answer_in_question"),
)


def window_rows(pipeline, questions) -> list[dict]:  # noqa: ANN001
    """Per question: its article, whether it is answerable, and per window read its features
    and the F1 of its span against the gold answers."""
    out = []
    for q in tqdm(questions, desc="reading", file=sys.stderr):
        _, passages = pipeline.search(q.question)
        windows = pipeline.answerer.windows(q.question, pipeline.answerer.evidence(q.question, passages))
        readings = pipeline.reader.read(q.question, windows)
        texts = [normalize(r.text) for r in readings]
        rows = []
        for i, (w, r) in enumerate(zip(windows, readings)):
            p = passages[w.marker - 1]
            rows.append({"margin": r.margin, "window": w.score, "span": r.span_score, "dense": p.dense_score or 0.0,
                         "bm25": p.bm25_score or 0.0, "fused": 60 * p.score, "rank": w.marker,
                         "agree": sum(t == texts[i] for j, t in enumerate(texts) if j != i and t),
                         "answer_in_question": overlap(terms(r.text), terms(q.question)),
                         "f1": max((f1_score(r.text, g) for g in q.answers), default=0.0)})
        out.append({"title": q.extra["title"], "answerable": q.answerable, "windows": rows})
    return out


def best_readings(questions: list[dict], names: tuple[str, ...], w: np.ndarray) -> np.ndarray:
    """Per question: (probability, F1, answerable) of its most probable window."""
    best = []
    for q in questions:
        if not q["windows"]:
            best.append((0.0, 0.0, q["answerable"]))
            continue
        x = np.array([[row[n] for n in names] for row in q["windows"]])
        p = 1 / (1 + np.exp(-(x @ w[:-1] + w[-1])))
        best.append((p.max(), q["windows"][int(p.argmax())]["f1"], q["answerable"]))
    return np.array(best, dtype=float)


def scores(best: np.ndarray, threshold: float) -> tuple[float, float, float]:
    answered, answerable = best[:, 0] >= threshold, best[:, 2] == 1
    per_question = np.where(answered, best[:, 1], ~answerable)
    return float(per_question.mean()), float(per_question[answerable].mean()), float(per_question[~answerable].mean())


def leave_one_article_out(questions: list[dict], names: tuple[str, ...]) -> tuple[float, float, float]:
    held_out = []
    for title in sorted({q["title"] for q in questions}):
        fit = [q for q in questions if q["title"] != title]
        x = np.array([[row[n] for n in names] for q in fit for row in q["windows"]])
        y = np.array([float(row["f1"] >= 0.5) for q in fit for row in q["windows"]])
        w = fit_logistic(x, y)
        best = best_readings(fit, names, w)
        threshold = max(np.unique(np.round(best[:, 0], 3)), key=lambda t: scores(best, t)[0])
        held_out.append((best_readings([q for q in questions if q["title"] == title], names, w), threshold))
    answered = np.concatenate([b[:, 0] >= t for b, t in held_out])
    best = np.concatenate([b for b, _ in held_out])
    return scores(np.column_stack([answered.astype(float), best[:, 1:]]), 0.5)


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
    args = parse_arguments(__doc__.splitlines()[0])
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
