"""Cited answers: read the retrieved passages, give the short answer and the sentence that
proves it, or say the documents do not hold the answer.

Two modes:

- *evidence* (default): the sentences of the shown passages are ranked by their similarity to
  the question; the best `reader_windows` of them, each with its neighbours, go to the reader,
  which marks the answer span in each and gives a calibrated probability that it answers the
  question (from the span's margin over "no answer" and the window's sentence score). The
  passages are then shown in the reader's order (`passages_by_reading`). The most probable
  reading becomes the answer: the short answer, then its sentence quoted verbatim with
  its passage's marker `[n]`. Every word is traceable by construction.
- *generative*: the reader first decides whether the documents answer the question (no text is
  generated when they do not); then the language model answers from the reader's most probable
  sentences, each under its passage's marker (a prompt of a few hundred tokens, not five whole
  passages), and `qa.answer.verify` keeps only the sentences a shown passage supports. The generated text
  stands only when what survives states the reader's short answer (returned beside it);
  otherwise the reader's answer is given as in evidence mode (`mode` then reads "evidence";
  `raw_text` keeps what was generated): the reader, not the language model, decides whether the
  documents answer and what the answer is.

When the best reading's probability is below the reader's threshold (fitted on held-out
articles), nothing is answered (`abstained=True`, no short answer), in one of two ways: above
the reader's lower bound (`tentative_threshold`, also fitted there) the answer is *tentative*: "Not
sure", then the best reading's sentence quoted and cited, since it often holds the answer; below
it, or when a generated answer was stopped before any of it was verified, `NOT_IN_DOCUMENTS`
with no citations, followed by where the closest passage is as a hint. A yes/no question is
answered "Yes" or "No" when the reader gives a verdict (a reader with a yes/no head or verdict
branch) and is at least `yes_no_threshold` sure that the verdict's window decides it, with that
window's sentence as the proof; else its best reading is shown as a tentative answer (or none),
never as a phrase lifted from the sentence.
"""

from __future__ import annotations

import collections.abc
import dataclasses
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from qa.answer.prompts import NOT_IN_DOCUMENTS, NOT_SURE, messages
from qa.answer.reader import Reader, Window, window_at, window_budget
from qa.answer.verify import verify
from qa.answer.yesno import is_yes_no
from qa.config import Settings
from qa.index.loaded import Index
from qa.models.embedders import Embedder
from qa.models.generate import Generator
from qa.text import QUESTION_FRAME, heading_path, inert_markers, normalize_answer, overlap, terms
from qa.types import ANSWERED, DECLINED, TENTATIVE, Answer, Citation, Passage, Reading


@dataclass(frozen=True, slots=True)
class Evidence:
    """One sentence of a shown passage, scored against the question."""

    marker: int
    passage: Passage
    unit: int  # the sentence's row in the index
    score: float  # cosine to the question + `evidence_overlap_weight` × share of its content words


def compact_evidence(readings: Sequence[Reading], limit: int) -> list[tuple[int, str]]:
    """(marker, text) for the prompt: the proof sentences of the `limit` most probable readings,
    distinct, grouped under their passage's marker (markers in order, sentences in document order).

    >>> from qa.types import Reading
    >>> r = lambda m, s, at, p: Reading(m, "c", "x", at, at + 1, s, at, at + len(s), 1.0, 1.0, p)
    >>> compact_evidence([r(2, "B.", 50, 0.9), r(1, "A.", 0, 0.8), r(2, "C.", 10, 0.7), r(2, "B.", 50, 0.6)], 4)
    [(1, 'A.'), (2, 'C. B.')]
    """
    chosen: dict[int, dict[int, str]] = {}
    for reading in list(readings)[:limit]:
        chosen.setdefault(reading.marker, {})[reading.sentence_start] = inert_markers(reading.sentence)
    return [(marker, " ".join(text for _, text in sorted(chosen[marker].items()))) for marker in sorted(chosen)]


