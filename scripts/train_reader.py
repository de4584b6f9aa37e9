"""Train the reader: the bundled MiniLM fine-tuned for extractive QA with a no-answer option.

    .venv/bin/python scripts/train_reader.py --leg 2 --more --init READER_FOLDER --out OUT --work WORK  # resumable
    .venv/bin/python scripts/train_reader.py --fresh                                                  # start over
    .venv/bin/python scripts/train_reader.py --verdict --init qa/reader_model --out OUT              # yes/no branch

Training is a campaign of legs (`LEGS`), each ≤ ~150 minutes on 2 cores, each warm-starting from
the weights the last one landed and drawing the questions no earlier leg drew (the seeded order
of questions is the same for every leg); `scripts/reproduce_reader.sh` runs them in turn.

Data: the whole SQuAD 2.0 train set (442 articles) from ../shared/data/squad2/ (CC BY-SA 4.0)
and 7 dev articles (`DEV_TRAIN`); with `--more`, the answerable TyDi QA and Natural Questions
(QED) questions of ../shared/data/more_qa/. The other dev articles are `TUNE` (calibration,
threshold, how the product reads) and `REPORT` (nothing is chosen on them). Questions are drawn
at random over all articles, by kind (`Quota`): positives (a window holding the answer, labelled
with its tokens; a share read in a wide window), unanswerable questions on the window of their
paragraph that shares most words with them, near misses (an answerable question on the
best-sharing window of its article that lacks the answer) and swaps (a name or number of the
question replaced by another of the article, on the window holding the answer). Every negative
is labelled with the [CLS] token (no answer). Windows are built by `qa.answer.reader.window_at`, as the
product builds them.

Recipe: word/position embeddings frozen (so only the encoder and the head are shipped, fp16),
AdamW, 6% warm-up then linear decay, batch 32, length-bucketed batches, bf16 autocast where the
CPU has it, fixed seed; `--init` warm-starts from a reader folder. A checkpoint is written every
10 minutes to --work; running the command again resumes from it. MPNet legs from 8 on train
low-rank adapters (`LoRALinear`) instead of the matrices, so the leg's file is small enough to commit. Then the weights are exported to
--out and `scripts/calibrate_reader.py` fits the no-answer calibration on TUNE, reports on REPORT
and writes the model card (about 10 minutes more).
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import random
import re
import shutil
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from qa.answer.reader import MAX_TOKENS, encode, has_verdict_branch, window_at, window_budget, window_sentences
from qa.training.splits import DATA, TUNE, covid_splits, train_articles
from qa.training.yesno import NO, UNDECIDED, YES, other_answer, yes_no_files, yes_no_question
from qa.models.locate import BUNDLED_READER, bundled_model_dir
from qa.models.onnx_bert import reader_weights, to_int8
from qa.models.wordpieces import WordPieces
from qa.sentences import sentence_spans

SEED = 13
ENCODERS = {"minilm": "sentence-transformers/all-MiniLM-L6-v2", "mpnet": "sentence-transformers/all-mpnet-base-v2"}
CHECKPOINT_SECONDS = 600  # a leg's checkpoint in --work, so a stopped leg resumes (run it again)
TYPICAL_QUESTION_TOKENS = 16  # the budget of the article's windows that negatives are drawn from
_WORD = re.compile(r"[a-z0-9]+")
_NAME_OR_NUMBER = re.compile(r"\b(?:[A-Z][a-z]+|\d[\d,.]*\d|\d)\b")
_STOP = set("a an the of in on at to for by with from and or is are was were be been what which who whom whose "
            "when where why how did do does that this these those it its as into than their there they he she his "
            "her not no".split())


def words(text: str) -> set[str]:
    return {w for w in _WORD.findall(text.lower()) if w not in _STOP}


def swapped_question(question: str, window: str, article_text: str, rng: random.Random) -> str | None:
    """The question with one name or number that the window holds replaced by another name or
    number of the article that the window lacks: an unanswerable question for that window (the
    entity- and number-swap questions of SQuAD 2.0, made automatically). None when there is none.

    >>> swapped_question("When did Seoul sign it?", "Seoul signed it in 1965.", "Tokyo and Seoul.", random.Random(0))
    'When did Tokyo sign it?'
    """
    lower = window.lower()
    names = [m for m in _NAME_OR_NUMBER.finditer(question) if m.start() > 0 and m.group().lower() in lower]
    if not names:
        return None
    target = rng.choice(names)
    number = target.group()[0].isdigit()
    pool = sorted({w for w in _NAME_OR_NUMBER.findall(article_text)
                   if w[0].isdigit() == number and w.lower() not in lower and w not in question})
    if not pool:
        return None
    return question[:target.start()] + rng.choice(pool) + question[target.end():]


@dataclass
class Quota:
    """How many examples of each kind to draw (each from a different question, seeded)."""

    positives: int  # a question with a window holding its answer, labelled with the answer tokens
    unanswerable: int  # an unanswerable question with the window of its paragraph it shares most words with
    near_misses: int  # an answerable question with the best-sharing window that lacks the answer
    swaps: int  # an answerable question with a name or number swapped, on the window holding the answer
    wide_share: float  # share of positives read in a wide window (neighbours added while they fit)


@dataclass(frozen=True)
class Leg:
    """One leg of the campaign: where in the seeded order of questions its draws begin, and the
    articles none of its questions come from. Near misses and swaps are drawn from the answerable
    questions after its positives, wrapping round to the start of the order."""

    quota: Quota
    positives_from: int = 0  # position in the seeded order of answerable questions
    unanswerable_from: int = 0  # position in the seeded order of unanswerable questions
    held_out: tuple[str, ...] = ()  # article titles (tune articles)
    yes_no: int = 0  # answerable questions turned into yes/no questions (half "No"), on the window holding the answer
    yes_no_near: int = 0  # such yes/no questions on a window that lacks the answer: labelled "no answer"
    yes_no_files: int = 0  # times each question of YES_NO_FILES is drawn (its passage as the window)
    lr: float = 5e-5  # the peak learning rate
    encoder: str = "minilm"  # the base encoder (`qa.models.locate.bundled_model_dir`): a new encoder starts afresh
    trained_layers: int = 0  # train only the top this many layers (0: all); the rest stay the package's
    frozen_layers: int = 0  # the lowest this many layers keep the --init weights (shipped as they are)
    domain: Quota | None = None  # also draw from COVID-QA's train papers (`covid_splits`), this many of each kind
    domain_passes: int = 1  # times the domain's questions are drawn (each pass its own wide windows)
    lora_rank: int = 0  # train low-rank adapters of this rank on every layer's matrices, not the matrices (0: none)


LEGS = {
    # the shipped reader of commit a321e52 (45,000 of 99,531 answerable questions as positives)
    1: Leg(Quota(45000, 22000, 18000, 6000, 0.25)),
    # every answerable and unanswerable question leg 1 did not draw; the tune articles held out
    2: Leg(Quota(54531, 19649, 18000, 6000, 0.25), positives_from=45000, unanswerable_from=22000, held_out=TUNE),
    # a second look at 70,000 answerable and 30,000 unanswerable questions, at a lower rate, and
    # yes/no questions (the head gains two yes/no logits)
    3: Leg(Quota(70000, 30000, 20000, 6000, 0.25), held_out=TUNE, yes_no=16000, yes_no_near=4000, yes_no_files=2,
           lr=3e-5),
    # the MPNet-base pilot: leg 1's kinds of windows, fewer of them (one session), the top 6 of its 12
    # layers trained (what changed ships; the lower layers and embeddings are the package's)
    4: Leg(Quota(34000, 16000, 12000, 4000, 0.25), held_out=TUNE, encoder="mpnet", trained_layers=6),
    # not kept (5–7: tune SQuAD2 F1 fell 0.008–0.015 for +0.03–0.05 shown on COVID-QA's tune papers, docs/reader.md)
    # long technical papers: COVID-QA's 30 train papers (each question as a positive, with a wide
    # window for half, and against the window of its paper that shares most words with it but lacks
    # the answer), three passes, beside a replay of SQuAD; the lowest 3 layers kept as they are, so
    # the verdict branch, which reads them, stays valid
    5: Leg(Quota(8000, 4000, 3000, 1000, 0.25), held_out=TUNE, lr=3e-5, frozen_layers=3,
           domain=Quota(433, 0, 433, 150, 0.5), domain_passes=3),
    # leg 5 with the papers drawn twice as often, at leg 1's rate
    6: Leg(Quota(8000, 4000, 3000, 1000, 0.25), held_out=TUNE, frozen_layers=3,
           domain=Quota(433, 0, 433, 150, 0.5), domain_passes=6),
    # leg 6 with every layer trained (the verdict branch would then need training again)
    7: Leg(Quota(8000, 4000, 3000, 1000, 0.25), held_out=TUNE,
           domain=Quota(433, 0, 433, 150, 0.5), domain_passes=6),
    # Reader v5, the MPNet-base campaign: adapters of rank 32 on all 12 layers (committed after each
    # leg, so the next resumes anywhere), biases, layer norms and the head trained; windows mostly as
    # the product reads them (a sentence and a neighbour each side: short, so faster). Leg 4's
    # weights were not kept, so the campaign starts at the beginning of the seeded order.
    8: Leg(Quota(28000, 13000, 8500, 2500, 0.1), held_out=TUNE, encoder="mpnet", lora_rank=32, lr=4e-4),
    # the next questions of the order, warm-started from leg 8's adapters (`--init qa/reader_mpnet`);
    # three quarters of leg 8's quota, so its learning-rate schedule ends within one session
    9: Leg(Quota(21000, 9750, 6400, 1900, 0.1), positives_from=28000, unanswerable_from=13000, held_out=TUNE,
           encoder="mpnet", lora_rank=32, lr=3e-4),
    # the next questions again, warm-started from leg 9's adapters (`--init qa/reader_mpnet`)
    10: Leg(Quota(21000, 9750, 6400, 1900, 0.1), positives_from=49000, unanswerable_from=22750, held_out=TUNE,
            encoder="mpnet", lora_rank=32, lr=3e-4),
    # leg 10 stopped at step 772 of 1176 (the session's time); the next questions after all of leg 10's,
    # warm-started from its adapters, two thirds of its quota (~785 steps: ~60 minutes alone on 2 cores)
    11: Leg(Quota(14000, 6500, 4300, 1300, 0.1), positives_from=70000, unanswerable_from=32500, held_out=TUNE,
            encoder="mpnet", lora_rank=32, lr=3e-4),
}


class LoRALinear(torch.nn.Linear):
    """A linear layer whose weight stays frozen while a low-rank update lora_B @ lora_A (alpha = rank,
    so a scale of 1) is trained beside it: what changes is ~1/20 of the matrix, small enough to commit,
    and `qa.models.adapters.merged_lora` merges it into the matrix for the product's graph."""

    def __init__(self, linear: torch.nn.Linear, rank: int) -> None:
        super().__init__(linear.in_features, linear.out_features, bias=linear.bias is not None)
        self.weight = linear.weight
        self.bias = linear.bias
        self.lora_A = torch.nn.Parameter(torch.empty(rank, linear.in_features))
        self.lora_B = torch.nn.Parameter(torch.zeros(linear.out_features, rank))
        torch.nn.init.kaiming_uniform_(self.lora_A, a=5 ** 0.5)  # as peft starts it; B = 0: no change at first

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x) + (x @ self.lora_A.t()) @ self.lora_B.t()


