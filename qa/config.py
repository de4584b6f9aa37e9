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


def setting(default: object = dataclasses.MISSING, what: str = "", *, factory: object = None, shown: str = ""):  # noqa: ANN201
    """A field of `Settings`: its default (or `factory`), what it does, and how the settings table
    (`settings_table`, in docs/usage.md) shows the default where its value says little."""
    metadata = {"what": what, "shown": shown}
    if factory is not None:
        return dataclasses.field(default_factory=factory, metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


@dataclass(frozen=True, slots=True)
class Settings:
    corpus_dir: Path = setting(Path("corpus"), "where the documents are (folders are searched recursively)")
    index_dir: Path = setting(Path("index"), (
        "where the index is built and read (`QA_STORE` keeps it in Milvus instead)"
    ))
    embed_model: str = setting("minilm", (
        "the bundled English embedder; `e5` for multilingual-e5-small (questions in another language "
        "than the documents, see Models; with `QA_CHUNK_TOKENS=256 QA_CHUNK_OVERLAP_TOKENS=64` the option "
        "for long technical papers, the reader calibrated for it); or a local sentence-transformers "
        "folder. Changing it makes the index stale: run `qa index`"
    ))
    embed_url: str = setting("", (
        "embed with an OpenAI-compatible `/v1/embeddings` server serving `QA_EMBED_MODEL` "
        "(text-embeddings-inference, vLLM, llama.cpp's server, or `python -m qa.app.model_server "
        "--serve embeddings`) instead of in this process"
    ), shown="(none)")
    model: str = setting("smollm2", (
        "language model for generative mode: the bundled one, `qwen-0.5b` / `qwen-1.5b` once installed "
        "(`make model`, see Models), or a local transformers folder / `.gguf` file"
    ))
    reader_model: str = setting("", (
        "another reader: a folder of the same layout (`model.safetensors`, `calibration.json`), e.g. "
        "one made by `scripts/train_reader.py --out DIR`"
    ), shown="(the shipped `qa/reader_model/`)")
    models_dir: Path = setting(what=(
        "where `qa models install` puts opt-in models"
    ), factory=lambda: user_models_dir(os.environ), shown="`$XDG_DATA_HOME/docqa/models` (else `~/.local/share/docqa/models`)")
    cache_dir: Path = setting(what=(
        "where the embedder's and the reader's ONNX graphs are kept once written (~2 s on first use; "
        "~59 MB each in int8, one per model: when one is written, graphs of older weights and graphs "
        "unused for 30 days are deleted); a folder that cannot be written costs those seconds on each "
        "start"
    ), factory=lambda: user_cache_dir(os.environ), shown="`$XDG_CACHE_HOME/docqa` (else `~/.cache/docqa`)")
    generator_url: str = setting("", (
        "generate with an OpenAI-compatible server instead (vLLM, llama.cpp server, TGI, or `python -m "
        "qa.app.model_server`); `QA_MODEL` is then the model name sent to it"
    ), shown="(none)")
    answer_mode: str = setting("evidence", "`evidence` (quoted sentences) or `generative` (the language model writes)")
    generative: str = setting("auto", (
        "whether the page offers generative mode: `auto` only with a language model stronger than the "
        "bundled 135M one (`QA_MODEL` other than `smollm2`, `QA_GENERATOR_URL`, or "
        "`QA_ANSWER_MODE=generative`) — the bundled model's drafts rarely survive checking, so the page "
        "says how to install a stronger one instead; `on` always, `off` never. The answers API and MCP "
        "take either mode"
    ))
    max_new_tokens: int = setting(96, (
        "generative mode: the most tokens the language model writes (the prompt asks for one to three "
        "sentences)"
    ))
    prompt_sentences: int = setting(4, (
        "generative mode: the reader's most probable proof sentences the language model is shown (not "
        "measured on held-out data, hence a setting)"
    ))
    min_support: float = setting(0.75, (
        "generative mode: the share of a generated sentence's content words one sentence of a cited "
        "passage must hold for the sentence to stand (not measured on held-out data, hence a setting)"
    ))
    chunk_tokens: int = setting(160, "the most embedder tokens in a passage (chunk); a chunk never cuts a sentence")
    chunk_overlap_tokens: int = setting(40, (
        "whole sentences carried over from the previous chunk, up to this many tokens"
    ))
    k: int = setting(5, "passages shown to the answerer")
    reader_windows: int = setting(8, (
        "sentences (each with its neighbours) of those passages the reader reads per question"
    ))
    evidence_overlap_weight: float = setting(0.5, (
        "how those sentences are ranked: cosine to the question + this × the share of the question's "
        "content words in the sentence (measured on TUNE: see The reader)"
    ))
    reader_context: str = setting("sentence", (
        "what the reader reads around each of those sentences: `sentence` (it and one neighbour each "
        "side that fits) or `wide` (neighbours added while they fit its 128 tokens); see The reader"
    ))
    passage_vectors: bool = setting(False, (
        "`1`: each passage (chunk) also gets a vector of its own, scored beside its sentences'. Off by "
        "default: nothing embeds whole passages, so `qa index` embeds about half the tokens (1.5–2.2× "
        'faster here) and held-out retrieval moved by under 0.01 (see Benchmark, "Indexing, since"). '
        "An index with passage vectors serves either setting; one without is stale for `1`. Kept as an "
        "option although its measured effect is nil: an embedder other than the bundled one may need it"
    ))
    encoder_precision: str = setting("int8", (
        "the embedder's and the reader's matrix products on ONNX Runtime: `int8` (dynamic quantisation, "
        "about twice as fast here; quality within 0.01, see Models) or `fp32`. Part of the index's "
        "fingerprint: changing it makes the index stale"
    ))
    candidates: int = setting(50, "passages each retriever (dense, BM25) proposes before their rankings are fused")
    rrf_k: int = setting(10, (
        "the reciprocal rank fusion constant: a passage scores 1/(QA_RRF_K + rank) per retriever (10 "
        "rather than the usual 60: retrieval on the tune articles and COVID-QA a little better, answers "
        "equal; see Evaluation)"
    ))
    ann_threshold: int = setting(20_000, (
        "a vector index holding more vectors than this is built as HNSW (approximate) instead of exact; "
        "takes effect at the next `qa index`"
    ))
    store: str = setting("", (
        "keep the index in Milvus: `milvus-lite:PATH` (a local Milvus in PATH, needs `pip install -e "
        "'.[milvus]'`) or `milvus://HOST:PORT` (a Milvus server or cluster); same as `--store` (see "
        "Scaling out)"
    ), shown="(none: the index folder)")
    store_collection: str = setting("docqa", (
        "the name of the index in that store (its collections start with it); one store can hold "
        "several"
    ))
    store_token: str = setting("", (
        "`user:password` or an API key for a Milvus server that asks for one"
    ), shown="(none)")
    max_question_chars: int = setting(2000, "longer questions are refused with a message")
    max_file_mb: int = setting(20, (
        "the per-file limit for indexing (bigger files are skipped by name) and for uploads (refused)"
    ))
    max_units_per_file: int = setting(100_000, (
        "sentence units (sentences, list lines, 2,000-character pieces of a line) indexed per file; the "
        "rest of a longer file is left out with a warning, and the build's message (the upload's too) "
        "names the file"
    ))
    threads: int = setting(max(1, min(4, os.cpu_count() or 1)), (
        "threads of the models (ONNX Runtime, llama.cpp, torch); more than the machine's cores is "
        "refused with a message"
    ), shown="cores (≤ 4)")
    auth: str = setting("", (
        "`user:password`: the web app asks for this login (and the answers API and MCP endpoint ask for "
        "the password as a bearer key)"
    ), shown="(none)")
    api_key: str = setting("", (
        "the bearer key the answers API (`/v1`) and the MCP endpoint require (see Use it from other "
        "tools); without `QA_AUTH` the page asks for it as a login (any name, the key as password), and "
        "everything the page calls (ask, upload, remove, rebuild) needs that login"
    ), shown="(none)")
    rate_limit: int = setting(30, "questions per client address per minute in the web app; `0`: no limit")
    allowed_hosts: str = setting("", (
        "host names the web app answers for besides loopback, IP addresses, this machine's names and "
        "`--host` (comma-separated; `.example.org` for its subdomains; `*` for any); a request naming "
        "another host in `Host` or `Origin` is refused (400/403), so a foreign page cannot act through "
        "a visitor's browser (DNS rebinding)"
    ), shown="(none)")
    trusted_proxies: str = setting("", (
        "addresses or networks of reverse proxies whose `X-Forwarded-For` gives the client address (for "
        "the rate limit); from anyone else the header is ignored"
    ), shown="(none)")
    max_request_mb: int = setting(2, (
        "request bodies over this (uploads: 5 × `QA_MAX_FILE_MB`) are refused with 413 from their "
        "length, before they are read or a login is checked"
    ))
    upload_cache_minutes: int = setting(60, (
        "the web app deletes Gradio's cached copies of uploads older than this (the documents "
        "themselves are copied into `corpus/`)"
    ))
    mcp: bool = setting(False, "`1`: `qa serve` also serves the MCP tools at `/mcp` (same as `--mcp`)")
    feedback_file: str = setting("", (
        "where the chat's 👍/👎 are kept (JSON Lines)"
    ), shown="`feedback.jsonl` beside the index folder")
    browser_key: str = setting("", (
        "the key the page encrypts what it keeps in the browser with (conversation, settings)"
    ), shown="(a key made once, in `.docqa-browser-key` beside the index folder)")

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


def settings_table() -> str:
    """The settings table of docs/usage.md, one row per field of `Settings` (`scripts/settings_table.py` writes it there).

    >>> settings_table().splitlines()[2]
    '| `QA_CORPUS_DIR` | `corpus` | where the documents are (folders are searched recursively) |'
    """
    rows = ["| variable | default | what it does |", "|---|---|---|"]
    for f in dataclasses.fields(Settings):
        default = f.metadata["shown"] or (f"`{int(f.default)}`" if isinstance(f.default, bool) else f"`{f.default}`")
        rows.append(f"| `QA_{f.name.upper()}` | {default} | {f.metadata['what']} |")
    return "\n".join(rows) + "\n"


ANSWER_MODES = ("evidence", "generative")
READER_CONTEXTS = ("sentence", "wide")
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
