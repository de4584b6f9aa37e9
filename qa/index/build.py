"""Build the index folder from the corpus folder, atomically and incrementally.

Each corpus file gets one step: skipped (too big, unreadable, empty, a copy of another),
reused (unchanged since the last build with the same fingerprint: its chunks and vectors are
copied, nothing is embedded) or read, chunked and embedded. `IndexWriter` streams chunks to
disk and vectors to spool files, so memory grows with the vectors, not the text. The build
happens in a temporary folder beside the target and is swapped in (`qa.index.swap`), so an
interrupted or failed build leaves the previous index intact.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import shutil
import time
from array import array
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from qa.ingest.chunking import Split, embedding_text, split_document
from qa.config import Settings
from qa.ingest.corpus import SUFFIXES, UnreadableFile, file_sha256, find_files, read_document, remove_leftovers
from qa.errors import EmptyCorpusError, IndexWriteError, QAError
from qa.index.store import DocumentInfo, Index, StoredDocument, index_manifest, load_index
from qa.index.manifest import Manifest, SourceRecord, file_changed, fingerprint
from qa.models.embedders import Embedder
from qa.index.swap import build_lock, fsync, recover, sibling, swap_in
from qa.text import bm25_tokenizer, bm25s_module
from qa.types import Document
from qa.index.vectors import VectorSpool

log = logging.getLogger(__name__)

EMBED_BATCH = 256
REPORT_EVERY = 64  # texts between progress reports while a document is embedded
Report = Callable[[str, float], None]  # told in words what is being done, and the fraction done


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
    note: str = ""  # what else was done (a removal says what became of the file)

    def line(self) -> str:
        skipped = f", {len(self.skipped)} skipped" if self.skipped else ""
        return f"indexed {self.documents} documents, {self.chunks} chunks in {self.seconds:.1f} s{skipped}"

    def changes(self) -> str:
        return f"{self.new} new, {self.changed} changed, {self.removed} removed, {self.unchanged} unchanged"


class _Batcher:
    """Collects chunk texts, with the sentences each one owns, and embeds them a batch at a time
    into the chunk and sentence spools (in row order). A sentence's vector is pooled from its
    chunk's tokens when `pooled` and the embedder can (`embed_spans`); otherwise, or when its
    tokens were cut off, the sentence is embedded on its own."""

    def __init__(self, chunks: VectorSpool, units: VectorSpool, embedder: Embedder, pooled: bool,
                 size: int = EMBED_BATCH) -> None:
        self.chunks, self.units, self.embedder, self.size = chunks, units, embedder, size
        self.pooled = pooled and hasattr(embedder, "embed_spans")
        self.pending: list[tuple[str, list[tuple[int, int]], list[str]]] = []

    def add(self, text: str, spans: list[tuple[int, int]], unit_texts: list[str]) -> None:
        """A chunk's embedding text, its own sentences' spans in that text, and their texts."""
        self.pending.append((text, spans, unit_texts))
        if len(self.pending) >= self.size:
            self.flush()

    def flush(self) -> None:
        if not self.pending:
            return
        texts = [text for text, _, _ in self.pending]
        unit_texts = [u for _, _, units in self.pending for u in units]
        if self.pooled:
            vectors, parts = self.embedder.embed_spans(texts, [spans for _, spans, _ in self.pending])
            units = [v for chunk in parts for v in chunk]
            missing = [i for i, v in enumerate(units) if v is None]
            for i, v in zip(missing, self.embedder.embed([unit_texts[i] for i in missing])):
                units[i] = v
        else:
            vectors = self.embedder.embed(texts)
            units = self.embedder.embed(unit_texts) if unit_texts else []
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
                 pooled_sentences: bool = False) -> None:
        self.folder, self.dim, self.ann_threshold, self.report = folder, embedder.dim, ann_threshold, report
        self.vectors = VectorSpool(folder / "vectors.spool", self.dim)
        self.unit_vectors = VectorSpool(folder / "units.spool", self.dim)
        self.batcher = _Batcher(self.vectors, self.unit_vectors, embedder, pooled_sentences)
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
            heading = len(text) - len(chunk.text)  # the embedding text is the heading path, then the chunk
            mine = [u for u in range(first, end) if owner[u] == offset]
            assert mine == list(range(owned, owned + len(mine))), "sentences are owned in order"
            owned += len(mine)
            spans = [(heading + split.units[u][0] - chunk.start, heading + split.units[u][1] - chunk.start) for u in mine]
            self.batcher.add(text, spans, [embedding_text(doc.title, chunk.section, doc.text[a:b])
                                           for a, b in (split.units[u] for u in mine)])
        self.documents.append(DocumentInfo(doc.doc_id, doc.title, doc.path, doc.sha256, len(doc.text), len(split.chunks)))

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
        np.save(self.folder / "units.npy", np.frombuffer(self.units, dtype=np.int64).reshape(-1, 3))
        np.save(self.folder / "chunk_units.npy", np.frombuffer(self.chunk_units, dtype=np.int64).reshape(-1, 2))
        bm25s = bm25s_module()
        bm25 = bm25s.BM25()
        bm25.index(bm25s.tokenization.Tokenized(ids=self.token_ids, vocab=self.tokenizer.get_vocab_dict()),
                   show_progress=False)
        bm25.save(str(self.folder / "bm25"), show_progress=False)
        _write_json(self.folder / "documents.json", [asdict(d) for d in self.documents])

    def close(self) -> None:
        self.store.close()
        self.vectors.close()
        self.unit_vectors.close()


@dataclass(frozen=True, slots=True)
class FileStep:
    """What the build does with one corpus file: "reuse" (unchanged: copy it from the previous
    index), "read" (read, chunk and embed it) or "skip" (with the reason, logged)."""

    rel: str
    path: Path
    action: str
    record: SourceRecord  # as the build saw the file (stat before reading, so an edit made meanwhile shows later)
    reason: str = ""


def plan_file(rel: str, path: Path, stat: os.stat_result, max_bytes: int,
              previous: Manifest | None) -> FileStep:
    """The step for one file, from its stat and the previous index's record of it.

    >>> big = os.stat_result((0, 0, 0, 0, 0, 0, 30 * 2**20, 0, 0, 0))
    >>> plan_file("a.pdf", Path("a.pdf"), big, 20 * 2**20, None).reason
    '30.0 MB, over the 20 MB limit per file (QA_MAX_FILE_MB)'
    >>> plan_file("a.pdf", Path("a.pdf"), big, 40 * 2**20, None).action
    'read'
    """
    record = SourceRecord("", stat.st_size, stat.st_mtime_ns, False)
    if stat.st_size > max_bytes:
        reason = f"{stat.st_size / 2**20:.1f} MB, over the {max_bytes // 2**20} MB limit per file (QA_MAX_FILE_MB)"
        return FileStep(rel, path, "skip", record, reason)
    old = previous.sources.get(rel) if previous is not None else None
    if old is not None and old.indexed and not file_changed(path, old):
        return FileStep(rel, path, "reuse", SourceRecord(old.sha256, stat.st_size, stat.st_mtime_ns, True))
    return FileStep(rel, path, "read", record)


class _Build:
    """The per-file work of one build: what was added, skipped and counted."""

    def __init__(self, settings: Settings, embedder: Embedder, writer: IndexWriter, previous: Index | None,
                 before: dict[str, str]) -> None:
        self.settings, self.embedder, self.writer, self.previous, self.before = settings, embedder, writer, previous, before
        self.reusable = {d.path: d for d in previous.documents.values()} if previous else {}
        self.first_path_of: dict[str, str] = {}  # sha256 -> the first file with that content
        self.sources: dict[str, SourceRecord] = {}
        self.counts = {"new": 0, "changed": 0, "unchanged": 0}

    def plan(self, rel: str, path: Path) -> FileStep | None:
        """The step for one file (see `plan_file`), or None (named in a warning) when it cannot be stat'ed."""
        try:
            stat = path.stat()
        except OSError as error:
            log.warning("skipping %s: %s", path, error)
            return None
        return plan_file(rel, path, stat, self.settings.max_file_mb * 2**20,
                         self.previous.manifest if self.previous else None)

    def add(self, step: FileStep) -> None:
        old = self.reusable.get(step.rel)
        if step.action == "reuse" and old is not None and old.sha256 not in self.first_path_of:
            self.writer.add_stored(self.previous.stored_document(old.doc_id))
            self._count(step.rel, step.record, old.sha256)
        elif step.action == "skip":
            log.warning("skipping %s: %s", step.rel, step.reason)
            self.sources[step.rel] = SourceRecord(_sha256_if_readable(step.path), step.record.size,
                                                  step.record.mtime_ns, False)
        else:
            self._read(step)

    def _read(self, step: FileStep) -> None:
        record = step.record
        s = self.settings
        try:
            doc = read_document(step.path, s.corpus_dir)
            if doc.sha256 not in self.first_path_of:
                split = split_document(doc, self.embedder.count_tokens, s.chunk_tokens, s.chunk_overlap_tokens,
                                       s.max_units_per_file)
        except (UnreadableFile, OSError) as error:
            self._skip(step, str(error))
            return
        except Exception as error:  # noqa: BLE001 - one file never stops a build
            log.exception("reading %s failed", step.rel)
            self._skip(step, f"could not be read ({type(error).__name__}: {str(error)[:200]})")
            return
        self.sources[step.rel] = SourceRecord(doc.sha256, record.size, record.mtime_ns, False)
        if doc.sha256 in self.first_path_of:
            log.warning("skipping %s: same content as %s", doc.path, self.first_path_of[doc.sha256])
            return
        if not split.chunks:
            log.warning("skipping %s: no text under its headings", doc.path)
            return
        if split.cut:
            log.warning("%s: only its first %d sentences are indexed (QA_MAX_UNITS_PER_FILE); the rest is left out",
                        doc.path, len(split.units))
        self.writer.add(doc, split)
        self._count(step.rel, record, doc.sha256)

    def _skip(self, step: FileStep, why: str) -> None:
        log.warning("skipping %s: %s", step.rel, why)
        record = step.record
        self.sources[step.rel] = SourceRecord(_sha256_if_readable(step.path), record.size, record.mtime_ns, False)

    def _count(self, rel: str, record: SourceRecord, sha256: str) -> None:
        self.first_path_of[sha256] = rel
        self.sources[rel] = SourceRecord(sha256, record.size, record.mtime_ns, True)
        kind = "new" if rel not in self.before else "changed" if self.before[rel] != sha256 else "unchanged"
        self.counts[kind] += 1  # "unchanged" also counts a file embedded again under other settings