def with_lora(model, rank: int) -> set[str]:  # noqa: ANN001
    """Every linear layer of the encoder's layers (attention and feed-forward) given an adapter of
    `rank`; returns the names of the matrices now frozen.

    >>> from transformers import BertConfig, BertForQuestionAnswering
    >>> m = BertForQuestionAnswering(BertConfig(hidden_size=8, num_hidden_layers=1, num_attention_heads=2, intermediate_size=16))
    >>> sorted(with_lora(m, 2))[0], m.bert.encoder.layer[0].attention.self.query.lora_A.shape
    ('bert.encoder.layer.0.attention.output.dense.weight', torch.Size([2, 8]))
    """
    frozen = set()
    prefix = f"{model.base_model_prefix}.encoder.layer."
    for name, module in list(model.named_modules()):
        if name.startswith(prefix) and type(module) is torch.nn.Linear:
            parent, _, child = name.rpartition(".")
            setattr(model.get_submodule(parent), child, LoRALinear(module, rank))
            frozen.add(f"{name}.weight")
    return frozen


def article_windows(article, pieces: WordPieces, budget: int):  # noqa: ANN001, ANN201
    """Per paragraph: (sentence spans, token counts, words per sentence); and every window of the
    article as (paragraph, first, last, words), built with `budget` tokens."""
    paragraphs, windows = [], []
    for p, context in enumerate(article.paragraphs):
        spans = sentence_spans(context)
        if not spans:
            paragraphs.append(([], [], []))
            continue
        counts = pieces.count([context[a:b] for a, b in spans])
        sentence_words = [words(context[a:b]) for a, b in spans]
        paragraphs.append((spans, counts, sentence_words))
        for i in range(len(spans)):
            first, last = window_sentences(counts, i, budget)
            windows.append((p, first, last, set().union(*sentence_words[first:last])))
    return paragraphs, list({w[:3]: w for w in windows}.values())


