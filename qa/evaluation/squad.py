"""SQuAD-format data and the official SQuAD 2.0 metrics.

Reads the official JSON structure (`data[].paragraphs[].qas[]`) into flat records, and scores
predictions the way the official v2.0 evaluation script does: answers are normalised (lower
case, no punctuation, no articles "a an the", single spaces); a question's exact match and F1
are the best over its gold answers; an unanswerable question scores 1 only when the prediction
is empty (the system declined).

>>> normalize_answer("The  Eiffel tower!")
'eiffel tower'
>>> f1_score("in December 1965", "December 1965")
0.8
>>> squad_scores("", [])
(1.0, 1.0)
"""

from __future__ import annotations

import collections
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from qa.text import normalize_answer

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class SquadQuestion:
    id: str
    question: str
    answers: tuple[str, ...]  # empty: unanswerable
    answer_starts: tuple[int, ...]
    context: str  # the paragraph the question was written on
    title: str  # the article


@dataclass(frozen=True, slots=True)
class SquadArticle:
    title: str
    paragraphs: tuple[str, ...]
    questions: tuple[SquadQuestion, ...]


def load_squad(path: Path, problems: list[str] | None = None) -> list[SquadArticle]:
    """The articles of a SQuAD-format JSON file; raises ValueError when it is not one. An
    article, paragraph or question that does not have the format (a context that is not text,
    an answer without a text and an offset…) is skipped and named in `problems` (else logged)."""
    raw = json.loads(Path(path).read_text(encoding="utf-8-sig"))
    if not isinstance(raw, dict) or not isinstance(raw.get("data"), list):
        raise ValueError(f"{path} is not a SQuAD-format file (no top-level \"data\" list)")

    def skipped(where: str, why: str) -> None:
        message = f"{path}: {where}: skipped: {why}"
        if problems is None:
            log.warning(message)
        else:
            problems.append(message)

    articles = []
    for number, article in enumerate(raw["data"], start=1):
        if not isinstance(article, dict) or not isinstance(article.get("paragraphs", []), list):
            skipped(f"article {number}", 'not an object with a "paragraphs" list')
            continue
        title = str(article.get("title") or f"article {number}")
        paragraphs, questions = [], []
        for p_number, paragraph in enumerate(article.get("paragraphs", []), start=1):
            context = paragraph.get("context") if isinstance(paragraph, dict) else None
            qas = paragraph.get("qas", []) if isinstance(paragraph, dict) else None
            if not isinstance(context, str) or not isinstance(qas, list):
                skipped(f"{title}, paragraph {p_number}", 'needs "context" (text) and "qas" (a list)')
                continue
            paragraphs.append(context)
            for q_number, qa in enumerate(qas, start=1):
                try:
                    questions.append(_squad_question(qa, context, title))
                except ValueError as error:
                    skipped(f"{title}, paragraph {p_number}, question {q_number}", str(error))
        articles.append(SquadArticle(title, tuple(paragraphs), tuple(questions)))
    return articles


def _squad_question(qa: object, context: str, title: str) -> SquadQuestion:
    if not isinstance(qa, dict) or not isinstance(qa.get("question"), str) or not isinstance(qa.get("id"), (str, int)):
        raise ValueError('needs "id" and "question" (text)')
    gold = [] if qa.get("is_impossible") else qa.get("answers", [])
    if not isinstance(gold, list) or not all(
        isinstance(a, dict) and isinstance(a.get("text"), str) and type(a.get("answer_start")) is int for a in gold
    ):
        raise ValueError('"answers" must be a list of {"text": text, "answer_start": a whole number}')
    return SquadQuestion(id=str(qa["id"]), question=qa["question"], answers=tuple(a["text"] for a in gold),
                         answer_starts=tuple(a["answer_start"] for a in gold), context=context, title=title)


def f1_score(prediction: str, gold: str) -> float:
    predicted, expected = normalize_answer(prediction).split(), normalize_answer(gold).split()
    if not predicted or not expected:
        return float(predicted == expected)
    common = collections.Counter(predicted) & collections.Counter(expected)
    same = sum(common.values())
    if same == 0:
        return 0.0
    precision, recall = same / len(predicted), same / len(expected)
    return 2 * precision * recall / (precision + recall)


def squad_scores(prediction: str, answers: Sequence[str]) -> tuple[float, float]:
    """(exact match, F1) of one prediction ("" = declined) against the gold answers."""
    golds = [a for a in answers if normalize_answer(a)] or [""]
    exact = max(float(normalize_answer(prediction) == normalize_answer(g)) for g in golds)
    return exact, max(f1_score(prediction, g) for g in golds)
