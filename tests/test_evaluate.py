import json
from pathlib import Path

import pytest
from conftest import ROOT, qa

from qa.evaluation.evaluate import (
    Question,
    citation_support,
    contains_gold,
    first_evidence_rank,
    load_questions,
    normalize,
    score,
    summarize,
)
from qa.evaluation.report import table
from qa.evaluation.squad import squad_scores
from qa.types import Answer, Chunk, Citation, Passage

EVAL_SET = ROOT / "eval" / "questions.jsonl"


def test_squad_normalisation_and_metrics():
    assert normalize("The Treaty, of 1965!") == "treaty of 1965"
    assert squad_scores("the 1965 treaty", ["1965"])[1] == pytest.approx(2 * 0.5 * 1.0 / 1.5)
    assert squad_scores("nothing shared", ["1965"])[1] == 0.0
    assert squad_scores("in December 1965", ["1965", "December 1965"])[1] == pytest.approx(2 * (2 / 3) * 1 / (2 / 3 + 1))
    assert squad_scores("The Dokdo.", ["dokdo"])[0] == 1.0 and squad_scores("Dokdo islets", ["Dokdo"])[0] == 0.0
    assert contains_gold("They are called Dokdo in Korean.", ["Dokdo"]) == 1.0
    assert contains_gold("Nippon Steel only", [], must_include=["Nippon Steel", "Mitsubishi"]) == 0.0


def passage(text: str, rank: int) -> Passage:
    return Passage(Chunk(f"c{rank}", "d", "S", text, rank * 100, rank * 100 + len(text)), 0.5, rank)


def test_evidence_rank_is_the_first_passage_holding_an_evidence_string():
    passages = [passage("nothing here", 1), passage("signed in 1965 by both", 2), passage("1965 again", 3)]
    assert first_evidence_rank(passages, ["signed in 1965"]) == 2
    assert first_evidence_rank(passages, ["absent"]) is None


def test_scores_and_summary_of_hand_made_records():
    passages = [passage("The treaty was signed in 1965.", 1), passage("Busan is a city.", 2)]
    answerable = Question("a", "When was the treaty signed?", ("1965",), ("signed in 1965",), type="fact")
    unanswerable = Question("u", "Population of Busan?", (), type="unanswerable")
    good = Answer(
        "q", "The treaty was signed in 1965. [1]", (Citation(1, "c1", "The treaty was signed in 1965.", 100, 130),),
        tuple(passages), False, "evidence", "m", timings={"retrieve_ms": 5.0, "first_token_ms": 6.0, "total_ms": 7.0},
    )
    declined = Answer("q", "The documents do not say.", (), tuple(passages), True, "evidence", "m",
                      timings={"retrieve_ms": 5.0, "first_token_ms": 6.0, "total_ms": 9.0}, outcome="declined")
    records = [score(answerable, passages, good), score(unanswerable, passages, declined)]
    assert records[0]["contains_gold"] == 1.0 and records[0]["citation_precision"] == 1.0
    assert records[0]["citation_support"] == 1.0 and records[0]["evidence_rank"] == 1
    summary = summarize(records, k=5)
    overall = summary["overall"]
    assert overall["hit@1"] == 1.0 and overall["mrr"] == 1.0 and overall["correct_abstention"] == 1.0
    assert overall["false_abstention"] == 0.0 and overall["total_ms_p50"] == 7.0  # nearest rank: the lower of two
    assert set(summary) == {"overall", "fact", "unanswerable"}
    assert "hit@1" in table(summary) and table(summary, markdown=True).startswith("| group |")