def build_examples(articles, pieces: WordPieces, rng: random.Random, leg: Leg,
                   undecided: int = -100) -> list[dict]:  # noqa: ANN001
    """(question, window, answer char span in the window or None) examples, tokenised. A yes/no
    question on a window that lacks its answer gets the verdict `undecided` (-100: none).

    Questions are drawn at random over all articles so every article contributes, from where
    `leg` says in the seeded order; a window is built with `qa.answer.reader.window_at`, as the
    product builds it."""
    quota = leg.quota
    answerable = [(i, q) for i, a in enumerate(articles) for q in a.questions if q.answers]
    unanswerable = [(i, q) for i, a in enumerate(articles) for q in a.questions if not q.answers]
    rng.shuffle(answerable)
    rng.shuffle(unanswerable)
    a0, a1 = leg.positives_from, leg.positives_from + quota.positives
    positive_qs = answerable[a0:a1]
    rest = answerable[a1:] + answerable[:a1]  # wraps round: reused when the quota exceeds the set
    near_qs = rest[:quota.near_misses]
    swap_qs = rest[quota.near_misses:quota.near_misses + quota.swaps * 2]  # not every question can be swapped
    unanswerable_qs = unanswerable[leg.unanswerable_from:leg.unanswerable_from + quota.unanswerable]
    yes_no_qs = [(i, q) for i, q in answerable if yes_no_question(q.question, q.answers[0])]
    yes_no_near_qs = yes_no_qs[leg.yes_no:leg.yes_no + leg.yes_no_near]
    held_out = set(leg.held_out)
    plan: dict[int, list] = {}
    for kind, chosen in (("pos", positive_qs), ("near", near_qs), ("swap", swap_qs), ("unans", unanswerable_qs),
                         ("yesno", yes_no_qs[:leg.yes_no]), ("yesno-near", yes_no_near_qs)):
        for i, q in chosen:
            if articles[i].title not in held_out:
                plan.setdefault(i, []).append((kind, q))
    raw, swaps = [], 0
    for i in tqdm(sorted(plan), desc="windows", file=sys.stderr):
        article = articles[i]
        paragraphs, windows = article_windows(article, pieces, MAX_TOKENS - 3 - TYPICAL_QUESTION_TOKENS)
        index = {c: p for p, c in enumerate(article.paragraphs)}
        article_text = None
        for kind, q in plan[i]:
            p = index[q.context]
            spans, counts, _ = paragraphs[p]
            if not spans:
                continue
            q_words = words(q.question)
            verdict = -100
            if kind == "yesno-near":
                q = dataclasses.replace(q, question=yes_no_question(q.question, q.answers[0]))
                kind, verdict = "near", undecided
            if kind == "unans":
                own = [w for w in windows if w[0] == p]
                _, first, last, _ = max(own, key=lambda w: (len(q_words & w[3]), -w[1]))
                raw.append((q.question, q.context[spans[first][0]:spans[last - 1][1]], None, -100))
                continue
            a0 = q.answer_starts[0]
            a1 = a0 + len(q.answers[0])
            centre = next((c for c, (s, e) in enumerate(spans) if s <= a0 < e), None)
            if centre is None:
                continue
            budget = window_budget(pieces.count, q.question)
            if kind == "near":
                gold = {g.lower() for g in q.answers}
                misses = [w for w in windows if not (w[0] == p and spans[w[1]][0] < a1 and a0 < spans[w[2] - 1][1])]
                if not misses:
                    continue
                pp, first, last, _ = max(misses, key=lambda w: len(q_words & w[3]) + (0.5 if w[0] == p else 0))
                s2 = paragraphs[pp][0]
                text = article.paragraphs[pp][s2[first][0]:s2[last - 1][1]]
                if not any(g in text.lower() for g in gold):
                    raw.append((q.question, text, None, verdict))
                continue
            wide = kind == "pos" and rng.random() < quota.wide_share
            window = window_at(q.context, 0, spans, counts, centre, budget, wide=wide)
            if a1 > window.end:
                continue  # the answer crosses a sentence boundary the window cannot hold
            text = window.text
            offset = a0 - window.start
            if kind == "pos":
                raw.append((q.question, text, (offset, offset + len(q.answers[0])), -100))
            elif kind == "yesno":  # the span still marks the words that decide it
                article_text = article_text or "\n".join(article.paragraphs)
                wrong = other_answer(q.answers[0], text, article_text, rng) if rng.random() < 0.5 else None
                raw.append((yes_no_question(q.question, wrong or q.answers[0]), text,
                            (offset, offset + len(q.answers[0])), NO if wrong else YES))
            elif swaps < quota.swaps:
                article_text = article_text or "\n".join(article.paragraphs)
                swapped = swapped_question(q.question, text, article_text, rng)
                if swapped:
                    raw.append((swapped, text, None, -100))
                    swaps += 1
    if leg.yes_no_files:  # the span is unknown there: only the verdict is learnt
        raw += [(question, passage, "unknown", verdict) for question, passage, verdict
                in yes_no_files(DATA.parent / "yesno")] * leg.yes_no_files
    examples = []
    for question, text, answer, verdict in tqdm(raw, desc="tokenise", file=sys.stderr):
        enc = encode(pieces, question, [text])[1][0]  # exactly as the product encodes it
        start = end = 0
        if answer == "unknown":
            start = end = -100
        elif answer is not None:
            tokens = [i for i, (s, (a, b)) in enumerate(zip(enc.sequence_ids, enc.offsets))
                      if s == 1 and b > answer[0] and a < answer[1]]
            if not tokens or enc.offsets[tokens[-1]][1] < answer[1]:
                continue  # the answer was cut off by truncation
            start, end = tokens[0], tokens[-1]
        examples.append({"input_ids": enc.ids, "token_type_ids": enc.type_ids, "start": start, "end": end,
                         "yesno": verdict})
    return examples


