"""Bounded load test (prints figures, asserts nothing): concurrent chat users and concurrent searches.

    .venv/bin/python scripts/load_test.py [--users 20] [--questions 3] [--url http://127.0.0.1:7860/]
                                         [--search-threads 50] [--mixed]
                                         [--duration 60 --upload-share 0.1] [--sequential 1000]

1. Starts `app.py` on a free loopback port (or uses --url), then `--users` gradio_client users
   each ask `--questions` questions from eval/questions.jsonl at the same time through the `ask`
   endpoint. Prints errors, crossed answers (an answer to another question), declined answers,
   latency p50/p95, queue wait (client latency minus the server's own answer time) and the app's
   resident memory before and after. All users come from one address, so the app it starts runs
   with QA_RATE_LIMIT=0 (a running one given with --url may refuse them). `--duration S`: users ask
   for S seconds instead; `--upload-share F`: that share of their actions upload a small new
   document (not with --url). `--sequential N`: then N questions one after another, and the app's
   memory growth after the first 100.
`--v1 N`: instead, N streaming `/v1/chat/completions` clients ask for `--duration` seconds (60),
   twice: errors, first byte and whole-answer p50/p95, and the app's memory after each run.
2. `--mixed`: an evidence question asked while a generated answer is written and a ~100 KB upload
   is indexed (the app it starts serves a temporary copy of ./corpus and ./index, so your corpus
   is never changed; with --url nothing is uploaded).
3. `--search-threads` concurrent `Pipeline.search` calls from threads, compared with the same
   searches run one after another: prints whether every result is identical.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

from qa.evaluation.evaluate import percentile


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def answerable_questions(path: Path) -> list[str]:
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [r["question"] for r in rows if r["answers"] and r.get("type") not in ("korean", "japanese")]


def start_app(workdir: Path, log: Path | None = None) -> tuple[subprocess.Popen, str]:
    """The app serving a copy of ./corpus and ./index made in `workdir`; its output goes to `log`."""
    if not (Path("corpus").is_dir() and Path("index", "manifest.json").is_file()):
        raise SystemExit("run it in a folder with corpus/ and an index/ built by `qa index` (or give --url)")
    for name in ("corpus", "index"):
        shutil.copytree(name, workdir / name)
    port = free_port()
    output = log.open("w") if log else subprocess.DEVNULL
    process = subprocess.Popen([sys.executable, str(ROOT / "app.py"), "--port", str(port)], stdout=output,
                               stderr=subprocess.STDOUT, env={**os.environ, "QA_RATE_LIMIT": "0"}, cwd=workdir)
    url = f"http://127.0.0.1:{port}/"
    for _ in range(360):
        try:
            urllib.request.urlopen(url, timeout=2)
            return process, url
        except OSError:
            time.sleep(0.5)
    process.kill()
    raise SystemExit("the app did not start")


def rss_kb(pid: int | None) -> int | None:
    if pid is None:
        return None
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return None


def rss_mb(pid: int | None) -> str:
    kb = rss_kb(pid)
    return "?" if kb is None else f"{kb / 1024:.0f} MB"


def chat_load(url: str, users: int, per_user: int, questions: list[str], duration: float = 0.0,
              upload_share: float = 0.0, folder: Path | None = None) -> None:
    """`users` clients at once, each asking `per_user` questions, or asking for `duration` seconds
    when it is given; `upload_share` of their actions are uploads of a small new document."""
    from gradio_client import Client, handle_file

    latencies, queue_waits, errors, crossed, declined, uploads = [], [], [], [], [], []
    lock = threading.Lock()
    end = time.monotonic() + duration

    def user(u: int) -> None:
        client = Client(url, verbose=False)
        i = 0
        while (time.monotonic() < end) if duration else (i < per_user):
            question = questions[(u * per_user + i) % len(questions)]
            i += 1
            began = time.perf_counter()
            try:
                if folder is not None and upload_share and (u * 7919 + i) % round(1 / upload_share) == 0:
                    note = folder / f"note {u}-{i}.md"
                    note.write_text(f"# Note {u}-{i}\n\nBerth {u * 100 + i} was repainted in week {i}.\n", encoding="utf-8")
                    message = client.predict([handle_file(str(note))], api_name="/upload")[0]
                    with lock:
                        uploads.append(time.perf_counter() - began)
                        if "Done" not in message:
                            errors.append(f"user {u}: upload: {message[:200]}")
                    continue
                out = client.predict(question, api_name="/ask")
            except Exception as error:  # counted, not raised: this is a load test
                with lock:
                    errors.append(f"user {u}: {type(error).__name__}: {error}")
                continue
            seconds = time.perf_counter() - began
            with lock:
                latencies.append(seconds)
                queue_waits.append(max(0.0, seconds - out["timings"]["total_ms"] / 1000))
                if out["question"] != question:
                    crossed.append(f"user {u}: asked {question!r}, got the answer to {out['question']!r}")
                elif out["abstained"] or not out["citations"]:
                    declined.append(question)

    began = time.perf_counter()
    threads = [threading.Thread(target=user, args=(u,)) for u in range(users)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=900 + duration)
    wall = time.perf_counter() - began
    what = f"for {duration:.0f} s" if duration else f"x {per_user} questions"
    print(f"chat load: {users} users {what} in {wall:.1f} s; {len(latencies)} answered, {len(uploads)} uploads")
    print(f"  errors: {len(errors)}" + "".join(f"\n    {p}" for p in errors[:10]))
    print(f"  crossed answers: {len(crossed)}" + "".join(f"\n    {p}" for p in crossed[:10]))
    print(f"  declined (the reader's own refusals, not load): {len(declined)}")
    if latencies:
        print(f"  latency    p50 {statistics.median(latencies) * 1000:7.0f} ms   p95 {percentile(latencies, 95) * 1000:7.0f} ms")
        print(f"  queue wait p50 {statistics.median(queue_waits) * 1000:7.0f} ms   p95 {percentile(queue_waits, 95) * 1000:7.0f} ms")
    if uploads:
        print(f"  uploads    p50 {statistics.median(uploads) * 1000:7.0f} ms   p95 {percentile(uploads, 95) * 1000:7.0f} ms")


def v1_load(url: str, clients: int, duration: float, questions: list[str], pid: int | None, runs: int = 2) -> None:
    """`clients` streaming `/v1/chat/completions` clients asking for `duration` seconds, `runs`
    times: errors, first byte and whole-answer latency (p50/p95) and the app's memory after each."""
    import httpx

    def client(n: int, deadline: float, out: list) -> None:
        with httpx.Client(timeout=60) as http:
            i = n
            while time.monotonic() < deadline:
                body = {"model": "docqa", "stream": True, "messages": [{"role": "user", "content": questions[i % len(questions)]}]}
                began, first = time.perf_counter(), None
                try:
                    with http.stream("POST", f"{url}v1/chat/completions", json=body) as reply:
                        if reply.status_code != 200:
                            out.append(("error", reply.status_code))
                            continue
                        for line in reply.iter_lines():
                            if first is None and line.startswith("data:"):
                                first = time.perf_counter() - began
                            if line.strip() == "data: [DONE]":
                                break
                    out.append(("ok", first or 0.0, time.perf_counter() - began))
                except Exception as error:  # noqa: BLE001 - counted, the load goes on
                    out.append(("error", type(error).__name__))
                i += clients

    for run in range(1, runs + 1):
        results: list = []
        deadline = time.monotonic() + duration
        threads = [threading.Thread(target=client, args=(n, deadline, results)) for n in range(clients)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        done = [r for r in results if r[0] == "ok"]
        firsts, totals = [r[1] for r in done], [r[2] for r in done]
        print(f"/v1 streaming, run {run}: {clients} clients x {duration:.0f} s: {len(done)} answers, "
              f"{len(results) - len(done)} errors; first byte p50 {percentile(firsts, 50) or 0:.2f} s; whole answer "
              f"p50 {percentile(totals, 50) or 0:.2f} s, p95 {percentile(totals, 95) or 0:.2f} s; app memory after: {rss_mb(pid)}")


def memory_run(url: str, pid: int | None, count: int, questions: list[str]) -> None:
    """`count` questions one after another; the app's memory after the first 100 and at the end."""
    from gradio_client import Client

    client = Client(url, verbose=False)
    after_warm_up, errors = None, 0
    began = time.perf_counter()
    for i in range(count):
        try:
            client.predict(questions[i % len(questions)], api_name="/ask")
        except Exception:  # counted, not raised
            errors += 1
        if i + 1 == min(100, count):
            after_warm_up = rss_kb(pid)
    end = rss_kb(pid)
    growth = f"{(end - after_warm_up) / 1024:+.1f} MB" if end and after_warm_up else "?"
    first = f"{after_warm_up / 1024:.0f} MB" if after_warm_up else "?"
    print(f"memory run: {count} questions one after another in {time.perf_counter() - began:.0f} s, {errors} errors; "
          f"app memory {first} after the first 100, {rss_mb(pid)} at the end ({growth})")


def mixed_load(url: str, question: str, upload: Path | None) -> None:
    """An evidence question while a generated answer is written and `upload` is indexed."""
    from gradio_client import Client, handle_file

    client = Client(url, verbose=False)
    client.predict(question, api_name="/ask")  # warm
    generating = client.submit(question, {}, 5, "generative", False, api_name="/chat")
    indexing = Client(url, verbose=False).submit([handle_file(str(upload))], api_name="/upload") if upload else None
    time.sleep(2.0)
    began = time.perf_counter()
    out = client.predict(question, api_name="/ask")
    seconds = time.perf_counter() - began
    busy = [name for name, job in (("a generated answer", generating), ("an upload", indexing)) if job and not job.done()]
    print(f"mixed: an evidence answer in {seconds * 1000:.0f} ms (server {out['timings']['total_ms']:.0f} ms) "
          f"while {' and '.join(busy) or 'nothing'} still ran")
    generating.result(timeout=600)
    if indexing:
        print(f"  upload: {indexing.result(timeout=600)[0]}")


def report_file(folder: Path) -> Path:
    """~100 KB of varied sentences to upload."""
    path = folder / "harbour report.md"
    lines = ["# Harbour report", ""] + [
        f"Berth {n} handled {n * 37 % 9000} containers in week {n % 52 + 1}, with crane {n % 17}." for n in range(1, 1400)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def search_load(threads: int, questions: list[str]) -> None:
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
    parser.add_argument("--users", type=int, default=20)
    parser.add_argument("--questions", type=int, default=3)
    parser.add_argument("--url", help="an app already running (default: start one)")
    parser.add_argument("--search-threads", type=int, default=50)
    parser.add_argument("--mixed", action="store_true", help="also time an evidence question beside generation and a rebuild")
    parser.add_argument("--duration", type=float, default=0.0, help="users ask for this many seconds (instead of --questions)")
    parser.add_argument("--upload-share", type=float, default=0.0, help="share of actions that upload a small document")
    parser.add_argument("--sequential", type=int, default=0, help="then this many questions one after another (memory)")
    parser.add_argument("--app-log", type=Path, help="write the app's output (and any traceback) here")
    parser.add_argument("--question-file", type=Path, default=ROOT / "eval" / "questions.jsonl")
    parser.add_argument("--v1", type=int, default=0, metavar="CLIENTS",
                        help="instead: this many streaming /v1 clients for --duration seconds (default 60), twice")
    args = parser.parse_args()
    questions = answerable_questions(args.question_file)
    process = None
    work = Path(tempfile.mkdtemp(prefix="docqa-load-"))
    try:
        url = args.url
        if not url:
            process, url = start_app(work, args.app_log)
        pid = process.pid if process is not None else None
        print(f"app memory before: {rss_mb(pid)}")
        if args.v1:
            v1_load(url, args.v1, args.duration or 60.0, questions, pid)
            return 0
        chat_load(url, args.users, args.questions, questions, args.duration, args.upload_share,
                  None if args.url else work)
        print(f"app memory after: {rss_mb(pid)}")
        if args.sequential:
            memory_run(url, pid, args.sequential, questions)
        if args.mixed:
            mixed_load(url, questions[0], None if args.url else report_file(work))
    finally:
        if process is not None:
            process.terminate()
            process.wait(timeout=30)
        shutil.rmtree(work, ignore_errors=True)
    if args.search_threads:
        search_load(args.search_threads, questions)
    return 0


if __name__ == "__main__":
    sys.exit(main())
