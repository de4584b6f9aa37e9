"""`qa eval` over HotpotQA-style questions (each line: `question`, `answer`, `type`,
`supporting_facts`, and its `context` of [title, sentences] paragraphs): every paragraph of the
file becomes a document of the corpus, and each question is asked within its own paragraphs (as
"Search in" does), so retrieval chooses among its ten; the supporting sentences are its evidence.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

from qa.evaluation.evaluate import Question, first_record


def is_hotpot_file(path: Path) -> bool:
    """Whether a JSON Lines question file's first question carries HotpotQA's `context` paragraphs."""
    first = first_record(path)
    return isinstance(first.get("context"), list) and "supporting_facts" in first


def paragraph_file(title: str) -> str:
    """A paragraph's document name: its title made safe, with a digest so that two titles never meet."""
    digest = hashlib.sha256(title.encode()).hexdigest()[:8]
    return re.sub(r"[^\w.-]+", "_", title, flags=re.ASCII).strip("._")[:80] + f"_{digest}.md"


def hotpot_corpus(path: Path, folder: Path) -> tuple[list[Question], list[str]]:
    """Writes every paragraph of the file into `folder` (one Markdown document each, its title as
    the heading) and returns the questions (scoped to their paragraphs) and the problems of the
    lines skipped."""
    folder.mkdir(parents=True, exist_ok=True)
    questions, problems, written = [], [], set()
    for number, line in enumerate(path.read_text(encoding="utf-8-sig").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            raw = json.loads(line)
            paragraphs = {str(title): [str(s) for s in sentences] for title, sentences in raw["context"]}
            evidence = tuple(paragraphs[str(t)][int(i)].strip() for t, i in raw["supporting_facts"]
                             if str(t) in paragraphs and 0 <= int(i) < len(paragraphs[str(t)]))
            question, answer = str(raw["question"]), str(raw["answer"])
        except (ValueError, KeyError, TypeError) as error:
            problems.append(f"{path}:{number}: skipped: not a HotpotQA question ({type(error).__name__}: {error})")
            continue
        for title, sentences in paragraphs.items():
            name = paragraph_file(title)
            if name not in written:
                (folder / name).write_text(f"# {title}\n\n{''.join(sentences).strip()}\n", encoding="utf-8")
                written.add(name)
        questions.append(Question(str(raw.get("_id", f"line{number}")), question, (answer,), evidence,
                                  type=str(raw.get("type") or "untyped"),
                                  extra={"documents": [paragraph_file(t) for t in paragraphs]}))
    return questions, problems