def batches(examples: list[dict], size: int, seed: int) -> list[list[int]]:
    """Length-bucketed batches in a seeded random order (little padding, same every run)."""
    rng = random.Random(seed)
    order = list(range(len(examples)))
    rng.shuffle(order)
    chunks = [order[i:i + size * 50] for i in range(0, len(order), size * 50)]
    out = []
    for chunk in chunks:
        chunk.sort(key=lambda i: len(examples[i]["input_ids"]))
        out += [chunk[i:i + size] for i in range(0, len(chunk), size)]
    rng.shuffle(out)
    return out


def padded(examples: list[dict], ids: list[int]) -> dict[str, torch.Tensor]:
    """The examples' token ids, token types and attention mask, padded to the longest."""
    width = max(len(examples[i]["input_ids"]) for i in ids)
    input_ids = torch.zeros(len(ids), width, dtype=torch.long)
    token_types = torch.zeros_like(input_ids)
    mask = torch.zeros_like(input_ids)
    for row, i in enumerate(ids):
        n = len(examples[i]["input_ids"])
        input_ids[row, :n] = torch.tensor(examples[i]["input_ids"])
        token_types[row, :n] = torch.tensor(examples[i]["token_type_ids"])
        mask[row, :n] = 1
    return {"input_ids": input_ids, "token_type_ids": token_types, "attention_mask": mask}


def collate(examples: list[dict], ids: list[int]) -> dict[str, torch.Tensor]:
    return {**padded(examples, ids),
            "start_positions": torch.tensor([examples[i]["start"] for i in ids]),
            "end_positions": torch.tensor([examples[i]["end"] for i in ids]),
            "yes_no": torch.tensor([examples[i].get("yesno", -100) for i in ids])}


def with_yes_no_head(model) -> None:  # noqa: ANN001
    """Give the span head two more outputs, read at [CLS]: the yes and no logits (zero at first)."""
    old = model.qa_outputs
    if old.out_features == 4:
        return
    head = torch.nn.Linear(old.in_features, 4)
    with torch.no_grad():
        head.weight.zero_()
        head.bias.zero_()
        head.weight[:2] = old.weight
        head.bias[:2] = old.bias
    model.qa_outputs = head