def states(text: str, short_answer: str) -> bool:
    """Whether `text` says the short answer: its normalised words, starting at a word of the text
    (so "Bloomberg" is stated by "Bloomberg's analysis", "war" not by "software").

    >>> states("Relations were established in December 1965. [1]", "December 1965"), states("software", "war")
    (True, False)
    """
    return f" {normalize_answer(short_answer)}" in f" {normalize_answer(text)}"


def display_text(reading: Reading) -> str:
    """The answer as shown: the short answer, then the proof sentence quoted with its marker.

    >>> from qa.types import Reading
    >>> display_text(Reading(2, "c", "1965", 40, 44, "Signed in 1965.", 31, 46, 9.0, 4.0, 0.9))
    '1965 — “Signed in 1965.” [2]'
    """
    quote = f"“{inert_markers(reading.sentence)}” [{reading.marker}]"
    return quote if reading.is_whole_sentence else f"{inert_markers(reading.short_text)} — {quote}"


def tentative_text(reading: Reading) -> str:
    """A tentative answer as shown: no short answer, the closest sentence quoted with its marker.

    >>> from qa.types import Reading
    >>> tentative_text(Reading(2, "c", "1965", 40, 44, "Signed in 1965.", 31, 46, 9.0, 4.0, 0.3))
    'Not sure — the closest passage says: “Signed in 1965.” [2]'
    """
    return f"{NOT_SURE} “{inert_markers(reading.sentence)}” [{reading.marker}]"


def declined_text(closest: str = "") -> str:
    """The refusal, with where the closest passage is (a heading path) when there is one.

    >>> declined_text("Japan › History")
    'The documents do not say. The closest passage is in Japan › History.'
    """
    return f"{NOT_IN_DOCUMENTS} The closest passage is in {inert_markers(closest)}." if closest else NOT_IN_DOCUMENTS


class AnswerStream:
    """An answer as it is produced: iterate it for the text pieces, then `answer()` gives the
    verified `Answer` (reading whatever is left of the stream first).

    >>> def produce():
    ...     yield "19"; yield "65"; yield "the answer"
    >>> stream = AnswerStream(produce(), is_answer=lambda item: item == "the answer")
    >>> "".join(stream), stream.answer()
    ('1965', 'the answer')
    """

    def __init__(self, items: Iterator[str | Answer], is_answer: Callable[[object], bool] | None = None) -> None:
        self._items = items
        self._is_answer = is_answer or (lambda item: isinstance(item, Answer))
        self._answer: Answer | None = None

    def __iter__(self) -> Iterator[str]:
        for item in self._items:
            if self._is_answer(item):
                self._answer = item
                return
            yield item

    def answer(self) -> Answer:
        if self._answer is None:
            for _ in self:
                pass
        if self._answer is None:
            raise RuntimeError("the answer stream ended without an answer")
        return self._answer


