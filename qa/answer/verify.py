"""Verification of generated answers: each sentence must be supported by a shown passage.

Markers are parsed and mapped to the passages that were shown; markers pointing elsewhere are
removed; each answer sentence is checked against the sentences of the passages it cites
(content-word overlap, stemmed) and a citation stands only when a passage sentence supports it
(a sentence whose cited passages do not support it is cited to the shown passage that does);
the supporting sentence becomes the citation's quote, with its character offsets in the source
document. Sentences that no shown passage supports are dropped. Extractive answers from the
reader need none of this: their quote is the passage sentence itself.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from qa.sentences import sentence_spans
from qa.text import answer_sentences, covered, overlap, parse_markers, strip_markers, terms
from qa.types import Citation, Passage

_META = re.compile(r"\b(passages?|documents?|the answer is|the question)\b", re.IGNORECASE)
# "According to passage [2], …" / "The passages state that …": the claim is what follows.
_LEAD_IN = re.compile(
    r"^(?:according to (?:the )?(?:passages?|documents?|text)(?: ?\[\d+\])*,?\s+"
    r"|(?:the )?(?:passages?|documents?|text)(?: ?\[\d+\])* (?:states?|says?|mentions?|notes?|shows?|indicates?) that\s+)",
    re.IGNORECASE,
)
_ABSTAIN_HINTS = re.compile(
    r"(do(?:es)? not (?:say|contain|mention|provide|specify)|no (?:information|mention)|not (?:mentioned|stated|specified)|cannot (?:answer|find|determine))",
    re.IGNORECASE,
)


def verify(text: str, passages: Sequence[Passage], question: str = "", min_support: float = 0.75
           ) -> tuple[str, list[Citation]]:
    """Keep the sentences of `text` that a shown passage supports, each with verified
    markers; returns (clean text, citations). Unsupported sentences are dropped, and so are
    sentences that are no claims: a question, a refusal, talk about "the passage", or a
    restatement of the question. A passage sentence supports a claim when it holds at least
    `min_support` of its content words (`Settings.min_support`).
    """
    question_terms = terms(question)
    kept: list[str] = []
    citations: list[Citation] = []
    seen: set[str] = set()
    for sentence in answer_sentences(text):
        claim = without_lead_in(strip_markers(sentence))
        claim_terms = terms(claim)
        if not claim_terms or claim in seen:
            continue
        if (
            claim.endswith("?")
            or _ABSTAIN_HINTS.search(claim)
            or _META.search(claim)
            or (question_terms and all(covered(t, question_terms) for t in claim_terms))
        ):
            continue
        seen.add(claim)
        cited = [n for n in dict.fromkeys(parse_markers(sentence)) if 1 <= n <= len(passages)]
        supported = supporting(claim_terms, passages, cited, min_support)
        if cited and not supported:  # cited wrongly (small models slip a number): the passage that holds it
            cited, supported = [], supporting(claim_terms, passages, [], min_support)
        if not supported:
            continue
        if not cited:  # an uncited (or miscited) but supported sentence gets its best passage
            supported = supported[:1]
        markers = "".join(f"[{n}]" for n, _ in supported)
        kept.append(f"{claim.rstrip()} {markers}")
        for n, (start, end, quote) in supported:
            chunk = passages[n - 1].chunk
            citations.append(Citation(n, chunk.chunk_id, quote, start, end, chunk.page))
    return " ".join(kept), unique(citations)


def supporting(claim_terms, passages: Sequence[Passage], markers: Sequence[int],  # noqa: ANN001
               min_support: float) -> list:
    """(marker, (start, end, quote)) of the passages among `markers` (all shown, when none) with a
    sentence that supports the claim."""
    found = []
    for n in markers or range(1, len(passages) + 1):
        quote = best_support(claim_terms, passages[n - 1], min_support)
        if quote is not None:
            found.append((n, quote))
    return found


def without_lead_in(claim: str) -> str:
    """The claim without a lead-in that only names its source.

    >>> without_lead_in("According to passage [2], the treaty was signed in 1965.")
    'The treaty was signed in 1965.'
    >>> without_lead_in("The passage states that Dokdo is an islet.")
    'Dokdo is an islet.'
    """
    rest = _LEAD_IN.sub("", claim, count=1)
    return rest[:1].upper() + rest[1:] if rest != claim else claim


def best_support(claim_terms: set[str], passage: Passage, min_support: float) -> tuple[int, int, str] | None:
    """The passage sentence holding most of the claim's content words (at least `min_support` of
    them), as (start, end, text) in document offsets."""
    chunk = passage.chunk
    best, best_share = None, 0.0
    for a, b in sentence_spans(chunk.text):
        share = overlap(claim_terms, terms(chunk.text[a:b]))
        if share > best_share:
            best, best_share = (chunk.start + a, chunk.start + b, chunk.text[a:b]), share
    return best if best_share >= min_support else None


def unique(citations: list[Citation]) -> list[Citation]:
    seen, out = set(), []
    for c in citations:
        if (c.marker, c.start) not in seen:
            seen.add((c.marker, c.start))
            out.append(c)
    return out