def loss_of(model, batch: dict[str, torch.Tensor]) -> torch.Tensor:  # noqa: ANN001
    """Span loss (start and end cross-entropy; unknown spans ignored) plus, with the yes/no head,
    the verdict's cross-entropy at [CLS] for yes/no examples."""
    inputs = {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"]}
    if model.config.model_type == "bert":
        inputs["token_type_ids"] = batch["token_type_ids"]
    hidden = model.base_model(**inputs).last_hidden_state
    logits = model.qa_outputs(hidden).float()
    cross_entropy = torch.nn.functional.cross_entropy
    loss = torch.zeros((), dtype=torch.float32)
    known = batch["start_positions"] >= 0
    if known.any():
        loss = loss + (cross_entropy(logits[known, :, 0], batch["start_positions"][known])
                       + cross_entropy(logits[known, :, 1], batch["end_positions"][known])) / 2
    verdicts = batch["yes_no"] >= 0
    if logits.shape[-1] == 4 and verdicts.any():
        loss = loss + cross_entropy(logits[verdicts, 0, 2:], batch["yes_no"][verdicts])
    return loss


def is_trained(name: str, model, trained_layers: int, frozen_layers: int = 0,  # noqa: ANN001
               adapted: frozenset[str] = frozenset()) -> bool:
    """Whether the parameter `name` is trained: never the embeddings nor a matrix with an adapter
    (`adapted`: its adapter is trained instead); with `trained_layers`, only the top that many layers,
    the relative-position bias and the head; with `frozen_layers`, not the lowest that many layers."""
    prefix = model.base_model_prefix
    if name.startswith(f"{prefix}.embeddings.") or name in adapted:
        return False
    layer = re.match(rf"{prefix}\.encoder\.layer\.(\d+)\.", name)
    if layer and int(layer.group(1)) < frozen_layers:
        return False
    return not (trained_layers and layer and int(layer.group(1)) < model.config.num_hidden_layers - trained_layers)


def export(model, out: Path, trained_layers: int, encoder: str, verdict_from: Path | None = None,  # noqa: ANN001
           adapted: frozenset[str] = frozenset()) -> None:
    """The trained weights (not the frozen ones: they are the package's) as fp16 safetensors, the
    MPNet reader's matrices in 8 bits (`to_int8`: its file stays under 50 MB) unless they are
    adapters (fp16: they are small); with `verdict_from`, that reader's verdict branch too (valid
    only while the layers under it are unchanged)."""
    from safetensors import safe_open
    from safetensors.numpy import save_file

    out.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().float().numpy() for k, v in model.state_dict().items()
             if is_trained(k, model, trained_layers, adapted=adapted)}
    state = to_int8(state) if encoder == "mpnet" and not adapted else {k: v.astype(np.float16) for k, v in state.items()}
    if verdict_from is not None:
        with safe_open(str(verdict_from), "np") as stored:
            state.update({k: stored.get_tensor(k) for k in stored.keys() if k.startswith("verdict.")})
    save_file(state, str(out / "model.safetensors"), metadata={"base": ENCODERS[encoder]})