def test_a_tentative_answer_counts_as_declined_and_says_whether_its_sentence_held_the_answer():
    passages = [passage("The treaty was signed in 1965.", 1), passage("Busan is a city.", 2)]
    quote = Citation(1, "c1", "The treaty was signed in 1965.", 100, 130)
    tentative = Answer("q", "Not sure — the closest passage says: “The treaty was signed in 1965.” [1]", (quote,),
                       tuple(passages), True, "evidence", "m", outcome="tentative")
    answerable = Question("a", "When was the treaty signed?", ("1965",), type="fact")
    unanswerable = Question("u", "When was the treaty cancelled?", (), type="unanswerable")
    records = [score(answerable, passages, tentative), score(unanswerable, passages, tentative)]
    assert records[0]["squad_f1"] == 0.0 and records[0]["contains_gold"] == 0.0 and records[0]["shown_gold"] == 1.0
    assert records[1]["squad_f1"] == 1.0  # an unanswerable question not answered
    overall = summarize(records, k=5)["overall"]
    assert overall["false_abstention"] == 1.0 and overall["correct_abstention"] == 1.0
    assert overall["tentative"] == 1.0 and overall["tentative_holds_gold"] == 1.0
    assert overall["tentative_on_unanswerable"] == 1.0 and overall["shown_gold"] == 1.0


def test_citation_support_fails_a_sentence_that_swaps_a_year_the_verifier_would_pass():
    passages = [passage("The treaty was signed in Tokyo in 1965 by both governments.", 1)]
    quote = Citation(1, "c1", passages[0].chunk.text, 100, 100 + len(passages[0].chunk.text))
    right = Answer("q", "The treaty was signed in Tokyo in 1965 by both governments. [1]", (quote,), tuple(passages),
                   False, "generative", "m")
    swapped = Answer("q", "The treaty was signed in Tokyo in 1956 by both governments. [1]", (quote,), tuple(passages),
                     False, "generative", "m")
    misplaced = Answer("q", "It was signed in Seoul. [1]", (quote,), tuple(passages), False, "generative", "m")
    assert citation_support(right) == [True]
    assert citation_support(swapped) == [False] and citation_support(misplaced) == [False]
    moved = Citation(1, "c1", quote.quote, 101, 101 + len(quote.quote))  # not verbatim at its offsets
    assert citation_support(Answer("q", right.text, (moved,), tuple(passages), False, "generative", "m")) == [False]


def test_malformed_lines_are_reported_by_number_and_unknown_fields_kept(tmp_path: Path):
    path = tmp_path / "q.jsonl"
    path.write_text(
        '{"id": "1", "question": "Q one?", "answers": ["a"], "difficulty": "easy"}\n'
        "{not json\n"
        "\n"
        '{"id": "3", "question": "Q three?"}\n'
        '["a list"]\n'
        '{"id": "5", "question": "Q five?", "answers": []}\n',
        encoding="utf-8",
    )
    questions, problems = load_questions(path)
    assert [q.id for q in questions] == ["1", "5"]
    assert questions[0].extra == {"difficulty": "easy"} and not questions[1].answerable
    assert [p.split(":")[1] for p in problems] == ["2", "4", "5"]


def test_the_shipped_evaluation_set_is_well_formed():
    questions, problems = load_questions(EVAL_SET)
    assert problems == [] and len(questions) >= 60
    assert len({q.id for q in questions}) == len(questions)
    corpus = (ROOT / "corpus" / "japan_south_korea_relations.txt").read_text(encoding="utf-8")
    for q in questions:
        for text in q.evidence + q.must_include:
            assert text in corpus, (q.id, text)
        if q.answerable:
            assert q.evidence, q.id
    types = {q.type for q in questions}
    assert {"fact", "paraphrase", "multihop", "list", "unanswerable", "false_premise", "korean", "japanese", "typo"} <= types
    assert sum(not q.answerable for q in questions) >= 10


