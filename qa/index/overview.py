"""A document's overview, extractive: its outline (the section paths, in order) and its most
central sentences (nearest the mean of its sentence vectors, near-copies skipped, shown in
document order), each with its place. Nothing is generated, so nothing needs verifying: every
sentence is quoted from the document and cited to the passage that holds it.

`overview_request` tells when a question asks for one ("Summarize X", "Give an overview of X",
"What is X about?" when X names an indexed document); `overview_answer` makes the cited answer.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from qa.index.store import Index
from qa.text import heading_path
from qa.types import Answer, Chunk, Citation, Passage

KEY_SENTENCES = 5
MIN_SENTENCE_CHARS = 40  # shorter units are mostly headings, list items and captions
NEAR_COPY = 0.9  # a candidate this close (cosine) to a sentence already chosen is skipped
MAX_OUTLINE = 12  # sections listed in an answer (the document view lists them all)

_ASKS_FOR_OVERVIEW = re.compile(
    r"^\s*(?:please\s+|can you\s+|could you\s+)?"
    r"(?:summari[sz]e|sum up|outline|(?:give|show)(?: me)? (?:an? |the )?(?:overview|summary|outline) of|"
    r"(?:an? |the )?(?:overview|summary|outline) of|what(?:'s| is) in|what(?:'s| is| are)(?= .* about\s*\??\s*$))\s+"
    r"(?P<name>.+?)(?:\s+about)?\s*[?.!]*\s*$",
    re.IGNORECASE,
)
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
    sentences: tuple[KeySentence, ...]  # in document order


def document_overview(index: Index, doc_id: str, n: int = KEY_SENTENCES) -> Overview:
    """The outline and the `n` most central sentences of one indexed document."""
    first, end = index.rows_of(doc_id)
    chunks = index.chunks[first:end]
    outline = tuple(dict.fromkeys(c.section for c in chunks if c.section))
    units = range(index.sentences_of(chunks[0]).units.start, index.sentences_of(chunks[-1]).units.stop)
    vectors = index.sentence_vectors(units)
    texts = [index.sentence_text(u) for u in units]
    usable = [i for i, t in enumerate(texts) if len(t.strip()) >= MIN_SENTENCE_CHARS] or list(range(len(texts)))
    centre = vectors[usable].mean(axis=0)
    centre /= max(float(np.linalg.norm(centre)), 1e-12)
    chosen: list[int] = []
    for i in sorted(usable, key=lambda i: -float(vectors[i] @ centre)):
        if all(float(vectors[i] @ vectors[j]) < NEAR_COPY for j in chosen):
            chosen.append(i)
        if len(chosen) == n:
            break
    sentences = []
    for i in sorted(chosen):
        row = next(index.chunks_of_unit(units.start + i))
        chunk = index.chunks[row]
        spans = index.sentences_of(chunk)
        start, _ = spans.spans[units.start + i - spans.units.start]
        text = texts[i].strip()
        start += len(texts[i]) - len(texts[i].lstrip())
        sentences.append(KeySentence(chunk, text, start, start + len(text)))
    return Overview(doc_id, index.documents[doc_id].title, outline, tuple(sentences))


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
    while (shorter := _FILLER.sub("", name).strip()) != name:
        name = shorter
    wanted = name.casefold()
    if wanted in ("", "it", "them", "document", "documents", "file", "files", "everything", "all"):
        return list(chosen) or (list(index.documents) if len(index.documents) == 1 else [])
    found = []
    for d in index.documents.values():
        file_name = d.path.rsplit("/", 1)[-1].casefold()
        if wanted in (d.title.casefold(), file_name, file_name.rsplit(".", 1)[0], d.doc_id.casefold()):
            found.append(d.doc_id)
    return found


def overview_answer(question: str, index: Index, doc_ids: Sequence[str]) -> Answer:
    """An evidence answer that is the documents' overviews: per document its sections, then its
    central sentences quoted, each cited to the passage that holds it."""
    passages: list[Passage] = []
    marker_of: dict[str, int] = {}
    citations: list[Citation] = []
    parts: list[str] = []
    for doc_id in doc_ids:
        overview = document_overview(index, doc_id)
        outline = ", ".join(heading_path("", path) for path in overview.outline[:MAX_OUTLINE])
        more = f" and {len(overview.outline) - MAX_OUTLINE} more" if len(overview.outline) > MAX_OUTLINE else ""
        parts.append(f"{overview.title}: sections {outline}{more}." if outline else f"{overview.title}:")
        quoted = []
        for s in overview.sentences:
            if s.chunk.chunk_id not in marker_of:
                marker_of[s.chunk.chunk_id] = len(passages) + 1
                passages.append(Passage(s.chunk, 1.0, len(passages) + 1))
            marker = marker_of[s.chunk.chunk_id]
            citations.append(Citation(marker, s.chunk.chunk_id, s.text, s.start, s.end, s.chunk.page))
            quoted.append(f"“{s.text}” [{marker}]")
        parts.append(" ".join(quoted))
    text = "\n\n".join(parts)
    return Answer(question, text, tuple(citations), tuple(passages), abstained=False, mode="evidence", model="overview",
                  raw_text="", query=question)
