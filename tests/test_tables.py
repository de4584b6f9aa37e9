"""The table reader: typed cells, and each operation on a small table."""

import pytest

from qa.tables.reader import read_table
from qa.tables.table import Table, table_from_text

MEDALS = Table.from_rows([
    ["Rank", "Nation", "Gold", "Silver", "Total"],
    ["1", "Norway", "11", "5", "26"],
    ["2", "Germany", "8", "6", "19"],
    ["3", "South Korea", "5", "3", "9"],
    ["4", "Japan", "1", "2", "5"],
])


@pytest.mark.parametrize(("question", "answer", "operation"), [
    ("How many gold medals did Japan win?", ("1",), "lookup"),
    ("Which nation won the most gold medals?", ("Norway",), "argmax"),
    ("Which nation has the fewest total medals?", ("Japan",), "argmin"),
    ("How many nations won more than 4 gold medals?", ("3",), "count"),
    ("What is the total number of silver medals?", ("16",), "sum"),
    ("What is the average number of gold medals?", ("6.25",), "average"),
    ("How many more gold medals did Norway win than Germany?", ("3",), "difference"),
    ("Which nation is listed after Germany?", ("South Korea",), "next"),
    ("Who won more silver medals, Japan or South Korea?", ("South Korea",), "choice"),
    ("Which nation is listed first?", ("Norway",), "first"),
])
def test_each_operation_on_a_small_table(question: str, answer: tuple, operation: str):
    got = read_table(question, MEDALS)
    assert got is not None and (got.values, got.operation) == (answer, operation), got


STATEMENT = Table.from_rows([
    ["", "Years Ended September 30,", "", ""],
    ["", "2019", "2018", "2017"],
    ["Fixed price", "$ 1,452.4", "$ 1,146.2", "$ 1,036.9"],
    ["Other", "44.1", "56.7", "70.8"],
    ["Total sales", "$1,496.5", "$1,202.9", "$1,107.7"],
])


@pytest.mark.parametrize(("question", "answer", "operation"), [
    ("What is the amount of total sales in 2019?", ("$1,496.5",), "lookup"),
    ("What is the change in Other in 2019 from 2018?", ("-12.6",), "change"),
    ("What is the percentage change in Other from 2018 to 2019?", ("-22.22",), "percentage change"),
    ("What is the average total sales in 2018 and 2019?", ("1349.7",), "average"),
    ("In which year was the amount of total sales the largest?", ("2019",), "argmax"),
])
def test_a_statement_with_years_as_columns(question: str, answer: tuple, operation: str):
    assert STATEMENT.header == ["", "Years Ended September 30, 2019", "Years Ended September 30, 2018",
                                "Years Ended September 30, 2017"] and STATEMENT.numbers[1][3] == 70.8
    got = read_table(question, STATEMENT)
    assert got is not None and (got.values, got.operation) == (answer, operation), got


def test_a_sheet_is_read_back_from_its_row_passages():
    table = table_from_text("Row 2: Country: Japan; Exports 2024: 12\n\nRow 3: Country: Korea; Exports 2024: 9.5")
    assert table.header == ["Country", "Exports 2024"] and table.numbers[1][1] == 9.5
    assert read_table("Which country exported the most in 2024?", table).values == ("Japan",)


def test_a_question_over_a_sheet_is_answered_with_the_cell_and_its_row_cited(settings):
    import openpyxl
    from conftest import FakeEmbedder, FakeReader

    from qa.index.build import build_index
    from qa.pipeline import Pipeline

    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.title = "Exports 2024"
    for row in (["Country", "Units shipped", "Revenue"], ["Korea", 80, 0], ["Japan", 1200, 61.4], ["Vietnam", 300, 12.5]):
        sheet.append(row)
    workbook.save(settings.corpus_dir / "sales.xlsx")
    build_index(settings, FakeEmbedder(), progress=False)
    pipeline = Pipeline(settings, embedder=FakeEmbedder(), reader=FakeReader())
    for question, value in (("Which country had the most revenue?", "Japan"), ("How many units were shipped to Vietnam?", "300"),
                            ("Which country had the least units shipped?", "Korea")):
        answer = pipeline.ask(question)
        assert answer.model == "table-reader" and answer.outcome == "answer" and answer.short_answer.text == value, answer
        (cited,) = answer.citations
        chunk = answer.passages[cited.marker - 1].chunk
        assert cited.quote.startswith("Row ") and chunk.text[cited.start - chunk.start:cited.end - chunk.start] == cited.quote
        short = answer.short_answer
        assert chunk.text[short.start - chunk.start:short.end - chunk.start] == value  # verbatim in the document
        assert pipeline.index.place(chunk, cited.start).startswith("sheet Exports 2024, row ")
    for question, value, cited in (("How many countries are listed?", "3", 3), ("How many countries had more than 100 units shipped?", "2", 2),
                                   ("What is the total revenue?", "73.9", 3)):
        answer = pipeline.ask(question)  # computed: the value, and the rows it was computed from quoted and cited
        assert (answer.model, answer.headline, len(answer.citations)) == ("table-reader", value, cited), answer
        for c in answer.citations:
            chunk = answer.passages[c.marker - 1].chunk
            assert c.quote.startswith("Row ") and chunk.text[c.start - chunk.start:c.end - chunk.start] == c.quote
            assert f"“{c.quote}” [{c.marker}]" in answer.text


