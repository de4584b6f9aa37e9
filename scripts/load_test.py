"""Bounded load test (prints figures, asserts nothing): concurrent chat users and concurrent searches.

    .venv/bin/python scripts/load_test.py [--users 10] [--questions 3] [--url http://127.0.0.1:7860/]
                                         [--search-threads 50]

1. Starts `app.py` on a free loopback port (or uses --url), then `--users` gradio_client users
   each ask `--questions` questions from eval/questions.jsonl at the same time through the `ask`
   endpoint. Prints errors, incomplete or uncited answers, latency p50/p95 and queue wait (client
   latency minus the server's own answer time).
2. `--search-threads` concurrent `Pipeline.search` calls from threads, compared with the same
   searches run one after another: prints whether every result is identical.
"""

from __future__ import annotations

import argparse
import json
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def answerable_questions(path: Path) -> list[str]:
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [r["question"] for r in rows if r["answers"] and r.get("type") not in ("korean", "japanese")]


def start_app() -> tuple[subprocess.Popen, str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    process = subprocess.Popen([sys.executable, str(ROOT / "app.py"), "--port", str(port)], stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/"
    for _ in range(360):
        try:
            urllib.request.urlopen(url, timeout=2)
            return process, url
        except OSError:
            time.sleep(0.5)
    process.kill()
    raise SystemExit("the app did not start")


def chat_load(url: str, users: int, per_user: int, questions: list[str]) -> None:
    from gradio_client import Client

    latencies, queue_waits, problems = [], [], []
    lock = threading.Lock()

    def user(u: int) -> None:
        client = Client(url, verbose=False)
        for i in range(per_user):
            question = questions[(u * per_user + i) % len(questions)]
            began = time.perf_counter()
            try:
                out = client.predict(question, api_name="/ask")
            except Exception as error:  # counted, not raised: this is a load test
                with lock:
                    problems.append(f"user {u}: {type(error).__name__}: {error}")
                continue
            seconds = time.perf_counter() - began
            with lock:
                latencies.append(seconds)
                queue_waits.append(max(0.0, seconds - out["timings"]["total_ms"] / 1000))
                if out["abstained"] or not out["citations"] or not out["answer"].strip():
                    problems.append(f"user {u}: no cited answer to {question!r}")

    began = time.perf_counter()
    threads = [threading.Thread(target=user, args=(u,)) for u in range(users)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=900)
    wall = time.perf_counter() - began
    print(f"chat load: {users} users x {per_user} questions in {wall:.1f} s; {len(latencies)} answered")
    print(f"  problems: {len(problems)}" + "".join(f"\n    {p}" for p in problems[:10]))
    if latencies:
        print(f"  latency    p50 {statistics.median(latencies) * 1000:7.0f} ms   p95 {percentile(latencies, 95) * 1000:7.0f} ms")
        print(f"  queue wait p50 {statistics.median(queue_waits) * 1000:7.0f} ms   p95 {percentile(queue_waits, 95) * 1000:7.0f} ms")


def search_load(threads: int, questions: list[str]) -> None:
    sys.path.insert(0, str(ROOT))
    from qa.config import Settings
    from qa.pipeline import Pipeline

    pipeline = Pipeline(Settings.from_env())
    pipeline.warm_up(generator=False)
    asked = [questions[i % len(questions)] for i in range(threads)]

    def ids(question: str) -> list[tuple[str, float]]:
        return [(p.chunk.chunk_id, round(p.score, 9)) for p in pipeline.search(question)[1]]

    serial = [ids(q) for q in asked]
    began = time.perf_counter()
    with ThreadPoolExecutor(max_workers=threads) as pool:
        parallel = list(pool.map(ids, asked))
    seconds = time.perf_counter() - began
    same = sum(a == b for a, b in zip(serial, parallel))
    print(f"search load: {threads} concurrent searches in {seconds * 1000:.0f} ms; {same}/{threads} identical to the serial run")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=10)
    parser.add_argument("--questions", type=int, default=3)
    parser.add_argument("--url", help="an app already running (default: start one)")
    parser.add_argument("--search-threads", type=int, default=50)
    parser.add_argument("--question-file", type=Path, default=ROOT / "eval" / "questions.jsonl")
    args = parser.parse_args()
    questions = answerable_questions(args.question_file)
    process = None
    try:
        url = args.url
        if not url:
            process, url = start_app()
        chat_load(url, args.users, args.questions, questions)
    finally:
        if process is not None:
            process.terminate()
            process.wait(timeout=30)
    if args.search_threads:
        search_load(args.search_threads, questions)
    return 0


if __name__ == "__main__":
    sys.exit(main())
