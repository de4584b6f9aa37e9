"""The question planner: two-fact questions split, single-fact ones left whole."""

import json
from pathlib import Path

import pytest

from qa.answer.planner import plan


@pytest.mark.parametrize(("question", "kind", "parts"), [
    ("Who was born first, Josephine Tey or Julia Peterkin?", "comparison",
     ("When was Josephine Tey born?", "When was Julia Peterkin born?")),
    ("Was Pepper Keenan or Rob Parissi born first?", "comparison", ("When was Pepper Keenan born?", "When was Rob Parissi born?")),
    ("Are both Stephen R. Donaldson and Michael Moorcock science fiction writers?", "both",
     ("Is Stephen R. Donaldson science fiction writers?", "Is Michael Moorcock science fiction writers?")),
    ("Do tennis players Kathy Jordan and Sergi Bruguera have the same nationality?", "same",
     ("What is the nationality of Kathy Jordan?", "What is the nationality of Sergi Bruguera?")),
    ("Which dog is native to France, the Basset Bleu de Gascogne or the Bulldog?", "choice",
     ("Is the Basset Bleu de Gascogne native to France?", "Is the Bulldog native to France?")),
])
def test_two_fact_questions_split_into_one_question_per_thing(question: str, kind: str, parts: tuple):
    found = plan(question)
    assert found is not None and (found.kind, found.parts) == (kind, parts), found


def test_single_fact_questions_stay_whole():
    own = Path(__file__).resolve().parents[1] / "eval" / "questions.jsonl"
    questions = [json.loads(line)["question"] for line in own.read_text(encoding="utf-8").splitlines()]
    questions += ["When did Japan and South Korea establish diplomatic relations?", "Is it hot or cold in Busan in July?",
                  "Which prime minister visited the shrine, Abe or Koizumi?"]  # no property compared: one question
    assert [q for q in questions if plan(q)] == []
