"""The index in Milvus (`QA_STORE=milvus-lite:PATH` or `milvus://HOST:PORT`), for corpora and
teams that outgrow one process's memory: several app replicas share one Milvus server or cluster.

A build writes one *generation*: three collections, `<name>_g<stamp>_chunks` (each chunk's text,
offsets, vector and BM25 terms), `_units` (each sentence's chunk, offsets and vector) and `_meta`
(the manifest and the documents, as JSON). The alias `<name>` then moves to the new `_meta`
(Milvus' atomic switch), so a build that fails or is killed half-way leaves the previous
generation answering; the one before the previous is dropped (`qa.index.milvus_write`). Rows keep the numbering of the
files backend (chunk row = primary key), so `qa.index.loaded.Index` serves both with the same code:
only vector search, lexical search and vector reads go to Milvus.

Lexical search runs in the engine (a `BM25` function over an analysed field) on the same stemmed
terms as the files backend (`qa.text.word_tokens`), with bm25s' k1 and b: milvus-lite ignores an
analyzer's stemmer, so the terms are stemmed before they are stored and searched.
"""

from __future__ import annotations

import json
import re
import logging
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from qa.config import Settings
from qa.errors import (
    CorruptIndexError,
    MissingIndexError,
    QAError,
    StaleIndexError,
    StoreUnavailableError,
)
from qa.index.loaded import DocumentInfo, Index, freshness
from qa.index.manifest import FORMAT_VERSION, Manifest, manifest_problem
from qa.index.swap import locked_by_another
from qa.text import BM25_STOPWORDS, word_tokens
from qa.types import Chunk

log = logging.getLogger(__name__)

BATCH = 512  # rows per insert or read request
META_PART_CHARS = 16_000  # a VARCHAR holds 65,535 bytes: 16,000 characters fit in any script
MAX_TEXT = 65_535
BM25_K1, BM25_B = 1.5, 0.75  # bm25s' defaults, so both backends rank alike
HNSW_M, HNSW_EF_CONSTRUCTION, HNSW_EF_SEARCH = 32, 80, 128  # as qa.index.vectors
CONNECT_SECONDS = 10


_clients: dict[tuple[str, str], object] = {}
_clients_lock = threading.Lock()


def uri_of(store: str) -> str:
    """What `MilvusClient` is given for a store setting.

    >>> uri_of("milvus://db.internal:19530"), uri_of("milvus-lite:/tmp/m")
    ('http://db.internal:19530', '/tmp/m')
    """
    if store.startswith("milvus://"):
        return "http://" + store.removeprefix("milvus://")
    return store.removeprefix("milvus-lite:")


def damaged_alias_file(uri: str) -> Path | None:
    """A local (milvus-lite) store's alias file when it cannot be read as Milvus writes it (a
    JSON object of names), which fails every call with a decoding error; else None."""
    path = Path(uri) / "aliases.json"
    try:
        aliases = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    except (OSError, UnicodeDecodeError, ValueError):
        return path
    good = isinstance(aliases, dict) and all(isinstance(k, str) and isinstance(v, str) for k, v in aliases.items())
    return None if good else path


