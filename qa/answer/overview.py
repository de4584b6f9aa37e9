"""A document's overview, extractive: its outline (the section paths, in order), the first
sentences of its opening paragraph (what it is about), and its most central sentences (nearest
the mean of its sentence vectors, near-copies skipped, shown in document order under their
section), each with its place. A sentence that leans on the one before it ("It", "This",
"However"…) is left out: alone it makes no sense. Nothing is generated, so nothing needs
verifying: every sentence is quoted from the document and cited to the passage that holds it.

`overview_request` tells when a question asks for one ("Summarize X", "Give an overview of X",
"What is X about?" when X names an indexed document); `overview_answer` makes the cited answer.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from qa.index.loaded import Index
from qa.text import heading_path
from qa.types import Answer, Chunk, Citation, Passage

KEY_SENTENCES = 5
LEAD_SENTENCES = 2  # of the opening paragraph
MIN_SENTENCE_CHARS = 60  # shorter units are mostly headings, list items, captions and fragments
NEAR_COPY = 0.9  # a candidate this close (cosine) to a sentence already chosen is skipped

_ASKS_FOR_OVERVIEW = re.compile(
    r"^\s*(?:please\s+|can you\s+|could you\s+)?"
    r"(?:summari[sz]e|sum up|outline|(?:give|show)(?: me)? (?:an? |the )?(?:overview|summary|outline) of|"
    r"(?:an? |the )?(?:overview|summary|outline) of|what(?:'s| is) in|what(?:'s| is| are)(?= .* about\s*\??\s*$))\s+"
    r"(?P<name>.+?)(?:\s+about)?\s*[?.!]*\s*$",
    re.IGNORECASE,
)
_LEANS_BACK = re.compile(r"^\W*(?:it|its|this|that|these|those|they|their|he|she|his|her|however|but|also|thus|"
                         r"therefore|furthermore|moreover|in addition|such|meanwhile|the latter|the former|"
                         r"as a result|then|there)\b", re.IGNORECASE)
_FILLER = re.compile(r"^(?:the|this|that|these|my|our)\s+|\s+(?:document|file|article|paper|pdf|report)s?$|^(?:document|file)\s+",
                     re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class KeySentence:
    chunk: Chunk  # the passage that holds it
    text: str
    start: int  # offsets in the document's text
    end: int


@dataclass(frozen=True, slots=True)
class Overview:
    doc_id: str
    title: str
    outline: tuple[str, ...]  # section paths ("A > B"), in document order; "" (the lead) left out
    sentences: tuple[KeySentence, ...]  # the central ones, in document order
    lead: tuple[KeySentence, ...] = ()  # the opening paragraph's first sentences


def document_overview(index: Index, doc_id: str, n: int = KEY_SENTENCES) -> Overview:
    """The outline and the `n` most central sentences of one indexed document."""
    first, end = index.rows_of(doc_id)
    chunks = index.chunks[first:end]
    outline = tuple(dict.fromkeys(c.section for c in chunks if c.section))
    units = range(index.sentences_of(chunks[0]).units.start, index.sentences_of(chunks[-1]).units.stop)
    vectors = index.sentence_vectors(units)
    texts = [index.sentence_text(u) for u in units]
    long = [i for i, t in enumerate(texts) if is_prose(t)]

    def key_sentence(i: int) -> KeySentence:
        row = next(index.chunks_of_unit(units.start + i))
        chunk = index.chunks[row]
        spans = index.sentences_of(chunk)
        start, _ = spans.spans[units.start + i - spans.units.start]
        text = texts[i].strip()
        start += len(texts[i]) - len(texts[i].lstrip())
        return KeySentence(chunk, text, start, start + len(text))

    lead = {i: key_sentence(i) for i in lead_sentences(texts, long)}
    lead = {i: s for i, s in lead.items() if s.chunk.section == next(iter(lead.values())).chunk.section}  # before a heading
    usable = [i for i in long if i not in lead and not _LEANS_BACK.match(texts[i])] or [
        i for i in range(len(texts)) if i not in lead] or list(range(len(texts)))
    centre = vectors[usable].mean(axis=0)
    centre /= max(float(np.linalg.norm(centre)), 1e-12)
    chosen: list[int] = []
    for i in sorted(usable, key=lambda i: -float(vectors[i] @ centre)):
        if all(float(vectors[i] @ vectors[j]) < NEAR_COPY for j in chosen):
            chosen.append(i)
        if len(chosen) == n:
            break
    sentences = [key_sentence(i) for i in sorted(chosen)]
    opening = list(lead.values())
    return Overview(doc_id, index.documents[doc_id].title, outline, tuple(sentences), tuple(opening))


def is_prose(text: str) -> bool:
    """Whether a unit reads as a sentence of running text: long enough, on one line (not a list
    or an infobox), ending as a sentence ends.

    >>> is_prose("Infobox\\n- Envoy: Ambassador Mizushima Koichi of the embassy in Seoul, Korea"), is_prose("A" * 70 + ".")
    (False, True)
    """
    text = text.strip()
    return len(text) >= MIN_SENTENCE_CHARS and "\n" not in text and text[-1] in ".!?\"”’)"


def lead_sentences(texts: Sequence[str], long: Sequence[int], n: int = LEAD_SENTENCES) -> list[int]:
    """The first `n` sentences of the opening paragraph: from the first long sentence (a title
    or heading before it is skipped), while they follow one another.

    >>> lead_sentences(["Title", "A first long sentence.", "A second one.", "Third."], [1, 2])
    [1, 2]
    """
    if not long:
        return []
    first = long[0]
    return [i for i in range(first, min(first + n, len(texts))) if i == first or i in long]


def overview_request(question: str, index: Index, chosen: Sequence[str] = ()) -> list[str]:
    """The ids of the documents a question asks an overview of; [] when it asks something else.

    "Summarize the Falcon report" names a document by its title or file name (without "the",
    "document", an extension); "Summarize the documents" (or "this document") means the documents
    chosen to search in, or the only one indexed.
    """
    match = _ASKS_FOR_OVERVIEW.match(question)
    if not match:
        return []
    name = match.group("name").strip(" \"'“”‘’")
    names = [name.casefold()]  # as written, then without each filler word: "the Big Report" names "Big Report" too
    while (shorter := _FILLER.sub("", name, count=1).strip()) != name:
        name = shorter
        names.append(name.casefold())
    if names[-1] in ("", "it", "them", "document", "documents", "file", "files", "everything", "all"):
        return list(chosen) or (list(index.documents) if len(index.documents) == 1 else [])
    for name in names:  # the name as fully written that matches
        found = []
        for d in index.documents.values():
            file_name = d.path.rsplit("/", 1)[-1].casefold()
            if name in (d.title.casefold(), file_name, file_name.rsplit(".", 1)[0], d.doc_id.casefold()):
                found.append(d.doc_id)
        if found:
            return found
    return []


def overview_answer(question: str, index: Index, doc_ids: Sequence[str]) -> Answer:
    """An evidence answer that is the documents' overviews: per document its title and opening
    sentences, then its central sentences under their sections, each quoted and cited to the
    passage that holds it."""
    passages: list[Passage] = []
    marker_of: dict[str, int] = {}
    citations: list[Citation] = []
    parts: list[str] = []
    def cited(s: KeySentence) -> str:
        if s.chunk.chunk_id not in marker_of:
            marker_of[s.chunk.chunk_id] = len(passages) + 1
            passages.append(Passage(s.chunk, 1.0, len(passages) + 1))
        marker = marker_of[s.chunk.chunk_id]
        citations.append(Citation(marker, s.chunk.chunk_id, s.text, s.start, s.end, s.chunk.page))
        return f"“{s.text}” [{marker}]"

    for doc_id in doc_ids:
        overview = document_overview(index, doc_id)
        by_section: dict[str, list[str]] = {"": [cited(s) for s in overview.lead]}  # "": the opening, before any heading
        for s in overview.sentences:
            by_section.setdefault(heading_path("", s.chunk.section), []).append(cited(s))
        parts += [f"{section or overview.title}: {' '.join(quotes)}".rstrip() for section, quotes in by_section.items()]
    text = "\n\n".join(parts)
    return Answer(question, text, tuple(citations), tuple(passages), abstained=False, mode="evidence", model="overview",
                  raw_text="", query=question)
