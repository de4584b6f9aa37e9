"""The index's manifest (`manifest.json`, written last): what shaped the index and what it holds.

It records the fingerprint of everything that shaped the vectors and tokens (embedding model and
dimension, chunking settings, BM25 settings), each source file's sha256/size/mtime, a sha256 of
every index file, the vector counts and types, build time and package version. Reading it
checks its shape; comparing it with the settings and the corpus folder says why an index cannot
serve (another model or settings) or is out of date (files added, changed or removed).
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from qa import __version__
from qa.config import Settings
from qa.errors import CorruptIndexError, MissingIndexError, StaleIndexError
from qa.index.swap import settle
from qa.ingest.corpus import file_sha256, find_files
from qa.models.onnx_bert import RUNTIME_VERSION
from qa.text import BM25_STOPWORDS, STEMMER

FORMAT_VERSION = 1
CHUNKER_VERSION = 3  # bump when ingest/ or sentences.py change what they produce


def fingerprint(settings: Settings, embed_model: str, dim: int) -> dict:
    """Everything that shapes the index's vectors and tokens: an index can serve (or be reused by)
    settings with the same fingerprint."""
    return {
        "embedding": {"model": embed_model, "dim": dim},
        # "sentences": each sentence embedded alone (pooling them from their passage was measured
        # worse and removed; kept so existing indexes stay fresh). Precision: the bundled BERT's.
        "encoding": {"sentences": "own", "passages": settings.passage_vectors,
                     "precision": settings.encoder_precision, "runtime": RUNTIME_VERSION},
        "chunking": {"version": CHUNKER_VERSION, "tokens": settings.chunk_tokens, "overlap": settings.chunk_overlap_tokens,
                     "max_units": settings.max_units_per_file},
        "bm25": {"stopwords": BM25_STOPWORDS, "stemmer": STEMMER},
    }


@dataclass(frozen=True, slots=True)
class SourceRecord:
    """A corpus file as the build saw it; `indexed` is False for a file it skipped."""

    sha256: str
    size: int
    mtime_ns: int
    indexed: bool


@dataclass(frozen=True, slots=True)
class Manifest:
    shaped_by: dict  # the `fingerprint` the index was built with
    chunk_count: int
    unit_count: int
    vector_types: dict[str, str]  # file name -> FAISS index type
    sources: dict[str, SourceRecord]  # corpus-relative path -> record
    files: dict[str, str]  # index-relative path -> sha256
    built_at: str = dataclasses.field(default_factory=lambda: datetime.now(timezone.utc).isoformat(timespec="seconds"))
    qa_version: str = __version__

    @property
    def embed_model(self) -> str:
        return self.shaped_by["embedding"]["model"]

    @property
    def dim(self) -> int:
        return self.shaped_by["embedding"]["dim"]

    @property
    def passage_vectors(self) -> bool:
        """Whether the index holds a vector per passage (indexes built before the choice all do)."""
        return bool(self.shaped_by.get("encoding", {}).get("passages", True))

    def to_json(self) -> dict:
        return {
            "format": FORMAT_VERSION,
            "qa_version": self.qa_version,
            "built_at": self.built_at,
            **self.shaped_by,
            "vectors": {"count": self.chunk_count, "units": self.unit_count, "types": self.vector_types},
            "sources": {rel: {"sha256": r.sha256, "size": r.size, "mtime_ns": r.mtime_ns, "indexed": r.indexed}
                        for rel, r in self.sources.items()},
            "files": self.files,
        }

    @classmethod
    def from_json(cls, raw: dict) -> Manifest:
        """From a manifest whose shape `manifest_problem` accepted."""
        return cls(
            shaped_by={key: raw[key] for key in ("embedding", "chunking", "bm25", "encoding") if key in raw},
            chunk_count=raw["vectors"]["count"],
            unit_count=raw["vectors"]["units"],
            vector_types=raw["vectors"]["types"],
            sources={rel: SourceRecord(*(entry[key] for key in _SOURCE_SHAPE)) for rel, entry in raw["sources"].items()},
            files=raw["files"],
            built_at=raw["built_at"],
            qa_version=str(raw.get("qa_version", "")),
        )

    def indexed_sha256(self) -> dict[str, str]:
        """path -> sha256 of the documents the index holds."""
        return {rel: r.sha256 for rel, r in self.sources.items() if r.indexed}


def read_manifest(index_dir: Path) -> Manifest:
    settle(index_dir)
    path = index_dir / "manifest.json"
    if not path.is_file():
        raise MissingIndexError(f"no index in {index_dir}/: run `qa index` to build it")
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        if isinstance(raw, dict) and raw.get("format") != FORMAT_VERSION:
            raise StaleIndexError(
                f"index in {index_dir}/ has format {raw.get('format')}, this version reads {FORMAT_VERSION}: run `qa index`"
            )
        problem = manifest_problem(raw)
    except (OSError, ValueError) as error:
        problem = str(error)
    if problem:
        raise CorruptIndexError(f"index is corrupt ({path}: {problem}): run `qa index`")
    return Manifest.from_json(raw)


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


def _shape_problem(value: object, shape: object, where: str) -> str:
    if isinstance(shape, dict):
        if not isinstance(value, dict):
            return f"{where or 'the manifest'} is not an object"
        for key, inner in shape.items():
            path = f"{where + '.' if where else ''}{key}"
            if key not in value:
                return f"{path} is missing"
            problem = _shape_problem(value[key], inner, path)
            if problem:
                return problem
        return ""
    if not isinstance(value, shape) or (shape is int and isinstance(value, bool)):  # type: ignore[arg-type]
        return f"{where} is {type(value).__name__}, not {shape.__name__}"  # type: ignore[union-attr]
    return ""


def manifest_problem(manifest: object) -> str:
    """What is wrong with a manifest's shape, or "" when every key the code reads is there with
    the right type.

    >>> manifest_problem({"built_at": 1})
    'built_at is int, not str'
    """
    problem = _shape_problem(manifest, _MANIFEST_SHAPE, "")
    if problem:
        return problem
    for rel, entry in manifest["sources"].items():  # type: ignore[index]
        problem = _shape_problem(entry, _SOURCE_SHAPE, f"sources[{rel!r}]")
        if problem:
            return problem
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in manifest["files"].items()):  # type: ignore[index]
        return "files must map names to checksums"
    return ""


def check_files(index_dir: Path, manifest: Manifest) -> None:
    for rel, expected in manifest.files.items():
        path = index_dir / rel
        if not path.is_file() or file_sha256(path) != expected:
            raise CorruptIndexError(f"index is corrupt ({path} is missing or damaged): run `qa index`")


def mismatch_reasons(settings: Settings, manifest: Manifest, embed_model: str | None) -> list[str]:
    """Why the index cannot serve these settings (another embedding model, chunking or BM25)."""
    wanted = fingerprint(settings, embed_model or manifest.embed_model, manifest.dim)
    reasons = []
    if wanted["embedding"] != manifest.shaped_by["embedding"]:
        reasons.append(f"built with embedding model {manifest.embed_model!r}, now {embed_model!r}")
    if wanted["chunking"] != manifest.shaped_by["chunking"]:
        reasons.append("built with other chunking settings")
    if wanted["bm25"] != manifest.shaped_by["bm25"]:
        reasons.append("built with other BM25 settings")
    # Keys an older manifest lacks: what was built before they were recorded.
    built = {"sentences": "own", "precision": "bf16", "runtime": 1, **manifest.shaped_by.get("encoding", {})}
    now = wanted["encoding"]
    if (built["sentences"], built["precision"]) != (now["sentences"], now["precision"]):
        reasons.append(f"built with {built['sentences']} sentence vectors in {built['precision']}, now "
                       f"{now['sentences']} in {now['precision']}")
    elif built["runtime"] != now["runtime"]:
        reasons.append("its vectors were computed by an older version of the encoder runtime")
    if now["passages"] and not built.get("passages", True):  # one with passage vectors serves either way
        reasons.append("built without passage vectors, now with them (QA_PASSAGE_VECTORS)")
    return reasons


def corpus_changes(settings: Settings, manifest: Manifest) -> list[str]:
    """Files added, changed or removed in the corpus folder since the index was built."""
    recorded = manifest.sources
    current = {p.relative_to(settings.corpus_dir).as_posix(): p for p in find_files(settings.corpus_dir)}
    added = sorted(set(current) - set(recorded))
    removed = sorted(set(recorded) - set(current))
    changed = sorted(rel for rel in set(current) & set(recorded) if file_changed(current[rel], recorded[rel]))
    reasons = []
    for label, names in (("added", added), ("changed", changed), ("removed", removed)):
        if names:
            shown = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
            reasons.append(f"{len(names)} {label} ({shown})")
    return reasons


def file_changed(path: Path, record: SourceRecord) -> bool:
    try:
        stat = path.stat()
    except OSError:
        return True  # gone or unreadable since it was listed
    if stat.st_size == record.size and stat.st_mtime_ns == record.mtime_ns:
        return False
    return file_sha256(path) != record.sha256