class Answerer:
    """Answers a question from its retrieved passages; holds the models it needs."""

    def __init__(self, index: Index, embedder: Embedder, settings: Settings, reader: Reader,
                 generator: Generator | None = None) -> None:
        self.index = index
        self.embedder = embedder
        self.settings = settings
        self.reader = reader
        self.generator = generator

    # ------------------------------------------------------------ reading

    def evidence(self, question: str, passages: Sequence[Passage],
                 question_vector: np.ndarray | None = None) -> list[Evidence]:
        """Every sentence of the shown passages, best first by `Evidence.score` (a sentence in
        two overlapping passages counts once, for the better-ranked one)."""
        if question_vector is None:
            question_vector = self.embedder.embed_query(question)
        question_terms = terms(question)
        weight = self.settings.evidence_overlap_weight
        found: dict[tuple[int, int], Evidence] = {}
        for marker, passage in enumerate(passages, start=1):
            sentences = self.index.sentences_of(passage.chunk)
            cosines = self.index.sentence_vectors(sentences.units) @ question_vector[0]
            for unit, span, cosine in zip(sentences.units, sentences.spans, cosines):
                if span not in found:
                    words = terms(self.index.sentence_text(unit))
                    found[span] = Evidence(marker, passage, unit, float(cosine) + weight * overlap(question_terms, words))
        return sorted(found.values(), key=lambda e: -e.score)

    def windows(self, question: str, evidence: Sequence[Evidence]) -> list[Window]:
        """The reader's candidates: the best `reader_windows` sentences, each with its
        neighbours in its passage (`reader_context`), cut to fit the reader's input."""
        budget = window_budget(self.reader.count_tokens, question)
        out: dict[tuple[int, int], Window] = {}
        counted: dict[str, list[int]] = {}  # per chunk: its sentences' token counts (often several candidates share one)
        for e in evidence[: self.settings.reader_windows]:
            chunk = e.passage.chunk
            sentences = self.index.sentences_of(chunk)
            spans = [(a - chunk.start, b - chunk.start) for a, b in sentences.spans]
            if chunk.chunk_id not in counted:
                counted[chunk.chunk_id] = self.reader.count_tokens([chunk.text[a:b] for a, b in spans])
            counts = counted[chunk.chunk_id]
            window = window_at(chunk.text, chunk.start, spans, counts, sentences.units.index(e.unit), budget,
                               marker=e.marker, chunk_id=chunk.chunk_id, score=e.score,
                               wide=self.settings.reader_context == "wide")
            out.setdefault((window.start, window.end), window)
        return list(out.values())

    def read(self, question: str, passages: Sequence[Passage],
             question_vector: np.ndarray | None = None) -> list[Reading]:
        """The reader's findings in the shown passages, most likely answer first."""
        windows = self.windows(question, self.evidence(question, passages, question_vector))
        return sorted(self.reader.read(question, windows), key=lambda r: -r.answerable)

    # ------------------------------------------------------------ answering

    def stream(
        self,
        question: str,
        passages: Sequence[Passage],
        mode: str | None = None,
        cancel: threading.Event | None = None,
        question_vector: np.ndarray | None = None,
    ) -> AnswerStream:
        """The answer's text pieces as they are produced, then (`answer()`) the verified `Answer`."""
        return AnswerStream(self._produce(question, passages, mode, cancel, question_vector))

    def _produce(
        self,
        question: str,
        passages: Sequence[Passage],
        mode: str | None,
        cancel: threading.Event | None,
        question_vector: np.ndarray | None,
    ) -> Iterator[str | Answer]:
        """Text pieces as they are produced, then the `Answer` (last item)."""
        mode = mode or self.settings.answer_mode
        if mode not in ("evidence", "generative"):
            raise ValueError(f"unknown answer mode {mode!r}: use 'evidence' or 'generative'")
        if mode == "generative" and self.generator is None:
            raise ValueError("generative mode needs a generator")
        clock = _Clock()
        readings = self.read(question, passages, question_vector)
        best = decide(readings, self.reader.threshold)
        if is_yes_no(question):  # "Yes"/"No" from the reading whose window most surely decides it; never
            best = decide_verdict(readings, self.reader.yes_no_threshold)  # a phrase lifted from the sentence
        closest = None if best else closest_reading(readings, self.reader.tentative_threshold)
        chosen = best or closest
        passages, readings = passages_by_reading(passages, readings, lead=chosen)
        if chosen is not None:  # the same readings, their markers renumbered
            chosen = readings[0]
            best, closest = (chosen, None) if best else (None, chosen)
        raw, text, citations, model = "", "", [], self.reader.name
        if best is not None and mode == "generative":
            raw, text, citations = yield from clock.timed(self._generate(question, passages, readings, cancel))
            if citations and states(text, best.text):
                model = self.generator.name
            else:
                text, citations = "", []
                if not (cancel and cancel.is_set()):
                    mode = "evidence"  # nothing generated both survived and said the reader's answer
        if best is not None and mode == "evidence":
            text, citations = evidence_answer(best, passages)
            if not raw:
                yield from clock.timed(iter([text]))
        outcome = ANSWERED if citations else DECLINED
        if closest is not None:
            outcome, text, citations = TENTATIVE, *evidence_answer(closest, passages, tentative=True)
            yield from clock.timed(iter([text]))
        if outcome == DECLINED:
            text = declined_text(self._place(question, readings[0], passages) if readings else "")
        yield Answer(question=question, text=text, citations=tuple(citations), passages=tuple(passages),
                     abstained=outcome != ANSWERED, mode=mode, model=model, raw_text=raw or text,
                     short_answer=best if outcome == ANSWERED else None, readings=tuple(readings),
                     timings=clock.timings(), outcome=outcome)

    def _place(self, question: str, reading: Reading, passages: Sequence[Passage]) -> str:
        """Where a reading's passage is (its document's title and section path); "" when it shares
        no word with the question beyond its title's: a place unrelated to the question is no hint."""
        chunk, title = passages[reading.marker - 1].chunk, self.index.title(passages[reading.marker - 1].chunk)
        return heading_path(title, chunk.section) if (terms(question) - QUESTION_FRAME) & terms(f"{chunk.section} {chunk.text}") - terms(title) else ""

    def _generate(self, question: str, passages: Sequence[Passage], readings: Sequence[Reading],
                  cancel: threading.Event | None) -> collections.abc.Generator[str, None, tuple[str, str, list[Citation]]]:
        """The language model's pieces as it writes them from the reader's best sentences; returns
        (what it wrote, what of it the shown passages support, their citations)."""
        raw = ""
        evidence = compact_evidence(readings, self.settings.prompt_sentences)
        for piece in self.generator.stream(messages(question, evidence), self.settings.max_new_tokens, cancel):
            raw += piece
            yield piece
        text, citations = verify(raw, passages, question, self.settings.min_support) if raw else ("", [])
        return raw, text, citations