def build_index(settings: Settings, embedder: Embedder, progress: bool = True, report: Report | None = None,
                keep_vectors: Path | None = None) -> BuildSummary:
    """Index every document under `settings.corpus_dir` into `settings.index_dir`, atomically;
    `report` (if given) is told in words what is being done ("embedding a.pdf: 64/599 …") and
    the fraction of the build done. `keep_vectors`: a folder to keep the float32 vectors in
    (`vectors.spool`, `units.spool`), for benchmarks.

    Unreadable, empty, heading-only and duplicate files are skipped with a warning naming them.
    Any failure (a full disk, a read-only folder, an interrupted process) leaves the previous
    index as it was.
    """
    began = time.perf_counter()
    target = settings.index_dir
    files = find_files(settings.corpus_dir)
    if not files:
        raise EmptyCorpusError(f"no documents in {settings.corpus_dir}/: add {', '.join(SUFFIXES)} files there, then run `qa index`")
    if settings.store:
        from qa.index import milvus as milvus_store

        milvus_store.check_store(settings)  # fails now, not after the corpus is embedded
    with build_lock(target):
        for name in remove_leftovers(settings.corpus_dir):
            log.info("deleted %s, left in %s/ by an upload or removal that was killed", name, settings.corpus_dir)
        recover(target)
        for leftover in target.parent.glob(f".{target.name}.tmp-*"):  # from builds that were killed
            shutil.rmtree(leftover, ignore_errors=True)
        tmp = sibling(target, f"tmp-{os.getpid()}")
        writer = None
        try:
            tmp.mkdir(parents=True)
            writer = IndexWriter(tmp, embedder, settings.ann_threshold, report, settings.sentence_vectors == "pooled")
            build = _Build(settings, embedder, writer, _reusable_index(settings, embedder), _indexed_before(settings))
            _add_files(build, files, progress, report)
            if report is not None:
                report("writing the index", 1.0)
            writer.flush()
            shaped_by = fingerprint(settings, embedder.name, writer.dim)
            if settings.store:
                from qa.index import milvus as milvus_store

                types = milvus_store.vector_types((writer.chunk_count, writer.unit_count), settings.ann_threshold)
                manifest = Manifest(shaped_by, writer.chunk_count, writer.unit_count, types, build.sources, {})
                milvus_store.publish(settings, tmp, writer, manifest)
                for spool in (writer.vectors, writer.unit_vectors) if keep_vectors else ():
                    shutil.move(spool.path, keep_vectors / spool.path.name)
            else:
                writer.finish(keep_vectors)
                _write_manifest(tmp, Manifest(shaped_by, writer.chunk_count, writer.unit_count, writer.vector_types,
                                              build.sources, {}))
                swap_in(tmp, target)
        except OSError as error:
            raise IndexWriteError(
                f"could not write the index in {target.parent}/ ({error.strerror or error}); the previous index is untouched"
            ) from error
        finally:
            if writer is not None:
                with contextlib.suppress(OSError):  # a full disk can fail the flush too: keep the first error
                    writer.close()
            shutil.rmtree(tmp, ignore_errors=True)
    indexed = {rel for rel, r in build.sources.items() if r.indexed}
    return BuildSummary(len(writer.documents), writer.chunk_count, time.perf_counter() - began,
                        tuple(rel for rel in build.sources if rel not in indexed), build.counts["new"],
                        build.counts["changed"], len(set(build.before) - indexed), build.counts["unchanged"])


