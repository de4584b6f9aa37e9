"""Build the index from the corpus folder, atomically and incrementally.

Each corpus file gets one step: skipped (too big, unreadable, empty, a copy of another),
reused (unchanged since the last build with the same fingerprint: its chunks and vectors are
copied, nothing is embedded) or read, chunked and embedded. `IndexWriter` streams chunks to
disk and vectors to spool files, so memory grows with the vectors, not the text. The store
(`qa.index.store`) makes the finished build live all at once, so an interrupted or failed build
leaves the previous index intact.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

from qa.config import Settings
from qa.errors import EmptyCorpusError, IndexWriteError, QAError
from qa.index.loaded import Index
from qa.index.manifest import Manifest, SourceRecord, file_changed, fingerprint
from qa.index.store import IndexStore, open_store
from qa.index.writer import IndexWriter, Report
from qa.ingest.chunking import split_document
from qa.ingest.corpus import SUFFIXES, file_sha256, find_files, remove_leftovers
from qa.ingest.readers import UnreadableFile, read_document
from qa.models.embedders import Embedder

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class BuildSummary:
    """What a build did: its size and time, the files it skipped and what changed since the last one."""

    documents: int
    chunks: int
    seconds: float
    skipped: tuple[str, ...] = ()
    new: int = 0
    changed: int = 0
    removed: int = 0
    unchanged: int = 0
    note: str = ""  # what else was done (a removal says what became of the file)
    cut: tuple[str, ...] = ()  # "path (first N sentences)": files indexed only in part (QA_MAX_UNITS_PER_FILE)

    def line(self) -> str:
        skipped = f", {len(self.skipped)} skipped" if self.skipped else ""
        cut = f"; only part of {', '.join(self.cut)} is indexed (QA_MAX_UNITS_PER_FILE)" if self.cut else ""
        return f"indexed {self.documents} documents, {self.chunks} chunks in {self.seconds:.1f} s{skipped}{cut}"

    def changes(self) -> str:
        return f"{self.new} new, {self.changed} changed, {self.removed} removed, {self.unchanged} unchanged"


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
        self.cut: list[str] = []

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
            self.cut.append(f"{doc.path} (the first {len(split.units):,} sentences)")
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
    """Index every document under `settings.corpus_dir` into the settings' store, atomically;
    `report` (if given) is told in words what is being done ("embedding a.pdf: 64/599 …") and
    the fraction of the build done. `keep_vectors`: a folder to keep the float32 vectors in
    (`vectors.spool`, `units.spool`), for benchmarks.

    Unreadable, empty, heading-only and duplicate files are skipped with a warning naming them.
    Any failure (a full disk, a read-only folder, an interrupted process) leaves the previous
    index as it was.
    """
    began = time.perf_counter()
    files = find_files(settings.corpus_dir)
    if not files:
        raise EmptyCorpusError(f"no documents in {settings.corpus_dir}/: add {', '.join(SUFFIXES)} files there, then run `qa index`")
    store = open_store(settings)
    with store.building() as scratch:
        for name in remove_leftovers(settings.corpus_dir):
            log.info("deleted %s, left in %s/ by an upload or removal that was killed", name, settings.corpus_dir)
        writer = None
        try:
            writer = IndexWriter(scratch, embedder, settings.ann_threshold, report, settings.passage_vectors)
            build = _Build(settings, embedder, writer, _reusable_index(store, settings, embedder), _indexed_before(store))
            _add_files(build, files, progress, report)
            if report is not None:
                report("writing the index", 1.0)
            writer.flush()
            store.publish(writer, Manifest(fingerprint(settings, embedder.name, writer.dim), writer.chunk_count,
                                           writer.unit_count, {}, build.sources, {}), scratch, keep_vectors)
        except OSError as error:
            raise IndexWriteError(
                f"could not write the index in {scratch.parent}/ ({error.strerror or error}); the previous index is untouched"
            ) from error
        finally:
            if writer is not None:
                with contextlib.suppress(OSError):  # a full disk can fail the flush too: keep the first error
                    writer.close()
    indexed = {rel for rel, r in build.sources.items() if r.indexed}
    return BuildSummary(len(writer.documents), writer.chunk_count, time.perf_counter() - began,
                        tuple(rel for rel in build.sources if rel not in indexed), build.counts["new"],
                        build.counts["changed"], len(set(build.before) - indexed), build.counts["unchanged"],
                        cut=tuple(build.cut))


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


def _reusable_index(store: IndexStore, settings: Settings, embedder: Embedder) -> Index | None:
    """The current index when its vectors can be reused (the same fingerprint, not corrupt);
    otherwise None (everything is embedded)."""
    try:
        previous = store.load(embedder.name, require_fresh=False)
    except QAError:
        return None
    return previous if previous.manifest.shaped_by == fingerprint(settings, embedder.name, embedder.dim) else None


def _indexed_before(store: IndexStore) -> dict[str, str]:
    """path -> sha256 of the documents in the index being replaced (empty if unreadable)."""
    try:
        return store.manifest(check=False).indexed_sha256()
    except QAError:
        return {}


def _sha256_if_readable(path: Path) -> str:
    try:
        return file_sha256(path)
    except OSError:
        return ""  # unreadable: judged by size and mtime only