def connect(settings: Settings, repair: bool = False):  # noqa: ANN201 - a pymilvus MilvusClient, one per store per process
    """The store's client. A local store whose alias file is damaged is named with its repair,
    and with `repair` (a build, which writes a new index anyway) that file is set aside first."""
    key = (settings.store, settings.store_token)
    with _clients_lock:
        if key not in _clients and settings.store.startswith("milvus-lite:"):
            damaged = damaged_alias_file(uri_of(settings.store))
            if damaged is not None and repair:
                aside = damaged.with_name(f"aliases.json.damaged-{int(time.time())}")
                damaged.replace(aside)
                log.warning("the local Milvus store's alias file was damaged; set aside as %s, the index is built anew",
                            aside)
            elif damaged is not None:
                raise StoreUnavailableError(
                    f"the local Milvus store's alias file {damaged} is damaged: run `qa index`, which sets it aside "
                    "and builds the index again from the corpus")
        if key not in _clients:
            try:
                from pymilvus import MilvusClient
            except ImportError:
                raise StoreUnavailableError(
                    "the Milvus store needs pymilvus and milvus-lite: pip install -e '.[milvus]'") from None
            # pymilvus logs every failed call with a traceback; the failures it raises are reported here instead.
            # milvus-lite's in-process server logs one for each call it does not implement (pymilvus then
            # falls back, e.g. to a client-side timestamp).
            for name in ("pymilvus", "pymilvus.milvus_client", "grpc._server", "milvus_lite"):
                logging.getLogger(name).setLevel(logging.CRITICAL)
            uri = uri_of(settings.store)
            if settings.store.startswith("milvus-lite:"):
                Path(uri).parent.mkdir(parents=True, exist_ok=True)
            try:
                _clients[key] = MilvusClient(uri, token=settings.store_token, timeout=CONNECT_SECONDS)
            except Exception as error:  # noqa: BLE001 - grpc, milvus-lite and OS errors alike
                if settings.store.startswith("milvus-lite:") and _data_dir_locked(uri):
                    raise StoreUnavailableError(
                        f"another process has the local Milvus store {uri} open (one process at a time); to share it,"
                        f" serve it (`milvus-lite server --data-dir …`) and use QA_STORE=milvus://HOST:PORT") from None
                raise StoreUnavailableError(
                    f"cannot reach the Milvus store {settings.store} ({short_error(error)}): start it, or check QA_STORE"
                ) from None
        return _clients[key]


def _data_dir_locked(path: str) -> bool:
    """Whether another process holds milvus-lite's lock on its data folder `path` (its LOCK file)."""
    return locked_by_another(Path(path) / "LOCK")


def short_error(error: Exception) -> str:
    message = getattr(error, "message", "") or str(error) or type(error).__name__
    return " ".join(message.split())[:300]


def _call(what: str, function, *args, **kwargs):  # noqa: ANN001, ANN202
    """A Milvus call whose failure becomes a `StoreUnavailableError` saying what failed."""
    try:
        return function(*args, **kwargs)
    except QAError:
        raise
    except Exception as error:  # noqa: BLE001 - grpc and Milvus errors alike
        raise StoreUnavailableError(f"the Milvus store failed to {what} ({short_error(error)})") from None


def _call_loaded(what: str, client, collection: str, function, *args, **kwargs):  # noqa: ANN001, ANN202
    """`_call` on a collection, which is loaded again (once) when the server released it: a
    restarted Milvus server holds every collection released until someone loads it."""
    try:
        return function(*args, **kwargs)
    except QAError:
        raise
    except Exception as error:  # noqa: BLE001 - grpc and Milvus errors alike
        if not re.search(r"released|not loaded|call load", short_error(error), re.IGNORECASE):
            raise StoreUnavailableError(f"the Milvus store failed to {what} ({short_error(error)})") from None
    log.info("the Milvus collection %s was released (a server restart?); loading it again", collection)
    _call("load the index", client.load_collection, collection)
    return _call(what, function, *args, **kwargs)


def lexical_terms(text: str) -> str:
    """The text as the BM25 field holds it: stemmed words without BM25's stopwords.

    >>> lexical_terms("When were the treaties signed?")
    'when were treati sign'
    """
    return " ".join(word_tokens(text, BM25_STOPWORDS))


def row_filter(rows: np.ndarray) -> str:
    """A Milvus filter for these primary keys, as ranges (a document's rows are contiguous).

    >>> row_filter(np.array([3, 4, 5, 9]))
    '(id >= 3 and id < 6) or (id >= 9 and id < 10)'
    """
    rows = np.unique(np.asarray(rows, dtype=np.int64))
    if len(rows) == 0:
        return "id < 0"
    breaks = np.flatnonzero(np.diff(rows) != 1) + 1
    return " or ".join(f"(id >= {r[0]} and id < {r[-1] + 1})" for r in np.split(rows, breaks))


