"""Where the index lives, chosen once from the settings by `open_store`: `FileStore` (the index
folder, the default) or `MilvusStore` (`QA_STORE`, `qa.index.milvus_store`). Nothing else asks
which one it is.

The folder holds `vectors.faiss` and `units.faiss` (chunk and sentence vectors; no chunk vectors
unless built with `QA_PASSAGE_VECTORS`), `chunks.jsonl` (one chunk per row), `units.npy` /
`chunk_units.npy` (which sentences each chunk holds), `documents.json`, `bm25/` (a bm25s index) and
`manifest.json` (`qa.index.manifest`). Loading refuses, with a message saying to run `qa index`, an
index that is missing, corrupt (checksums, shapes) or built with another model or other settings;
one whose corpus folder changed since loads, saying what changed.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import shutil
from collections.abc import Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Protocol

import numpy as np

from qa.config import Settings
from qa.errors import CorruptIndexError, IndexWriteError, MissingIndexError, StaleIndexError
from qa.index.loaded import Bm25Files, DocumentInfo, Index, freshness
from qa.index.manifest import Manifest, check_files, corpus_changes, mismatch_reasons, read_manifest
from qa.index.swap import build_lock, fsync, recover, sibling, swap_in
from qa.index.vectors import Vectors
from qa.index.writer import IndexWriter, write_json
from qa.ingest.corpus import file_sha256
from qa.text import bm25s_module
from qa.types import Chunk


class IndexStore(Protocol):
    """What the pipeline and a build need from the place the index lives."""

    shared: bool  # other processes may publish builds to it (the pipeline then looks for newer ones)

    def load(self, embed_model: str | None = None, require_fresh: bool = True) -> Index:
        """The live index, validated; a `QAError` that says what to do when it cannot be used.
        With `require_fresh`, one built with other settings is refused; one whose corpus folder
        changed since loads, with `out_of_date` saying what changed."""
        ...

    def manifest(self, check: bool = True) -> Manifest:
        """The live index's manifest (`check`: the folder's files against their checksums too)."""
        ...

    def building(self) -> AbstractContextManager[Path]:
        """Held for the whole of a build: one build at a time, and a scratch folder for the writer."""
        ...

    def publish(self, writer: IndexWriter, manifest: Manifest, scratch: Path, keep_vectors: Path | None) -> None:
        """Make a finished build the live index, all at once; on failure the previous one stays."""
        ...

    def live_generation(self) -> str:
        """The build the store serves now ("" where only this process builds)."""
        ...


def open_store(settings: Settings) -> IndexStore:
    """The store the settings name: Milvus with `QA_STORE`, else the index folder."""
    if settings.store:
        from qa.index.milvus_store import MilvusStore  # needs pymilvus only when chosen

        return MilvusStore(settings)
    return FileStore(settings)


class FileStore:
    """The index as files in `settings.index_dir`, replaced whole by two renames (`qa.index.swap`)."""

    shared = False

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def load(self, embed_model: str | None = None, require_fresh: bool = True) -> Index:
        settings, index_dir = self.settings, self.settings.index_dir
        manifest = read_manifest(index_dir)
        check_files(index_dir, manifest)
        out_of_date = freshness(settings, manifest, embed_model) if require_fresh else ""
        try:
            vectors, unit_vectors = Vectors.load(index_dir / "vectors.faiss"), Vectors.load(index_dir / "units.faiss")
            units = np.load(index_dir / "units.npy", allow_pickle=False)
            chunk_units = np.load(index_dir / "chunk_units.npy", allow_pickle=False)
            bm25 = Bm25Files(bm25s_module().BM25.load(str(index_dir / "bm25"), show_progress=False), len(chunk_units))
            with (index_dir / "chunks.jsonl").open(encoding="utf-8") as f:
                chunks = [Chunk(**json.loads(line)) for line in f]
            documents = {d["doc_id"]: DocumentInfo(**d)
                         for d in json.loads((index_dir / "documents.json").read_text(encoding="utf-8"))}
        except (RuntimeError, ValueError, TypeError, KeyError, OSError) as error:
            raise CorruptIndexError(f"index is corrupt ({error}): run `qa index`") from None
        if not (vectors.count == (len(chunks) if manifest.passage_vectors else 0) and len(chunks) == len(chunk_units)
                and unit_vectors.count == len(units)
                and vectors.dim == unit_vectors.dim == manifest.dim):
            raise CorruptIndexError("index is corrupt (vectors and chunks disagree): run `qa index`")
        return Index(manifest=manifest, chunks=chunks, documents=documents, _vectors=vectors, _unit_vectors=unit_vectors,
                     _units=units, _chunk_units=chunk_units, _lexical=bm25, out_of_date=out_of_date)

    def manifest(self, check: bool = True) -> Manifest:
        manifest = read_manifest(self.settings.index_dir)
        if check:
            check_files(self.settings.index_dir, manifest)
        return manifest

    @contextlib.contextmanager
    def building(self) -> Iterator[Path]:
        """The build lock (`.index.lock`) and a temporary folder beside the index, swapped in by `publish`."""
        target = self.settings.index_dir
        with build_lock(target):
            recover(target)
            for leftover in target.parent.glob(f".{target.name}.tmp-*"):  # from builds that were killed
                shutil.rmtree(leftover, ignore_errors=True)
            scratch = sibling(target, f"tmp-{os.getpid()}")
            try:
                scratch.mkdir(parents=True)
            except OSError as error:
                raise IndexWriteError(f"could not write the index in {target.parent}/ ({error.strerror or error});"
                                      " the previous index is untouched") from None
            try:
                yield scratch
            finally:
                shutil.rmtree(scratch, ignore_errors=True)

    def publish(self, writer: IndexWriter, manifest: Manifest, scratch: Path, keep_vectors: Path | None) -> None:
        writer.finish(keep_vectors)
        write_manifest(scratch, dataclasses.replace(manifest, vector_types=writer.vector_types))
        swap_in(scratch, self.settings.index_dir)

    def live_generation(self) -> str:
        return ""


def write_manifest(folder: Path, manifest: Manifest) -> None:
    """Checksums every index file, syncs them, then writes the manifest last."""
    files = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file() and p.name != "manifest.json")
    manifest = dataclasses.replace(manifest, files={rel: file_sha256(folder / rel) for rel in files})
    for rel in files:
        fsync(folder / rel)
    write_json(folder / "manifest.json", manifest.to_json())
    fsync(folder / "manifest.json")


def load_index(settings: Settings, embed_model: str | None = None, require_fresh: bool = True) -> Index:
    """The index the settings point at (`IndexStore.load`)."""
    return open_store(settings).load(embed_model, require_fresh)


def index_manifest(settings: Settings, check: bool = True) -> Manifest:
    """The manifest of the index the settings point at (`IndexStore.manifest`)."""
    return open_store(settings).manifest(check)


def index_state(settings: Settings, embed_model: str | None) -> tuple[str, str]:
    """("fresh" | "stale" | "missing" | "corrupt", a one-line explanation) without loading vectors."""
    try:
        manifest = index_manifest(settings)
    except MissingIndexError as error:
        return "missing", str(error)
    except CorruptIndexError as error:
        return "corrupt", str(error)
    except StaleIndexError as error:
        return "stale", str(error)
    reasons = mismatch_reasons(settings, manifest, embed_model) + corpus_changes(settings, manifest)
    if reasons:
        return "stale", f"index is stale: run `qa index` ({'; '.join(reasons)})"
    return "fresh", f"index built {manifest.built_at}: {manifest.chunk_count} chunks"