def _add_files(build: _Build, files: list[Path], progress: bool, report: Report | None) -> None:
    from tqdm import tqdm

    settings = build.settings
    steps = [step for path in files if (step := build.plan(path.relative_to(settings.corpus_dir).as_posix(), path))]
    to_read = sum(step.action == "read" for step in steps)  # progress counts these, not the unchanged files reused
    done = 0
    with tqdm(total=len(files), unit="file", desc="indexing", disable=not progress or None, leave=False) as bar:
        for step in steps:
            bar.update(1)
            build.writer.files = (done, max(1, to_read))
            if report is not None and step.action == "read":
                report(f"reading {step.rel} ({done + 1} of {to_read} to index)", done / to_read)
            build.add(step)
            done += step.action == "read"
            bar.set_postfix(chunks=build.writer.chunk_count)
    if not build.writer.documents:
        raise EmptyCorpusError(f"no readable documents in {settings.corpus_dir}/ (every file was skipped; see the warnings above)")


def _write_manifest(folder: Path, manifest: Manifest) -> None:
    """Checksums every index file, syncs them, then writes the manifest last."""
    files = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file() and p.name != "manifest.json")
    manifest = dataclasses.replace(manifest, files={rel: file_sha256(folder / rel) for rel in files})
    for rel in files:
        fsync(folder / rel)
    _write_json(folder / "manifest.json", manifest.to_json())
    fsync(folder / "manifest.json")


def _reusable_index(settings: Settings, embedder: Embedder) -> Index | None:
    """The current index when its vectors can be reused (the same fingerprint, not corrupt);
    otherwise None (everything is embedded)."""
    try:
        previous = load_index(settings, embedder.name, require_fresh=False)
    except QAError:
        return None
    return previous if previous.manifest.shaped_by == fingerprint(settings, embedder.name, embedder.dim) else None


def _indexed_before(settings: Settings) -> dict[str, str]:
    """path -> sha256 of the documents in the index being replaced (empty if unreadable)."""
    try:
        return index_manifest(settings, check=False).indexed_sha256()
    except QAError:
        return {}


def _sha256_if_readable(path: Path) -> str:
    try:
        return file_sha256(path)
    except OSError:
        return ""  # unreadable: judged by size and mtime only


def _write_json(path: Path, value: object) -> None:
    path.write_text(json.dumps(value, ensure_ascii=False, indent=1), encoding="utf-8")
