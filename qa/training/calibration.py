"""Calibrating the trained reader on the TUNE articles, then scoring it on the REPORT articles:
`scripts/calibrate_reader.py` runs `calibrate`, which writes `calibration.json`, `heldout.json`
and the model card; `scripts/diagnose_reader.py` and `scripts/tune_reader.py` reuse its parts.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

from qa.answer.answerer import CLOSEST_WINDOW_WEIGHT, states
from qa.answer.reader import CALIBRATED, TrainedReader
from qa.config import Settings
from qa.evaluation.evaluate import evaluate, squad_corpus, summarize
from qa.evaluation.report import table
from qa.evaluation.squad import f1_score
from qa.index.build import build_index
from qa.models.embedders import get_embedder
from qa.models.locate import BUNDLED_READER
from qa.pipeline import Pipeline
from qa.text import normalize_answer, overlap, terms
from qa.training.card import write_card, write_embedder_section
from qa.training.splits import DATA, DEV_TRAIN, dev_splits


CLOSEST_WEIGHTS = (0.0, 0.5, 1.0, 2.0, 4.0)  # weights of the window score in choosing a tentative answer's sentence, compared


def prepare(articles, work: Path, model_dir: Path, settings: Settings):  # noqa: ANN001, ANN201
    """(pipeline over the articles' corpus, indexed in `work`, its questions)."""
    settings = dataclasses.replace(settings, corpus_dir=work / "corpus", index_dir=work / "index")
    questions = squad_corpus(articles, settings.corpus_dir)
    embedder = get_embedder(settings.embed_model, settings.threads, cache_dir=settings.cache_dir,
                            precision=settings.encoder_precision)
    build_index(settings, embedder)
    pipeline = Pipeline(settings, embedder=embedder, reader=TrainedReader(model_dir, settings.threads, settings.cache_dir,
                                                                            settings.encoder_precision, settings.embed_model))
    pipeline.warm_up()
    return pipeline, questions


def window_features(pipeline: Pipeline, questions) -> list[list[tuple[float, float, float, float]]]:  # noqa: ANN001
    """Per question, per window read: (margin, window score, F1 of its span against the gold,
    whether its sentence holds a gold answer)."""
    return [[(row["margin"], row["window"], row["f1"], row["holds"]) for row in q["windows"]]
            for q in window_rows(pipeline, questions)]


def fit_logistic(x: np.ndarray, labels: np.ndarray, steps: int = 100) -> np.ndarray:
    """Weights (…, bias) of a logistic regression (Newton's method, a little L2 for stability)."""
    x = np.concatenate([x, np.ones((len(x), 1))], axis=1)
    w = np.zeros(x.shape[1])
    for _ in range(steps):
        p = 1 / (1 + np.exp(-(x @ w)))
        gradient = x.T @ (p - labels) + 1e-3 * w
        hessian = (x * (p * (1 - p))[:, None]).T @ x + 1e-3 * np.eye(len(w))
        w -= np.linalg.solve(hessian, gradient)
    return w


def squad_f1_at(threshold: float, probabilities: np.ndarray, f1s: np.ndarray, answerable: np.ndarray) -> float:
    answered = probabilities >= threshold
    return float(np.mean(np.where(answered, f1s, ~answerable)))


# The operating point. People mostly ask what the documents say, but an answer to a question
# they do not answer misleads: the threshold maximises SQuAD 2.0 F1 on tune among those that
# leave at least this share of tune's unanswerable questions unanswered (a tentative answer,
# which gives no short answer, counts as not answered).
MIN_UNANSWERABLE_DECLINED = 0.85
# Below the threshold, a tentative answer is shown from the lowest probability at which at most
# this share of tune's unanswerable questions get one: a tentative answer is not an answer, but
# most questions the documents do not answer should still hear that they do not.
MAX_UNANSWERABLE_TENTATIVE = 0.5
# ... provided that, on tune's answerable questions given one, the quoted sentence holds the
# answer at least this often (else the band is narrowed until it does).
TENTATIVE_HOLDS = 0.5
KEPT = ("yes_no_threshold", "yes_no_rule", "by_embedder")  # calibration.json keys `calibrate` does not fit
RULES = {"MIN_UNANSWERABLE_DECLINED": MIN_UNANSWERABLE_DECLINED, "MAX_UNANSWERABLE_TENTATIVE": MAX_UNANSWERABLE_TENTATIVE,
         "TENTATIVE_HOLDS": TENTATIVE_HOLDS}  # as the model card states them


def choose_threshold(probabilities: np.ndarray, f1s: np.ndarray, answerable: np.ndarray) -> float:
    """The threshold of max SQuAD 2.0 F1 among those declining ≥ MIN_UNANSWERABLE_DECLINED of
    the unanswerable questions.

    >>> choose_threshold(np.array([0.9, 0.6, 0.3, 0.7]), np.array([1.0, 1.0, 0.0, 0.0]), np.array([1, 1, 0, 0], bool))
    0.9
    """
    grid = np.unique(np.round(np.append(probabilities, 1.0), 3))
    floor = [t for t in grid if np.mean(probabilities[~answerable] < t) >= MIN_UNANSWERABLE_DECLINED] or [1.0]
    return float(max(floor, key=lambda t: squad_f1_at(t, probabilities, f1s, answerable)))


def choose_tentative(probabilities: np.ndarray, holds: np.ndarray, answerable: np.ndarray, threshold: float) -> float:
    """The lowest bound of the tentative band [bound, threshold) that gives a tentative answer to
    ≤ MAX_UNANSWERABLE_TENTATIVE of the unanswerable questions while its quoted sentence holds the
    answer for ≥ TENTATIVE_HOLDS of the answerable ones in it (`holds`: the best reading's sentence
    holds a gold answer).

    >>> p = np.array([0.9, 0.5, 0.4, 0.3, 0.2, 0.35, 0.25, 0.1])
    >>> choose_tentative(p, np.array([1, 1, 1, 0, 0, 0, 0, 0.]), np.array([1, 1, 1, 1, 1, 0, 0, 0], bool), 0.8)
    0.3
    """
    below = probabilities < threshold
    grid = np.unique(np.round(probabilities[below], 3))

    def acceptable(bound: float) -> bool:
        band = below & (probabilities >= bound)
        unanswerable_share = np.mean(band[~answerable]) if (~answerable).any() else 0.0
        return unanswerable_share <= MAX_UNANSWERABLE_TENTATIVE and np.mean(holds[band & answerable]) >= TENTATIVE_HOLDS

    good = [t for t in grid if (below & (probabilities >= t) & answerable).any() and acceptable(t)]
    return float(min(good)) if good else threshold


def tradeoff(probabilities: np.ndarray, f1s: np.ndarray, answerable: np.ndarray) -> list[dict]:
    """What each threshold costs on tune: answerable questions not answered, unanswerable ones
    answered, SQuAD 2.0 F1."""
    return [{"threshold": t, "answerable_declined": round(float(np.mean(probabilities[answerable] < t)), 3),
             "unanswerable_answered": round(float(np.mean(probabilities[~answerable] >= t)), 3),
             "squad_f1": round(squad_f1_at(t, probabilities, f1s, answerable), 3)}
            for t in np.round(np.arange(0.1, 0.95, 0.05), 2).tolist()]


def reader_arguments(description: str, embedder: bool = False) -> argparse.Namespace:
    """--data, --model and --work, as the reader scripts take them (and `embedder`: --embedder)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--model", type=Path, default=BUNDLED_READER)
    parser.add_argument("--work", type=Path, default=Path(".reader-train"))
    if embedder:
        parser.add_argument("--embedder", action="store_true",
                            help="calibrate for QA_EMBED_MODEL (and the chunking set) only, as its by_embedder entry")
    return parser.parse_args()


def calibrate(data: Path, model: Path, work: Path) -> None:
    """Fit calibration.json on TUNE, then write heldout.json and MODEL_CARD.md from REPORT."""
    settings = Settings.from_env()
    splits = dev_splits(data)
    calibration = model / "calibration.json"
    kept = kept_keys(calibration)
    calibration.unlink(missing_ok=True)

    began = time.time()
    pipeline, questions = prepare(splits["tune"], work / "tune", model, settings)
    features = window_features(pipeline, questions)
    rows = np.array([row for question in features for row in question])
    w = fit_logistic(rows[:, :2], (rows[:, 2] >= 0.5).astype(float))
    probabilities, f1s, closest = best_readings_and_closest(features, w)
    holds = closest[CLOSEST_WINDOW_WEIGHT]
    answerable = np.array([q.answerable for q in questions])
    with (work / "tune" / "questions.jsonl").open("w", encoding="utf-8") as f:  # for looking into the choices
        f.writelines(json.dumps({"id": q.id, "title": q.extra["title"], "answerable": q.answerable, "probability": p,
                                 "f1": f1, "holds": h}) + "\n" for q, p, f1, h in zip(questions, probabilities, f1s, holds))
    grid = np.unique(np.round(probabilities, 3))
    best_f1 = max(squad_f1_at(t, probabilities, f1s, answerable) for t in grid)
    never_trained = np.array([q.extra["title"] not in DEV_TRAIN for q in questions])  # no leg drew from these
    best_clean_f1 = max(squad_f1_at(t, probabilities[never_trained], f1s[never_trained], answerable[never_trained])
                        for t in grid)
    threshold = choose_threshold(probabilities, f1s, answerable)
    tentative = choose_tentative(probabilities, holds, answerable, threshold)
    band = (probabilities >= tentative) & (probabilities < threshold) & answerable
    print("a tentative answer's sentence holds the answer, by the weight of the window score in choosing it: " + ", ".join(
        f"{weight}: {np.mean(chosen[band]):.3f}" for weight, chosen in closest.items()), file=sys.stderr)
    tuned = squad_f1_at(threshold, probabilities, f1s, answerable)
    band = (probabilities >= tentative) & (probabilities < threshold)
    shown = np.where(probabilities >= threshold, f1s >= 0.5, band & (holds > 0))
    calibration.write_text(json.dumps({
        "margin": float(w[0]), "window_score": float(w[1]), "bias": float(w[2]), "threshold": threshold,
        "tentative": tentative, "tune_articles": [x.title for x in splits["tune"]], "tune_questions": len(questions),
        "tune_squad_f1": round(tuned, 4), "tune_best_squad_f1": round(best_f1, 4),
        "tune3_best_squad_f1": round(best_clean_f1, 4),
        "tune_unanswerable_declined": round(float(np.mean(probabilities[~answerable] < threshold)), 4),
        "tune_tentative_holds": round(float(np.mean(holds[band & answerable])), 4) if (band & answerable).any() else None,
        "tune_unanswerable_tentative": round(float(np.mean(band[~answerable])), 4),
        "tune_answerable_shown": round(float(np.mean(shown[answerable])), 4),
        "precision": settings.encoder_precision, "tradeoff": tradeoff(probabilities, f1s, answerable), **kept}, indent=1) + "\n")
    print(f"calibrated on {len(questions)} TUNE questions ({len(rows)} windows): p = sigmoid({w[0]:.3f} margin + "
          f"{w[1]:.3f} window score + {w[2]:.3f}), threshold {threshold:.3f} (tentative from {tentative:.3f}), SQuAD F1 "
          f"{tuned:.3f} (best of any threshold {best_f1:.3f}) ({time.time() - began:.0f} s)", file=sys.stderr)

    pipeline, questions = prepare(splits["report"], work / "report", model, settings)
    report = evaluate(pipeline, questions, settings.k, "evidence")
    with (work / "report" / "results.jsonl").open("w", encoding="utf-8") as f:
        f.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in report)
    summary = summarize(report, settings.k)
    print(table(summary))
    (model / "heldout.json").write_text(json.dumps({
        "report_articles": [x.title for x in splits["report"]], "summary": summary}, indent=1) + "\n")
    write_card(model, splits, json.loads(calibration.read_text()), summary, settings.encoder_precision, RULES)
    print(f"wrote {calibration} and {model / 'heldout.json'} ({time.time() - began:.0f} s)", file=sys.stderr)


def best_readings_and_closest(features: list, w: np.ndarray) -> tuple[np.ndarray, np.ndarray, dict[float, np.ndarray]]:
    """Per question (`window_features`, weights `w` of the logistic): the probability and F1 of its
    most probable reading, and for each weight of `CLOSEST_WEIGHTS` whether the sentence a tentative
    answer would quote (as `closest_reading` chooses, with that weight) holds the answer.

    >>> p, f1, closest = best_readings_and_closest([[(1.0, 0.2, 1.0, 0.0), (0.5, 0.9, 0.0, 1.0)], []], np.array([1.0, 0, 0]))
    >>> p.round(3).tolist(), f1.tolist(), closest[0.0].tolist(), closest[1.0].tolist()
    ([0.731, 0.0], [1.0, 0.0], [0.0, 0.0], [1.0, 0.0])
    """
    best, closest = [], {weight: [] for weight in CLOSEST_WEIGHTS}
    for question in features:
        x = np.array(question).reshape(-1, 4)
        p = 1 / (1 + np.exp(-(x[:, :2] @ w[:2] + w[2])))
        best.append((float(p.max()), float(x[int(p.argmax()), 2])) if len(x) else (0.0, 0.0))
        for weight, chosen in closest.items():
            chosen.append(float(x[int(np.argmax(p + weight * x[:, 1])), 3]) if len(x) else 0.0)
    probabilities, f1s = np.array(best).T
    return probabilities, f1s, {weight: np.array(chosen) for weight, chosen in closest.items()}


def kept_keys(calibration: Path) -> dict:
    """What `calibrate` keeps of an earlier calibration.json: what other scripts fitted (`KEPT`)."""
    earlier = json.loads(calibration.read_text()) if calibration.is_file() else {}
    return {k: v for k, v in earlier.items() if k in KEPT}


def calibrate_for_embedder(data: Path, model: Path, work: Path) -> None:
    """Calibrate `model` for the embedder the environment sets (`QA_EMBED_MODEL`, with the chunking
    it sets): `calibrate` into a copy, whose fitted numbers go to `model`'s calibration.json as that
    embedder's `by_embedder` entry (with its tune and report figures); the rest stays as it is."""
    settings = Settings.from_env()
    with tempfile.TemporaryDirectory() as folder:
        copy = Path(folder) / "reader"
        shutil.copytree(model, copy)
        calibrate(data, copy, work / settings.embed_model)
        fitted = json.loads((copy / "calibration.json").read_text())
        report = json.loads((copy / "heldout.json").read_text())["summary"]["overall"]
    path = model / "calibration.json"
    calibration = json.loads(path.read_text())
    calibration.setdefault("by_embedder", {})[settings.embed_model] = {
        **{k: fitted[k] for k in CALIBRATED}, "chunk_tokens": settings.chunk_tokens,
        "chunk_overlap_tokens": settings.chunk_overlap_tokens, "tune_squad_f1": fitted["tune_squad_f1"],
        "tune_unanswerable_declined": fitted["tune_unanswerable_declined"],
        "report_squad_f1": report["squad_f1"], "report_HasAns_f1": report["HasAns_f1"],
        "report_unanswerable_declined": report["correct_abstention"]}
    path.write_text(json.dumps(calibration, indent=1) + "\n")
    write_embedder_section(model)
    print(f"wrote the {settings.embed_model} calibration into {path} and its model card", file=sys.stderr)


def window_rows(pipeline, questions) -> list[dict]:  # noqa: ANN001
    """Per question: its article, whether it is answerable, and per window read its features
    and the F1 of its span against the gold answers."""
    out = []
    for q in tqdm(questions, desc="reading", file=sys.stderr):
        _, passages = pipeline.search(q.question)
        windows = pipeline.answerer.windows(q.question, pipeline.answerer.evidence(q.question, passages))
        readings = pipeline.reader.read(q.question, windows)
        texts = [normalize_answer(r.text) for r in readings]
        rows = []
        for i, (w, r) in enumerate(zip(windows, readings)):
            p = passages[w.marker - 1]
            rows.append({"margin": r.margin, "window": w.score, "span": r.span_score, "dense": p.dense_score or 0.0,
                         "bm25": p.bm25_score or 0.0, "fused": 60 * p.score, "rank": w.marker,
                         "agree": sum(t == texts[i] for j, t in enumerate(texts) if j != i and t),
                         "answer_in_question": overlap(terms(r.text), terms(q.question)),
                         "f1": max((f1_score(r.text, g) for g in q.answers), default=0.0),
                         "holds": float(any(states(r.sentence, g) for g in q.answers))})
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