def main() -> None:
    if "--verdict" in sys.argv[1:]:  # the verdict branch beside a trained reader (VERDICT_DOC)
        return verdict_main([a for a in sys.argv[1:] if a != "--verdict"])
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     epilog="With --verdict: train the verdict branch for yes/no questions instead "
                                            "(see `train_reader.py --verdict --help`).")
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--out", type=Path, default=BUNDLED_READER)
    parser.add_argument("--work", type=Path, default=Path(".reader-train"))
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--lr", type=float, default=None, help="the peak learning rate (default: the leg's)")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--leg", type=int, default=1, choices=sorted(LEGS), help="which questions to draw (LEGS)")
    parser.add_argument("--more", action="store_true", help="add the answerable TyDi QA and NQ (QED) questions to train")
    parser.add_argument("--init", type=Path, default=None,
                        help="warm start from the weights in this reader folder (default: the base MiniLM)")
    parser.add_argument("--seed", type=int, default=SEED, help="draws the questions and orders the batches")
    parser.add_argument("--limit", type=int, default=0, help="use only this many examples (smoke tests)")
    parser.add_argument("--fresh", action="store_true", help="ignore an earlier checkpoint")
    parser.add_argument("--minutes", type=float, default=0,
                        help="end the leg after this many minutes of training in this run (0: when its plan is done); "
                             "it is exported at the step it reached, its schedule left where it was")
    parser.add_argument("--until-step", type=int, default=0,
                        help="end the leg at this step (0: when its plan is done), as --minutes does: "
                             "how a leg stopped by time is reproduced")
    args = parser.parse_args()

    from transformers import AutoModelForQuestionAnswering

    random.seed(args.seed)
    np.random.seed(args.seed)
    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    leg = LEGS[args.leg]
    base = str(bundled_model_dir(leg.encoder))
    pieces = WordPieces(Path(base))
    args.work.mkdir(parents=True, exist_ok=True)
    quota = leg.quota
    args.lr = args.lr or leg.lr
    cache = args.work / "examples.json"
    train = train_articles(args.data, args.more)
    if cache.is_file() and not args.fresh:
        examples = json.loads(cache.read_text())
    else:
        print(f"{len(train)} train articles, {sum(len(a.questions) for a in train)} questions", file=sys.stderr)
        examples = build_examples(train, pieces, random.Random(args.seed), leg)
        if leg.domain:
            papers = covid_splits()["train"]
            for n in range(leg.domain_passes):
                examples += build_examples(papers, pieces, random.Random(args.seed + n), Leg(leg.domain))
        cache.write_text(json.dumps(examples))
    if args.limit:
        examples = random.Random(args.seed).sample(examples, min(args.limit, len(examples)))
    positives = sum(e["start"] > 0 for e in examples)
    print(f"{len(examples)} examples: {positives} with an answer, {len(examples) - positives} without", file=sys.stderr)

    model = AutoModelForQuestionAnswering.from_pretrained(base, local_files_only=True)
    adapted = frozenset(with_lora(model, leg.lora_rank)) if leg.lora_rank else frozenset()
    if args.init:
        state = {k: torch.from_numpy(v) for k, v in reader_weights(args.init / "model.safetensors").items()}
        if state["qa_outputs.weight"].shape[0] == 4:
            with_yes_no_head(model)
        model.load_state_dict(state, strict=False)
    if leg.yes_no or leg.yes_no_files:
        with_yes_no_head(model)
    for name, parameter in model.named_parameters():
        parameter.requires_grad = is_trained(name, model, leg.trained_layers, leg.frozen_layers, adapted)
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=args.lr, weight_decay=0.01)
    plan = [batches(examples, args.batch, args.seed + epoch) for epoch in range(args.epochs)]
    total = sum(map(len, plan))
    warmup = max(1, int(0.06 * total))
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: min((step + 1) / warmup, max(0.0, (total - step) / (total - warmup))))
    step, earlier_seconds = 0, 0.0
    checkpoint = args.work / "checkpoint.pt"
    if checkpoint.is_file() and not args.fresh:
        saved = torch.load(checkpoint, weights_only=False)
        model.load_state_dict(saved["model"])
        optimizer.load_state_dict(saved["optimizer"])
        scheduler.load_state_dict(saved["scheduler"])
        step, earlier_seconds = saved["step"], saved.get("seconds", 0.0)
        print(f"resumed at step {step}/{total}", file=sys.stderr)
    bf16 = getattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False)()
    model.train()
    began, losses = time.time(), []
    saved_at = began
    with tqdm(total=total, initial=step, desc="train", file=sys.stderr) as bar:
        done = 0
        for epoch, epoch_batches in enumerate(plan):
            for ids in epoch_batches:
                done += 1
                if done <= step:
                    continue
                if (args.minutes and time.time() - began > args.minutes * 60) or step == args.until_step > 0:
                    break
                batch = collate(examples, ids)
                with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                    loss = loss_of(model, batch)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(trainable, 1.0)
                optimizer.step()
                scheduler.step()
                optimizer.zero_grad(set_to_none=True)
                step += 1
                losses.append(float(loss))
                bar.update(1)
                bar.set_postfix(epoch=epoch + 1, loss=f"{np.mean(losses[-50:]):.3f}")
                if time.time() - saved_at > CHECKPOINT_SECONDS or step == total:
                    saved_at = time.time()
                    tmp = checkpoint.with_suffix(".tmp")
                    torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                                "scheduler": scheduler.state_dict(), "step": step,
                                "seconds": earlier_seconds + time.time() - began}, tmp)
                    tmp.replace(checkpoint)
    print(f"trained {step} steps in {time.time() - began:.0f} s", file=sys.stderr)
    keeps_verdict = args.init and leg.frozen_layers >= VERDICT_LAYERS and has_verdict_branch(args.init / "model.safetensors")
    export(model, args.out, leg.trained_layers, leg.encoder, args.init / "model.safetensors" if keeps_verdict else None,
           adapted)
    # the verdict's files, and its threshold in calibration.json (which `calibrate` keeps)
    for name in ("verdict.json", "verdict_training.json", "calibration.json") if keeps_verdict else ():
        if (args.init / name).is_file() and args.init.resolve() != args.out.resolve():
            shutil.copyfile(args.init / name, args.out / name)
    calibration = args.out / "calibration.json"
    if calibration.is_file():  # calibrations for other embedders were fitted to the old weights: refit them
        fitted = json.loads(calibration.read_text())
        if fitted.pop("by_embedder", None) is not None:
            calibration.write_text(json.dumps(fitted, indent=1) + "\n")
    if args.init and (args.init / "legs.json").is_file():  # the campaign so far; calibration adds this leg
        (args.out / "legs.json").write_text((args.init / "legs.json").read_text())
    (args.out / "training.json").write_text(json.dumps({
        "examples": len(examples), "with_answer": positives, "epochs": args.epochs, "lr": args.lr,
        "batch": args.batch, "seed": args.seed, "steps": step, "planned_steps": total, "max_tokens": MAX_TOKENS, "leg": args.leg,
        "encoder": ENCODERS[leg.encoder], "trained_layers": leg.trained_layers, "frozen_layers": leg.frozen_layers, "lora_rank": leg.lora_rank, "quota": asdict(quota),
        "domain": asdict(leg.domain) if leg.domain else None, "domain_passes": leg.domain_passes if leg.domain else 0, "positives_from": leg.positives_from, "unanswerable_from": leg.unanswerable_from,
        "held_out": list(leg.held_out), "yes_no": sum(e.get("yesno", -100) >= 0 for e in examples),
        "more_qa": args.more, "init": str(args.init) if args.init else f"the package's {ENCODERS[leg.encoder]}",
        "train_seconds": round(earlier_seconds + time.time() - began),
        "train_articles": len(train)}, indent=1) + "\n")
    print(f"wrote {args.out / 'model.safetensors'}", file=sys.stderr)
    if not args.limit:
        from qa.training.calibration import calibrate

        calibrate(args.data, args.out, args.work)