def test_a_change_over_years_in_a_sheet_is_computed_and_its_line_cited(settings):
    import openpyxl
    from conftest import FakeEmbedder, FakeReader

    from qa.index.build import build_index
    from qa.pipeline import Pipeline

    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.title = "Income"
    for row in (["Item", "2019", "2018"], ["Sales", 1496.5, 1202.9], ["Other income", 44.1, 56.7]):
        sheet.append(row)
    workbook.save(settings.corpus_dir / "income.xlsx")
    build_index(settings, FakeEmbedder(), progress=False)
    answer = Pipeline(settings, embedder=FakeEmbedder(), reader=FakeReader()).ask(
        "What was the percentage change in other income from 2018 to 2019?")
    assert (answer.model, answer.headline) == ("table-reader", "-22.22%"), answer
    (cited,) = answer.citations
    assert "Other income" in cited.quote and answer.text.startswith("the percentage change of Other income from 2018 (56.7) to 2019 (44.1): “Row 3")


def test_a_row_ranked_below_a_text_passage_answers_only_a_question_naming_its_columns(settings):
    import openpyxl
    from conftest import FakeEmbedder, FakeReader

    from qa.answer.table_answer import table_answer
    from qa.index.build import build_index
    from qa.pipeline import Pipeline
    from qa.types import Passage

    workbook = openpyxl.Workbook()
    for row in (["Order", "Country", "Agent"], [16, "Brazil", "Agent 25"], [17, "India", "Agent 12"]):
        workbook.active.append(row)
    workbook.save(settings.corpus_dir / "orders.xlsx")
    (settings.corpus_dir / "note.txt").write_text("The Seoul office opened in 1998 with twelve staff.\n", encoding="utf-8")
    build_index(settings, FakeEmbedder(), progress=False)
    index = Pipeline(settings, embedder=FakeEmbedder(), reader=FakeReader()).index
    text, row = (next(c for c in index.chunks if words in c.text) for words in ("The Seoul", "Row 2"))
    ranked = [Passage(text, 0.5, 1), Passage(row, 0.4, 2)]
    assert table_answer("Which agent handled order 17?", ranked, index).short_answer.text == "Agent 12"
    assert table_answer("When did the Seoul office open?", ranked, index) is None  # names no column: the text's


def test_the_index_notes_what_each_file_held_and_what_went_wrong(settings):
    import openpyxl
    from conftest import FakeEmbedder

    from qa.index.build import build_index
    from qa.index.store import load_index

    workbook = openpyxl.Workbook()
    workbook.active.append(["Country", "Units"])
    workbook.active.append(["Japan", 12])
    second = workbook.create_sheet("Imports")
    for row in (["Country", "Units"], ["Korea", 3], ["Chile", 4]):
        second.append(row)
    workbook.save(settings.corpus_dir / "trade.xlsx")
    (settings.corpus_dir / "memo.txt").write_bytes("The memo says Zürich hours changed.".encode() + b"\xff\n")
    build_index(settings, FakeEmbedder(), progress=False)
    notes = {d.path: d.notes for d in load_index(settings).documents.values()}
    assert notes["trade.xlsx"] == "2 sheets, 3 rows"
    assert "not valid UTF-8" in notes["memo.txt"] and "memo.txt" not in notes["memo.txt"], notes
