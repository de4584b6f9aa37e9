"""The loaded index: its chunks and documents, searchable three ways (chunk vectors, sentence
vectors, BM25), whatever store it was loaded from (`qa.index.store`). Retrieval and answering use
only `Index`'s methods; `qa.index.build` writes it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from qa.config import Settings
from qa.errors import StaleIndexError
from qa.index.manifest import Manifest, corpus_changes, mismatch_reasons
from qa.text import BM25_STOPWORDS, place, word_tokens
from qa.types import Chunk

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class DocumentInfo:
    """One indexed document, as `documents.json` lists it (`chars`: its text's length; `notes`:
    what reading it found, `Document.notes`)."""

    doc_id: str
    title: str
    path: str
    sha256: str
    chars: int
    chunks: int
    notes: str = ""


@dataclass(frozen=True, slots=True)
class ChunkSentences:
    """The sentence units of one chunk: their ids and (start, end) offsets in the document."""

    units: range
    spans: list[tuple[int, int]]


@dataclass(frozen=True, slots=True)
class StoredDocument:
    """One document's part of an index, as a later build reuses it instead of embedding again."""

    info: DocumentInfo
    chunks: list[Chunk]
    chunk_units: np.ndarray  # (chunks, 2): [first, end) unit ids, counted from the document's first unit
    units: np.ndarray  # (units, 3): owner chunk (counted from the document's first chunk), start, end
    chunk_vectors: np.ndarray
    unit_vectors: np.ndarray


class VectorSearch(Protocol):
    """Row-numbered unit vectors, searched by inner product (`qa.index.vectors.Vectors`, or a Milvus collection)."""

    count: int
    dim: int

    def search(self, query: np.ndarray, k: int, rows: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]: ...

    def get(self, first: int, count: int) -> np.ndarray: ...


class Lexical(Protocol):
    """BM25 over the chunks (`Bm25Files`, or Milvus' own BM25)."""

    def search(self, query: str, n: int, rows: np.ndarray | None = None) -> list[tuple[int, float]]: ...


class Bm25Files:
    """A bm25s index saved in the index folder; tokens are stemmed words without stopwords."""

    def __init__(self, bm25: object, count: int) -> None:  # bm25s.BM25
        self._bm25, self._count = bm25, count

    def search(self, query: str, n: int, rows: np.ndarray | None = None) -> list[tuple[int, float]]:
        vocab = self._bm25.vocab_dict or {}
        tokens = [t for t in word_tokens(query, BM25_STOPWORDS) if t in vocab]
        if not tokens:
            return []
        mask = None
        if rows is not None:
            mask = np.zeros(self._count, np.float32)
            mask[rows] = 1.0
        found, scores = self._bm25.retrieve([tokens], k=min(n, self._count), show_progress=False, n_threads=1,
                                            weight_mask=mask)
        return [(int(r), float(s)) for r, s in zip(found[0], scores[0]) if s > 0]