@pytest.mark.slow
def test_qa_eval_on_a_sample_writes_its_files(seed_workdir: Path, tmp_path: Path):
    sample = tmp_path / "sample.jsonl"
    lines = EVAL_SET.read_text(encoding="utf-8").splitlines()
    unanswerable = next(line for line in lines if json.loads(line)["type"] == "unanswerable")
    sample.write_text("\n".join(lines[:4] + [unanswerable]) + "\n", encoding="utf-8")
    out = tmp_path / "out"
    result = qa("eval", str(sample), "--out", str(out), cwd=seed_workdir)
    assert result.returncode == 0, result.stderr
    assert "contains_gold" in result.stdout and "overall" in result.stdout
    assert {p.name for p in out.iterdir()} == {"results.jsonl", "summary.json", "summary.csv", "report.md"}
    records = [json.loads(line) for line in (out / "results.jsonl").read_text(encoding="utf-8").splitlines()]
    assert len(records) == 5 and all("answer" in r for r in records)
    overall = json.loads((out / "summary.json").read_text(encoding="utf-8"))["overall"]
    for name in ("hit@1", "hit@3", "mrr", "contains_gold", "f1", "citation_precision", "correct_abstention"):
        assert 0.0 <= overall[name] <= 1.0, name
    assert overall["questions"] == 5 and overall["total_ms_p50"] > 0
    assert "## Worst 10 questions" in (out / "report.md").read_text(encoding="utf-8")
    retrieval = qa("eval", str(sample), "--retrieval-only", "--limit", "2", cwd=seed_workdir)
    assert retrieval.returncode == 0 and "hit@1" in retrieval.stdout and "contains_gold" not in retrieval.stdout


def test_official_squad2_scores_of_short_answers_and_declines():
    from qa.evaluation.squad import squad_scores

    assert squad_scores("December 1965", ["December 1965", "1965"]) == (1.0, 1.0)
    assert squad_scores("in 1965", ["December 1965"]) == (0.0, pytest.approx(0.5))
    assert squad_scores("", []) == (1.0, 1.0)  # declining an unanswerable question
    assert squad_scores("Tokyo", []) == (0.0, 0.0)  # answering it
    assert squad_scores("", ["Dokdo"]) == (0.0, 0.0)  # declining an answerable one


def test_a_squad_file_becomes_a_corpus_and_a_question_set(tmp_path: Path):
    from qa.evaluation.evaluate import squad_corpus
    from qa.evaluation.squad import load_squad

    context = "Busan is a port. It was founded in 1876 by traders. The harbour is deep."
    raw = {"data": [{"title": "Busan port", "paragraphs": [{"context": context, "qas": [
        {"id": "a", "question": "When was it founded?", "is_impossible": False,
         "answers": [{"text": "1876", "answer_start": context.index("1876")}]},
        {"id": "b", "question": "Who is the mayor?", "is_impossible": True, "answers": []}]}]}]}
    path = tmp_path / "squad.json"
    path.write_text(json.dumps(raw), encoding="utf-8")
    questions = squad_corpus(load_squad(path), tmp_path / "corpus")
    (doc,) = (tmp_path / "corpus").iterdir()
    assert doc.read_text(encoding="utf-8") == f"= Busan port =\n\n{context}\n"
    founded, mayor = questions
    assert founded.answers == ("1876",) and founded.evidence == ("It was founded in 1876 by traders.",)
    assert founded.type == "answerable" and mayor.type == "unanswerable" and not mayor.answerable
    with pytest.raises(ValueError, match="not a SQuAD-format file"):
        (tmp_path / "bad.json").write_text("[1, 2]", encoding="utf-8")
        load_squad(tmp_path / "bad.json")


def test_bad_lines_of_a_question_file_are_skipped_and_named(tmp_path: Path):
    from qa.evaluation.evaluate import load_questions

    path = tmp_path / "q.jsonl"
    good = json.dumps({"question": "When?", "answers": ["1965"], "evidence": ["in 1965"]})
    path.write_bytes(b"\n".join([
        good.encode(),
        json.dumps({"question": "Caf\u00e9?", "answers": []}, ensure_ascii=False).encode("latin-1"),
        json.dumps({"question": "When?", "answers": ["1965"], "evidence": 5}).encode(),
        json.dumps({"question": ["When?"], "answers": []}).encode(),
        json.dumps({"question": "When?", "answers": [{"text": "1965"}]}).encode(),
        b"[1]", b"{not json",
    ]))
    questions, problems = load_questions(path)
    assert [q.evidence for q in questions] == [("in 1965",)]
    assert [p.split(":")[1] for p in problems] == ["2", "3", "4", "5", "6", "7"]
    assert "not UTF-8" in problems[0] and '"evidence" must be a list of strings' in problems[1]


