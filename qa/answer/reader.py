"""The reader: finds the words that answer a question in short candidate texts, and says how
likely it is that the documents answer it at all.

A candidate is a `Window`: one sentence of a retrieved passage with its neighbours, cut to fit
a small model (question plus window within `MAX_TOKENS` of the reader's own tokenizer; a
question longer than `MAX_QUESTION_TOKENS` is cut to its last tokens). `window_at` builds it, for
the product and the training scripts alike. The model is the bundled MiniLM
encoder fine-tuned for extractive QA with a no-answer option (the [CLS] span), trained on SQuAD
2.0 by `scripts/train_reader.py`; its weights and card live in `qa/reader_model/` (another folder
of the same layout: `QA_READER_MODEL`). For each
window it returns one `Reading`: the best span (verbatim, document offsets), the sentence that
holds it, the span score minus the no-answer score (the margin), and the probability that the
span answers the question: a logistic function of the margin and the window's retrieval score,
fitted on held-out articles (`calibration.json`). For a yes/no question (`qa.answer.yesno`), a
reader trained with the yes/no head also gives each reading a verdict, "yes" or "no", from its
two yes/no logits at [CLS]; the span and its probability still say whether (and where) the
window answers it. It runs on ONNX Runtime (`qa.models.onnx_bert`), the
trained layers laid over the package's BERT; training (torch) tokenizes with the same
`WordPieces`.

It does not retrieve, verify or phrase answers: `qa/answer/answerer.py` does.

>>> window_sentences([5, 5, 5], 1, budget=20)
(0, 3)
>>> window_sentences([5, 12, 5], 1, budget=20)
(0, 2)
"""

from __future__ import annotations

import functools
import json
import logging
import math
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from qa.answer.spans import balanced, whole_words
from qa.answer.yesno import is_yes_no
from qa.errors import ModelLoadError
from qa.models.locate import LoadsOnce, bundled_model_dir
from qa.models.onnx_bert import load_bert
from qa.models.wordpieces import WordPieces
from qa.types import Reading

log = logging.getLogger(__name__)

MAX_TOKENS = 128  # question + window + 3 special tokens
MAX_QUESTION_TOKENS = 64  # a longer question keeps its last 64 tokens, so a window always fits
# The longest answer span, in tokens (SQuAD's reference scripts use 30). On the tune articles
# (`scripts/tune_constants.py qa.answer.reader.MAX_ANSWER_TOKENS 30 15 45`), SQuAD2 F1 / HasAns
# F1: 15: 0.661 / 0.464, 30: 0.662 / 0.467, 45: 0.661 / 0.467.
MAX_ANSWER_TOKENS = 30


@dataclass(frozen=True, slots=True)
class Window:
    """A candidate text: `text == document[start:end]`; `sentences` are document offsets."""

    marker: int  # the [n] of the passage it comes from
    chunk_id: str
    start: int
    end: int
    text: str
    sentences: tuple[tuple[int, int], ...]
    score: float = 0.0  # how well its centre sentence matches the question (retrieval's view)


def window_sentences(counts: Sequence[int], center: int, budget: int, wide: bool = False) -> tuple[int, int]:
    """[first, last) sentence indexes of the window around `center`: the centre sentence, then
    the previous and the next neighbour, each added only while the window fits `budget` tokens.
    `wide` goes on adding neighbours (previous, next, previous, …) while they fit.

    >>> window_sentences([5, 5, 5, 5, 5], 2, budget=20), window_sentences([5, 5, 5, 5, 5], 2, budget=20, wide=True)
    ((1, 4), (0, 4))
    """
    first, last = center, center + 1
    used = counts[center]
    if center > 0 and used + counts[center - 1] <= budget:
        first, used = center - 1, used + counts[center - 1]
    if center + 1 < len(counts) and used + counts[center + 1] <= budget:
        last, used = center + 2, used + counts[center + 1]
    while wide:
        grown = False
        if first > 0 and used + counts[first - 1] <= budget:
            first, used, grown = first - 1, used + counts[first - 1], True
        if last < len(counts) and used + counts[last] <= budget:
            last, used, grown = last + 1, used + counts[last], True
        wide = grown
    return first, last


