"""One index build in progress (`IndexWriter`): chunks streamed to `chunks.jsonl`, chunk and
sentence vectors to spool files (embedded a batch at a time), BM25 token ids kept compact; then
the index files written from them. Memory grows with the vectors, not the text.
"""

from __future__ import annotations

import json
from array import array
from collections.abc import Callable, Iterator
from dataclasses import asdict
from pathlib import Path

import numpy as np

from qa.index.loaded import DocumentInfo, StoredDocument
from qa.index.vectors import VectorSpool
from qa.ingest.chunking import Split, embedding_text
from qa.models.embedders import Embedder
from qa.text import bm25_tokenizer, bm25s_module
from qa.types import Chunk, Document

EMBED_BATCH = 256
REPORT_EVERY = 64  # texts between progress reports while a document is embedded
Report = Callable[[str, float], None]  # told in words what is being done, and the fraction done


class _Batcher:
    """Collects chunk texts, with the sentences each one owns, and embeds them a batch at a time
    into the chunk and sentence spools (in row order): each sentence on its own (with its
    heading), each chunk only for `passages` (their vectors)."""

    def __init__(self, chunks: VectorSpool, units: VectorSpool, embedder: Embedder,
                 passages: bool = True, size: int = EMBED_BATCH) -> None:
        self.chunks, self.units, self.embedder, self.size, self.passages = chunks, units, embedder, size, passages
        self.pending: list[tuple[str, list[str]]] = []

    def add(self, text: str, unit_texts: list[str]) -> None:
        """A chunk's embedding text and its own sentences' embedding texts."""
        self.pending.append((text, unit_texts))
        if len(self.pending) >= self.size:
            self.flush()

    def flush(self) -> None:
        if not self.pending:
            return
        texts = [text for text, _ in self.pending]
        unit_texts = [u for _, units in self.pending for u in units]
        vectors = self.embedder.embed(texts) if self.passages else None
        units = self.embedder.embed(unit_texts) if unit_texts else []
        if vectors is not None:
            self.chunks.add(vectors)
        if len(units):
            self.units.add(np.asarray(units, dtype=np.float32))
        self.pending.clear()


class _TokenIds:
    """Per-chunk BM25 token ids kept as compact int32 arrays; iterating gives lists, as bm25s expects."""

    def __init__(self) -> None:
        self.rows: list[array] = []

    def append(self, ids: list[int]) -> None:
        self.rows.append(array("i", ids))

    def __len__(self) -> int:
        return len(self.rows)

    def __iter__(self) -> Iterator[list[int]]:
        return (row.tolist() for row in self.rows)


