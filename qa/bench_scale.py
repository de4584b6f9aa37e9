"""Scale benchmark (prints figures, asserts nothing): synthetic corpora of about N chunks.

    python -m qa.bench_scale [--sizes 1000,10000] [--questions eval/questions.jsonl]

The corpus for each size is made from the seed article's sentences, reshuffled with a fixed seed
into documents of several sections. Each size is built in a child process (so its peak RSS is its
own) with the real embedder behind a cache: a repeated sentence is embedded once, every chunk is
embedded for real. Printed per size: build time, chunks/s, index size on disk, peak RSS, retrieval
p50/p95 (dense, BM25, hybrid) and, for an HNSW index over the same chunk and sentence vectors,
its recall@10 against the exact search and its latency.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from qa.chunking import sentence_spans
from qa.config import Settings
from qa.corpus import parse_sections, read_document

SEED = Path("corpus") / "japan_south_korea_relations.txt"


class CachingEmbedder:
    """The real embedder, embedding each distinct text once."""

    def __init__(self, inner) -> None:  # noqa: ANN001
        self.inner, self.name, self.cache = inner, inner.name, {}

    @property
    def dim(self) -> int:
        return self.inner.dim

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        missing = list(dict.fromkeys(t for t in texts if t not in self.cache))
        if missing:
            self.cache.update(zip(missing, self.inner.embed(missing)))
        return np.stack([self.cache[t] for t in texts]).astype(np.float32)

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
        parts = [f"= Synthetic document {number} =", ""]
        for part in range(1, 6):
            parts += [f"== Part {part} ==", ""]
            for _ in range(4):
                paragraph = rng.sample(sentences, 6)
                parts += [" ".join(paragraph), ""]
                remaining -= 6
        (folder / f"doc{number:05d}.txt").write_text("\n".join(parts), encoding="utf-8")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def one_size(chunks: int, work: Path, questions: list[str]) -> dict:
    """Build and measure one size (run in a child process)."""
    import faiss

    from qa.index import build_index, load_index
    from qa.models import get_embedder
    from qa.retrieve import Retriever

    settings = Settings(corpus_dir=work / "corpus", index_dir=work / "index")
    write_corpus(settings.corpus_dir, chunks, seed_sentences(SEED), random.Random(chunks))
    embedder = CachingEmbedder(get_embedder(settings.embed_model, settings.threads))
    embedder.inner.warm_up()
    summary = build_index(settings, embedder, progress=False)
    index = load_index(settings, embedder.name)
    retriever = Retriever(index, embedder.inner, settings)  # queries are embedded for real
    figures = {
        "chunks": summary.chunks,
        "sentences": int(index.unit_vectors.ntotal),
        "build_s": round(summary.seconds, 1),
        "chunks_per_s": round(summary.chunks / summary.seconds, 1),
        "index_mb": round(sum(p.stat().st_size for p in settings.index_dir.rglob("*") if p.is_file()) / 2**20, 1),
    }
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
    queries = embedder.inner.embed(questions)
    for label, exact in (("chunks", index.vectors), ("sentences", index.unit_vectors)):
        vectors = exact.reconstruct_n(0, exact.ntotal)
        began = time.perf_counter()
        hnsw = faiss.IndexHNSWFlat(exact.d, 32, faiss.METRIC_INNER_PRODUCT)
        hnsw.hnsw.efConstruction = 80
        hnsw.add(vectors)
        built = time.perf_counter() - began
        hnsw.hnsw.efSearch = 128
        _, truth = exact.search(queries, 10)
        began = time.perf_counter()
        _, found = hnsw.search(queries, 10)
        per_query = (time.perf_counter() - began) * 1000 / len(questions)
        recall = float(np.mean([len(set(a) & set(b)) / 10 for a, b in zip(truth, found)]))
        figures[f"hnsw_{label}_recall@10"] = round(recall, 3)
        figures[f"hnsw_{label}_ms"] = round(per_query, 2)
        figures[f"hnsw_{label}_build_s"] = round(built, 1)
    figures["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,10000", help="comma-separated chunk counts")
    parser.add_argument("--questions", type=Path, default=Path("eval/questions.jsonl"))
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--work", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    questions = [json.loads(line)["question"] for line in args.questions.open(encoding="utf-8") if line.strip()][:50]
    if args.one:
        print(json.dumps(one_size(args.one, args.work, questions)))
        return 0
    for size in (int(s) for s in args.sizes.split(",")):
        with tempfile.TemporaryDirectory() as tmp:
            child = subprocess.run(
                [sys.executable, "-m", "qa.bench_scale", "--one", str(size), "--work", tmp, "--questions", str(args.questions)],
                capture_output=True, text=True,
            )
        if child.returncode != 0:
            print(child.stderr[-2000:], file=sys.stderr)
            return 1
        figures = json.loads(child.stdout.strip().splitlines()[-1])
        print(f"N≈{size}: " + ", ".join(f"{k} {v}" for k, v in figures.items()), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