VERDICT_DOC = """Train the reader's verdict branch: "Yes", "No" or "not decided here" for a yes/no question.

    .venv/bin/python scripts/train_reader.py --verdict --init qa/reader_model --out OUT --work WORK   # resumable

The span reader stays exactly as it is (its weights are frozen, so every other question reads as
before). Beside its top `--layers` layers the branch has copies of them, started from the same
weights, that read the frozen layer below and end in a head of three logits at [CLS]: yes, no, and
"this window does not decide it". Only the branch is trained; the reader folder written to --out
holds the reader's tensors plus the branch's ("verdict.*", fp16), and the ONNX graph
(`qa.models.onnx_bert.bert_graph`) computes both in one run.

Data (the tune articles held out; BoolQ dev never trained on):
- answerable SQuAD 2.0 train questions turned into yes/no questions (`qa.training.yesno`), half
  asked about another name or number of the article ("No"), on the window holding the answer;
- such questions on the best-sharing window that lacks the answer: "not decided here";
- the yes/no train files of ../shared/data/yesno/ (BoolQ train, PubMedQA, HotpotQA) with their
  passage, and their questions on another file's passage ("not decided here").

Recipe: AdamW, lr 1e-4, 6% warm-up then linear decay, batch 32, length-bucketed batches, bf16
autocast where the CPU has it, fixed seed; a checkpoint every 200 steps in --work. Then
`scripts/calibrate_verdict.py` chooses the branch's threshold on tune.
"""

# ~26,500 train questions take a yes/no form: two thirds on the window holding the answer, a third on one without
VERDICT_LAYERS = 3  # the branch's layers: it reads the reader's hidden states under its top 3
VERDICT_DATA = Leg(Quota(0, 0, 0, 0, 0.0), held_out=TUNE, yes_no=18000, yes_no_near=8500, yes_no_files=2)


class VerdictBranch(torch.nn.Module):
    """Copies of the encoder's top layers and a head of three logits (yes, no, undecided) at [CLS]."""

    def __init__(self, model, layers: int) -> None:  # noqa: ANN001
        super().__init__()
        encoder = model.base_model.encoder.layer
        self.layer = torch.nn.ModuleList(copy.deepcopy(encoder[i]) for i in range(len(encoder) - layers, len(encoder)))
        self.head = torch.nn.Linear(model.config.hidden_size, 3)

    def forward(self, hidden: torch.Tensor, mask) -> torch.Tensor:  # noqa: ANN001
        for layer in self.layer:
            out = layer(hidden, attention_mask=mask)
            hidden = out[0] if isinstance(out, tuple) else out
        return self.head(hidden[:, 0])


def below_branch(model, batch: dict[str, torch.Tensor], layers: int):  # noqa: ANN001, ANN201
    """The frozen reader's hidden states under the branch, and the attention mask the layers take."""
    from transformers.masking_utils import create_bidirectional_mask

    with torch.no_grad():
        out = model.base_model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                               token_type_ids=batch["token_type_ids"], output_hidden_states=True)
        hidden = out.hidden_states[-1 - layers]
        mask = create_bidirectional_mask(config=model.config, inputs_embeds=hidden, attention_mask=batch["attention_mask"])
    return hidden, mask, out.last_hidden_state


def collate_verdicts(examples: list[dict], ids: list[int]) -> dict[str, torch.Tensor]:
    return {**padded(examples, ids), "verdict": torch.tensor([examples[i]["yesno"] for i in ids])}


def mismatched(pieces: WordPieces, rng: random.Random) -> list[dict]:
    """Each yes/no file question on the passage of another question: "not decided here"."""
    items = yes_no_files(DATA.parent / "yesno")
    passages = [p for _, p, _ in items]
    out = []
    for question, passage, _ in items:
        other = rng.choice(passages)
        if other != passage:
            enc = encode(pieces, question, [other])[1][0]
            out.append({"input_ids": enc.ids, "token_type_ids": enc.type_ids, "yesno": UNDECIDED})
    return out


def balanced(examples: list[dict], rng: random.Random) -> list[dict]:
    """`examples` with "yes" ones dropped at random until there are no more than "no" ones (a
    question without another name or number to ask about stays a "yes" one)."""
    yes = [e for e in examples if e["yesno"] == YES]
    no = sum(e["yesno"] == NO for e in examples)
    dropped = {id(e) for e in rng.sample(yes, max(0, len(yes) - no))}
    return [e for e in examples if id(e) not in dropped]


def export_verdict(model, branch: VerdictBranch, init: Path, out: Path) -> None:  # noqa: ANN001
    """The reader folder: `init`'s tensors and calibration, plus the branch's tensors (fp16)."""
    from safetensors import safe_open
    from safetensors.numpy import save_file

    out.mkdir(parents=True, exist_ok=True)
    with safe_open(str(init / "model.safetensors"), "np") as stored:
        metadata = stored.metadata() or {}
        state = {k: stored.get_tensor(k) for k in stored.keys() if not k.startswith("verdict.")}
    for name, tensor in branch.state_dict().items():
        state[f"verdict.{name}"] = tensor.detach().float().numpy().astype(np.float16)
    metadata["base"] = metadata.get("base", ENCODERS["minilm"])
    save_file(state, str(out / "model.safetensors"), metadata=metadata)
    for name in ("calibration.json", "legs.json", "heldout.json"):
        if (init / name).is_file() and init.resolve() != out.resolve():
            shutil.copyfile(init / name, out / name)


