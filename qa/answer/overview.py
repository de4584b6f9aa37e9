"""A document's overview, extractive: its outline (the section paths, in order), the first
sentences of its opening paragraph (what it is about), and key sentences from each of its
sections — the one most central within the section (LexRank over the embedder's sentence
vectors) and to the whole document, less its likeness to those already chosen — shown in
document order under their section, each with its place. A sentence that leans on the one
before it ("It", "However", "The issue…"), a label's text ("Figure 2: …") or a slide's speaker
notes is left out: alone it makes no sense. Nothing is generated, so nothing needs verifying:
every sentence is quoted from the document and cited to the passage that holds it.

`overview_request` tells when a question asks for one ("Summarize X", "Give an overview of X",
"What is X about?" when X names an indexed document); `overview_answer` makes the cited answer.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from qa.index.loaded import ChunkSentences, Index
from qa.text import heading_path
from qa.types import Answer, Chunk, Citation, Passage

MAX_KEY_SENTENCES = 10  # beside the opening: a long article gets about this many
MIN_KEY_SENTENCES = 3
KEY_SENTENCES_PER_ROOT = 0.8  # key sentences ≈ this × √(the document's prose sentences)
LEAD_SENTENCES = 2  # of the opening paragraph
MIN_SENTENCE_CHARS = 60  # shorter units are mostly headings, list items, captions and fragments
LONG_SENTENCE_WORDS = 50  # a longer sentence is heavy to read in an overview: it ranks lower
NEAR_COPY = 0.9  # a candidate this close (cosine) to a sentence already chosen is skipped
DAMPING = 0.85  # LexRank's random walk
WHOLE = 1.0  # weight of a sentence's likeness to the whole document, beside its centrality in its section
REDUNDANCY = 0.5  # weight of its likeness to the sentences already chosen, against it

_ASKS_FOR_OVERVIEW = re.compile(
    r"^\s*(?:please\s+|can you\s+|could you\s+)?"
    r"(?:summari[sz]e|sum up|outline|(?:give|show)(?: me)? (?:an? |the )?(?:overview|summary|outline) of|"
    r"(?:an? |the )?(?:overview|summary|outline) of|what(?:'s| is) in|what(?:'s| is| are)(?= .* about\s*\??\s*$))\s+"
    r"(?P<name>.+?)(?:\s+about)?\s*[?.!]*\s*$",
    re.IGNORECASE,
)
_LEANS_BACK = re.compile(r"^\W*(?:it|its|this|that|these|those|they|their|he|she|his|her|however|but|also|thus|"
                         r"therefore|furthermore|moreover|in addition|such|meanwhile|the latter|the former|"
                         r"as a result|then|there|by contrast|in contrast|on the other hand|nevertheless|nonetheless|instead|still|yet|"
                         r"similarly|likewise|finally|later|the (?:issue|issues|problem|matter|situation|move|decision|incident|"
                         r"event|statement|deal|plan|proposal|dispute|controversy|remarks?|comments?|same|above|"
                         r"following|findings?|results?|latter|former|event|events|tone|trend|agreement|meeting|visit|talks|change|changes)\b)\b",
                         re.IGNORECASE)
_POINTS_BACK = re.compile(r"\b(?:this|that|these|those) (?:time|issues?|events?|move|decision|incident|matter|problem|agreement|"
                          r"dispute|tone)\b|\bthe (?:event|tone|move|incident|matter|same|aforementioned|above)\b|"
                          r"\bthe issue\b(?! of)", re.IGNORECASE)
_LABEL = re.compile(r"^\W*(?:notes?|speaker notes|figure|fig|table|chart|image|photo|source|caption|slide|finding|"
                    r"step|item|\w+ \d+)\s*\d*\s*[:.]\s", re.IGNORECASE)  # "Notes: …", "Figure 2. …", "Finding 1: …"
_FILLER = re.compile(r"^(?:the|this|that|these|my|our)\s+|\s+(?:document|file|article|paper|pdf|report)s?$|^(?:document|file)\s+",
                     re.IGNORECASE)
_DASHES = re.compile(r"[\u2010-\u2015\u2212\uFE58\uFE63\uFF0D-]+")
_QUOTES = re.compile(r"[\"'“”‘’«»`]")


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
    path: str = ""  # the document's file, relative to the corpus folder


def document_overview(index: Index, doc_id: str, n: int = 0) -> Overview:
    """The outline, the opening and key sentences of one indexed document: about `n` of them
    (0: `key_sentence_budget` of its length), one or two from each of its main sections."""
    first, end = index.rows_of(doc_id)
    chunks = index.chunks[first:end]
    outline = tuple(dict.fromkeys(c.section for c in chunks if c.section))
    units = range(index.sentences_of(chunks[0]).units.start, index.sentences_of(chunks[-1]).units.stop)
    vectors = index.sentence_vectors(units)
    texts = [index.sentence_text(u) for u in units]
    owners = [index.chunks[next(index.chunks_of_unit(u))] for u in units]
    long = [i for i, t in enumerate(texts) if is_prose(t)]

    def key_sentence(i: int) -> KeySentence:
        spans = index.sentences_of(owners[i])
        start, _ = spans.spans[units.start + i - spans.units.start]
        text = texts[i].strip()
        start += len(texts[i]) - len(texts[i].lstrip())
        return KeySentence(owners[i], text, start, start + len(text))

    long = [i for i in long if not is_label_or_note(texts[i], owners[i], index.sentences_of(owners[i]), units.start + i)]
    lead = {i: key_sentence(i) for i in lead_sentences(texts, long)}
    lead = {i: s for i, s in lead.items() if s.chunk.section == next(iter(lead.values())).chunk.section}  # before a heading
    usable = [i for i in long if i not in lead and not points_back(texts[i])]
    usable = usable or [i for i in range(len(texts)) if i not in lead] or list(range(len(texts)))
    chosen = choose_key_sentences(vectors, usable, [owners[i].section for i in usable], n or key_sentence_budget(len(long)),
                                  [len(texts[i].split()) for i in usable])
    sentences = [key_sentence(i) for i in sorted(chosen)]
    info = index.documents[doc_id]
    return Overview(doc_id, info.title, outline, tuple(sentences), tuple(lead.values()), info.path)


def key_sentence_budget(prose_sentences: int) -> int:
    """How many key sentences a document of this many prose sentences gets.

    >>> key_sentence_budget(4), key_sentence_budget(60), key_sentence_budget(400)
    (3, 6, 10)
    """
    return max(MIN_KEY_SENTENCES, min(MAX_KEY_SENTENCES, round(KEY_SENTENCES_PER_ROOT * prose_sentences ** 0.5)))


def points_back(text: str) -> bool:
    """Whether a sentence leans on the one before it ("It", "However", "The issue…", "… this time …").

    >>> points_back("However, the talks failed."), points_back("The talks of 1965 failed this time."), points_back("Talks failed.")
    (True, True, False)
    """
    return bool(_LEANS_BACK.match(text) or _POINTS_BACK.search(text))


def is_label_or_note(text: str, chunk: Chunk, spans: ChunkSentences, unit: int) -> bool:
    """Whether a sentence is a label's text ("Figure 2: …", "Finding 1: …") or part of a slide's
    speaker notes (a paragraph that begins "Notes:"): not what a document says to its reader."""
    if _LABEL.match(text):
        return True
    start = spans.spans[unit - spans.units.start][0] - chunk.start
    paragraph = chunk.text[chunk.text.rfind("\n", 0, max(start, 0)) + 1:]
    return bool(re.match(r"(?:speaker )?notes?:", paragraph, re.IGNORECASE))


def lexrank(vectors: np.ndarray) -> np.ndarray:
    """Continuous LexRank (Erkan & Radev, 2004): how central each sentence is among these, the
    stationary walk over their positive cosine similarities; 1 on average.

    >>> np.round(lexrank(np.array([[1.0, 0.0], [0.8, 0.6], [0.6, 0.8]])), 2).tolist()
    [0.9, 1.11, 0.99]
    """
    count = len(vectors)
    similar = np.clip(vectors @ vectors.T, 0.0, None)
    np.fill_diagonal(similar, 0.0)
    totals = similar.sum(axis=1, keepdims=True)
    walk = np.where(totals > 0, similar / np.where(totals > 0, totals, 1.0), 1.0 / count)
    rank = np.full(count, 1.0 / count)
    for _ in range(100):
        rank = (1 - DAMPING) / count + DAMPING * rank @ walk
    return rank * count


def sentence_groups(usable: Sequence[int], sections: Sequence[str], budget: int) -> list[list[int]]:
    """Where key sentences are drawn from, in document order: the document's sections (its
    opening left to the lead), the largest of each top-level section first when there are more
    sections than the budget; without sections, `budget` stretches of equal length.

    >>> sentence_groups(range(6), ["", "A", "A > x", "A > x", "B", "B"], 2), sentence_groups(range(4), [""] * 4, 2)
    ([[2, 3], [4, 5]], [[0, 1], [2, 3]])
    """
    by_section: dict[str, list[int]] = {}
    for i, section in zip(usable, sections, strict=True):
        by_section.setdefault(section, []).append(i)
    if len(by_section) - ("" in by_section) < 2:
        return [part.tolist() for part in np.array_split(np.array(usable), min(budget, len(usable))) if len(part)]
    by_section.pop("", None)
    if len(by_section) > budget:
        largest = sorted(by_section, key=lambda s: -len(by_section[s]))
        roots = list(dict.fromkeys(s.split(" > ")[0] for s in largest))
        firsts = [next(s for s in largest if s.split(" > ")[0] == root) for root in roots]
        kept = set((firsts + [s for s in largest if s not in firsts])[:budget])
        by_section = {s: members for s, members in by_section.items() if s in kept}
    return list(by_section.values())


def choose_key_sentences(vectors: np.ndarray, usable: Sequence[int], sections: Sequence[str], budget: int,
                         words: Sequence[int]) -> list[int]:
    """One sentence from each group (`sentence_groups`), two from the largest while the budget
    lasts: the one most central within its group (LexRank) and to the whole document, less its
    likeness to those already chosen; near-copies never."""
    groups = sentence_groups(usable, sections, budget)
    position = {i: k for k, i in enumerate(usable)}
    whole = vectors[list(usable)] @ _unit(vectors[list(usable)].mean(axis=0))
    whole = (whole - whole.min()) / max(float(np.ptp(whole)), 1e-9)
    slots = [1] * len(groups)
    for g in sorted(range(len(groups)), key=lambda g: -len(groups[g]))[:max(0, budget - len(groups))]:
        slots[g] += len(groups[g]) >= 2 * MIN_KEY_SENTENCES
    chosen: list[int] = []
    for group, wanted in zip(groups, slots, strict=True):
        central = lexrank(vectors[group])
        score = {i: central[k] / central.max() + WHOLE * whole[position[i]] - 0.5 * (words[position[i]] > LONG_SENTENCE_WORDS)
                 for k, i in enumerate(group)}
        for _ in range(wanted):
            likeness = {i: max((float(vectors[i] @ vectors[j]) for j in chosen), default=0.0) for i in score}
            open_ = [i for i in score if i not in chosen and likeness[i] < NEAR_COPY]
            if not open_:
                break
            chosen.append(max(open_, key=lambda i: score[i] - REDUNDANCY * likeness[i]))
    return chosen


def _unit(vector: np.ndarray) -> np.ndarray:
    return vector / max(float(np.linalg.norm(vector)), 1e-12)


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
    name = name_key(match.group("name"))
    names = [name]  # as written, then without each filler word: "the Big Report" names "Big Report" too
    while (shorter := _FILLER.sub("", name, count=1).strip()) != name:
        name = shorter
        names.append(name)
    if names[-1] in ("", "it", "them", "document", "documents", "file", "files", "everything", "all"):
        return list(chosen) or (list(index.documents) if len(index.documents) == 1 else [])
    for name in names:  # the name as fully written that matches
        found = []
        for d in index.documents.values():
            file_name = d.path.rsplit("/", 1)[-1]
            keys = {name_key(k) for k in (d.title, file_name, file_name.rsplit(".", 1)[0], d.doc_id)}
            if name in keys or name in {k.removeprefix("the ") for k in keys}:  # a title's "The" may be left out
                found.append(d.doc_id)
        if found:
            return found
    return []


def name_key(name: str) -> str:
    """A document's name as a person may type it: case, quotes, dashes (en dash, hyphen, minus…)
    and spacing ignored.

    >>> name_key(' “Japan–South  Korea Relations” '), name_key("Japan - South Korea relations")
    ('japan-south korea relations', 'japan-south korea relations')
    """
    name = " ".join(_DASHES.sub("-", _QUOTES.sub("", name.casefold())).split())
    return name.replace(" - ", "-").replace("- ", "-").replace(" -", "-")


def overview_answer(question: str, index: Index, doc_ids: Sequence[str]) -> Answer:
    """An evidence answer that is the documents' overviews: per document its title and opening
    sentences, then its key sentences under their sections, each quoted and cited to the
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
            by_section.setdefault(heading_path("", s.chunk.section) or "Key sentences", []).append(cited(s))
        parts += [f"{section or overview.title}: {' '.join(quotes)}".rstrip() for section, quotes in by_section.items()]
    text = "\n\n".join(parts)
    return Answer(question, text, tuple(citations), tuple(passages), abstained=False, mode="evidence", model="overview",
                  raw_text="", query=question)