def window_budget(count_tokens: Callable[[Sequence[str]], list[int]], question: str) -> int:
    """Tokens left for the window beside `question` (as the reader will cut it)."""
    return MAX_TOKENS - 3 - min(count_tokens([question])[0], MAX_QUESTION_TOKENS)


def window_at(text: str, offset: int, spans: Sequence[tuple[int, int]], counts: Sequence[int], centre: int,
              budget: int, *, marker: int = 0, chunk_id: str = "", score: float = 0.0, wide: bool = False) -> Window:
    """The window around sentence `centre` of `text` (`spans` and `counts`: its sentences' offsets
    in `text` and token counts); the window's offsets are shifted by `offset` into the document.

    >>> window_at("A b. C d. E f.", 100, [(0, 4), (5, 9), (10, 14)], [3, 3, 3], 0, budget=6).text
    'A b. C d.'
    """
    first, last = window_sentences(counts, centre, budget, wide)
    a, b = spans[first][0], spans[last - 1][1]
    return Window(marker, chunk_id, offset + a, offset + b, text[a:b],
                  tuple((offset + s, offset + e) for s, e in spans[first:last]), score)


class Reader(Protocol):
    name: str

    def warm_up(self) -> None:
        """Load the model now rather than on the first question."""
        ...

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        """Tokens of each text in the reader's own tokenizer (no special tokens)."""
        ...

    @property
    def threshold(self) -> float:
        """Readings less likely than this to answer the question are not answers."""
        ...

    @property
    def tentative_threshold(self) -> float:
        """Readings below `threshold` but at least this likely are shown as the closest passage."""
        ...

    @property
    def yes_no_threshold(self) -> float:
        """A yes/no question is answered "Yes"/"No" when a reading's verdict is at least this likely
        to be decided by its window (`Reading.decided`)."""
        ...

    def read(self, question: str, windows: Sequence[Window]) -> list[Reading]:
        """One `Reading` per window, in the same order."""
        ...


def best_span(start_logits: np.ndarray, end_logits: np.ndarray, context: np.ndarray,
              max_tokens: int | None = None) -> tuple[int, int, float]:
    """(first token, last token, score) of the best span inside the context tokens.

    >>> s = np.array([0., 1., 5., 0.]); e = np.array([0., 0., 1., 4.]); c = np.array([False, True, True, True])
    >>> best_span(s, e, c)
    (2, 3, 9.0)
    """
    starts = np.where(context, start_logits, -np.inf)
    ends = np.where(context, end_logits, -np.inf)
    scores = starts[:, None] + ends[None, :]
    scores = np.where(allowed_spans(len(starts), max_tokens or MAX_ANSWER_TOKENS), scores, -np.inf)
    i, j = np.unravel_index(int(np.argmax(scores)), scores.shape)
    return int(i), int(j), float(scores[i, j])


@functools.lru_cache(maxsize=MAX_TOKENS + 1)  # one per window length, ≤ 16 KB each
def allowed_spans(n: int, max_tokens: int) -> np.ndarray:
    """[i, j]: whether a span may start at token i and end at token j (j ≥ i, under `max_tokens`)."""
    return np.triu(np.ones((n, n), dtype=bool)) & ~np.triu(np.ones((n, n), dtype=bool), k=max_tokens)


def fit_question(pieces: WordPieces, question: str, limit: int = MAX_QUESTION_TOKENS) -> str:
    """`question`, or its last `limit` tokens when it is longer (the asking part of a long
    question is usually at its end)."""
    offsets = pieces.offsets(question)
    if len(offsets) <= limit:
        return question
    return question[offsets[-limit][0]:]


def encode(pieces: WordPieces, question: str, texts: Sequence[str], max_tokens: int = MAX_TOKENS):  # noqa: ANN201
    """Question/window pairs as padded arrays, and their encodings (offsets, sequence ids); a
    long question is cut by `fit_question`, then the window is truncated to fit."""
    question = fit_question(pieces, question)
    return pieces.batch([(question, text) for text in texts], max_tokens, pairs_truncate_second=True)


@functools.lru_cache(maxsize=2)
def get_reader(model_dir: Path, threads: int = 2, cache_dir: Path | None = None, precision: str = "int8",
               embedder: str = "minilm") -> TrainedReader:
    """A reader for `model_dir` (loaded on first use; `Pipeline` keeps one), calibrated for the
    sentence scores of `embedder` (see `calibration_for`)."""
    return TrainedReader(model_dir, threads, cache_dir, precision, embedder)