def verdict_main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=VERDICT_DOC.splitlines()[0], prog="train_reader.py --verdict")
    parser.add_argument("--init", type=Path, default=BUNDLED_READER, help="the span reader (kept as it is)")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--work", type=Path, default=Path(".reader-train/verdict"))
    parser.add_argument("--layers", type=int, default=VERDICT_LAYERS, help="how many top layers the branch copies")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--limit", type=int, default=0, help="use only this many examples (smoke tests)")
    args = parser.parse_args(argv)

    from transformers import AutoModelForQuestionAnswering

    random.seed(SEED)
    np.random.seed(SEED)
    torch.manual_seed(SEED)
    torch.set_num_threads(args.threads)
    base = str(bundled_model_dir("minilm"))
    pieces = WordPieces(Path(base))
    args.work.mkdir(parents=True, exist_ok=True)
    cache = args.work / "examples.json"
    if cache.is_file():
        examples = json.loads(cache.read_text())
    else:
        rng = random.Random(SEED)
        examples = [e for e in build_examples(train_articles(DATA), pieces, rng, VERDICT_DATA, undecided=UNDECIDED)
                    if e["yesno"] >= 0]
        examples += mismatched(pieces, rng)
        examples = balanced(examples, rng)
        cache.write_text(json.dumps(examples))
    if args.limit:
        examples = random.Random(SEED).sample(examples, min(args.limit, len(examples)))
    counts = np.bincount([e["yesno"] for e in examples], minlength=3)
    print(f"{len(examples)} examples: {counts[YES]} yes, {counts[NO]} no, {counts[UNDECIDED]} undecided", file=sys.stderr)

    model = AutoModelForQuestionAnswering.from_pretrained(base, local_files_only=True)
    state = {k: torch.from_numpy(v) for k, v in reader_weights(args.init / "model.safetensors").items()
             if not k.startswith("verdict.")}
    model.load_state_dict(state, strict=False)
    model.eval()
    for parameter in model.parameters():
        parameter.requires_grad = False
    branch = VerdictBranch(model, args.layers)
    optimizer = torch.optim.AdamW(branch.parameters(), lr=args.lr, weight_decay=0.01)
    plan = [batches(examples, args.batch, SEED + epoch) for epoch in range(args.epochs)]
    total = sum(map(len, plan))
    warmup = max(1, int(0.06 * total))
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: min((step + 1) / warmup, max(0.0, (total - step) / (total - warmup))))
    step = 0
    checkpoint = args.work / "checkpoint.pt"
    if checkpoint.is_file():
        saved = torch.load(checkpoint, weights_only=False)
        branch.load_state_dict(saved["branch"])
        optimizer.load_state_dict(saved["optimizer"])
        scheduler.load_state_dict(saved["scheduler"])
        step = saved["step"]
        print(f"resumed at step {step}/{total}", file=sys.stderr)
    bf16 = getattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False)()
    branch.train()
    began, losses, right = time.time(), [], []
    with tqdm(total=total, initial=step, desc="train", file=sys.stderr) as bar:
        done = 0
        for epoch, epoch_batches in enumerate(plan):
            for ids in epoch_batches:
                done += 1
                if done <= step:
                    continue
                batch = collate_verdicts(examples, ids)
                with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                    hidden, mask, _ = below_branch(model, batch, args.layers)
                    logits = branch(hidden, mask).float()
                loss = torch.nn.functional.cross_entropy(logits, batch["verdict"])
                loss.backward()
                torch.nn.utils.clip_grad_norm_(branch.parameters(), 1.0)
                optimizer.step()
                scheduler.step()
                optimizer.zero_grad(set_to_none=True)
                step += 1
                losses.append(float(loss))
                right.append(float((logits.argmax(-1) == batch["verdict"]).float().mean()))
                bar.update(1)
                bar.set_postfix(epoch=epoch + 1, loss=f"{np.mean(losses[-100:]):.3f}", acc=f"{np.mean(right[-100:]):.3f}")
                if step % 200 == 0 or step == total:
                    tmp = checkpoint.with_suffix(".tmp")
                    torch.save({"branch": branch.state_dict(), "optimizer": optimizer.state_dict(),
                                "scheduler": scheduler.state_dict(), "step": step}, tmp)
                    tmp.replace(checkpoint)
    print(f"trained {step} steps in {time.time() - began:.0f} s", file=sys.stderr)
    export_verdict(model, branch, args.init, args.out)
    (args.out / "verdict_training.json").write_text(json.dumps({
        "examples": len(examples), "yes": int(counts[YES]), "no": int(counts[NO]), "undecided": int(counts[UNDECIDED]),
        "layers": args.layers, "epochs": args.epochs, "lr": args.lr, "batch": args.batch, "seed": SEED, "steps": total,
        "init": str(args.init), "held_out": list(VERDICT_DATA.held_out), "train_seconds": round(time.time() - began)},
        indent=1) + "\n")
    print(f"wrote {args.out / 'model.safetensors'}", file=sys.stderr)




if __name__ == "__main__":
    main()