def decide(readings: Sequence[Reading], threshold: float) -> Reading | None:
    """The reading to answer with: the most probable one (readings come best first) when the
    reader is at least `threshold` sure of it; None: the documents do not hold the answer.

    >>> r = lambda p: Reading(1, "c", "x", 0, 1, "x.", 0, 2, 1.0, 1.0, p)
    >>> decide([r(0.8), r(0.5)], 0.4).answerable, decide([r(0.3)], 0.4), decide([], 0.4)
    (0.8, None, None)
    """
    return readings[0] if readings and readings[0].answerable >= threshold else None


# How much a reading's window score adds to its probability when choosing the sentence of a
# tentative answer. In the tentative band the span's probability says little about which sentence
# holds the answer, and the sentence's match to the question says more. Tune articles (430
# answerable questions in the band; `scripts/calibrate_reader.py` reports it): the sentence holds
# the answer 0.665 (weight 0) / 0.695 (0.5) / 0.721 (1) / 0.709 (2) / 0.693 (4).
CLOSEST_WINDOW_WEIGHT = 1.0


def closest_reading(readings: Sequence[Reading], threshold: float) -> Reading | None:
    """A tentative answer's reading, when the most probable one is at least `threshold` likely: the
    one whose sentence most likely holds the answer (its probability plus `CLOSEST_WINDOW_WEIGHT`
    times its window's score); None below it.

    >>> r = lambda p, w: Reading(1, "c", "x", 0, 1, "x.", 0, 2, 1.0, 1.0, p, window_score=w)
    >>> closest_reading([r(0.3, 0.2), r(0.2, 0.5)], 0.1).answerable, closest_reading([r(0.05, 0.9)], 0.1)
    (0.2, None)
    """
    if not readings or max(r.answerable for r in readings) < threshold:
        return None
    return max(readings, key=lambda r: r.answerable + CLOSEST_WINDOW_WEIGHT * r.window_score)


