"""Answer feedback: a 👍 or 👎 on an answer in the chat is kept, with its question, answer and
cited sources, as one line of a JSON Lines file (`QA_FEEDBACK_FILE`, default `feedback.jsonl`
beside the index folder: a rebuild replaces the index folder whole). `qa feedback export` turns
the file into a question file `qa eval` reads, so a team's judgements become a regression set.

>>> record = {"liked": True, "question": "When?", "short_answer": "1965", "citations": [{"quote": "In 1965."}]}
>>> as_question(record, 1)
{'id': 'feedback-1', 'question': 'When?', 'answers': ['1965'], 'evidence': ['In 1965.'], 'type': 'liked'}
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

MAX_FEEDBACK_BYTES = 50 * 2**20  # past this the file takes no more lines (a warning says so)
FEEDBACK_PER_MINUTE = 20  # judgements and notes kept per client address a minute (a person gives a few)
_lock = threading.Lock()


# Each line is bounded, so a few judgements on huge questions cannot fill the file for everyone.
MAX_CHARS = {"question": 2000, "answer": 8000, "short_answer": 500}
MAX_CITATIONS, MAX_QUOTE_CHARS, MAX_DOCUMENTS = 10, 2000, 20


MAX_NOTE_CHARS = 1000
FEEDBACK_OPTIONS = ("Like", "Dislike", "Wrong answer", "Wrong source", "Should have answered")  # the last three: 👎 with why


def record_for(answer: dict, liked: bool, reason: str = "", note: str = "") -> dict:
    """The line kept for a judged answer (`answer`: what the chat kept of it), each field cut to
    its bound (`MAX_CHARS`, ten citations of ≤ 2,000-character quotes).

    >>> record = record_for({"question": "q" * 5000, "citations": [{"quote": "x" * 9000}] * 30}, True)
    >>> len(record["question"]), len(record["citations"]), len(record["citations"][0]["quote"])
    (2000, 10, 2000)
    """
    record = {"time": datetime.now(timezone.utc).isoformat(timespec="seconds"), "liked": bool(liked)}
    if reason:  # why a 👎 ("Wrong source"…)
        record["reason"] = str(reason)[:100]
    if note.strip():  # what the person wrote about it
        record["note"] = " ".join(note.split())[:MAX_NOTE_CHARS]
    for key, limit in MAX_CHARS.items():
        value = answer.get(key)
        record[key] = value[:limit] if isinstance(value, str) else None
    citations = answer.get("citations") if isinstance(answer.get("citations"), list) else []
    record["citations"] = [{**c, "quote": str(c.get("quote", ""))[:MAX_QUOTE_CHARS]}
                           for c in citations[:MAX_CITATIONS] if isinstance(c, dict)]
    documents = answer.get("documents") if isinstance(answer.get("documents"), list) else []
    record["documents"] = [str(d)[:200] for d in documents[:MAX_DOCUMENTS]]
    return record


def append(path: Path, record: dict) -> bool:
    """Append one line, whole (one write under a lock); False when the file is full."""
    line = (json.dumps(record, ensure_ascii=False) + "\n").encode("utf-8")
    with _lock:
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.exists() and path.stat().st_size + len(line) > MAX_FEEDBACK_BYTES:
            return False
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            os.write(fd, line)
        finally:
            os.close(fd)
    return True


def read(path: Path) -> list[dict]:
    """The records of the file; lines that are not records are skipped."""
    records = []
    with path.open(encoding="utf-8", errors="replace") as f:
        for line in f:
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if isinstance(record, dict) and isinstance(record.get("question"), str):
                records.append(record)
    return records


def as_question(record: dict, number: int) -> dict:
    """A `qa eval` question: a 👍 answer becomes the gold answer (its short answer, and its cited
    quotes as evidence; a 👍 on a refusal: no answer); a 👎 keeps the answer given as
    `rejected_answer` and has no gold answer yet — fill in `answers`, or it is scored as a
    question the documents do not answer."""
    quotes = [c.get("quote", "") for c in record.get("citations") or () if isinstance(c, dict) and c.get("quote")]
    question = {"id": f"feedback-{number}", "question": record["question"]}
    if record.get("liked"):  # a 👍 on a refusal: the documents do not answer it (answers: [])
        answers = [record["short_answer"]] if record.get("short_answer") else []
        return {**question, "answers": answers, "evidence": quotes if answers else [], "type": "liked"}
    disliked = {**question, "answers": [], "type": "disliked", "rejected_answer": record.get("answer") or ""}
    for key in ("reason", "note"):
        if isinstance(record.get(key), str):
            disliked[key] = record[key]
    return disliked


def latest(records: list[dict]) -> list[dict]:
    """The records, each answer's last judgement only (a note sent later repeats the judgement
    with the note), in the order the answers were first judged.

    >>> [r["note"] for r in latest([{"answer_id": "a1", "note": ""}, {"answer_id": "a2"},
    ...                             {"answer_id": "a1", "note": "wrong year"}]) if "note" in r]
    ['wrong year']
    """
    kept: dict[object, dict] = {}
    for n, record in enumerate(records):
        kept[record.get("answer_id") or n] = record
    return list(kept.values())


def export(path: Path, out: Path) -> int:
    """Write the question file; the number of questions written."""
    records = latest(read(path))
    with out.open("w", encoding="utf-8") as f:
        for number, record in enumerate(records, start=1):
            f.write(json.dumps(as_question(record, number), ensure_ascii=False) + "\n")
    return len(records)


def too_many(wait: float) -> str:
    return f"Not saved: too much feedback from your address in the last minute; try again in {wait:.0f} s."


def noted(pipeline, conversation: dict, note: str, wait: float = 0.0) -> str:  # noqa: ANN001 - a Pipeline
    """A note on the last answer judged 👍/👎 in `conversation` (as `webchat.bounded_conversation`
    returns it): kept with that judgement (its line written again with the note; `qa feedback
    export` keeps an answer's last line), unless the client must `wait` (the feedback limit).
    Returns what to tell the person."""
    if not note.strip():
        return "Write a note first."
    if wait > 0:
        return too_many(wait)
    judged_ids = [i for i in conversation["feedback"] if i in conversation["answers"]]
    if not judged_ids:
        return "Give an answer a 👍 or 👎 first; the note goes with it."
    answer_id = judged_ids[-1]
    choice = conversation["feedback"][answer_id]
    reason = choice if choice in FEEDBACK_OPTIONS[2:] else ""
    record = {**record_for(conversation["answers"][answer_id], choice == "Like", reason, note),
              "answer_id": answer_id}
    if not append(pipeline.settings.feedback_path, record):
        return "Not saved: the feedback file is full (see the server's log)."
    return "Note saved with your feedback — thanks."


class Repeats:
    """The same event sent again within `seconds` (Gradio 6.31's feedback menu calls the like
    handler twice for one click on a reason): only the first counts.

    >>> clock = iter([0.0, 0.5, 3.0]).__next__
    >>> repeats = Repeats(2.0, clock)
    >>> repeats.first("k"), repeats.first("k"), repeats.first("k")
    (True, False, True)
    """

    def __init__(self, seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.seconds, self.clock = seconds, clock
        self._seen: dict[str, float] = {}
        self._lock = threading.Lock()

    def first(self, key: str) -> bool:
        now = self.clock()
        with self._lock:
            self._seen = {k: t for k, t in self._seen.items() if now - t < self.seconds}
            if key in self._seen:
                return False
            self._seen[key] = now
            return True
