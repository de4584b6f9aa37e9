"""Measure the follow-up rule (`qa.answer.followup.standalone_query`) on the TUNE articles, with
retrieval only: each question is asked after the question before it in its article.

- cost: SQuAD questions stand alone, so every rewrite of one is a false alarm: how many are
  rewritten, and hit@1/hit@3 (the gold sentence in the first 1/3 passages) with and without;
- benefit: follow-ups made from them: a question that repeats a name of the question before it
  gets that name replaced by "it" (what a person asking a follow-up writes); hit@1/hit@3 of the
  follow-up as asked, rewritten by the rule, and of the original question (the ceiling).

    .venv/bin/python scripts/measure_followup.py
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from qa.answer.followup import standalone_query
from qa.config import Settings
from qa.training.calibration import prepare
from qa.evaluation.evaluate import first_evidence_rank
from qa.training.splits import DATA, dev_splits
from qa.models.locate import BUNDLED_READER

_NAME = re.compile(r"\b[A-Z][\w'-]*(?:\s+(?:of\s+|the\s+)?[A-Z][\w'-]*)*")


def as_follow_up(question: str, previous: str) -> str | None:
    """`question` with the longest name it shares with `previous` replaced by "it", or None.

    >>> as_follow_up("When did Fresno State open?", "Who founded Fresno State?")
    'When did it open?'
    """
    shared = [m for m in _NAME.finditer(question) if m.start() > 0 and m.group() in previous]
    if not shared:
        return None
    name = max(shared, key=lambda m: len(m.group()))
    return question[:name.start()] + "it" + question[name.end():]


def hits(pipeline, query: str, evidence) -> tuple[float, float]:  # noqa: ANN001
    rank = first_evidence_rank(pipeline.search(query)[1], evidence)
    return float(rank == 1), float(rank is not None and rank <= 3)


def mean(pairs: list[tuple[float, float]]) -> str:
    return " / ".join(f"{sum(p[i] for p in pairs) / max(1, len(pairs)):.3f}" for i in (0, 1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--work", type=Path, default=Path(".reader-train") / "followup")
    args = parser.parse_args()
    pipeline, questions = prepare(dev_splits(args.data)["tune"], args.work, BUNDLED_READER, Settings.from_env())
    pairs = [(q, p) for p, q in zip(questions, questions[1:]) if q.evidence and q.extra == p.extra]
    rewritten = [(q, p) for q, p in pairs if standalone_query(q.question, [p.question]) != q.question]
    print(f"TUNE: {len(pairs)} answerable questions asked after the question before them; hit@1 / hit@3")
    print(f"cost: the rule rewrites {len(rewritten)} ({len(rewritten) / len(pairs):.1%}) standalone questions; "
          f"on those, as asked {mean([hits(pipeline, q.question, q.evidence) for q, _ in rewritten])}, "
          f"rewritten {mean([hits(pipeline, standalone_query(q.question, [p.question]), q.evidence) for q, p in rewritten])}")
    made = [(as_follow_up(q.question, p.question), q, p) for q, p in pairs]
    made = [(f, q, p) for f, q, p in made if f is not None]
    print(f"benefit: {len(made)} follow-ups made (a shared name replaced by 'it'): "
          f"as asked {mean([hits(pipeline, f, q.evidence) for f, q, _ in made])}, "
          f"rewritten {mean([hits(pipeline, standalone_query(f, [p.question]), q.evidence) for f, q, p in made])}, "
          f"the original question {mean([hits(pipeline, q.question, q.evidence) for _, q, _ in made])}")


if __name__ == "__main__":
    main()
