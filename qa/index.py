"""Build, save, load and validate the index folder (`index/` by default).

The folder holds `vectors.faiss` (unit vectors, inner product = cosine), `chunks.jsonl` (the
chunk store, one JSON record per FAISS row), `documents.json`, `bm25/` (a bm25s index) and
`manifest.json`: embedding model and dimension, chunking settings, each source file's sha256,
a sha256 of every index file, build time and package version. The manifest is written last.

A build happens in a temporary folder beside the target and is swapped in by rename, so an
interrupted build leaves the previous index intact. Loading refuses, with a message saying
to run `qa index`, an index that is missing, corrupt (checksums), built with another model or
other chunking settings, or stale (a corpus file changed, was added or was removed).
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import json
import logging
import os
import shutil
import time
from array import array
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from qa import __version__
from qa.chunking import Split, embedding_text, split_document
from qa.config import Settings
from qa.corpus import UnreadableFile, file_sha256, find_files, read_document
from qa.errors import (
    CorruptIndexError,
    EmptyCorpusError,
    IndexBusyError,
    IndexWriteError,
    MissingIndexError,
    QAError,
    StaleIndexError,
)
from qa.models import Embedder
from qa.types import Chunk, Document

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
CHUNKER_VERSION = 2  # bump when chunking.py or corpus.py change what they produce
EMBED_BATCH = 256
REPORT_EVERY = 64  # texts between progress reports while a document is embedded
HNSW_M = 32  # graph degree; recall@10 0.986 on 115k real chunk vectors, 8-bit (`python -m qa.bench_scale`)
HNSW_EF_CONSTRUCTION = 80
HNSW_EF_SEARCH = 128  # raised to the number of results asked for when that is larger
SQ_TRAINING_SAMPLE = 65_536  # vectors sampled to learn the 8-bit quantiser's per-dimension range
BM25_STOPWORDS = "en"
BM25_STEMMER = "english"


@dataclass(frozen=True, slots=True)
class DocumentInfo:
    doc_id: str
    title: str
    path: str
    sha256: str
    chars: int
    chunks: int


@dataclass(frozen=True, slots=True)
class BuildSummary:
    documents: int
    chunks: int
    seconds: float
    skipped: tuple[str, ...] = ()
    new: int = 0
    changed: int = 0
    removed: int = 0
    unchanged: int = 0

    def line(self) -> str:
        skipped = f", {len(self.skipped)} skipped" if self.skipped else ""
        return f"indexed {self.documents} documents, {self.chunks} chunks in {self.seconds:.1f} s{skipped}"

    def changes(self) -> str:
        return f"{self.new} new, {self.changed} changed, {self.removed} removed, {self.unchanged} unchanged"


@dataclass
class Index:
    """A loaded, validated index: FAISS vectors, BM25, chunks and their documents."""

    path: Path
    manifest: dict
    vectors: object  # faiss.Index over chunk vectors, row i = chunks[i]
    unit_vectors: object  # faiss.Index over sentence-unit vectors
    units: np.ndarray  # (n_units, 3) int64: first chunk row holding the unit, start, end (document offsets)
    chunk_units: np.ndarray  # (n_chunks, 2) int64: [first, end) unit ids of each chunk
    bm25: object  # bm25s.BM25
    chunks: list[Chunk]
    documents: dict[str, DocumentInfo]
    out_of_date: str = ""  # what changed in the corpus folder since the build; "" when it matches
    _chunk_by_id: dict[str, Chunk] = field(default_factory=dict, repr=False)
    _rows_by_doc: dict[str, tuple[int, int]] = field(default_factory=dict, repr=False)

    def chunk(self, chunk_id: str) -> Chunk:
        if not self._chunk_by_id:
            self._chunk_by_id = {c.chunk_id: c for c in self.chunks}
        return self._chunk_by_id[chunk_id]

    def title(self, chunk: Chunk) -> str:
        return self.documents[chunk.doc_id].title

    def rows_of(self, doc_id: str) -> tuple[int, int]:
        """[first, end) chunk rows of a document (a document's chunks are stored together)."""
        if not self._rows_by_doc:
            for row, c in enumerate(self.chunks):
                first, _ = self._rows_by_doc.get(c.doc_id, (row, row))
                self._rows_by_doc[c.doc_id] = (first, row + 1)
        return self._rows_by_doc[doc_id]

    def unit_text(self, unit: int) -> str:
        """The text of sentence unit `unit`, cut from the first chunk that holds it."""
        row, start, end = (int(x) for x in self.units[unit])
        chunk = self.chunks[row]
        return chunk.text[start - chunk.start : end - chunk.start]

    def chunks_of_unit(self, unit: int) -> Iterator[int]:
        """Rows of the chunks that contain sentence unit `unit` (overlapping chunks are adjacent)."""
        row = int(self.units[unit, 0])
        while row < len(self.chunks) and self.chunk_units[row, 0] <= unit < self.chunk_units[row, 1]:
            yield row
            row += 1


class _VectorSpool:
    """Vectors appended in batches to a raw float32 file; the FAISS index is built from it at the
    end, so a build holds one copy of the vectors (the index's), not a growing list as well."""

    def __init__(self, path: Path, dim: int) -> None:
        self.path, self.dim, self.count = path, dim, 0
        self.file = path.open("wb")

    def add(self, vectors: np.ndarray) -> None:
        vectors = np.ascontiguousarray(vectors, dtype=np.float32).reshape(-1, self.dim)
        vectors.tofile(self.file)
        self.count += len(vectors)

    def _sample(self, size: int) -> np.ndarray:
        """About `size` evenly spaced rows, read one by one (mapping the file would count it all as resident)."""
        rows = range(0, self.count, max(1, self.count // size))
        sample = np.empty((len(rows), self.dim), dtype=np.float32)
        with self.path.open("rb") as f:
            for i, row in enumerate(rows):
                f.seek(row * self.dim * 4)
                sample[i] = np.fromfile(f, dtype=np.float32, count=self.dim)
        return sample

    def to_faiss(self, ann_threshold: int, batch: int = 16_384) -> object:
        """Exact `IndexFlatIP` up to `ann_threshold` vectors; above, HNSW over 8-bit scalar-quantised
        vectors (a quarter of the memory of float32, trained on a sample). Deletes the file."""
        import faiss

        self.file.close()
        if self.count > ann_threshold:
            index = faiss.IndexHNSWSQ(self.dim, faiss.ScalarQuantizer.QT_8bit, HNSW_M, faiss.METRIC_INNER_PRODUCT)
            index.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
            index.train(self._sample(SQ_TRAINING_SAMPLE))
        else:
            index = faiss.IndexFlatIP(self.dim)
        with self.path.open("rb") as f:
            for _ in range(0, self.count, batch):
                index.add(np.fromfile(f, dtype=np.float32, count=batch * self.dim).reshape(-1, self.dim))
        self.path.unlink()
        return index

    def close(self) -> None:
        self.file.close()


class _Batcher:
    """Collects texts and embeds them a batch at a time into a `_VectorSpool`."""

    def __init__(self, spool: _VectorSpool, embedder: Embedder, size: int = EMBED_BATCH) -> None:
        self.spool, self.embedder, self.size = spool, embedder, size
        self.pending: list[str] = []

    def add(self, text: str) -> None:
        self.pending.append(text)
        if len(self.pending) >= self.size:
            self.flush()

    def flush(self) -> None:
        if self.pending:
            self.spool.add(self.embedder.embed(self.pending))
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


def search_vectors(vectors: object, query: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(scores, ids) of the k nearest rows, from an exact or an HNSW index (exploring at least k)."""
    import faiss

    k = min(k, vectors.ntotal)
    if isinstance(vectors, faiss.IndexHNSW):
        return vectors.search(query, k, params=faiss.SearchParametersHNSW(efSearch=max(HNSW_EF_SEARCH, k)))
    return vectors.search(query, k)


def _bm25s():  # noqa: ANN202 - the bm25s module, imported lazily
    import bm25s

    # bm25s sets its own logger to DEBUG at import; keep its chatter out of our stderr.
    logging.getLogger("bm25s").setLevel(logging.WARNING)
    return bm25s


@functools.lru_cache(maxsize=1)
def _stemmer():  # noqa: ANN202 - a Stemmer.Stemmer; built once, it is called for every sentence
    import Stemmer

    return Stemmer.Stemmer(BM25_STEMMER)


def bm25_tokenizer():  # noqa: ANN201 - a bm25s Tokenizer whose vocabulary grows as it reads
    return _bm25s().tokenization.Tokenizer(stopwords=BM25_STOPWORDS, stemmer=_stemmer())


def bm25_query_tokens(query: str, stopwords: str = BM25_STOPWORDS) -> list[str]:
    """Lower-cased, stemmed word tokens of `query` without stopwords, as BM25 sees them."""
    tokens = _bm25s().tokenize([query], stopwords=stopwords, stemmer=_stemmer(), return_ids=False, show_progress=False)
    return tokens[0]


# ---------------------------------------------------------------- build


class _IndexWriter:
    """One build in progress: the chunk store, chunk and sentence vectors, BM25 token ids.

    Memory grows with the vectors (spooled to disk, then one FAISS copy) and compact per-chunk
    arrays, not with the text: chunks are written out as they come and documents read one by one.
    """

    def __init__(self, folder: Path, embedder: Embedder, ann_threshold: int) -> None:
        self.folder = folder
        self.dim = embedder.dim
        self.ann_threshold = ann_threshold
        self.vectors = _VectorSpool(folder / "vectors.spool", self.dim)
        self.unit_vectors = _VectorSpool(folder / "units.spool", self.dim)
        self.chunk_batcher = _Batcher(self.vectors, embedder)
        self.unit_batcher = _Batcher(self.unit_vectors, embedder)
        self.store = (folder / "chunks.jsonl").open("w", encoding="utf-8")
        self.documents: list[DocumentInfo] = []
        self.tokenizer = bm25_tokenizer()
        self.token_ids = _TokenIds()
        self.units = array("q")  # flat (first chunk row holding it, start, end) per sentence unit
        self.chunk_units = array("q")  # flat [first, end) unit ids per chunk
        self.index_types: dict[str, str] = {}
        self.report: Callable[[str, float], None] | None = None  # told how far the build is
        self.files = (0, 1)  # (files done before this one, files in all): for the fraction reported

    @property
    def chunk_count(self) -> int:
        return len(self.chunk_units) // 2

    @property
    def unit_count(self) -> int:
        return len(self.units) // 3

    def _add_bm25(self, texts: list[str]) -> None:
        for ids in self.tokenizer.streaming_tokenize(texts):
            self.token_ids.append(ids)

    def add(self, doc: Document, split: Split) -> None:
        unit_base, chunk_base = self.unit_count, self.chunk_count
        owner = [-1] * len(split.units)
        texts = []
        total = len(split.chunks) + len(split.units)
        for offset, (chunk, (first, end)) in enumerate(zip(split.chunks, split.unit_ranges)):
            self.store.write(json.dumps(asdict(chunk), ensure_ascii=False) + "\n")
            text = embedding_text(doc.title, chunk.section, chunk.text)
            texts.append(text)
            self._tick(doc.path, offset, total)
            self.chunk_batcher.add(text)
            self.chunk_units.extend((unit_base + first, unit_base + end))
            for u in range(first, end):
                if owner[u] < 0:
                    owner[u] = chunk_base + offset
        self._add_bm25(texts)
        for u, (start, end) in enumerate(split.units):
            self.units.extend((owner[u], start, end))
            section = split.chunks[owner[u] - chunk_base].section
            self._tick(doc.path, len(split.chunks) + u, total)
            self.unit_batcher.add(embedding_text(doc.title, section, doc.text[start:end]))
        self.documents.append(DocumentInfo(doc.doc_id, doc.title, doc.path, doc.sha256, len(doc.text), len(split.chunks)))

    def _tick(self, path: str, done: int, total: int) -> None:
        if self.report is not None and done % REPORT_EVERY == 0:
            before, files = self.files
            self.report(f"embedding {path}: {done}/{total} passages and sentences", (before + done / total) / files)

    def add_existing(self, info: DocumentInfo, previous: Index) -> None:
        """Copy a document's chunks and vectors from the previous index instead of embedding."""
        first, end = previous.rows_of(info.doc_id)
        unit_first, unit_end = int(previous.chunk_units[first, 0]), int(previous.chunk_units[end - 1, 1])
        chunk_base, unit_base = self.chunk_count, self.unit_count
        self.chunk_batcher.flush()  # vectors must be added in row order
        self.unit_batcher.flush()
        texts = []
        for row in range(first, end):
            chunk = previous.chunks[row]
            self.store.write(json.dumps(asdict(chunk), ensure_ascii=False) + "\n")
            texts.append(embedding_text(info.title, chunk.section, chunk.text))
            a, b = (int(x) for x in previous.chunk_units[row])
            self.chunk_units.extend((a - unit_first + unit_base, b - unit_first + unit_base))
        self._add_bm25(texts)
        self.vectors.add(previous.vectors.reconstruct_n(first, end - first))
        for owner, start, stop in previous.units[unit_first:unit_end].tolist():
            self.units.extend((owner - first + chunk_base, start, stop))
        self.unit_vectors.add(previous.unit_vectors.reconstruct_n(unit_first, unit_end - unit_first))
        self.documents.append(info)

    def finish(self) -> None:
        import faiss

        self.chunk_batcher.flush()
        self.unit_batcher.flush()
        self.store.close()
        for spool, name in ((self.vectors, "vectors.faiss"), (self.unit_vectors, "units.faiss")):
            index = spool.to_faiss(self.ann_threshold)
            self.index_types[name] = type(index).__name__
            faiss.write_index(index, str(self.folder / name))
            del index  # one FAISS copy in memory at a time
        np.save(self.folder / "units.npy", np.frombuffer(self.units, dtype=np.int64).reshape(-1, 3))
        np.save(self.folder / "chunk_units.npy", np.frombuffer(self.chunk_units, dtype=np.int64).reshape(-1, 2))
        _write_bm25(self.token_ids, self.tokenizer.get_vocab_dict(), self.folder / "bm25")
        _write_json(self.folder / "documents.json", [asdict(d) for d in self.documents])

    def close(self) -> None:
        self.store.close()
        self.vectors.close()
        self.unit_vectors.close()


def build_index(settings: Settings, embedder: Embedder, progress: bool = True,
                report: Callable[[str, float], None] | None = None) -> BuildSummary:
    """Index every document under `settings.corpus_dir` into `settings.index_dir`, atomically;
    `report` (if given) is told in words what is being done ("embedding a.pdf: 64/599 …") and
    the fraction of the build done.

    Unreadable, empty, heading-only and duplicate files are skipped with a warning naming them.
    Any failure (a full disk, a read-only folder, an interrupted process) leaves the previous
    index as it was.
    """
    from tqdm import tqdm

    began = time.perf_counter()
    target = settings.index_dir
    files = find_files(settings.corpus_dir)
    if not files:
        raise EmptyCorpusError(
            f"no documents in {settings.corpus_dir}/: add .txt or .md files there, then run `qa index`"
        )
    with _build_lock(target):
        _recover(target)
        for leftover in target.parent.glob(f".{target.name}.tmp-*"):  # from builds that were killed
            shutil.rmtree(leftover, ignore_errors=True)
        tmp = target.parent / f".{target.name}.tmp-{os.getpid()}"
        writer = None
        try:
            tmp.mkdir(parents=True)
            writer = _IndexWriter(tmp, embedder, settings.ann_threshold)
            writer.report = report
            previous = _reusable_index(settings, embedder)
            before = _indexed_before(target)  # path -> sha256, to count what changed in the corpus
            reusable = {d.path: d for d in previous.documents.values()} if previous else {}
            first_path_of: dict[str, str] = {}
            new = changed = unchanged = 0
            sources: dict[str, dict] = {}  # rel -> sha256, size, mtime_ns, indexed: the manifest's record
            with tqdm(total=len(files), unit="file", desc="indexing", disable=not progress or None, leave=False) as bar:
                for number, path in enumerate(files, start=1):
                    bar.update(1)
                    rel = path.relative_to(settings.corpus_dir).as_posix()
                    writer.files = (number - 1, len(files))
                    if report is not None:
                        report(f"reading {rel} (file {number} of {len(files)})", (number - 1) / len(files))
                    try:  # stat before reading, so an edit made during the build shows as a change later
                        stat = path.stat()
                    except OSError as error:
                        log.warning("skipping %s: %s", path, error)
                        continue
                    entry = sources[rel] = {
                        "sha256": "", "size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "indexed": False
                    }
                    if stat.st_size > settings.max_file_mb * 2**20:
                        log.warning("skipping %s: %.1f MB, over the %d MB limit per file (QA_MAX_FILE_MB)",
                                    rel, stat.st_size / 2**20, settings.max_file_mb)
                        entry["sha256"] = _sha256_if_readable(path)
                        continue
                    old = reusable.get(rel)
                    if old is not None and old.sha256 not in first_path_of and _same_file(path, old, previous):
                        writer.add_existing(old, previous)
                        entry.update(sha256=old.sha256, indexed=True)
                        first_path_of[old.sha256] = rel
                        unchanged += 1
                        continue
                    try:
                        doc = read_document(path, settings.corpus_dir)
                    except (UnreadableFile, OSError) as error:
                        log.warning("skipping %s: %s", path, error)
                        entry["sha256"] = _sha256_if_readable(path)
                        continue
                    entry["sha256"] = doc.sha256
                    if doc.sha256 in first_path_of:
                        log.warning("skipping %s: same content as %s", doc.path, first_path_of[doc.sha256])
                        continue
                    split = split_document(doc, embedder.count_tokens, settings.chunk_tokens, settings.chunk_overlap_tokens)
                    if not split.chunks:
                        log.warning("skipping %s: no text under its headings", doc.path)
                        continue
                    first_path_of[doc.sha256] = doc.path
                    writer.add(doc, split)
                    entry["indexed"] = True
                    if rel not in before:
                        new += 1
                    elif before[rel] != doc.sha256:
                        changed += 1
                    else:
                        unchanged += 1  # same content, embedded again (other model or settings)
                    bar.set_postfix(chunks=writer.chunk_count)
            if not writer.documents:
                raise EmptyCorpusError(
                    f"no readable documents in {settings.corpus_dir}/ (every file was skipped; see the warnings above)"
                )
            if report is not None:
                report("writing the index", 1.0)
            writer.finish()
            manifest = {
                "format": FORMAT_VERSION,
                "qa_version": __version__,
                "built_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                "embedding": {"model": embedder.name, "dim": writer.dim},
                "chunking": _chunking_settings(settings),
                "bm25": {"stopwords": BM25_STOPWORDS, "stemmer": BM25_STEMMER},
                "vectors": {
                    "count": writer.chunk_count,
                    "units": writer.unit_count,
                    "types": writer.index_types,
                },
                "sources": sources,
                "files": {rel: file_sha256(tmp / rel) for rel in _index_files(tmp)},
            }
            for rel in manifest["files"]:
                _fsync(tmp / rel)
            _write_json(tmp / "manifest.json", manifest)
            _fsync(tmp / "manifest.json")
            _swap_in(tmp, target)
        except OSError as error:
            raise IndexWriteError(
                f"could not write the index in {target.parent}/ ({error.strerror or error}); "
                "the previous index is untouched"
            ) from error
        finally:
            if writer is not None:
                with contextlib.suppress(OSError):  # a full disk can fail the flush too: keep the first error
                    writer.close()
            shutil.rmtree(tmp, ignore_errors=True)
    skipped = tuple(rel for rel, entry in sources.items() if not entry["indexed"])
    removed = len(set(before) - {rel for rel, entry in sources.items() if entry["indexed"]})
    return BuildSummary(
        len(writer.documents), writer.chunk_count, time.perf_counter() - began, skipped,
        new, changed, removed, unchanged,
    )


def _reusable_index(settings: Settings, embedder: Embedder) -> Index | None:
    """The current index when its vectors can be reused: same embedding model, dimension,
    chunking and BM25 settings, and not corrupt. Otherwise None (everything is embedded)."""
    try:
        previous = load_index(settings, embedder.name, require_fresh=False)
    except QAError:
        return None
    manifest = previous.manifest
    compatible = (
        manifest["embedding"] == {"model": embedder.name, "dim": embedder.dim}
        and manifest.get("chunking") == _chunking_settings(settings)
        and manifest.get("bm25") == {"stopwords": BM25_STOPWORDS, "stemmer": BM25_STEMMER}
    )
    return previous if compatible else None


def _indexed_before(index_dir: Path) -> dict[str, str]:
    """path -> sha256 of the documents in the index being replaced (empty if unreadable)."""
    try:
        sources = read_manifest(index_dir)["sources"]
    except QAError:
        return {}
    return {path: entry["sha256"] for path, entry in sources.items() if entry.get("indexed")}


def _same_file(path: Path, info: DocumentInfo, previous: Index) -> bool:
    entry = previous.manifest["sources"].get(info.path)
    return entry is not None and not _changed(path, entry)


def _chunking_settings(settings: Settings) -> dict:
    return {"version": CHUNKER_VERSION, "tokens": settings.chunk_tokens, "overlap": settings.chunk_overlap_tokens}


def _sha256_if_readable(path: Path) -> str:
    try:
        return file_sha256(path)
    except OSError:
        return ""  # unreadable: judged by size and mtime only


def _write_bm25(token_ids: _TokenIds, vocab: dict[str, int], folder: Path) -> None:
    bm25s = _bm25s()
    retriever = bm25s.BM25()
    retriever.index(bm25s.tokenization.Tokenized(ids=token_ids, vocab=vocab), show_progress=False)
    retriever.save(str(folder), show_progress=False)


def _write_json(path: Path, value: object) -> None:
    path.write_text(json.dumps(value, ensure_ascii=False, indent=1), encoding="utf-8")


def _index_files(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file() and p.name != "manifest.json")


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _swap_in(tmp: Path, target: Path) -> None:
    """Replace `target` by `tmp`: two renames; `_recover` mends a crash between them."""
    old = _sibling(target, "old")
    shutil.rmtree(old, ignore_errors=True)
    if target.exists():
        os.replace(target, old)
    os.replace(tmp, target)
    _fsync(target.parent)
    shutil.rmtree(old, ignore_errors=True)


def _sibling(target: Path, kind: str) -> Path:
    """The hidden folder or file beside the index that a build uses: ".index.old", ".index.lock"."""
    return target.parent / f".{target.name}.{kind}"


def _settle(target: Path, wait: float = 5.0) -> None:
    """Before reading: wait out a swap in progress (between its two renames, microseconds), or
    mend one that crashed there. A reader never moves a folder while a build holds the lock."""
    deadline = time.monotonic() + wait
    while not target.exists() and (_sibling(target, "old") / "manifest.json").exists():
        if not _build_running(target):
            _recover(target)
            return
        if time.monotonic() > deadline:
            return
        time.sleep(0.02)


def _build_running(target: Path) -> bool:
    lock_path = _sibling(target, "lock")
    try:
        with lock_path.open("r") as lock:
            fcntl.flock(lock, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    except OSError:
        return False
    return False


def _recover(target: Path) -> None:
    old = _sibling(target, "old")
    if not target.exists() and (old / "manifest.json").exists():
        log.warning("restoring the previous index from %s (a build was interrupted)", old)
        os.replace(old, target)


@contextlib.contextmanager
def _build_lock(target: Path) -> Iterator[None]:
    target.parent.mkdir(parents=True, exist_ok=True)
    lock_path = _sibling(target, "lock")
    with lock_path.open("w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise IndexBusyError(f"another `qa index` is already building {target}/: wait for it to finish") from None
        yield


# ---------------------------------------------------------------- load and validate


def read_manifest(index_dir: Path) -> dict:
    _settle(index_dir)
    manifest_path = index_dir / "manifest.json"
    if not manifest_path.is_file():
        raise MissingIndexError(f"no index in {index_dir}/: run `qa index` to build it")
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        if isinstance(manifest, dict) and manifest.get("format") != FORMAT_VERSION:
            raise StaleIndexError(
                f"index in {index_dir}/ has format {manifest.get('format')}, this version reads "
                f"{FORMAT_VERSION}: run `qa index`"
            )
        problem = manifest_problem(manifest)
    except (OSError, ValueError) as error:
        problem = str(error)
    if problem:
        raise CorruptIndexError(f"index is corrupt ({manifest_path}: {problem}): run `qa index`")
    return manifest


# What a manifest must hold, key by key: a type, or a dict of what its entries must hold.
_MANIFEST_SHAPE = {
    "built_at": str,
    "embedding": {"model": str, "dim": int},
    "chunking": dict,
    "bm25": dict,
    "vectors": {"count": int, "units": int, "types": dict},
    "sources": dict,
    "files": dict,
}
_SOURCE_SHAPE = {"sha256": str, "size": int, "mtime_ns": int, "indexed": bool}


def manifest_problem(manifest: object) -> str:
    """What is wrong with a manifest's shape, or "" when every key the code reads is there with
    the right type.

    >>> manifest_problem({"built_at": 1})
    'built_at is int, not str'
    """
    def check(value: object, shape: object, where: str) -> str:
        if isinstance(shape, dict):
            if not isinstance(value, dict):
                return f"{where or 'the manifest'} is not an object"
            for key, inner in shape.items():
                if key not in value:
                    return f"{where + '.' if where else ''}{key} is missing"
                problem = check(value[key], inner, f"{where + '.' if where else ''}{key}")
                if problem:
                    return problem
            return ""
        if not isinstance(value, shape) or (shape is int and isinstance(value, bool)):  # type: ignore[arg-type]
            return f"{where} is {type(value).__name__}, not {shape.__name__}"  # type: ignore[union-attr]
        return ""

    problem = check(manifest, _MANIFEST_SHAPE, "")
    if problem:
        return problem
    for rel, entry in manifest["sources"].items():  # type: ignore[index]
        problem = check(entry, _SOURCE_SHAPE, f"sources[{rel!r}]")
        if problem:
            return problem
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in manifest["files"].items()):  # type: ignore[index]
        return "files must map names to checksums"
    return ""


def check_files(index_dir: Path, manifest: dict) -> None:
    for rel, expected in manifest["files"].items():
        path = index_dir / rel
        if not path.is_file() or file_sha256(path) != expected:
            raise CorruptIndexError(f"index is corrupt ({path} is missing or damaged): run `qa index`")


def stale_reasons(settings: Settings, manifest: dict, embed_model: str | None) -> list[str]:
    """Why the index no longer matches the corpus and settings; empty when it is fresh."""
    return mismatch_reasons(settings, manifest, embed_model) + corpus_changes(settings, manifest)


def mismatch_reasons(settings: Settings, manifest: dict, embed_model: str | None) -> list[str]:
    """Why the index cannot serve these settings (another embedding model, chunking or BM25)."""
    reasons = []
    if embed_model is not None and manifest["embedding"]["model"] != embed_model:
        reasons.append(f"built with embedding model {manifest['embedding']['model']!r}, now {embed_model!r}")
    if manifest.get("chunking") != _chunking_settings(settings):
        reasons.append("built with other chunking settings")
    if manifest.get("bm25") != {"stopwords": BM25_STOPWORDS, "stemmer": BM25_STEMMER}:
        reasons.append("built with other BM25 settings")
    return reasons


def corpus_changes(settings: Settings, manifest: dict) -> list[str]:
    """Files added, changed or removed in the corpus folder since the index was built."""
    reasons = []
    recorded: dict[str, dict] = manifest["sources"]
    current = {p.relative_to(settings.corpus_dir).as_posix(): p for p in find_files(settings.corpus_dir)}
    added = sorted(set(current) - set(recorded))
    removed = sorted(set(recorded) - set(current))
    changed = sorted(rel for rel in set(current) & set(recorded) if _changed(current[rel], recorded[rel]))
    for label, names in (("added", added), ("changed", changed), ("removed", removed)):
        if names:
            shown = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
            reasons.append(f"{len(names)} {label} ({shown})")
    return reasons


def _changed(path: Path, entry: dict) -> bool:
    try:
        stat = path.stat()
    except OSError:
        return True  # gone or unreadable since it was listed
    if stat.st_size == entry["size"] and stat.st_mtime_ns == entry["mtime_ns"]:
        return False
    return file_sha256(path) != entry["sha256"]


def check_fresh(settings: Settings, manifest: dict, embed_model: str | None) -> None:
    reasons = stale_reasons(settings, manifest, embed_model)
    if reasons:
        raise StaleIndexError(f"index is stale: run `qa index` ({'; '.join(reasons)})")


def load_index(settings: Settings, embed_model: str | None = None, require_fresh: bool = True) -> Index:
    """Load and validate the index; raises a `QAError` subclass that says what to do. With
    `require_fresh`, an index built with other settings is refused; one whose corpus folder
    changed since is loaded with `out_of_date` saying what changed (answers still work)."""
    import faiss

    bm25s = _bm25s()
    index_dir = settings.index_dir
    manifest = read_manifest(index_dir)
    check_files(index_dir, manifest)
    out_of_date = ""
    if require_fresh:
        mismatch = mismatch_reasons(settings, manifest, embed_model)
        if mismatch:
            raise StaleIndexError(f"index is stale: run `qa index` ({'; '.join(mismatch)})")
        changes = corpus_changes(settings, manifest)
        if changes:
            out_of_date = f"the corpus folder changed since the index was built ({'; '.join(changes)})"
            log.warning("%s: answers come from the index as built; run `qa index` to include the changes",
                        out_of_date)
    try:
        vectors = faiss.read_index(str(index_dir / "vectors.faiss"))
        unit_vectors = faiss.read_index(str(index_dir / "units.faiss"))
        units = np.load(index_dir / "units.npy", allow_pickle=False)
        chunk_units = np.load(index_dir / "chunk_units.npy", allow_pickle=False)
        bm25 = bm25s.BM25.load(str(index_dir / "bm25"), show_progress=False)
        with (index_dir / "chunks.jsonl").open(encoding="utf-8") as f:
            chunks = [Chunk(**json.loads(line)) for line in f]
        documents = {
            d["doc_id"]: DocumentInfo(**d)
            for d in json.loads((index_dir / "documents.json").read_text(encoding="utf-8"))
        }
    except (RuntimeError, ValueError, TypeError, KeyError, OSError) as error:
        raise CorruptIndexError(f"index is corrupt ({error}): run `qa index`") from None
    dim = manifest["embedding"]["dim"]
    if not (
        vectors.ntotal == len(chunks) == len(chunk_units)
        and unit_vectors.ntotal == len(units)
        and vectors.d == unit_vectors.d == dim
    ):
        raise CorruptIndexError("index is corrupt (vectors and chunks disagree): run `qa index`")
    return Index(index_dir, manifest, vectors, unit_vectors, units, chunk_units, bm25, chunks, documents,
                 out_of_date=out_of_date)


def index_state(settings: Settings, embed_model: str | None) -> tuple[str, str]:
    """("fresh" | "stale" | "missing" | "corrupt", a one-line explanation) without loading vectors."""
    try:
        manifest = read_manifest(settings.index_dir)
        check_files(settings.index_dir, manifest)
        check_fresh(settings, manifest, embed_model)
    except MissingIndexError as error:
        return "missing", str(error)
    except CorruptIndexError as error:
        return "corrupt", str(error)
    except StaleIndexError as error:
        return "stale", str(error)
    return "fresh", f"index built {manifest['built_at']}: {manifest['vectors']['count']} chunks"
