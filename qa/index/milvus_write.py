"""Writing a build into Milvus as a new generation (see `qa.index.milvus`): its three
collections, then the alias switched to it, then the generation before the previous dropped.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import logging
import os
import threading
import time
import uuid
from collections.abc import Iterator

import numpy as np

from qa.config import Settings
from qa.errors import IndexWriteError
from qa.index.manifest import Manifest
from qa.index.milvus import (
    BATCH,
    BM25_B,
    BM25_K1,
    HNSW_EF_CONSTRUCTION,
    HNSW_M,
    MAX_TEXT,
    META_PART_CHARS,
    connect,
    lexical_terms,
    short_error,
)
from qa.index.writer import IndexWriter
from qa.types import Chunk

log = logging.getLogger(__name__)


def vector_types(manifest_counts: tuple[int, int], ann_threshold: int) -> dict[str, str]:
    """The vector index of each collection, by the files backend's rule: exact up to `ann_threshold` vectors.

    >>> vector_types((100, 30_000), 20_000)
    {'chunks': 'FLAT', 'units': 'HNSW'}
    """
    return {kind: "FLAT" if count <= ann_threshold else "HNSW" for kind, count in zip(("chunks", "units"), manifest_counts)}


def _schemas(client, dim: int, types: dict[str, str]) -> dict[str, tuple]:  # noqa: ANN001 - suffix -> (schema, index params)
    from pymilvus import DataType, Function, FunctionType

    def vector_index(params, kind: str) -> None:  # noqa: ANN001
        if types[kind] == "FLAT":
            params.add_index("vector", index_type="FLAT", metric_type="IP")
        else:
            params.add_index("vector", index_type="HNSW", metric_type="IP",
                             params={"M": HNSW_M, "efConstruction": HNSW_EF_CONSTRUCTION})

    chunks = client.create_schema(auto_id=False)
    chunks.add_field("id", DataType.INT64, is_primary=True)
    for name, length in (("chunk_id", 64), ("doc_id", 64), ("section", 4096), ("text", MAX_TEXT)):
        chunks.add_field(name, DataType.VARCHAR, max_length=length)
    for name in ("start", "end", "page", "first_unit", "end_unit"):
        chunks.add_field(name, DataType.INT64)
    chunks.add_field("terms", DataType.VARCHAR, max_length=MAX_TEXT, enable_analyzer=True,
                     analyzer_params={"tokenizer": "standard"})
    chunks.add_field("vector", DataType.FLOAT_VECTOR, dim=dim)
    chunks.add_field("sparse", DataType.SPARSE_FLOAT_VECTOR)
    chunks.add_function(Function(name="bm25", function_type=FunctionType.BM25, input_field_names=["terms"],
                                 output_field_names=["sparse"]))
    chunk_index = client.prepare_index_params()
    vector_index(chunk_index, "chunks")
    chunk_index.add_index("sparse", index_type="SPARSE_INVERTED_INDEX", metric_type="BM25",
                          params={"bm25_k1": BM25_K1, "bm25_b": BM25_B})

    units = client.create_schema(auto_id=False)
    units.add_field("id", DataType.INT64, is_primary=True)
    for name in ("row", "start", "end"):
        units.add_field(name, DataType.INT64)
    units.add_field("vector", DataType.FLOAT_VECTOR, dim=dim)
    unit_index = client.prepare_index_params()
    vector_index(unit_index, "units")

    meta = client.create_schema(auto_id=False)  # Milvus wants a vector field in every collection
    meta.add_field("id", DataType.INT64, is_primary=True)
    meta.add_field("json", DataType.VARCHAR, max_length=MAX_TEXT)
    meta.add_field("vector", DataType.FLOAT_VECTOR, dim=2)
    meta_index = client.prepare_index_params()
    meta_index.add_index("vector", index_type="FLAT", metric_type="IP")
    return {"chunks": (chunks, chunk_index), "units": (units, unit_index), "meta": (meta, meta_index)}


def _generation_of(collection: str, name: str) -> int | None:
    """The stamp of a generation's collection, or None for a collection that is not one of `name`'s.

    >>> _generation_of("docqa_g17_units", "docqa"), _generation_of("other_g17_units", "docqa")
    (17, None)
    """
    stem, _, kind = collection.rpartition("_")
    head, _, stamp = stem.rpartition("_g")
    if head != name or kind not in ("chunks", "units", "meta") or not stamp.isdigit():
        return None
    return int(stamp)


def publish(settings: Settings, writer: IndexWriter, manifest: Manifest) -> None:
    """Write a finished build (`writer`, flushed) as a new generation, then point the alias at it. Raises `IndexWriteError` (the previous generation
    still answers) when anything fails."""
    client = connect(settings)
    name = settings.store_collection
    with build_turn(client, name):
        _publish(client, settings, writer, manifest)


def _publish(client, settings: Settings, writer: IndexWriter, manifest: Manifest) -> None:  # noqa: ANN001
    name = settings.store_collection
    generation = f"{name}_g{time.time_ns()}"
    try:
        for kind, (schema, index_params) in _schemas(client, manifest.dim, manifest.vector_types).items():
            client.create_collection(f"{generation}_{kind}", schema=schema, index_params=index_params)
        _insert_chunks(client, f"{generation}_chunks", writer)
        _insert_units(client, f"{generation}_units", writer)
        meta = json.dumps({"generation": generation, "manifest": manifest.to_json(),
                           "documents": [_document_json(d) for d in writer.documents]}, ensure_ascii=False)
        parts = [meta[i:i + META_PART_CHARS] for i in range(0, len(meta), META_PART_CHARS)]
        client.insert(f"{generation}_meta", [{"id": i, "json": part, "vector": [1.0, 0.0]} for i, part in enumerate(parts)])
        for kind in ("chunks", "units", "meta"):
            client.flush(f"{generation}_{kind}")
        previous = _switch_alias(client, name, f"{generation}_meta")
    except Exception as error:  # noqa: BLE001 - grpc, Milvus and OS errors alike; nothing half-published stays
        for kind in ("chunks", "units", "meta"):
            try:
                client.drop_collection(f"{generation}_{kind}")
            except Exception:  # noqa: BLE001, S110 - the store may be gone; the next build drops what is left
                pass
        raise IndexWriteError(f"could not write the index to the Milvus store {settings.store} ({short_error(error)});"
                              " the previous index is untouched") from None
    _drop_old_generations(client, name, previous)


TURN_WAIT_SECONDS = 600  # how long a build waits for another one writing to the same store
LEASE_SECONDS = 60  # a ticket not renewed for this long is a build that was killed: it no longer counts
RENEW_SECONDS = 5  # how often a build renews its ticket while it waits and writes


@contextlib.contextmanager
def build_turn(client, name: str, wait: float = TURN_WAIT_SECONDS) -> Iterator[None]:  # noqa: ANN001
    """One build at a time writes index `name` to a Milvus store, shared by every process and
    machine that builds into it: each takes a ticket (an empty collection named by its time) and
    writes when its ticket is the oldest, so no build drops a generation another one is writing or
    has just published. A build renews its ticket every `RENEW_SECONDS` (a row holding the time);
    a ticket not renewed for `LEASE_SECONDS` is a killed build's and is dropped, so the next build
    goes on at once rather than waiting for it."""
    prefix = f"{name}_build_"
    ticket = f"{prefix}{time.time_ns()}_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    try:
        client.create_collection(ticket, dimension=2)
        _renew(client, ticket)
    except Exception as error:  # noqa: BLE001 - grpc and Milvus errors alike
        raise IndexWriteError(f"could not write to the Milvus store ({short_error(error)}); the previous index is "
                              "untouched") from None
    done = threading.Event()
    renewing = threading.Thread(target=_keep_renewing, args=(client, ticket, done), daemon=True,
                                name="milvus-build-lease")
    renewing.start()
    try:
        deadline = time.monotonic() + wait
        while True:
            waiting = sorted((int(c.split("_")[-3]), c) for c in client.list_collections() if c.startswith(prefix))
            live = []
            for stamp, other in waiting:
                if other != ticket and _renewed(client, other, stamp / 1e9) < time.time() - LEASE_SECONDS:
                    log.warning("dropping %s, the ticket of a build that stopped (not renewed for %d s)",
                                other, LEASE_SECONDS)
                    with contextlib.suppress(Exception):
                        client.drop_collection(other)
                else:
                    live.append(other)
            if not live or live[0] == ticket:
                break
            if time.monotonic() > deadline:
                raise IndexWriteError(f"another build has been writing the index to the Milvus store for over "
                                      f"{wait:.0f} s; the previous index is untouched: run `qa index` again later")
            time.sleep(0.5)
        yield
    finally:
        done.set()
        renewing.join(RENEW_SECONDS + 5)
        with contextlib.suppress(Exception):  # the store may be gone; the ticket then stops being renewed
            client.drop_collection(ticket)


def _renew(client, ticket: str) -> None:  # noqa: ANN001
    client.upsert(ticket, [{"id": 0, "vector": [1.0, 0.0], "renewed": time.time()}])


def _keep_renewing(client, ticket: str, done: threading.Event) -> None:  # noqa: ANN001
    while not done.wait(RENEW_SECONDS):
        try:
            _renew(client, ticket)
        except Exception as error:  # noqa: BLE001 - the build itself will meet (and report) a store gone away
            log.info("could not renew the build ticket %s: %s", ticket, short_error(error))


def _renewed(client, ticket: str, created: float) -> float:  # noqa: ANN001
    """When `ticket` was last renewed (its creation time if never, or if it cannot be read)."""
    try:
        rows = client.query(ticket, ids=[0], output_fields=["renewed"])
    except Exception:  # noqa: BLE001 - dropped meanwhile, or not loaded: judged by its age
        return created
    return max([created] + [float(r["renewed"]) for r in rows if isinstance(r.get("renewed"), int | float)])


def _document_json(info) -> dict:  # noqa: ANN001 - a DocumentInfo
    return {"doc_id": info.doc_id, "title": info.title, "path": info.path, "sha256": info.sha256,
            "chars": info.chars, "chunks": info.chunks, "notes": info.notes}


def _insert_chunks(client, collection: str, writer: IndexWriter) -> None:  # noqa: ANN001
    from qa.ingest.chunking import embedding_text

    titles = {d.doc_id: d.title for d in writer.documents}
    chunk_units = writer.chunk_unit_table()
    # Milvus wants a vector in every row: an index without passage vectors stores a placeholder, never searched.
    vectors = (writer.vectors.batches(BATCH) if writer.vectors.count
               else itertools.repeat(np.eye(1, writer.dim, dtype=np.float32).repeat(BATCH, axis=0)))
    for first, batch in _batches(writer.written_chunks()):
        block = next(vectors)
        rows = []
        for offset, chunk in enumerate(batch):
            start_unit, end_unit = chunk_units[first + offset]
            rows.append({
                "id": first + offset, "chunk_id": chunk.chunk_id, "doc_id": chunk.doc_id, "section": chunk.section,
                "text": chunk.text, "start": chunk.start, "end": chunk.end,
                "page": -1 if chunk.page is None else chunk.page, "first_unit": int(start_unit), "end_unit": int(end_unit),
                "terms": lexical_terms(embedding_text(titles[chunk.doc_id], chunk.section, chunk.text)),
                "vector": block[offset].tolist(),
            })
        client.insert(collection, rows)


def _batches(chunks: Iterator[Chunk]) -> Iterator[tuple[int, list[Chunk]]]:
    """(first row, up to BATCH chunks) in row order."""
    batch, first = [], 0
    for chunk in chunks:
        batch.append(chunk)
        if len(batch) == BATCH:
            yield first, batch
            first, batch = first + BATCH, []
    if batch:
        yield first, batch


def _insert_units(client, collection: str, writer: IndexWriter) -> None:  # noqa: ANN001
    units = writer.unit_table()
    for first, block in zip(range(0, len(units), BATCH), writer.unit_vectors.batches(BATCH)):
        client.insert(collection, [
            {"id": first + i, "row": int(r), "start": int(a), "end": int(b), "vector": block[i].tolist()}
            for i, (r, a, b) in enumerate(units[first:first + BATCH].tolist())
        ])


def _switch_alias(client, name: str, meta_collection: str) -> str | None:  # noqa: ANN001
    """Point alias `name` at `meta_collection`; returns the collection it pointed at before."""
    try:
        previous = client.describe_alias(name).get("collection_name")
    except Exception:  # noqa: BLE001 - no alias yet
        previous = None
    if previous is None:
        client.create_alias(meta_collection, name)
    else:
        client.alter_alias(meta_collection, name)
    return previous


def _drop_old_generations(client, name: str, previous: str | None) -> None:  # noqa: ANN001
    """Drop the generations older than the one just replaced (which replicas may still be reading)."""
    keep_from = _generation_of(previous, name) if previous else None
    try:
        for collection in client.list_collections():
            stamp = _generation_of(collection, name)
            if stamp is not None and keep_from is not None and stamp < keep_from:
                client.drop_collection(collection)
    except Exception as error:  # noqa: BLE001 - the new index is live; the next build tries again
        log.warning("could not drop old index collections from the Milvus store (%s)", short_error(error))