def test_bad_items_of_a_squad_file_are_skipped_and_named(tmp_path: Path):
    from qa.evaluation.squad import load_squad

    context = "Busan is a port. It was founded in 1876."
    good_q = {"id": "a", "question": "When was it founded?", "answers": [{"text": "1876", "answer_start": 34}]}
    raw = {"data": [1, {"title": "Busan", "paragraphs": [
        {"context": 5, "qas": [good_q]},
        {"context": context, "qas": [good_q, {"id": "b", "question": ["x"]}, {"id": "c", "question": "Why?",
                                                                              "answers": [{"text": 5}]}]}]}]}
    path = tmp_path / "squad.json"
    path.write_text(json.dumps(raw), encoding="utf-8")
    problems: list[str] = []
    (article,) = load_squad(path, problems)
    assert [q.id for q in article.questions] == ["a"] and article.paragraphs == (context,)
    assert len(problems) == 4 and "article 1: skipped" in problems[0] and "paragraph 1: skipped" in problems[1]


def test_the_report_keeps_a_question_files_type_and_text_inert():
    from qa.evaluation.report import report

    hostile = "<script>alert(1)</script> ![x](http://e/i.png) | a\nb"
    record = {"id": "q1", "type": hostile, "question": "Who? <img src=x>", "gold": "Seoul", "answer": "[go](javascript:x)",
              "abstained": False, "answerable": True, "evidence_rank": 1, "contains_gold": 0.0, "f1": 0.0,
              "passages": [{"rank": 1, "section": "<b>S</b>", "text": "Tokyo"}]}
    text = report([record], {"overall": {"f1": 0.0}, hostile: {"f1": 0.0}}, "settings")
    assert "<script>" not in text and "<img" not in text and "<b>" not in text
    assert "](http" not in text and "](javascript" not in text
    row = next(line for line in text.splitlines() if "alert" in line and line.startswith("|"))
    assert row.count(" | ") == 1 and row.endswith("|")  # one cell for the name, one for f1


def _table_questions(folder: Path) -> Path:
    """A WikiTableQuestions-style file: two tables (quotes escaped as \\") and three questions."""
    (folder / "csv").mkdir()
    (folder / "csv" / "1.csv").write_text('"Nation","Gold"\n"Norway","11"\n"Japan","1"\n"Korea \\"South\\"","5"\n',
                                          encoding="utf-8")
    (folder / "csv" / "2.csv").write_text('"Year","Venue"\n"1998","Kuala Lumpur"\n"2002","Manchester"\n', encoding="utf-8")
    lines = [{"id": "t1", "question": "Which nation won the most gold medals?", "answers": ["Norway"], "table": "csv/1.csv",
              "title": "Medal table", "kind": "max_min"},
             {"id": "t2", "question": "How many gold medals did Japan win?", "answers": ["1"], "table": "csv/1.csv",
              "title": "Medal table", "kind": "lookup"},
             {"id": "t3", "question": "Where were the games held in 2002?", "answers": ["Manchester"], "table": "csv/2.csv",
              "kind": "lookup"},
             {"id": "t4", "question": "A line whose table is elsewhere?", "answers": ["x"], "table": "../outside.csv"},
             {"id": "t5", "question": "Who audits the accounts?", "answers": ["KPMG"], "table": "csv/2.csv",
              "paragraphs": "csv/2.txt", "kind": "lookup"}]
    (folder / "csv" / "2.txt").write_text("The accounts are audited by KPMG.\n", encoding="utf-8")
    path = folder / "tables.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    return path


