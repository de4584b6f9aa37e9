"""Speed benchmark: prints figures, asserts nothing.

    python scripts/bench.py [--corpus DIR] [--questions eval/questions.jsonl] [--repeat 3] [--answers 10]

Prints: a cold `qa ask` process (median of 3: wall, CPU and peak memory, the ONNX graphs already
cached), a cold `qa index` process (imports and model load included), the in-process build time,
embedding throughput (chunk vectors and sentence vectors), retrieval latency p50/p95 over the
questions (dense, BM25 and the fused hybrid search), then, for the first N questions, the
reader's latency (over --repeat rounds), answer latency (first piece and whole answer, p50) in each answer mode
(evidence answers over --repeat rounds), generation speed and peak RSS.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from qa.answer.retrieve import Retriever
from qa.config import Settings
from qa.evaluation.evaluate import peak_rss_mb, percentile
from qa.index.build import build_index
from qa.index.loaded import Index
from qa.index.store import load_index
from qa.ingest.chunking import embedding_text
from qa.models.embedders import get_embedder


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=None)
    parser.add_argument("--questions", type=Path, default=Path("eval/questions.jsonl"))
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--answers", type=int, default=10, metavar="N", help="questions to answer per mode (0: skip)")
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
        print(f"cold `qa index` process:      {cold_s:6.2f} s  ({'; '.join(cold.stdout.split(chr(10))).strip('; ')})")
        bench_cold_ask(settings, COLD_QUESTION)

        # As `qa index` runs it (alone in its process), then as the app and `qa ask` do.
        indexer, embedder = (get_embedder(settings.embed_model, settings.threads, cache_dir=settings.cache_dir,
                                          precision=settings.encoder_precision, alone=alone) for alone in (True, False))
        began = time.perf_counter()
        embedder.warm_up()
        print(f"embedding model load:         {time.perf_counter() - began:6.2f} s")
        indexer.warm_up()
        # A fresh folder: building over the cold index would reuse its vectors (incremental).
        settings = Settings.from_env(corpus_dir=base.corpus_dir, index_dir=Path(tmp) / "warm-index")
        summary = build_index(settings, indexer, progress=False)
        print(f"in-process build (warm model): {summary.seconds:5.2f} s  ({summary.documents} documents, {summary.chunks} chunks)")

        index = load_index(settings, embedder.name)
        bench_embedding(index, indexer, "as `qa index` does")
        bench_embedding(index, embedder, "as the app does")
        print(f"indexing throughput:          {len(index.chunks) / summary.seconds:6.1f} chunks/s "
              "(everything a build does, per chunk)")
        questions = [json.loads(line)["question"] for line in args.questions.open(encoding="utf-8") if line.strip()]
        bench_retrieval(Retriever(index, embedder, settings), settings, questions, args.repeat)
        if args.answers:
            bench_answers(settings, embedder, questions[: args.answers], args.repeat)
    return 0


COLD_QUESTION = "When did Japan and South Korea formally establish diplomatic relations?"
# Runs `qa` in this process' place and reports its peak memory (VmHWM is per process image, so
# unlike ru_maxrss it does not carry the benchmark's own memory into the child).
PEAK_PRINTER = ("import atexit, runpy, sys\n"
                "def peak():\n"
                "    line = next(l for l in open('/proc/self/status') if l.startswith('VmHWM'))\n"
                "    print('peak-kb', line.split()[1], file=sys.stderr)\n"
                "atexit.register(peak)\n"
                "sys.argv = ['qa'] + sys.argv[1:]\n"
                "runpy.run_module('qa', run_name='__main__')\n")


def bench_cold_ask(settings: Settings, question: str, repeat: int = 3) -> None:
    """A whole `qa ask` process, as a person at a terminal runs it: wall and CPU seconds, peak memory."""
    command = [sys.executable, "-c", PEAK_PRINTER, "ask", question, "--corpus", str(settings.corpus_dir),
               "--index", str(settings.index_dir)]
    subprocess.run(command, capture_output=True, text=True)  # builds the ONNX graphs if not yet cached
    walls, cpus, peaks = [], [], []
    for _ in range(repeat):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        began = time.perf_counter()
        done = subprocess.run(command, capture_output=True, text=True)
        walls.append(time.perf_counter() - began)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)
        peaks.append(int(done.stderr.split("peak-kb")[-1].split()[0]) / 1024 if "peak-kb" in done.stderr else 0)
        if done.returncode != 0:
            print(done.stderr, file=sys.stderr)
    print(f"cold `qa ask` process:        {statistics.median(walls):6.2f} s wall  {statistics.median(cpus):5.2f} s CPU  "
          f"peak {statistics.median(peaks):4.0f} MiB  (median of {repeat})")


def bench_embedding(index: Index, embedder, how: str) -> None:  # noqa: ANN001
    """Embedding throughput on the index's own sentence texts, and chunk texts when it has passage vectors."""
    chunk_texts = [embedding_text(index.title(c), c.section, c.text) for c in index.chunks]
    unit_texts = []
    for unit in range(index.sentence_count):
        owner = index.chunks[next(index.chunks_of_unit(unit))]
        unit_texts.append(embedding_text(index.title(owner), owner.section, index.sentence_text(unit)))
    kinds = (("chunk vectors", chunk_texts),) if index.manifest.passage_vectors else ()  # QA_PASSAGE_VECTORS
    for label, texts in (*kinds, ("sentence vectors", unit_texts)):
        began = time.perf_counter()
        embedder.embed(texts)
        seconds = time.perf_counter() - began
        print(f"embedding {label + ':':18s} {len(texts) / seconds:6.1f} per s ({len(texts)} in {seconds:.2f} s, {how})")


