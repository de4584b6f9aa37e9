"""`MilvusStore`: the `IndexStore` of an index kept in Milvus (`QA_STORE`): read by
`qa.index.milvus`, written as a new generation by `qa.index.milvus_write`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from qa.config import Settings
from qa.index import milvus
from qa.index.loaded import Index
from qa.index.manifest import Manifest
from qa.index.milvus_write import publish, vector_types
from qa.index.writer import IndexWriter


class MilvusStore:
    """Several processes (app replicas, builds) share one store: builds take turns in the store
    itself (`milvus_write.build_turn`), so a build here takes no file lock and writes its scratch
    files in the system's temporary folder, not beside `index_dir`."""

    shared = True

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def load(self, embed_model: str | None = None, require_fresh: bool = True) -> Index:
        return milvus.load(self.settings, embed_model, require_fresh)

    def manifest(self, check: bool = True) -> Manifest:  # noqa: ARG002 - the store keeps no files to check
        return milvus.read_manifest(self.settings)

    @contextlib.contextmanager
    def building(self) -> Iterator[Path]:
        milvus.check_store(self.settings)  # fails now, not after the corpus is embedded
        with tempfile.TemporaryDirectory(prefix="docqa-build-") as scratch:
            yield Path(scratch)

    def publish(self, writer: IndexWriter, manifest: Manifest, scratch: Path, keep_vectors: Path | None) -> None:
        types = vector_types((writer.vectors.count, writer.unit_count), self.settings.ann_threshold)
        publish(self.settings, writer, dataclasses.replace(manifest, vector_types=types))
        for spool in (writer.vectors, writer.unit_vectors) if keep_vectors else ():
            shutil.move(spool.path, keep_vectors / spool.path.name)

    def live_generation(self) -> str:
        return milvus.live_generation(self.settings)
