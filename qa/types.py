"""The records that flow between pipeline stages: frozen, slotted dataclasses and nothing else.

Ids are short content hashes, so rebuilding the same corpus gives the same ids:

>>> make_id("doc", "intro")
'00aad43d8cd1'
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field


def make_id(*parts: object) -> str:
    """A 12-hex-digit id from the parts, joined with '|'."""
    return hashlib.sha256("|".join(map(str, parts)).encode("utf-8")).hexdigest()[:12]


@dataclass(frozen=True, slots=True)
class Document:
    doc_id: str
    title: str
    path: str  # relative to the corpus folder, with '/' separators
    text: str  # decoded text; all chunk offsets point into this string
    sha256: str  # of the file's bytes
    page_starts: tuple[int, ...] = ()  # PDF: offset in `text` where each page begins
    notes: str = ""  # what reading it found: "12 pages; pages 3–4 read by OCR (…)", "2 sheets, 40 rows"


@dataclass(frozen=True, slots=True)
class Chunk:
    chunk_id: str
    doc_id: str
    section: str  # heading path, e.g. "Disputes > Liancourt Rocks"; "" for the lead
    text: str
    start: int
    end: int
    page: int | None = None  # 1-based PDF page; chunks never cross pages


@dataclass(frozen=True, slots=True)
class Passage:
    chunk: Chunk
    score: float  # fused score (higher is better)
    rank: int  # 1-based
    dense_score: float | None = None  # cosine similarity, when the dense retriever found it
    dense_rank: int | None = None
    bm25_score: float | None = None
    bm25_rank: int | None = None


@dataclass(frozen=True, slots=True)
class Citation:
    marker: int  # the n of the [n] the reader sees
    chunk_id: str
    quote: str  # the supporting span
    start: int  # offsets of the quote in its document's text
    end: int
    page: int | None = None


@dataclass(frozen=True, slots=True)
class Reading:
    """What the reader found in one candidate window (offsets into the document's text)."""

    marker: int  # the [n] of the passage the window comes from
    chunk_id: str
    text: str  # the answer span, verbatim
    start: int
    end: int
    sentence: str  # the sentence(s) holding the span: the proof
    sentence_start: int
    sentence_end: int
    span_score: float  # start + end logit of the span
    margin: float  # span score minus the no-answer score
    answerable: float  # calibrated probability that the span answers the question
    verdict: str = ""  # a yes/no question's answer, "yes" or "no"; the span marks the words that decide it
    decided: float = 0.0  # with a verdict: the probability that this window decides the yes/no question
    window_score: float = 0.0  # how well its window's centre sentence matches the question (`Window.score`)

    @property
    def short_text(self) -> str:
        """The short answer as shown: "Yes"/"No" for a yes/no question, else the span."""
        return self.verdict.capitalize() or self.text

    @property
    def is_whole_sentence(self) -> bool:
        """Whether the answer span is its whole sentence: then the sentence is shown once, quoted,
        without the short answer before it (the one display rule: text, Markdown, HTML, terminal)."""
        return not self.verdict and self.text.strip(" .") == self.sentence.strip(" .")


# What an answer is (`Answer.outcome`): the documents answer it; the reader is not sure, so the
# closest passage's sentence is quoted instead of a short answer; or the documents do not say.
ANSWERED, TENTATIVE, DECLINED = "answer", "tentative", "declined"


@dataclass(frozen=True, slots=True)
class Answer:
    question: str
    text: str  # verified: every [n] in it is a citation below
    citations: tuple[Citation, ...]
    passages: tuple[Passage, ...]  # the passages shown to the model, [1] first
    abstained: bool  # no answer is given: `outcome` is TENTATIVE or DECLINED
    mode: str  # "evidence" or "generative"
    model: str
    raw_text: str = ""  # what the generator wrote, before verification (debugging)
    query: str = ""  # what was searched: the question, made standalone using the chat history
    short_answer: Reading | None = None  # the words that answer, with their proof sentence; None when declined
    readings: tuple[Reading, ...] = ()  # one per window read, most probable first (also when declined)
    timings: dict[str, float] = field(default_factory=dict)
    outcome: str = ANSWERED
    headline: str = ""  # a composed (`qa.answer.compose`) or computed (a table's count, sum…) short answer; "" otherwise
    parts: tuple[Answer, ...] = ()  # the sub-questions' answers it was composed from

    @property
    def short_text(self) -> str:
        """The words that answer: a composed or computed answer's headline, else the short answer's
        words; "" when there are none."""
        return self.headline or (self.short_answer.short_text if self.short_answer else "")


@dataclass(frozen=True, slots=True)
class Section:
    """A run of body text under one heading path: `doc.text[start:end]`."""

    path: str
    start: int
    end: int