class IndexWriter:
    """One build in progress: the chunk store, chunk and sentence vectors, BM25 token ids."""

    def __init__(self, folder: Path, embedder: Embedder, ann_threshold: int, report: Report | None = None,
                 passage_vectors: bool = True) -> None:
        self.folder, self.dim, self.ann_threshold, self.report = folder, embedder.dim, ann_threshold, report
        self.vectors = VectorSpool(folder / "vectors.spool", self.dim)
        self.unit_vectors = VectorSpool(folder / "units.spool", self.dim)
        self.batcher = _Batcher(self.vectors, self.unit_vectors, embedder, passage_vectors)
        self.store = (folder / "chunks.jsonl").open("w", encoding="utf-8")
        self.documents: list[DocumentInfo] = []
        self.tokenizer = bm25_tokenizer()
        self.token_ids = _TokenIds()
        self.units = array("q")  # flat (first chunk row holding it, start, end) per sentence unit
        self.chunk_units = array("q")  # flat [first, end) unit ids per chunk
        self.vector_types: dict[str, str] = {}
        self.files = (0, 1)  # (files done before this one, files in all): for the fraction reported

    @property
    def chunk_count(self) -> int:
        return len(self.chunk_units) // 2

    @property
    def unit_count(self) -> int:
        return len(self.units) // 3

    def _store(self, title: str, chunks: list) -> list[str]:
        """Writes chunks to the store and their BM25 tokens; returns their embedding texts."""
        texts = [embedding_text(title, chunk.section, chunk.text) for chunk in chunks]
        for chunk in chunks:
            self.store.write(json.dumps(asdict(chunk), ensure_ascii=False) + "\n")
        for ids in self.tokenizer.streaming_tokenize(texts):
            self.token_ids.append(ids)
        return texts

    def add(self, doc: Document, split: Split) -> None:
        unit_base, chunk_base = self.unit_count, self.chunk_count
        owner = [-1] * len(split.units)
        for offset, (first, end) in enumerate(split.unit_ranges):
            for u in range(first, end):
                if owner[u] < 0:
                    owner[u] = offset
        for u, (start, end) in enumerate(split.units):
            self.units.extend((chunk_base + owner[u], start, end))
        owned = 0
        for offset, (text, chunk, (first, end)) in enumerate(zip(self._store(doc.title, split.chunks), split.chunks,
                                                                split.unit_ranges)):
            self._tick(doc.path, offset, len(split.chunks))
            self.chunk_units.extend((unit_base + first, unit_base + end))
            mine = [u for u in range(first, end) if owner[u] == offset]
            assert mine == list(range(owned, owned + len(mine))), "sentences are owned in order"
            owned += len(mine)
            self.batcher.add(text, [embedding_text(doc.title, chunk.section, doc.text[a:b])
                                    for a, b in (split.units[u] for u in mine)])
        self.documents.append(DocumentInfo(doc.doc_id, doc.title, doc.path, doc.sha256, len(doc.text), len(split.chunks),
                                           doc.notes))

    def _tick(self, path: str, done: int, total: int) -> None:
        if self.report is not None and done % REPORT_EVERY == 0:
            before, files = self.files
            self.report(f"embedding {path}: {done}/{total} passages", (before + done / total) / files)

    def add_stored(self, stored: StoredDocument) -> None:
        """A document's chunks and vectors from the previous index, instead of embedding them."""
        chunk_base, unit_base = self.chunk_count, self.unit_count
        self.batcher.flush()  # vectors must be added in row order
        self._store(stored.info.title, stored.chunks)
        self.chunk_units.extend((stored.chunk_units + unit_base).ravel().tolist())
        self.vectors.add(stored.chunk_vectors)
        for owner, start, stop in stored.units.tolist():
            self.units.extend((owner + chunk_base, start, stop))
        self.unit_vectors.add(stored.unit_vectors)
        self.documents.append(stored.info)

    def flush(self) -> None:
        """Embeds what is pending and closes the chunk store: the build is complete in the folder."""
        self.batcher.flush()
        self.store.close()

    def finish(self, keep_vectors: Path | None = None) -> None:
        """The index files: FAISS from the vector spools, the sentence tables, BM25, the documents."""
        for spool, name in ((self.vectors, "vectors.faiss"), (self.unit_vectors, "units.faiss")):
            kept = keep_vectors / spool.path.name if keep_vectors else None
            vectors = spool.build(self.ann_threshold, kept)
            self.vector_types[name] = vectors.kind
            vectors.save(self.folder / name)
            del vectors  # one FAISS copy in memory at a time
        np.save(self.folder / "units.npy", self.unit_table())
        np.save(self.folder / "chunk_units.npy", self.chunk_unit_table())
        bm25s = bm25s_module()
        bm25 = bm25s.BM25()
        bm25.index(bm25s.tokenization.Tokenized(ids=self.token_ids, vocab=self.tokenizer.get_vocab_dict()),
                   show_progress=False)
        bm25.save(str(self.folder / "bm25"), show_progress=False)
        write_json(self.folder / "documents.json", [asdict(d) for d in self.documents])

    def unit_table(self) -> np.ndarray:
        """(units, 3) int64: each sentence unit's first chunk row, start, end (document offsets)."""
        return np.frombuffer(self.units, dtype=np.int64).reshape(-1, 3)

    def chunk_unit_table(self) -> np.ndarray:
        """(chunks, 2) int64: each chunk's [first, end) sentence unit ids."""
        return np.frombuffer(self.chunk_units, dtype=np.int64).reshape(-1, 2)

    def written_chunks(self) -> Iterator[Chunk]:
        """The chunks in row order, read back from the chunk store (after `flush`)."""
        with (self.folder / "chunks.jsonl").open(encoding="utf-8") as store:
            for line in store:
                yield Chunk(**json.loads(line))

    def close(self) -> None:
        self.store.close()
        self.vectors.close()
        self.unit_vectors.close()


def write_json(path: Path, value: object) -> None:
    path.write_text(json.dumps(value, ensure_ascii=False, indent=1), encoding="utf-8")