class MilvusVectors:
    """One collection's `vector` field, searched and read by primary key (`qa.index.loaded.VectorSearch`)."""

    def __init__(self, client, collection: str, count: int, dim: int, exact: bool) -> None:  # noqa: ANN001
        self.client, self.collection, self.count, self.dim, self.exact = client, collection, count, dim, exact

    @property
    def kind(self) -> str:
        return f"Milvus {'FLAT' if self.exact else 'HNSW'}"

    def search(self, query: np.ndarray, k: int, rows: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        k = min(k, self.count, len(rows) if rows is not None else k)  # none when the index is empty
        scores = np.full((len(query), max(k, 0)), -1.0, np.float32)
        ids = np.full((len(query), max(k, 0)), -1, np.int64)
        if k <= 0:
            return scores, ids
        params = {"metric_type": "IP", "params": {} if self.exact else {"ef": max(HNSW_EF_SEARCH, k)}}
        hits = _call_loaded("search vectors", self.client, self.collection, self.client.search, self.collection,
                            data=[q.tolist() for q in query], anns_field="vector", limit=k, output_fields=["id"],
                            search_params=params, filter=row_filter(rows) if rows is not None else "")
        for i, found in enumerate(hits):
            for j, hit in enumerate(found[:k]):
                ids[i, j], scores[i, j] = hit["id"], hit["distance"]
        return scores, ids

    def get(self, first: int, count: int) -> np.ndarray:
        out = np.zeros((count, self.dim), np.float32)
        for start in range(first, first + count, BATCH):
            end = min(start + BATCH, first + count)
            for row in _call_loaded("read vectors", self.client, self.collection, self.client.query, self.collection,
                                    filter=f"id >= {start} and id < {end}", output_fields=["id", "vector"],
                                    limit=end - start):
                out[row["id"] - first] = row["vector"]
        return out


class MilvusLexical:
    """BM25 computed by Milvus over the chunks' stemmed terms (`qa.index.loaded.Lexical`)."""

    def __init__(self, client, collection: str) -> None:  # noqa: ANN001
        self.client, self.collection = client, collection

    def search(self, query: str, n: int, rows: np.ndarray | None = None) -> list[tuple[int, float]]:
        terms = lexical_terms(query)
        if not terms:
            return []
        hits = _call_loaded("search words", self.client, self.collection, self.client.search, self.collection,
                            data=[terms], anns_field="sparse", limit=n, output_fields=["id"],
                            search_params={"metric_type": "BM25"}, filter=row_filter(rows) if rows is not None else "")
        # milvus-lite gives BM25 scores negated (its order is right); a Milvus server gives them as they are.
        # Milvus' BM25 carries a factor (k1 + 1) that bm25s leaves out: divided out, the scores read alike.
        return [(int(hit["id"]), abs(float(hit["distance"])) / (BM25_K1 + 1)) for hit in hits[0]]


def _live_collection(client, settings: Settings) -> str | None:  # noqa: ANN001
    """The `_meta` collection the index's alias points at; None when there is no index yet."""
    name = settings.store_collection
    if not _call("list its collections", client.has_collection, name):
        return None
    try:
        return client.describe_alias(name)["collection_name"]
    except Exception:  # noqa: BLE001 - the name is a collection, not our alias
        raise QAError(f"the Milvus store {settings.store} holds a collection named {name!r} that is not a docqa index:"
                      " choose another name with QA_STORE_COLLECTION") from None


def check_store(settings: Settings) -> None:
    """Before a build embeds anything: the store answers (a damaged local alias file set aside:
    the build writes the index anew) and the index's name is free or ours."""
    _live_collection(connect(settings, repair=True), settings)


def read_meta(settings: Settings) -> dict:
    """The live generation's meta record: its name, manifest (raw JSON) and documents."""
    client = connect(settings)
    name = settings.store_collection
    collection = _live_collection(client, settings)
    if collection is None:
        raise MissingIndexError(f"no index named {name!r} in the Milvus store {settings.store}: run `qa index` to build it")
    _call("load the index", client.load_collection, collection)  # a collection is released when the server restarts
    parts = _call("read the index's manifest", client.query, collection, filter="id >= 0", output_fields=["id", "json"],
                  limit=10_000)
    try:
        meta = json.loads("".join(p["json"] for p in sorted(parts, key=lambda p: p["id"])))
        raw = meta["manifest"]
        if raw.get("format") != FORMAT_VERSION:
            raise StaleIndexError(f"the index {name!r} in {settings.store} has format {raw.get('format')}, "
                                  f"this version reads {FORMAT_VERSION}: run `qa index`")
        problem = manifest_problem(raw)
        if not problem and not isinstance(meta.get("documents"), list):
            problem = "documents missing"
    except (ValueError, KeyError, TypeError, AttributeError) as error:
        problem = str(error) or type(error).__name__
    if problem:
        raise CorruptIndexError(f"the index {name!r} in {settings.store} is corrupt ({problem}): run `qa index`")
    return meta


def read_manifest(settings: Settings) -> Manifest:
    return Manifest.from_json(read_meta(settings)["manifest"])


def load(settings: Settings, embed_model: str | None, require_fresh: bool) -> Index:
    meta = read_meta(settings)
    manifest = Manifest.from_json(meta["manifest"])
    out_of_date = freshness(settings, manifest, embed_model) if require_fresh else ""
    client, generation = connect(settings), meta["generation"]
    for kind in ("chunks", "units"):
        _call("load the index", client.load_collection, f"{generation}_{kind}")
    chunks, chunk_units = [None] * manifest.chunk_count, np.zeros((manifest.chunk_count, 2), np.int64)
    units = np.zeros((manifest.unit_count, 3), np.int64)
    try:
        for row in _all_rows(client, f"{generation}_chunks", manifest.chunk_count,
                             ["id", "chunk_id", "doc_id", "section", "text", "start", "end", "page", "first_unit", "end_unit"]):
            chunks[row["id"]] = Chunk(row["chunk_id"], row["doc_id"], row["section"], row["text"], row["start"],
                                      row["end"], None if row["page"] < 0 else row["page"])
            chunk_units[row["id"]] = (row["first_unit"], row["end_unit"])
        for row in _all_rows(client, f"{generation}_units", manifest.unit_count, ["id", "row", "start", "end"]):
            units[row["id"]] = (row["row"], row["start"], row["end"])
        documents = {d["doc_id"]: DocumentInfo(**d) for d in meta["documents"]}
    except (IndexError, KeyError, TypeError) as error:
        raise CorruptIndexError(f"the index in {settings.store} is corrupt ({error}): run `qa index`") from None
    if any(c is None for c in chunks):
        raise CorruptIndexError(f"the index in {settings.store} is corrupt (chunks are missing): run `qa index`")
    types = manifest.vector_types
    return Index(
        manifest=manifest, chunks=chunks, documents=documents,
        _vectors=MilvusVectors(client, f"{generation}_chunks", manifest.chunk_count if manifest.passage_vectors else 0,
                               manifest.dim, types.get("chunks") == "FLAT"),
        _unit_vectors=MilvusVectors(client, f"{generation}_units", manifest.unit_count, manifest.dim,
                                    types.get("units") == "FLAT"),
        _units=units, _chunk_units=chunk_units, _lexical=MilvusLexical(client, f"{generation}_chunks"),
        out_of_date=out_of_date, generation=generation,
    )


def live_generation(settings: Settings) -> str:
    """The generation the store's alias points at now: another replica's build moves it."""
    client = connect(settings)
    return _call("find the index", client.describe_alias, settings.store_collection)["collection_name"].removesuffix("_meta")


def _all_rows(client, collection: str, count: int, fields: list[str]) -> Iterator[dict]:  # noqa: ANN001
    """Rows 0 … count-1 of a collection, a batch of primary keys at a time."""
    for start in range(0, count, BATCH * 4):  # reads are lighter than inserts: 2,048 rows a request (not tuned)
        end = min(start + BATCH * 4, count)
        yield from _call("read the index", client.query, collection, filter=f"id >= {start} and id < {end}",
                         output_fields=fields, limit=end - start)
