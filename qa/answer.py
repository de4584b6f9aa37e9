"""Cited answers: choose or generate the answer, verify every citation, abstain when unsupported.

Two modes, each ending in the same verification:

- *evidence* (default): the answer is made of the retrieved sentences that best answer the
  question, each quoted verbatim and followed by its passage's marker `[n]`. Every word is
  traceable by construction; no generator is needed.
- *generative*: the language model answers from the numbered passages with `[n]` markers.

Verification (both modes): markers are parsed and mapped to the passages that were shown;
markers pointing elsewhere are removed; each answer sentence is checked against the sentences
of the passages it cites (content-word overlap, stemmed) and a citation stands only when a
passage sentence supports it; the supporting sentence becomes the citation's quote, with its
character offsets in the source document. Sentences that no shown passage supports are dropped.

Abstention: when the best evidence is weak (low similarity and low word overlap), when a name
or number the question depends on appears in none of the evidence (a false premise), when the
model says the documents do not say, or when nothing survives verification, the answer is
`NOT_IN_DOCUMENTS`-style text with no citations and `abstained=True`.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from qa.chunking import sentence_spans
from qa.config import Settings
from qa.generate import Generator
from qa.index import Index, bm25_query_tokens
from qa.models import Embedder
from qa.prompts import NOT_IN_DOCUMENTS, messages
from qa.types import Answer, Citation, Passage

_MARKER = re.compile(r"\[(\d{1,3}(?:\s*[,;]\s*\d{1,3})*)\]")
_KEY_TERM = re.compile(r"(?<![.!?]\s)(?<!^)\b([A-Z][\w'’-]{2,}|\d[\d,.]*)")
_META = re.compile(r"\b(passages?|documents?|the answer is|the question)\b", re.IGNORECASE)
_ABSTAIN_HINTS = re.compile(
    r"(do(?:es)? not (?:say|contain|mention|provide|specify)|no (?:information|mention)|not (?:mentioned|stated|specified)|cannot (?:answer|find|determine))",
    re.IGNORECASE,
)

# Calibrated on eval/questions.jsonl (see README, "Answer modes").
MIN_EVIDENCE_SCORE = 0.55  # cosine + OVERLAP_WEIGHT * overlap of the best sentence
OVERLAP_WEIGHT = 0.5
SECOND_SENTENCE_MARGIN = 0.3  # a second sentence may join when this close to the best
MIN_SUPPORT = 0.75  # share of an answer sentence's content words found in the cited sentence
KEY_TERMS_IN_PASSAGE = True  # a question's names may be in the best sentence's passage, not only in it


@dataclass(frozen=True, slots=True)
class Evidence:
    """One sentence of a shown passage, scored against the question."""

    marker: int
    passage: Passage
    start: int  # document offsets
    end: int
    text: str
    cosine: float
    overlap: float  # share of the question's content words in the sentence

    @property
    def score(self) -> float:
        return self.cosine + OVERLAP_WEIGHT * self.overlap


def terms(text: str) -> set[str]:
    """Content words, lower-cased and stemmed.

    >>> sorted(terms("When did the treaties get signed?"))
    ['get', 'sign', 'treati']
    """
    return set(bm25_query_tokens(text, stopwords="en_plus"))


def _covered(term: str, pool: set[str]) -> bool:
    """A term is covered by an equal term or one sharing a 4+ letter stem (Japan/Japanese)."""
    if term in pool:
        return True
    return len(term) >= 4 and any(len(p) >= 4 and (p.startswith(term) or term.startswith(p)) for p in pool)


def overlap(question_terms: set[str], sentence_terms: set[str]) -> float:
    if not question_terms:
        return 0.0
    return sum(_covered(t, sentence_terms) for t in question_terms) / len(question_terms)


def key_terms(question: str) -> set[str]:
    """Names and numbers in the question (capitalised words after its first word, digits).

    >>> sorted(key_terms("Why did North Korea sign the 1965 treaty?"))
    ['1965', 'korea', 'north']
    """
    found = set()
    for word in _KEY_TERM.findall(question.strip()):
        found |= terms(word)  # empty for stopwords that happen to be capitalised ("What")
    return found


_NUMBER = re.compile(r"\d|\b(?:one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|twenty|thirty|forty|fifty|hundred|thousand|million|billion|half|dozen)\b", re.IGNORECASE)
_DATE = re.compile(r"\b\d{3,4}s?\b|\b(?:January|February|March|April|May|June|July|August|September|October|November|December)\b")
_NAME = re.compile(r"(?<!^)(?<![.!?]\s)\b[A-Z][\w'’-]*")


def answer_slot(question: str) -> str:
    """What kind of thing the question asks for: "date", "number", "name" or "other".

    >>> [answer_slot(q) for q in ("When was it?", "How many were there?", "Who won?", "Why?")]
    ['date', 'number', 'name', 'other']
    """
    q = re.sub(r"^(and|but|so|also|then)\s+", "", question.strip().lower())
    if re.match(r"(when|what year|in what year|in which year|what date|on what date)\b", q):
        return "date"
    if re.match(r"(how (many|much|long|large|big|old|far)|what (percentage|share|proportion|number))\b", q):
        return "number"
    if re.match(r"(who|whom|whose)\b", q):
        return "name"
    return "other"


def answer_slot_filled(question: str, evidence: str) -> bool:
    """Whether the evidence holds a candidate answer of the kind asked for that the question
    does not already contain (a year for "when", a number for "how many", a name for "who").

    >>> answer_slot_filled("Who won the 2002 World Cup?", "In 1996 FIFA said they would host the 2002 World Cup.")
    True
    >>> answer_slot_filled("Who won the 2002 World Cup?", "They hosted the 2002 World Cup.")
    False
    """
    slot = answer_slot(question)
    if slot == "other":
        return True
    asked = {w.lower() for w in re.findall(r"[\w'’-]+", question)}
    pattern = {"date": _DATE, "number": _NUMBER, "name": _NAME}[slot]
    return any(m.group(0).lower() not in asked for m in pattern.finditer(evidence))


def parse_markers(text: str) -> list[int]:
    """The passage numbers cited in `text`, in order.

    >>> parse_markers("In 1965 [1][3]. Also [2, 4].")
    [1, 3, 2, 4]
    """
    return [int(n) for group in _MARKER.findall(text) for n in re.split(r"\s*[,;]\s*", group)]


def inert_markers(text: str) -> str:
    """Document text whose own "[7]"-style brackets get a zero-width space after "[", so they
    look the same but are never taken for (or rendered as) our citation markers.

    >>> inert_markers("built in 1954 [7].")
    'built in 1954 [\u200b7].'
    """
    return _MARKER.sub(lambda m: f"[\u200b{m.group(1)}]", text)


def strip_markers(text: str) -> str:
    return re.sub(r"\s*" + _MARKER.pattern, "", text).strip()


def choose(question: str, evidence: Sequence[Evidence]) -> list[Evidence]:
    """The sentences that answer: the best, plus one more that covers question words the
    best one lacks and scores nearly as well. Empty (abstain) when the evidence is weak,
    misses a name or number the question depends on, shares none of the question's other
    content words, or holds nothing of the kind the question asks for (see `answer_slot`)."""
    question_terms = terms(question)
    names = key_terms(question)
    focus = question_terms - names
    # The answer must share a word with the question beyond its names: "when was it renewed"
    # is answered by the sentence about renewing, not by the best match on the names alone.
    if focus:
        evidence = [e for e in evidence if any(_covered(t, terms(e.text)) for t in focus)]
    if not evidence or evidence[0].score < MIN_EVIDENCE_SCORE:
        return []
    chosen = [evidence[0]]
    missing = {t for t in question_terms if not _covered(t, terms(chosen[0].text))}
    best_score, best_gain = chosen[0].score - SECOND_SENTENCE_MARGIN, 0
    second = None
    for candidate in evidence[1:] if missing else ():
        if candidate.score < best_score:
            break
        gain = sum(_covered(t, terms(candidate.text)) for t in missing)
        if gain > best_gain:
            second, best_gain = candidate, gain
    if second is not None:
        chosen.append(second)
    # The best sentence must carry the question's names (its passage may hold some of them):
    # a second sentence adds content, it does not rescue a mismatched first one.
    best_terms = terms(chosen[0].text)
    context = best_terms | terms(chosen[0].passage.chunk.text)
    if not all(_covered(t, context if KEY_TERMS_IN_PASSAGE else best_terms) for t in names):
        return []
    chosen.sort(key=lambda e: e.start)
    if not answer_slot_filled(question, " ".join(e.text for e in chosen)):
        return []
    return chosen


def answer_sentences(text: str) -> list[str]:
    """The sentences of an answer, each with the markers that follow it.

    >>> answer_sentences("Signed in 1965. [1] Ratified later [2].")
    ['Signed in 1965. [1]', 'Ratified later [2].']
    """
    sentences = [text[a:b] for a, b in sentence_spans(text)]
    # A marker that opens a sentence ("1965. [1] Then…") belongs to the sentence before it.
    for i in range(1, len(sentences)):
        lead = re.match(r"^(?:\s*" + _MARKER.pattern + r")+", sentences[i])
        if lead:
            sentences[i - 1] += " " + lead.group(0).strip()
            sentences[i] = sentences[i][lead.end() :].strip()
    return [s for s in sentences if s]


def verify(
    text: str, passages: Sequence[Passage], question: str = "", quoted: bool = False
) -> tuple[str, list[Citation]]:
    """Keep the sentences of `text` that a shown passage supports, each with verified
    markers; returns (clean text, citations). Unsupported sentences are dropped.

    `quoted` answers (evidence mode) are verbatim passage sentences. Generated ones must also
    be claims: not a question, not a refusal or talk about "the passage", not a restatement of
    the question; and a fragment (under four content words, such as a list item "Tokyo") counts
    only when the sentence supporting it is also about the question.
    """
    question_terms = terms(question)
    focus = question_terms - key_terms(question)
    sentences = answer_sentences(text)
    kept: list[str] = []
    citations: list[Citation] = []
    seen: set[str] = set()
    for sentence in sentences:
        claim = strip_markers(sentence)
        claim_terms = terms(claim)
        if not claim_terms or claim in seen:
            continue
        if not quoted and (
            claim.endswith("?")
            or _ABSTAIN_HINTS.search(claim)
            or _META.search(claim)
            or (question_terms and all(_covered(t, question_terms) for t in claim_terms))
        ):
            continue
        seen.add(claim)
        about = focus if not quoted and len(claim_terms) < 4 else set()
        cited = [n for n in dict.fromkeys(parse_markers(sentence)) if 1 <= n <= len(passages)]
        candidates = cited or list(range(1, len(passages) + 1))
        supported = []
        for n in candidates:
            quote = _best_support(claim_terms, passages[n - 1], about)
            if quote is not None:
                supported.append((n, quote))
        if not supported:
            continue
        if not cited:  # an uncited but supported sentence gets its best passage
            supported = supported[:1]
        markers = "".join(f"[{n}]" for n, _ in supported)
        kept.append(f"{claim.rstrip()} {markers}")
        for n, (start, end, quote) in supported:
            chunk = passages[n - 1].chunk
            citations.append(Citation(n, chunk.chunk_id, quote, start, end, chunk.page))
    return " ".join(kept), _unique(citations)


def _best_support(claim_terms: set[str], passage: Passage, about: set[str] = frozenset()) -> tuple[int, int, str] | None:
    """The passage sentence holding most of the claim's content words (at least MIN_SUPPORT of
    them, and half of `about` when given), as (start, end, text) in document offsets."""
    chunk = passage.chunk
    best, best_share = None, 0.0
    for a, b in sentence_spans(chunk.text):
        sentence_terms = terms(chunk.text[a:b])
        share = overlap(claim_terms, sentence_terms)
        if share > best_share and (not about or overlap(about, sentence_terms) >= 0.5):
            best, best_share = (chunk.start + a, chunk.start + b, chunk.text[a:b]), share
    return best if best_share >= MIN_SUPPORT else None


class Answerer:
    """Answers a question from its retrieved passages; holds the models it needs."""

    def __init__(
        self, index: Index, embedder: Embedder, settings: Settings, generator: Generator | None = None
    ) -> None:
        self.index = index
        self.embedder = embedder
        self.settings = settings
        self.generator = generator
        self._rows = {c.chunk_id: row for row, c in enumerate(index.chunks)}

    # ------------------------------------------------------------ evidence

    def evidence(
        self, question: str, passages: Sequence[Passage], question_vector: np.ndarray | None = None
    ) -> list[Evidence]:
        """Every sentence of the shown passages, scored against the question, best first
        (`question_vector`: the question's embedding, when the caller already has it)."""
        if question_vector is None:
            question_vector = self.embedder.embed_query(question)
        query = question_vector[0]
        question_terms = terms(question)
        found: dict[tuple[int, int], Evidence] = {}
        for marker, passage in enumerate(passages, start=1):
            row = self._rows[passage.chunk.chunk_id]
            first, end = (int(x) for x in self.index.chunk_units[row])
            vectors = self.index.unit_vectors.reconstruct_n(first, end - first)
            cosines = vectors @ query
            for unit, cosine in zip(range(first, end), cosines):
                _, start, stop = (int(x) for x in self.index.units[unit])
                if (start, stop) in found:  # overlapping passages: keep the better-ranked one
                    continue
                text = self.index.unit_text(unit)
                found[(start, stop)] = Evidence(
                    marker, passage, start, stop, text, float(cosine), overlap(question_terms, terms(text))
                )
        return sorted(found.values(), key=lambda e: -e.score)

    # ------------------------------------------------------------ answering

    def stream(
        self,
        question: str,
        passages: Sequence[Passage],
        mode: str | None = None,
        cancel: threading.Event | None = None,
        question_vector: np.ndarray | None = None,
    ) -> Iterator[str | Answer]:
        """Yields text pieces as they are produced, then the verified `Answer` (last item)."""
        mode = mode or self.settings.answer_mode
        began = time.perf_counter()
        first_piece: float | None = None
        raw = ""
        if mode == "evidence":
            chosen = choose(question, self.evidence(question, passages, question_vector))
            raw = " ".join(f"{inert_markers(e.text)} [{e.marker}]" for e in chosen)
            if raw:
                first_piece = time.perf_counter()
                yield raw
            model = self.embedder.name
        elif mode == "generative":
            if self.generator is None:
                raise ValueError("generative mode needs a generator")
            texts = [inert_markers(p.chunk.text) for p in passages]
            for piece in self.generator.stream(messages(question, texts), self.settings.max_new_tokens, cancel):
                if first_piece is None:
                    first_piece = time.perf_counter()
                raw += piece
                yield piece
            model = self.generator.name
        else:
            raise ValueError(f"unknown answer mode {mode!r}: use 'evidence' or 'generative'")
        text, citations = verify(raw, passages, question, quoted=mode == "evidence") if raw else ("", [])
        if mode == "generative" and text and not all(_covered(t, _cited_terms(citations)) for t in key_terms(question)):
            text, citations = "", []  # the question names something no cited sentence has
        abstained = not citations
        if abstained:
            text = NOT_IN_DOCUMENTS
        total = time.perf_counter() - began
        yield Answer(
            question=question,
            text=text,
            citations=tuple(citations),
            passages=tuple(passages),
            abstained=abstained,
            mode=mode,
            model=model,
            raw_text=raw,
            timings={
                "first_token_ms": round(((first_piece or time.perf_counter()) - began) * 1000, 1),
                "total_ms": round(total * 1000, 1),
            },
        )


def _cited_terms(citations: Sequence[Citation]) -> set[str]:
    return set().union(*(terms(c.quote) for c in citations)) if citations else set()


def _unique(citations: list[Citation]) -> list[Citation]:
    seen, out = set(), []
    for c in citations:
        if (c.marker, c.start) not in seen:
            seen.add((c.marker, c.start))
            out.append(c)
    return out