def test_a_table_question_file_becomes_a_corpus_of_its_tables(tmp_path: Path):
    from qa.evaluation.tables import is_table_file, table_corpus
    from qa.tables.table import table_correct

    path = _table_questions(tmp_path)
    assert is_table_file(path) and not is_table_file(EVAL_SET)
    questions, problems = table_corpus(path, tmp_path / "corpus")
    assert [q.id for q in questions] == ["t1", "t2", "t3", "t5"] and len(problems) == 1 and "t4" in problems[0]
    assert sorted(p.name for p in (tmp_path / "corpus").iterdir()) == ["0001_Medal_table.csv", "0002_2.csv", "0002_2.txt"]
    assert 'Korea ""South""' in (tmp_path / "corpus" / "0001_Medal_table.csv").read_text(encoding="utf-8")  # plain CSV
    assert [q.type for q in questions] == ["max_min", "lookup", "lookup", "lookup"]
    assert table_correct("1", ("1",)) and not table_correct("11", ("1",))


@pytest.mark.slow
def test_qa_eval_on_table_questions_scores_their_denotation(tmp_path: Path):
    path = _table_questions(tmp_path)
    result = qa("eval", str(path), "--out", str(tmp_path / "out"), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "2 tables" in result.stderr and "t4: skipped" in result.stderr
    overall = json.loads((tmp_path / "out" / "summary.json").read_text(encoding="utf-8"))["overall"]
    records = [json.loads(line) for line in (tmp_path / "out" / "results.jsonl").read_text(encoding="utf-8").splitlines()]
    assert overall["questions"] == 4 and [r["table_correct"] for r in records[:3]] == [1.0] * 3, records
    assert "KPMG" in records[3]["answer"]  # read from the text beside its table (answered, or quoted as the closest)


def _hotpot_questions(folder: Path) -> Path:
    lines = [{"_id": "h1", "question": "Who was born first, Ada Byrne or Cole Marsh?", "answer": "Ada Byrne", "type": "comparison",
              "supporting_facts": [["Ada Byrne", 0], ["Cole Marsh", 0]],
              "context": [["Ada Byrne", ["Ada Byrne (born 3 May 1901) was an Irish painter."]],
                          ["Cole Marsh", ["Cole Marsh (born 9 June 1932) is a Welsh poet.", " He lives in Cardiff."]]]},
             {"_id": "h2", "question": "Where does Cole Marsh live?", "answer": "Cardiff", "type": "bridge",
              "supporting_facts": [["Cole Marsh", 1]],
              "context": [["Cole Marsh", ["Cole Marsh (born 9 June 1932) is a Welsh poet.", " He lives in Cardiff."]],
                          ["Ada Byrne", ["Ada Byrne (born 3 May 1901) was an Irish painter."]]]},
             {"_id": "h3", "question": "Broken?", "answer": "x", "supporting_facts": [], "context": "not a list"}]
    path = folder / "hotpot.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    return path


def test_a_hotpotqa_file_becomes_its_paragraphs_each_question_scoped_to_its_own(tmp_path: Path):
    from qa.evaluation.hotpot import hotpot_corpus, is_hotpot_file, paragraph_file

    path = _hotpot_questions(tmp_path)
    assert is_hotpot_file(path) and not is_hotpot_file(EVAL_SET)
    questions, problems = hotpot_corpus(path, tmp_path / "corpus")
    assert [q.id for q in questions] == ["h1", "h2"] and len(problems) == 1 and ":3:" in problems[0]
    assert len(list((tmp_path / "corpus").iterdir())) == 2  # each paragraph written once
    assert questions[1].evidence == ("He lives in Cardiff.",) and questions[1].type == "bridge"
    assert questions[0].extra["documents"] == [paragraph_file("Ada Byrne"), paragraph_file("Cole Marsh")]


@pytest.mark.slow
def test_qa_eval_on_a_hotpotqa_file_composes_the_comparison(tmp_path: Path):
    path = _hotpot_questions(tmp_path)
    result = qa("eval", str(path), "--out", str(tmp_path / "out"), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "2 paragraphs" in result.stderr
    records = [json.loads(line) for line in (tmp_path / "out" / "results.jsonl").read_text(encoding="utf-8").splitlines()]
    assert records[0]["short_answer"] == "Ada Byrne" and records[0]["squad_f1"] == 1.0, records[0]