@dataclass
class Index:
    """A loaded, validated index: chunks and their documents, searchable three ways."""

    manifest: Manifest
    chunks: list[Chunk]
    documents: dict[str, DocumentInfo]
    _vectors: VectorSearch  # row i = chunks[i]
    _unit_vectors: VectorSearch  # row u = sentence unit u
    _units: np.ndarray  # (n_units, 3) int64: first chunk row holding the unit, start, end (document offsets)
    _chunk_units: np.ndarray  # (n_chunks, 2) int64: [first, end) unit ids of each chunk
    _lexical: Lexical  # BM25 over the chunks' embedding texts
    out_of_date: str = ""  # what changed in the corpus folder since the build; "" when it matches
    generation: str = ""  # in a Milvus store, the build it holds (another process may publish a newer one)
    _row_of: dict[str, int] = field(default_factory=dict, repr=False)
    _rows_by_doc: dict[str, tuple[int, int]] = field(default_factory=dict, repr=False)

    @property
    def dim(self) -> int:
        return self._vectors.dim

    @property
    def vector_indexes(self) -> dict[str, VectorSearch]:
        """The chunk and sentence vector indexes, by name (benchmarks compare them with exact search)."""
        return {"chunks": self._vectors, "sentences": self._unit_vectors}

    @property
    def sentence_count(self) -> int:
        return len(self._units)

    def title(self, chunk: Chunk) -> str:
        return self.documents[chunk.doc_id].title

    def path(self, chunk: Chunk) -> str:
        """The file a chunk is from, relative to the corpus folder."""
        return self.documents[chunk.doc_id].path

    def place(self, chunk: Chunk, start: int | None = None) -> str:
        """Where in its file a chunk (or the quote at document offset `start`) is (`qa.text.place`)."""
        return place(self.path(chunk), chunk.section, chunk.page, chunk.text, (chunk.start if start is None else start) - chunk.start)

    def where(self, chunk: Chunk, start: int | None = None) -> str:
        """The title and place of a chunk, as the Sources show it: "Sales › sheet Exports 2024, row 4"."""
        return " › ".join(part for part in (self.title(chunk), self.place(chunk, start)) if part)

    def row_of(self, chunk: Chunk) -> int:
        if not self._row_of:
            self._row_of = {c.chunk_id: row for row, c in enumerate(self.chunks)}
        return self._row_of[chunk.chunk_id]

    def search_chunks(self, vector: np.ndarray, n: int, rows: np.ndarray | None = None) -> list[tuple[int, float]]:
        """(chunk row, cosine) of the n nearest chunk vectors (among `rows` when given), best first."""
        scores, found = self._vectors.search(vector, n, rows)
        return [(int(r), float(s)) for r, s in zip(found[0], scores[0]) if r >= 0]

    def search_sentences(self, vector: np.ndarray, n: int, units: np.ndarray | None = None) -> list[tuple[int, float]]:
        """(sentence unit, cosine) of the n nearest sentence vectors (among `units` when given), best first."""
        scores, found = self._unit_vectors.search(vector, n, units)
        return [(int(u), float(s)) for u, s in zip(found[0], scores[0]) if u >= 0]

    def rows_and_units(self, doc_ids: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """The chunk rows and sentence units of these documents (a search filter)."""
        rows, units = [], []
        for doc_id in doc_ids:
            first, end = self.rows_of(doc_id)
            rows.append(np.arange(first, end, dtype=np.int64))
            units.append(np.arange(int(self._chunk_units[first, 0]), int(self._chunk_units[end - 1, 1]), dtype=np.int64))
        empty = np.zeros(0, np.int64)
        return (np.concatenate(rows) if rows else empty), (np.concatenate(units) if units else empty)

    def bm25_search(self, query: str, n: int, rows: np.ndarray | None = None) -> list[tuple[int, float]]:
        """(chunk row, BM25 score) of the best n chunks (among `rows` when given) sharing a term with the
        query; equal scores by row, so every store ranks alike."""
        return sorted(self._lexical.search(query, n, rows), key=lambda hit: (-hit[1], hit[0]))

    def chunks_of_unit(self, unit: int) -> Iterator[int]:
        """Rows of the chunks that contain sentence unit `unit` (overlapping chunks are adjacent)."""
        row = int(self._units[unit, 0])
        while row < len(self.chunks) and self._chunk_units[row, 0] <= unit < self._chunk_units[row, 1]:
            yield row
            row += 1

    def sentences_of(self, chunk: Chunk) -> ChunkSentences:
        first, end = (int(x) for x in self._chunk_units[self.row_of(chunk)])
        return ChunkSentences(range(first, end), [(int(a), int(b)) for _, a, b in self._units[first:end].tolist()])

    def sentence_vectors(self, units: range) -> np.ndarray:
        return self._unit_vectors.get(units.start, len(units))

    def sentence_text(self, unit: int) -> str:
        """The text of sentence unit `unit`, cut from the first chunk that holds it."""
        row, start, end = (int(x) for x in self._units[unit])
        chunk = self.chunks[row]
        return chunk.text[start - chunk.start : end - chunk.start]

    def rows_of(self, doc_id: str) -> tuple[int, int]:
        """[first, end) chunk rows of a document (a document's chunks are stored together)."""
        if not self._rows_by_doc:
            ranges: dict[str, tuple[int, int]] = {}  # built whole, then published: threads share the index
            for row, c in enumerate(self.chunks):
                first, _ = ranges.get(c.doc_id, (row, row))
                ranges[c.doc_id] = (first, row + 1)
            self._rows_by_doc = ranges
        return self._rows_by_doc[doc_id]

    def stored_document(self, doc_id: str) -> StoredDocument:
        first, end = self.rows_of(doc_id)
        unit_first, unit_end = int(self._chunk_units[first, 0]), int(self._chunk_units[end - 1, 1])
        units = self._units[unit_first:unit_end].copy()
        units[:, 0] -= first
        return StoredDocument(
            self.documents[doc_id], self.chunks[first:end], self._chunk_units[first:end] - unit_first, units,
            self._vectors.get(first, end - first) if self.manifest.passage_vectors else np.zeros((0, self.dim), np.float32),
            self._unit_vectors.get(unit_first, unit_end - unit_first),
        )


def freshness(settings: Settings, manifest: Manifest, embed_model: str | None) -> str:
    """What changed in the corpus folder since the build ("" when nothing did); raises
    `StaleIndexError` when the index was built with another model or other settings."""
    mismatch = mismatch_reasons(settings, manifest, embed_model)
    if mismatch:
        raise StaleIndexError(f"index is stale: run `qa index` ({'; '.join(mismatch)})")
    changes = corpus_changes(settings, manifest)
    if not changes:
        return ""
    out_of_date = f"the corpus folder changed since the index was built ({'; '.join(changes)})"
    log.warning("%s: answers come from the index as built; run `qa index` to include the changes", out_of_date)
    return out_of_date