def bench_retrieval(retriever: Retriever, settings: Settings, questions: list[str], repeat: int) -> None:
    """Retrieval latency p50/p95: dense, BM25 and the fused hybrid search."""
    timings: dict[str, list[float]] = {"dense": [], "bm25": [], "hybrid": []}
    calls = {
        "dense": lambda q: retriever.dense(q, settings.candidates),
        "bm25": lambda q: retriever.lexical(q, settings.candidates),
        "hybrid": lambda q: retriever.search(q, settings.k),
    }
    retriever.search("warm up", 1)
    for _ in range(repeat):
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


def bench_reader(pipeline, questions: list[str], repeat: int = 3) -> None:  # noqa: ANN001
    """The reader's own latency per question (windows chosen and read; retrieval excluded)."""
    answerer, reader_ms, windows = pipeline.answerer, [], []
    for _ in range(repeat):
        for question in questions:
            _, passages = pipeline.search(question)
            vector = pipeline.embedder.embed_query(question)
            began = time.perf_counter()
            evidence = answerer.evidence(question, passages, vector)
            candidates = answerer.windows(question, evidence)
            pipeline.reader.read(question, candidates)
            reader_ms.append((time.perf_counter() - began) * 1000)
            windows.append(len(candidates))
    print(f"reader ({pipeline.reader.name}):    p50 {statistics.median(reader_ms):6.1f} ms   p95 "
          f"{percentile(reader_ms, 95):6.1f} ms   ({statistics.mean(windows):.1f} windows a question)")


def bench_answers(settings: Settings, embedder, questions: list[str], repeat: int = 1) -> None:  # noqa: ANN001
    """Answer latency per mode with warm models (evidence answers `repeat` times over, as they vary
    by ~10 % from round to round on a shared machine; generative once); streamed pieces (about one
    token each) per second of the generator; peak RSS."""
    from qa.pipeline import Pipeline

    pipeline = Pipeline(settings, embedder)
    began = time.perf_counter()
    pipeline.warm_up(generator=True)
    print(f"language model load:          {time.perf_counter() - began:6.2f} s ({pipeline.generator.name})")
    bench_reader(pipeline, questions)
    for mode in ("evidence", "generative"):
        first, total, tokens, seconds = [], [], 0, 0.0
        for question in questions * (repeat if mode == "evidence" else 1):
            stream = pipeline.ask_stream(question, mode=mode)
            pieces = list(stream)
            answer = stream.answer()
            first.append(answer.timings["first_token_ms"])
            total.append(answer.timings["total_ms"])
            if mode == "generative" and len(pieces) > 1:
                tokens += len(pieces) - 1
                seconds += (answer.timings["total_ms"] - answer.timings["first_token_ms"]) / 1000
        line = f"answers {mode + ':':12s}         first piece p50 {statistics.median(first):7.0f} ms   whole p50 {statistics.median(total):7.0f} ms   p95 {percentile(total, 95):7.0f} ms"
        if tokens:
            line += f"   {tokens / seconds:.1f} pieces/s"
        print(line)
    print(f"peak RSS:                     {peak_rss_mb():6d} MB")


if __name__ == "__main__":
    sys.exit(main())
