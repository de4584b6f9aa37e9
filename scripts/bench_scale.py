"""Scale benchmark (prints figures, asserts nothing): synthetic corpora of about N chunks.

    python scripts/bench_scale.py [--sizes 1000,10000] [--questions eval/questions.jsonl] [--store files,milvus-lite]

The corpus for each size is made from the seed article's sentences, reshuffled with a fixed seed
into documents of five sections. Each size is built in a child process (so its peak RSS is its
own) by `qa.index.build.build_index` with the product's settings (so an index above
`ann_threshold` vectors is HNSW) and the real embedder behind a small cache: every chunk is
embedded for real, but a sentence that recurs under the same heading is embedded once. The
figures say how many texts were really embedded and at what rate, and project the build time
had every sentence been embedded ("build_all_real_s").

`--store` measures each size on each store: the index folder (FAISS + bm25s) and a local Milvus
(`milvus-lite`, embedded in the process, so its memory counts in the process's RSS).

Printed per size: build time, chunks/s, index size on disk, peak RSS of the build, retrieval
p50/p95 (dense, BM25, hybrid) and, for the chunk and sentence vector indexes, the index type,
an HNSW index's recall@10 against the exact search (ties counted: a hit is any row scoring at
least the exact 10th score, since reshuffled sentences repeat) and both searches' latency; for
a Milvus store, the recall@10 and latency of Milvus' own search (exact FLAT or HNSW).
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from qa.config import Settings
from qa.evaluation.evaluate import peak_rss_mb, percentile
from qa.index.build import build_index
from qa.index.store import load_index
from qa.index.vectors import SQ_TRAINING_SAMPLE, Vectors, hnsw
from qa.ingest.readers import parse_sections, read_document
from qa.sentences import sentence_spans

SEED = Path("corpus") / "japan_south_korea_relations.txt"


class CachingEmbedder:
    """The real embedder, remembering the last `size` distinct texts (enough for the recurring
    sentences, too few to keep every chunk) and counting what it really embedded."""

    def __init__(self, inner, size: int = 8192) -> None:  # noqa: ANN001
        self.inner, self.name, self.size = inner, inner.name, size
        self.cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self.embedded = self.requested = 0
        self.seconds = 0.0

    @property
    def dim(self) -> int:
        return self.inner.dim

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        self.requested += len(texts)
        missing = list(dict.fromkeys(t for t in texts if t not in self.cache))
        found = {t: self.cache[t] for t in texts if t in self.cache}
        if missing:
            began = time.perf_counter()
            found.update(zip(missing, self.inner.embed(missing)))
            self.seconds += time.perf_counter() - began
            self.embedded += len(missing)
        for text in texts:
            self.cache[text] = found[text]
            self.cache.move_to_end(text)
        while len(self.cache) > self.size:
            self.cache.popitem(last=False)
        return np.stack([found[t] for t in texts]).astype(np.float32)

    def embed_query(self, text: str) -> np.ndarray:
        return self.inner.embed_query(text)

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        return self.inner.count_tokens(texts)


def seed_sentences(seed: Path) -> list[str]:
    doc = read_document(seed, seed.parent)
    sentences = []
    for section in parse_sections(doc.text):
        for a, b in sentence_spans(doc.text, section.start, section.end):
            text = doc.text[a:b]
            if len(text) > 40 and not text.startswith(("-", "Infobox")):
                sentences.append(text)
    return sentences


def write_corpus(folder: Path, chunks: int, sentences: list[str], rng: random.Random) -> None:
    """About `chunks` chunks of reshuffled sentences (a chunk holds about four)."""
    folder.mkdir(parents=True)
    remaining, number = chunks * 4, 0
    while remaining > 0:
        number += 1
        parts = ["= Synthetic document =", ""]  # one title, so a sentence recurs under the same heading
        for part in range(1, 6):
            parts += [f"== Part {part} ==", ""]
            for _ in range(4):
                paragraph = rng.sample(sentences, 6)
                parts += [" ".join(paragraph), ""]
                remaining -= 6
        (folder / f"doc{number:05d}.txt").write_text("\n".join(parts), encoding="utf-8")


def tie_aware_recall(truth_scores: np.ndarray, found_scores: np.ndarray) -> float:
    """Share of the approximate top-k that scores at least the exact k-th score, per query, averaged."""
    floor = truth_scores[:, -1:] - 1e-5
    return float(np.mean((found_scores >= floor).sum(axis=1) / truth_scores.shape[1]))


def compare_with_exact(label: str, index, spooled: Path, queries: np.ndarray, figures: dict) -> None:  # noqa: ANN001
    """Index type, HNSW recall@10 vs an exact search over the float32 vectors as embedded (kept
    from the build's spool file), and both latencies, for one vector index."""
    import faiss

    vectors = np.fromfile(spooled, dtype=np.float32).reshape(-1, index.dim)
    spooled.unlink()
    exact = faiss.IndexFlatIP(index.dim)
    exact.add(vectors)
    if index.kind == "IndexHNSWSQ" or index.kind.startswith("Milvus"):  # the store's own search, as the product runs it
        ann = index
    else:  # small enough to be exact in the product; build the HNSW it would get, to compare
        graph = hnsw(index.dim, vectors[:: max(1, len(vectors) // SQ_TRAINING_SAMPLE)])
        graph.add(vectors)
        ann = Vectors(graph)
    timings = {}
    found = {}
    for name, searched in (("exact", Vectors(exact)), ("hnsw", ann)):
        began = time.perf_counter()
        found[name] = np.stack([searched.search(q[None, :], 10)[1][0] for q in queries])
        timings[name] = (time.perf_counter() - began) * 1000 / len(queries)
    # Score what each search found with the float32 vectors, so quantised scores don't count.
    true_scores = {name: np.einsum("qkd,qd->qk", vectors[ids], queries) for name, ids in found.items()}
    del vectors
    figures[f"{label}_index"] = index.kind
    figures[f"{label}_hnsw_recall@10"] = round(tie_aware_recall(true_scores["exact"], true_scores["hnsw"]), 3)
    figures[f"{label}_exact_ms"] = round(timings["exact"], 2)
    figures[f"{label}_hnsw_ms"] = round(timings["hnsw"], 2)


def one_size(chunks: int, work: Path, questions: list[str], store: str) -> dict:
    """Build and measure one size on one store (run in a child process)."""
    from qa.answer.retrieve import Retriever
    from qa.models.embedders import get_embedder

    settings = Settings.from_env(corpus_dir=work / "corpus", index_dir=work / "index",
                                 store="" if store == "files" else f"milvus-lite:{work / 'milvus' / 'm.db'}")
    write_corpus(settings.corpus_dir, chunks, seed_sentences(SEED), random.Random(chunks))
    embedder = CachingEmbedder(get_embedder(settings.embed_model, settings.threads, cache_dir=settings.cache_dir,
                                     precision=settings.encoder_precision))
    embedder.inner.warm_up()
    summary = build_index(settings, embedder, progress=False, keep_vectors=work)  # for the exact comparison
    build_rss = peak_rss_mb()
    index = load_index(settings, embedder.name)
    rate = embedder.embedded / embedder.seconds
    figures = {
        "chunks": summary.chunks,
        "sentences": index.sentence_count,
        "build_s": round(summary.seconds, 1),
        "chunks_per_s": round(summary.chunks / summary.seconds, 1),
        "embedded": embedder.embedded,
        "embedded_per_s": round(rate, 1),
        "build_all_real_s": round(summary.seconds + (embedder.requested - embedder.embedded) / rate, 1),
        "index_mb": round(sum(p.stat().st_size for folder in (settings.index_dir, work / "milvus")
                              for p in folder.rglob("*") if p.is_file()) / 2**20, 1),
        "build_peak_rss_mb": build_rss,
    }
    retriever = Retriever(index, embedder.inner, settings)  # queries are embedded for real
    calls = {
        "dense": lambda q: retriever.dense(q, settings.candidates),
        "bm25": lambda q: retriever.lexical(q, settings.candidates),
        "hybrid": lambda q: retriever.search(q, settings.k),
    }
    for name, call in calls.items():
        timings = []
        for question in questions:
            began = time.perf_counter()
            call(question)
            timings.append((time.perf_counter() - began) * 1000)
        figures[f"{name}_p50_ms"] = round(statistics.median(timings), 2)
        figures[f"{name}_p95_ms"] = round(percentile(timings, 95), 2)
    queries = np.concatenate([embedder.inner.embed_query(q) for q in questions])
    for label, spooled in (("chunks", "vectors.spool"), ("sentences", "units.spool")):
        if index.vector_indexes[label].count:  # no chunk vectors without QA_PASSAGE_VECTORS
            compare_with_exact(label, index.vector_indexes[label], work / spooled, queries, figures)
    figures["peak_rss_mb"] = peak_rss_mb()
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,10000", help="comma-separated chunk counts")
    parser.add_argument("--questions", type=Path, default=Path("eval/questions.jsonl"))
    parser.add_argument("--store", default="files", help="comma-separated: files, milvus-lite")
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--work", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    questions = [json.loads(line)["question"] for line in args.questions.open(encoding="utf-8") if line.strip()][:50]
    if args.one:
        print(json.dumps(one_size(args.one, args.work, questions, args.store)))
        return 0
    for size in (int(s) for s in args.sizes.split(",")):
        for store in args.store.split(","):
            with tempfile.TemporaryDirectory() as tmp:
                child = subprocess.run(
                    [sys.executable, __file__, "--one", str(size), "--work", tmp, "--questions", str(args.questions),
                     "--store", store],
                    capture_output=True, text=True,
                )
            if child.returncode != 0:
                print(child.stderr[-2000:], file=sys.stderr)
                return 1
            figures = json.loads(child.stdout.strip().splitlines()[-1])
            print(f"N≈{size} {store}: " + ", ".join(f"{k} {v}" for k, v in figures.items()), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
