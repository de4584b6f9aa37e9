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
    ("Who was born first out of Nick Grinde and Karel Reisz?", "comparison",
     ("When was Nick Grinde born?", "When was Karel Reisz born?")),
    ("Which documentary Hacking Democracy or The Memory of Justice was produced first ?", "comparison",
     ("When was Hacking Democracy produced?", "When was The Memory of Justice produced?")),
])
def test_two_fact_questions_split_into_one_question_per_thing(question: str, kind: str, parts: tuple):
    found = plan(question)
    assert found is not None and (found.kind, found.parts) == (kind, parts), found


def test_single_fact_questions_stay_whole():
    own = Path(__file__).resolve().parents[1] / "eval" / "questions.jsonl"
    questions = [json.loads(line)["question"] for line in own.read_text(encoding="utf-8").splitlines()]
    questions += ["When did Japan and South Korea establish diplomatic relations?", "Is it hot or cold in Busan in July?",
                  "Which prime minister visited the shrine, Abe or Koizumi?"]  # no property compared: one question
    assert [q for q in questions if plan(q) and plan(q).kind != "two parts"] == []  # the own set asks two in two


def test_a_comparison_is_answered_from_two_cited_facts(settings):
    from conftest import FakeEmbedder, FakeReader

    from qa.app.render import answer_markdown, reply_html
    from qa.index.build import build_index
    from qa.pipeline import Pipeline

    (settings.corpus_dir / "wavves.md").write_text("# Wavves\n\nWavves is a rock band from San Diego. The band Wavves "
                                                   "was formed in 2008 by Nathan Williams.\n", encoding="utf-8")
    (settings.corpus_dir / "social.md").write_text("# Social Code\n\nSocial Code is a Canadian rock band. The band Social "
                                                   "Code was formed in 2001 in Edmonton.\n", encoding="utf-8")
    build_index(settings, FakeEmbedder(), progress=False)
    pipeline = Pipeline(settings, embedder=FakeEmbedder(), reader=FakeReader(("2008", "2001")))
    answer = pipeline.ask("Which band was formed first, Wavves or Social Code?")
    assert answer.headline == "Social Code" and answer.outcome == "answer" and len(answer.parts) == 2
    assert [p.question for p in answer.parts] == ["When was Wavves formed?", "When was Social Code formed?"]
    assert answer.text.startswith("Wavves: “The band Wavves was formed in 2008 by Nathan Williams.” [1] · Social Code: “")
    for c in answer.citations:  # each fact cited, verbatim
        chunk = answer.passages[c.marker - 1].chunk
        assert chunk.text[c.start - chunk.start:c.end - chunk.start] == c.quote
    assert reply_html(answer).startswith("<strong>Social Code</strong> — Wavves: ")
    assert answer_markdown(answer).startswith("**Social Code**\n\nWavves: ")
    later = pipeline.ask("Which band was formed later, Wavves or Social Code?")
    assert later.headline == "Wavves"
    unsure = Pipeline(settings, embedder=FakeEmbedder(), reader=FakeReader(("2008",)))  # one part unanswered
    assert not unsure.ask("Which band was formed first, Wavves or Social Code?").headline  # read whole, as before


def _part(question: str, sentence: str, words: str | None):
    """A sub-question's answer: `words` read in `sentence` (cited), or declined when None."""
    from qa.types import ANSWERED, DECLINED, Answer, Chunk, Citation, Passage, Reading

    chunk = Chunk(f"c{len(sentence)}", "d", "", sentence, 0, len(sentence))
    if words is None:
        return Answer(question, "The documents do not say.", (), (Passage(chunk, 1.0, 1),), True, "evidence", "r",
                      outcome=DECLINED)
    start = sentence.index(words)
    reading = Reading(1, chunk.chunk_id, words, start, start + len(words), sentence, 0, len(sentence), 1.0, 1.0, 0.9)
    return Answer(question, f"{words} [1]", (Citation(1, chunk.chunk_id, sentence, 0, len(sentence)),),
                  (Passage(chunk, 1.0, 1),), False, "evidence", "r", short_answer=reading, readings=(reading,),
                  outcome=ANSWERED)


def test_a_two_part_question_is_answered_part_by_part():
    from qa.answer.compose import composed_answer

    question = "When was GSOMIA signed and who renewed it?"
    found = plan(question)
    assert found.parts == ("When was GSOMIA signed?", "Who renewed GSOMIA?")
    assert plan("When was the singer born who is known for her voice and whose album is Diamond Cut?") is None  # clauses
    signed, renewed = "GSOMIA was signed in 2016 in Seoul.", "President Moon renewed GSOMIA in 2019."
    answer = composed_answer(question, found, [_part(found.parts[0], signed, "2016"),
                                               _part(found.parts[1], renewed, "President Moon")])
    assert answer.headline == "2016; President Moon" and [c.marker for c in answer.citations] == [1, 2]
    assert answer.text == f"When was GSOMIA signed? “{signed}” [1] · Who renewed GSOMIA? “{renewed}” [2]"
    half = composed_answer(question, found, [_part(found.parts[0], signed, "2016"), _part(found.parts[1], renewed, None)])
    assert half.headline == "2016" and half.text.endswith("Who renewed GSOMIA? The documents do not say.")  # says which
    assert composed_answer(question, found, [_part(q, signed, None) for q in found.parts]) is None  # read whole
    from qa.app.render import sources_html

    panel = sources_html(answer, lambda chunk, start: "")
    assert "Searched for, part by part: <q>When was GSOMIA signed?</q> · <q>Who renewed GSOMIA?</q>" in panel