def decide_verdict(readings: Sequence[Reading], threshold: float) -> Reading | None:
    """For a yes/no question: the reading with a verdict whose window most surely decides it, when
    at least `threshold` sure; None (a reader without a yes/no head gives no verdict): not answered.

    >>> r = lambda verdict, decided: Reading(1, "c", "x", 0, 1, "x.", 0, 2, 1.0, 1.0, 0.9, verdict, decided)
    >>> decide_verdict([r("yes", 0.6), r("no", 0.8)], 0.5).verdict, decide_verdict([r("yes", 0.4)], 0.5)
    ('no', None)
    >>> decide_verdict([r("", 0.0)], 0.5) is None
    True
    """
    decided = [r for r in readings if r.verdict]
    best = max(decided, key=lambda r: r.decided, default=None)
    return best if best is not None and best.decided >= threshold else None


def passages_by_reading(passages: Sequence[Passage], readings: Sequence[Reading],
                        lead: Reading | None = None) -> tuple[list[Passage], list[Reading]]:
    """The passages re-ranked by the reader: those it found a likely answer in first, by their best
    reading's probability, then the rest as retrieved; ranks and the readings' markers renumbered.
    (Tune articles: the evidence's passage first 0.785 -> 0.838 of questions, in the top 3 0.928 -> 0.947.)
    With `lead` (one of `readings`: the one the answer quotes), its passage is first and it is the
    first reading.

    >>> from qa.types import Chunk
    >>> p = [Passage(Chunk(c, "d", "", c, 0, 1), 1.0, n) for n, c in enumerate("abc", start=1)]
    >>> r = lambda marker, p: Reading(marker, "", "x", 0, 1, "x.", 0, 2, 1.0, 1.0, p)
    >>> passages, readings = passages_by_reading(p, [r(1, 0.2), r(3, 0.9)])
    >>> [(x.chunk.chunk_id, x.rank) for x in passages], [(x.marker, x.answerable) for x in readings]
    ([('c', 1), ('a', 2), ('b', 3)], [(2, 0.2), (1, 0.9)])
    >>> readings = [r(1, 0.2), r(3, 0.9)]
    >>> passages, readings = passages_by_reading(p, readings, lead=readings[0])
    >>> [(x.chunk.chunk_id, x.rank) for x in passages], [(x.marker, x.answerable) for x in readings]
    ([('a', 1), ('c', 2), ('b', 3)], [(1, 0.2), (2, 0.9)])
    """
    if lead is not None:
        readings = [lead, *(r for r in readings if r is not lead)]
    best: dict[int, float] = {}
    for reading in readings:
        best[reading.marker] = max(best.get(reading.marker, -1.0), reading.answerable)
    if lead is not None:
        best[lead.marker] = 2.0  # above any probability
    order = sorted(range(1, len(passages) + 1), key=lambda marker: -best.get(marker, -1.0))  # stable: ties as retrieved
    renumbered = {old: new for new, old in enumerate(order, start=1)}
    return ([dataclasses.replace(passages[old - 1], rank=new) for new, old in enumerate(order, start=1)],
            [dataclasses.replace(reading, marker=renumbered[reading.marker]) for reading in readings])


def evidence_answer(best: Reading, passages: Sequence[Passage], tentative: bool = False) -> tuple[str, list[Citation]]:
    """An evidence answer's text (`display_text`, or `tentative_text`) and its one citation: the
    reading's sentence."""
    chunk = passages[best.marker - 1].chunk
    text = tentative_text(best) if tentative else display_text(best)
    return text, [Citation(best.marker, chunk.chunk_id, best.sentence, best.sentence_start, best.sentence_end, chunk.page)]


class _Clock:
    """When answering began and when its first piece was given."""

    def __init__(self) -> None:
        self.began = time.perf_counter()
        self.first_piece: float | None = None

    def timed(self, pieces: Iterator[str]):  # noqa: ANN201 - yields the pieces, returns what `pieces` returns
        """Passes `pieces` through, noting when the first one came."""
        while True:
            try:
                piece = next(pieces)
            except StopIteration as done:
                return done.value
            if self.first_piece is None:
                self.first_piece = time.perf_counter()
            yield piece

    def timings(self) -> dict[str, float]:
        now = time.perf_counter()
        return {"first_token_ms": round(((self.first_piece or now) - self.began) * 1000, 1),
                "total_ms": round((now - self.began) * 1000, 1)}