CALIBRATED = ("margin", "window_score", "bias", "threshold", "tentative")  # what depends on the embedder's scores


def calibration_for(calibration: dict, embedder: str) -> dict:
    """The calibration fitted for `embedder`'s sentence scores (a window's score is its sentence's
    cosine to the question, whose scale differs between embedders): its `by_embedder` entry laid
    over the rest, which was fitted with the bundled MiniLM (`scripts/calibrate_reader.py --embedder`).

    >>> calibration_for({"threshold": 0.4, "by_embedder": {"e5": {"threshold": 0.6}}}, "e5")["threshold"]
    0.6
    >>> calibration_for({"threshold": 0.4, "by_embedder": {"e5": {"threshold": 0.6}}}, "minilm")["threshold"]
    0.4
    """
    return {**calibration, **calibration.get("by_embedder", {}).get(embedder, {})}


class TrainedReader(LoadsOnce):
    """A fine-tuned MiniLM reader (`qa/reader_model/` or a folder of the same layout), loaded on first use."""

    def __init__(self, model_dir: Path, threads: int = 2, cache_dir: Path | None = None, precision: str = "int8",
                 embedder: str = "minilm") -> None:
        self.model_dir = Path(model_dir)
        self.embedder = embedder
        self.name = f"reader:{self.model_dir.name}"
        self.threads = threads
        self.cache_dir = cache_dir
        self.precision = precision
        self._model = None
        self._verdict_model = None  # with the verdict branch, for yes/no questions (None: the reader has none)
        self._pieces: WordPieces | None = None
        self._calibration: dict = {}
        self._lock = threading.Lock()

    def _load(self) -> None:
        (model, self._verdict_model), self._pieces, calibration = load_reader(
            self.model_dir, self.threads, self.cache_dir, self.precision)
        self._calibration = calibration_for(calibration, self.embedder)
        self._model = model  # last: `warm_up` skips the lock once this is set

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        self.warm_up()
        return self._pieces.count(texts)

    @property
    def threshold(self) -> float:
        """The answerable probability below which the answer is "not in the documents"."""
        self.warm_up()
        return float(self._calibration["threshold"])

    @property
    def tentative_threshold(self) -> float:
        """Below `threshold`, the probability from which the best reading's sentence is shown as
        a tentative answer (fitted on held-out articles; a calibration without it has none)."""
        self.warm_up()
        return float(self._calibration.get("tentative", self._calibration["threshold"]))

    @property
    def yes_no_threshold(self) -> float:
        """How sure the verdict must be that its window decides a yes/no question (fitted on tune:
        `scripts/calibrate_verdict.py`; a reader without it uses `threshold` on the span's probability)."""
        self.warm_up()
        return float(self._calibration.get("yes_no_threshold", self._calibration["threshold"]))

    def probability(self, margin: float, window_score: float) -> float:
        """P(the span answers the question): logistic in the span-minus-no-answer margin and the
        window's retrieval score, fitted on held-out articles (`scripts/calibrate_reader.py`)."""
        self.warm_up()
        c = self._calibration
        z = c["margin"] * margin + c["window_score"] * window_score + c["bias"]
        return 1.0 / (1.0 + math.exp(-max(-50.0, min(50.0, z))))

    def read(self, question: str, windows: Sequence[Window]) -> list[Reading]:
        if not windows:
            return []
        self.warm_up()
        (ids, mask, types), encodings = encode(self._pieces, question, [w.text for w in windows])
        yes_no = is_yes_no(question)  # only these run the verdict branch's layers (the span logits are the same)
        logits = (self._verdict_model if yes_no and self._verdict_model is not None else self._model).run(ids, mask, types)
        # A yes/no question read by a reader with the yes/no head (4 logits: yes and no at [CLS]; the
        # span's probability says whether the window decides it) or the verdict branch (5: yes, no and
        # undecided at [CLS], after the span head's two).
        yes_no = yes_no and logits.shape[-1] in (4, 5)
        readings = []
        for i, window in enumerate(windows):
            starts, ends = logits[i, :, 0], logits[i, :, 1]
            context = np.array([sid == 1 for sid in encodings[i].sequence_ids])
            first, last, score = best_span(starts, ends, context)
            margin = score - float(starts[0] + ends[0])
            offsets = encodings[i].offsets
            a, b = balanced(window.text, *whole_words(window.text, int(offsets[first][0]), int(offsets[last][1])))
            probability = self.probability(margin, window.score)
            verdict, decided = "", 0.0
            if yes_no:
                verdict = "yes" if logits[i, 0, 2] >= logits[i, 0, 3] else "no"
                decided = probability if logits.shape[-1] == 4 else 1.0 - softmax(logits[i, 0, 2:5])[2]
            readings.append(reading(window, a, b, score, margin, probability, verdict, decided))
        return readings


