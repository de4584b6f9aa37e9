"""Speed benchmark: prints figures, asserts nothing.

    python -m qa.bench [--corpus DIR] [--questions eval/questions.jsonl] [--repeat 3]

Prints: a cold `qa index` process (imports and model load included), the in-process build time,
embedding throughput (chunk vectors and sentence vectors), and retrieval latency p50/p95 over the
questions (dense, BM25 and the fused hybrid search), with the models warm.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from qa.chunking import embedding_text
from qa.config import Settings
from qa.index import build_index, load_index
from qa.models import get_embedder
from qa.retrieve import Retriever


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=None)
    parser.add_argument("--questions", type=Path, default=Path("eval/questions.jsonl"))
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    base = Settings.from_env(corpus_dir=args.corpus)

    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings.from_env(corpus_dir=base.corpus_dir, index_dir=Path(tmp) / "index")
        began = time.perf_counter()
        cold = subprocess.run(
            [sys.executable, "-m", "qa", "index", "--corpus", str(settings.corpus_dir), "--index", str(settings.index_dir)],
            capture_output=True,
            text=True,
        )
        cold_s = time.perf_counter() - began
        if cold.returncode != 0:
            print(cold.stderr, file=sys.stderr)
            return 1
        print(f"cold `qa index` process:      {cold_s:6.2f} s  ({cold.stdout.strip()})")

        embedder = get_embedder(settings.embed_model, settings.threads)
        began = time.perf_counter()
        embedder.warm_up()
        print(f"embedding model load:         {time.perf_counter() - began:6.2f} s")
        summary = build_index(settings, embedder, progress=False)
        print(f"in-process build (warm model): {summary.seconds:5.2f} s  ({summary.documents} documents, {summary.chunks} chunks)")

        index = load_index(settings, embedder.name)
        chunk_texts = [embedding_text(index.title(c), c.section, c.text) for c in index.chunks]
        unit_texts = [
            embedding_text(index.title(index.chunks[row]), index.chunks[row].section, index.chunks[row].text[s - index.chunks[row].start : e - index.chunks[row].start])
            for row, s, e in index.units.tolist()
        ]
        for label, texts in (("chunk vectors", chunk_texts), ("sentence vectors", unit_texts)):
            began = time.perf_counter()
            embedder.embed(texts)
            seconds = time.perf_counter() - began
            print(f"embedding {label + ':':18s} {len(texts) / seconds:6.1f} per s ({len(texts)} in {seconds:.2f} s)")
        both = len(chunk_texts) / (summary.seconds)
        print(f"indexing throughput:          {both:6.1f} chunks/s (everything a build does, per chunk)")

        questions = [json.loads(line)["question"] for line in args.questions.open(encoding="utf-8") if line.strip()]
        retriever = Retriever(index, embedder, settings)
        timings: dict[str, list[float]] = {"dense": [], "bm25": [], "hybrid": []}
        calls = {
            "dense": lambda q: retriever.dense(q, settings.candidates),
            "bm25": lambda q: retriever.lexical(q, settings.candidates),
            "hybrid": lambda q: retriever.search(q, settings.k),
        }
        retriever.search("warm up", 1)
        for _ in range(args.repeat):
            for question in questions:
                for name, call in calls.items():
                    began = time.perf_counter()
                    call(question)
                    timings[name].append((time.perf_counter() - began) * 1000)
        for name, values in timings.items():
            print(
                f"retrieval {name + ':':8s}            p50 {statistics.median(values):6.2f} ms   "
                f"p95 {percentile(values, 95):6.2f} ms   ({len(values)} queries)"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