def softmax(logits: np.ndarray) -> np.ndarray:
    exp = np.exp(logits - logits.max())
    return exp / exp.sum()


def reading(window: Window, a: int, b: int, score: float, margin: float, probability: float,
            verdict: str = "", decided: float | None = None) -> Reading:
    """The `Reading` for characters [a, b) of the window: the span and the sentence(s) holding it;
    with a verdict, `decided` (default: `probability`) is how sure the reader is that the window
    decides the yes/no question."""
    start, end = window.start + a, window.start + b
    touched = [(s, e) for s, e in window.sentences if s < end and start < e] or [(window.start, window.end)]
    sentence_start, sentence_end = touched[0][0], touched[-1][1]
    return Reading(
        marker=window.marker,
        chunk_id=window.chunk_id,
        text=window.text[a:b],
        start=start,
        end=end,
        sentence=window.text[sentence_start - window.start:sentence_end - window.start],
        sentence_start=sentence_start,
        sentence_end=sentence_end,
        span_score=score,
        margin=margin,
        answerable=probability,
        verdict=verdict,
        decided=(probability if decided is None else decided) if verdict else 0.0,
        window_score=window.score,
    )


def reader_encoder(weights: Path) -> str:
    """The base encoder a reader's weights were trained from ("minilm" or "mpnet"), as its
    safetensors metadata names it (`scripts/train_reader.py` writes it)."""
    from safetensors import safe_open

    with safe_open(str(weights), "np") as tensors:
        base = (tensors.metadata() or {}).get("base", "")
    return "mpnet" if "mpnet" in base.lower() else "minilm"


def load_reader(model_dir: Path, threads: int, cache_dir: Path | None = None, precision: str = "int8"):  # noqa: ANN201 - ((model, verdict model), pieces, calibration)
    """The base encoder (MiniLM or MPNet) from its package, overlaid with the trained weights in
    `model_dir` (frozen weights are not shipped: they are the base model's), on ONNX Runtime: the
    span reader, and with a verdict branch a second graph that also runs it (else None)."""
    weights = model_dir / "model.safetensors"
    calibration = model_dir / "calibration.json"
    if not weights.is_file():
        raise ModelLoadError(f"the reader model is missing from {model_dir}: reinstall docqa, or train it with "
                             "`python scripts/train_reader.py`")
    try:
        base = bundled_model_dir(reader_encoder(weights))
        model = load_bert(base, weights, True, threads, cache_dir, precision, spin=True, verdict=False)
        verdict_model = (load_bert(base, weights, True, threads, cache_dir, precision, spin=True)
                         if has_verdict_branch(weights) else None)
        pieces = WordPieces(base)
        # Uncalibrated (while calibrating): the probability is the logistic of the margin.
        settings = {"margin": 1.0, "window_score": 0.0, "bias": 0.0, "threshold": 0.5}
        if calibration.is_file():
            settings = json.loads(calibration.read_text(encoding="utf-8"))
    except ModelLoadError:
        raise
    except Exception as error:  # a damaged file means the same to the user whatever the library says
        raise ModelLoadError(f"could not load the reader model from {model_dir}: {error}") from error
    log.info("loaded reader from %s", model_dir)
    return (model, verdict_model), pieces, settings


def has_verdict_branch(weights: Path) -> bool:
    from safetensors import safe_open

    with safe_open(str(weights), "np") as tensors:
        return "verdict.head.weight" in tensors.keys()
