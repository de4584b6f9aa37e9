"""Word, PowerPoint, Excel, CSV and EPUB files: made with their own libraries, read into sections,
pages and one passage per table row; damaged ones skipped with the reason, never a stopped build."""

import random
import re
import zipfile
from pathlib import Path

import pytest

from qa.config import Settings
from qa.index.build import build_index
from qa.index.store import load_index
from qa.ingest import office
from qa.ingest.corpus import SUFFIXES
from qa.ingest.readers import UnreadableFile, parse_sections, read_document


def make_docx(path: Path) -> None:
    import docx

    document = docx.Document()
    document.core_properties.title = "Harbour Report"
    document.add_paragraph("Harbour Report", style="Title")
    document.add_paragraph("The harbour of Busan handled 22 million containers in 2023.")
    document.add_heading("Ferries", level=1)
    document.add_paragraph("The Beetle hydrofoil links Busan and Fukuoka in three hours.")
    document.add_paragraph("Daily departures", style="List Bullet")
    table = document.add_table(rows=3, cols=2)
    for r, row in enumerate([("Port", "Containers 2023"), ("Busan", "22 million"), ("Incheon", "3 million")]):
        for c, value in enumerate(row):
            table.cell(r, c).text = value
    document.save(path)


def make_pptx(path: Path) -> None:
    import pptx
    from pptx.util import Inches

    deck = pptx.Presentation()
    first = deck.slides.add_slide(deck.slide_layouts[1])
    first.shapes.title.text = "Quarterly results"
    first.placeholders[1].text_frame.text = "Revenue grew 12 percent in the third quarter."
    first.notes_slide.notes_text_frame.text = "Mention the new ferry line."
    second = deck.slides.add_slide(deck.slide_layouts[5])
    second.shapes.title.text = "Outlook"
    table = second.shapes.add_table(2, 2, Inches(1), Inches(2), Inches(4), Inches(1)).table
    for (r, c), value in {(0, 0): "Year", (0, 1): "Target", (1, 0): "2025", (1, 1): "15 percent growth"}.items():
        table.cell(r, c).text = value
    deck.save(path)


def make_xlsx(path: Path) -> None:
    import openpyxl

    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.title = "Exports"
    for row in (["Country", "Exports 2024"], ["Japan", 12], ["Korea", 9.5]):
        sheet.append(row)
    workbook.create_sheet("Notes").append(["Figures in billions of dollars."])
    workbook.save(path)


def make_epub(path: Path) -> None:
    with zipfile.ZipFile(path, "w") as book:
        book.writestr("mimetype", "application/epub+zip")
        book.writestr("META-INF/container.xml", '<?xml version="1.0"?><container version="1.0" xmlns="urn:oasis:names:'
                      'tc:opendocument:xmlns:container"><rootfiles><rootfile full-path="OEBPS/content.opf" '
                      'media-type="application/oebps-package+xml"/></rootfiles></container>')
        book.writestr("OEBPS/content.opf", '<?xml version="1.0"?><package xmlns="http://www.idpf.org/2007/opf" '
                      'version="3.0"><metadata xmlns:dc="http://purl.org/dc/elements/1.1/"><dc:title>A Tale of Two '
                      'Ports</dc:title></metadata><manifest><item id="c1" href="c1.xhtml" media-type="application/'
                      'xhtml+xml"/><item id="c2" href="text/c2.xhtml" media-type="application/xhtml+xml"/></manifest>'
                      '<spine><itemref idref="c1"/><itemref idref="c2"/></spine></package>')
        book.writestr("OEBPS/c1.xhtml", "<html><body><h1>Chapter One</h1><p>The lighthouse keeper of Yeongdo kept a "
                      "diary.</p><script>alert(1)</script></body></html>")
        book.writestr("OEBPS/text/c2.xhtml", "<html><body><h1>Chapter Two</h1><p>The diary was found in 1954.</p>"
                      "</body></html>")


MAKERS = {"harbour.docx": make_docx, "results.pptx": make_pptx, "trade.xlsx": make_xlsx, "tale.epub": make_epub,
          "cities.csv": lambda path: path.write_text("City;Population\nBusan;3.4 million\nSeoul;9.4 million\n")}


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    folder = tmp_path / "corpus"
    folder.mkdir()
    for name, make in MAKERS.items():
        make(folder / name)
    return folder


def read(corpus: Path, name: str):  # noqa: ANN201
    return read_document(corpus / name, corpus)


def test_every_new_format_is_a_document_type(corpus: Path):
    assert {Path(name).suffix for name in MAKERS} <= set(SUFFIXES)


def test_a_word_document_keeps_its_title_headings_lists_and_table_rows(corpus: Path):
    doc = read(corpus, "harbour.docx")
    assert doc.title == "Harbour Report"
    assert [s.path for s in parse_sections(doc.text)] == ["", "Ferries"]
    assert "- Daily departures" in doc.text
    assert "Port: Busan; Containers 2023: 22 million\n\nPort: Incheon; Containers 2023: 3 million" in doc.text


@pytest.mark.parametrize("default", ["Word Document", "Presentation1", "Untitled document"])
def test_a_title_a_program_wrote_is_no_title(tmp_path: Path, default: str):
    import docx

    document = docx.Document()
    document.core_properties.title = default  # what the generator writes when a person set none
    document.add_paragraph("Ferry timetable", style="Title")
    document.add_paragraph("The Beetle hydrofoil leaves Busan at nine every morning.")
    document.save(tmp_path / "memo.docx")
    assert read(tmp_path, "memo.docx").title == "Ferry timetable"  # its first heading
    document.paragraphs[0].text, document.paragraphs[0].style = "The Beetle leaves at nine.", "Normal"
    document.save(tmp_path / "memo.docx")
    assert read(tmp_path, "memo.docx").title == "memo"  # else its file name


def test_a_deck_has_a_page_and_a_section_per_slide_with_its_notes_and_tables(corpus: Path):
    doc = read(corpus, "results.pptx")
    assert doc.title == "Quarterly results" and len(doc.page_starts) == 2
    second = doc.text[doc.page_starts[1]:]
    assert second.startswith("## Outlook") and "Year: 2025; Target: 15 percent growth" in second
    assert "Notes: Mention the new ferry line." in doc.text[:doc.page_starts[1]]
    assert [s.path for s in parse_sections(doc.text)] == ["Quarterly results", "Outlook"]


def test_a_workbook_has_a_page_per_sheet_and_a_passage_per_row(corpus: Path):
    doc = read(corpus, "trade.xlsx")
    assert len(doc.page_starts) == 2 and doc.text[doc.page_starts[1]:].startswith("## Notes")
    assert "Row 2: Country: Japan; Exports 2024: 12\n\nRow 3: Country: Korea; Exports 2024: 9.5" in doc.text


def test_a_csv_file_is_read_with_its_delimiter_and_header(corpus: Path):
    doc = read(corpus, "cities.csv")
    assert doc.text == "Row 2: City: Busan; Population: 3.4 million\n\nRow 3: City: Seoul; Population: 9.4 million"


def test_a_book_is_read_in_reading_order_with_its_chapters_as_sections(corpus: Path):
    doc = read(corpus, "tale.epub")
    assert doc.title == "A Tale of Two Ports" and "alert" not in doc.text
    assert [s.path for s in parse_sections(doc.text)] == ["Chapter One", "Chapter Two"]
    assert doc.text.index("kept a diary") < doc.text.index("found in 1954")


def test_citations_carry_the_slide_or_sheet_as_their_page_and_name_it(corpus: Path, fake_embedder):
    settings = Settings(corpus_dir=corpus, index_dir=corpus.parent / "index")
    summary = build_index(settings, fake_embedder, progress=False)
    assert summary.documents == len(MAKERS) and not summary.skipped
    index = load_index(settings, "fake")
    pages = {(index.documents[c.doc_id].path, c.page) for c in index.chunks}
    assert ("results.pptx", 2) in pages and ("trade.xlsx", 1) in pages and ("harbour.docx", None) in pages
    for chunk in index.chunks:  # exact offsets into the text the document view shows
        assert read(corpus, index.documents[chunk.doc_id].path).text[chunk.start:chunk.end] == chunk.text
    # named as a person names the place: the sheet and row, the slide (and its title), the CSV row
    places = {index.path(c): [] for c in index.chunks}
    for c in index.chunks:
        places[index.path(c)] += [index.place(c, c.start + m.start()) for m in re.finditer(r"(?m)^Row \d+: ", c.text)] or [
            index.place(c)]
    assert places["trade.xlsx"] == ["sheet Exports, row 2", "sheet Exports, row 3", "sheet Notes"]  # row 1: the header
    assert places["results.pptx"] == ["Quarterly results, slide 1", "Outlook, slide 2"]
    assert places["cities.csv"] == ["row 2", "row 3"]
    korea = next(c for c in index.chunks if "Korea" in c.text and index.path(c) == "trade.xlsx")
    assert index.where(korea, korea.start + korea.text.index("Korea")) == "trade › sheet Exports, row 3"


@pytest.mark.parametrize("name", sorted(MAKERS))
def test_a_truncated_file_is_skipped_with_the_reason_and_the_build_goes_on(corpus: Path, fake_embedder, name: str):
    path = corpus / name
    path.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2])
    if name.endswith(".csv"):
        return  # half a CSV is still a CSV
    with pytest.raises(UnreadableFile):
        read(corpus, name)
    summary = build_index(Settings(corpus_dir=corpus, index_dir=corpus.parent / "index"), fake_embedder, progress=False)
    assert set(summary.skipped) == {name} and summary.documents == len(MAKERS) - 1


@pytest.mark.parametrize("name", sorted(MAKERS))
def test_damaged_bytes_give_a_document_or_a_clear_refusal_never_another_error(corpus: Path, name: str):
    original = (corpus / name).read_bytes()
    rng = random.Random(name)
    for _ in range(25):
        data = bytearray(original)
        for _ in range(rng.randint(1, 20)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        (corpus / name).write_bytes(bytes(data))
        try:
            read(corpus, name)
        except UnreadableFile:
            pass


def test_a_zip_that_unpacks_too_far_is_refused_before_it_is_parsed(corpus: Path, monkeypatch):
    monkeypatch.setattr(office, "MAX_UNPACKED_BYTES", 1000)
    with pytest.raises(UnreadableFile, match="unpacks to .* over the 0 MB"):
        read(corpus, "harbour.docx")


def test_a_spreadsheet_keeps_at_most_max_rows(tmp_path: Path, monkeypatch, caplog):
    monkeypatch.setattr(office, "MAX_ROWS", 3)
    (tmp_path / "big.csv").write_text("n,square\n" + "".join(f"{n},{n * n}\n" for n in range(100)))
    with caplog.at_level("WARNING"):
        doc = read_document(tmp_path / "big.csv", tmp_path)
    assert doc.text.count("Row ") == 2 and "only the first 3 rows" in caplog.text


def rewritten(source: Path, target: Path, member: str, change) -> None:  # noqa: ANN001
    """`source`'s zip copied to `target` with `member`'s bytes passed through `change`."""
    with zipfile.ZipFile(source) as good, zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as out:
        for item in good.infolist():
            data = good.read(item)
            out.writestr(item, change(data) if item.filename == member else data)


def test_a_docx_whose_text_parts_unpack_too_far_is_refused_before_it_is_parsed(corpus: Path, tmp_path: Path):
    """A few MB on disk whose document.xml unpacks past MAX_PARSED_BYTES (under the whole-zip cap:
    python-docx would take ~20 × that in memory) is refused at once, naming the budget."""
    import time

    def filled(data: bytes) -> bytes:
        head, _, tail = data.decode().partition("<w:body>")
        filler = "<w:p><w:r><w:t>Busan harbour.</w:t></w:r></w:p>" * (office.MAX_PARSED_BYTES // 45)
        return f"{head}<w:body>{filler}{tail}".encode()

    bomb = tmp_path / "bomb.docx"
    rewritten(corpus / "harbour.docx", bomb, "word/document.xml", filled)
    began = time.monotonic()
    with pytest.raises(UnreadableFile, match="text parts unpack to .* over the 64 MB"):
        read_document(bomb, tmp_path)
    assert time.monotonic() - began < 5 and bomb.stat().st_size < office.MAX_PARSED_BYTES / 50


def test_an_epub_that_lists_one_chapter_thousands_of_times_reads_it_once(tmp_path: Path):
    make_epub(tmp_path / "tale.epub")
    looped = tmp_path / "looped.epub"
    rewritten(tmp_path / "tale.epub", looped, "OEBPS/content.opf",
              lambda data: data.replace(b'<itemref idref="c2"/>', b'<itemref idref="c2"/>' * 5000))
    doc = read_document(looped, tmp_path)
    assert doc.text.count("The diary was found in 1954.") == 1 and "Chapter One" in doc.text


def test_a_document_keeps_at_most_max_text_chars(tmp_path: Path, monkeypatch, caplog):
    monkeypatch.setattr(office, "MAX_TEXT_CHARS", 80)
    make_epub(tmp_path / "tale.epub")
    with caplog.at_level("WARNING"):
        doc = read_document(tmp_path / "tale.epub", tmp_path)
    assert "Chapter One" in doc.text and "1954" not in doc.text and "only the first 80 characters" in caplog.text
    assert len(doc.text) <= 80


def test_a_sheet_is_read_by_its_real_cells_not_the_extent_it_claims(tmp_path: Path):
    import time

    make_xlsx(tmp_path / "trade.xlsx")
    def claiming(data: bytes) -> bytes:
        data, count = re.subn(rb'<dimension ref="[^"]*"/>', b'<dimension ref="A1:XFD1048576"/>', data)
        far = b'<row r="1048576"><c r="XFD1048576" t="n"><v>7</v></c></row></sheetData>'
        data, found = re.subn(rb"</sheetData>", far, data)
        assert count == found == 1
        return data

    claims = tmp_path / "claims.xlsx"
    rewritten(tmp_path / "trade.xlsx", claims, "xl/worksheets/sheet1.xml", claiming)
    began = time.monotonic()
    doc = read_document(claims, tmp_path)
    assert time.monotonic() - began < 5 and "Row 2: Country: Japan; Exports 2024: 12" in doc.text


def test_a_huge_cell_is_cut_and_the_other_rows_kept(tmp_path: Path):
    (tmp_path / "offices.csv").write_text("City,Note\nBusan," + "x" * 200_000 + "\nSeoul,Head office\n")
    doc = read_document(tmp_path / "offices.csv", tmp_path)
    assert "Row 3: City: Seoul; Note: Head office" in doc.text and len(doc.text) < 3000


def test_a_slide_with_only_pictures_is_no_passage_and_the_numbers_hold(tmp_path: Path):
    import pptx

    deck = pptx.Presentation()
    deck.slides.add_slide(deck.slide_layouts[6])  # blank: a picture would go here
    deck.slides.add_slide(deck.slide_layouts[1]).shapes.title.text = "Ferry times"
    deck.save(tmp_path / "deck.pptx")
    doc = read_document(tmp_path / "deck.pptx", tmp_path)
    assert "Slide 1" not in doc.text and len(doc.page_starts) == 2
    assert doc.text[doc.page_starts[1]:].startswith("## Ferry times")
    only_pictures = pptx.Presentation()
    only_pictures.slides.add_slide(only_pictures.slide_layouts[6])
    only_pictures.save(tmp_path / "pictures.pptx")
    with pytest.raises(UnreadableFile, match="empty"):
        read_document(tmp_path / "pictures.pptx", tmp_path)


@pytest.mark.parametrize("name", ["memo.docx", "figures.xlsx"])
def test_a_password_protected_office_file_says_so(tmp_path: Path, name: str):
    header = bytes.fromhex("d0cf11e0a1b11ae1") + bytes(504)
    (tmp_path / name).write_bytes(header + "EncryptedPackage".encode("utf-16-le") + bytes(2000))
    with pytest.raises(UnreadableFile, match="password-protected .* save an unprotected copy"):
        read_document(tmp_path / name, tmp_path)
    (tmp_path / name).write_bytes(header + bytes(2000))  # a .doc / .xls under a new name
    with pytest.raises(UnreadableFile, match="old binary Office file"):
        read_document(tmp_path / name, tmp_path)


def test_a_malformed_office_file_gives_one_line_not_a_traceback(tmp_path: Path, caplog):
    with zipfile.ZipFile(tmp_path / "broken.docx", "w") as out:
        out.writestr("[Content_Types].xml", "<Types/>")
        out.writestr("word/document.xml", "<not-word/>")
    with caplog.at_level("WARNING"), pytest.raises(UnreadableFile, match="could not be read"):
        read_document(tmp_path / "broken.docx", tmp_path)
    assert "Traceback" not in caplog.text


@pytest.mark.slow  # the real models
def test_each_kind_is_answered_with_a_citation_at_its_slide_sheet_or_page(corpus: Path):
    import json

    from conftest import qa
    from test_formats import SCANNED, make_scan

    make_scan(corpus / "scan.pdf", SCANNED)
    env = {"QA_CACHE_DIR": str(corpus.parent / "cache")}
    built = qa("index", cwd=corpus.parent, env=env)
    assert built.returncode == 0 and built.stdout.startswith("indexed 6 documents"), built.stderr
    asked = {  # question: (the cited document's title, page, its place, words of the answer)
        "How many containers did the harbour of Busan handle in 2023?": ("Harbour Report", None, None, "22 million"),
        "By how much did revenue grow in the third quarter?": ("Quarterly results", 1, "Quarterly results, slide 1", "12 percent"),
        "What is the growth target for 2025?": ("Quarterly results", 2, "Outlook, slide 2", "15 percent"),
        "What is the population of Seoul?": ("cities", None, "row 3", "9.4 million"),
        "What were the exports of Korea in 2024?": ("trade", 1, "sheet Exports, row 3", "9.5"),
        "When was the diary found?": ("A Tale of Two Ports", None, None, "1954"),
        "When was the Yeongdo lighthouse in Busan built?": ("scan", 1, "page 1", "1954"),
    }
    for question, (title, page, place, words) in asked.items():
        out = json.loads(qa("ask", "--json", question, cwd=corpus.parent, env=env).stdout)
        cited = out["citations"][0] if out["citations"] else {}
        assert words in out["answer"] and (cited.get("title"), cited.get("page")) == (title, page), (question, out)
        assert cited["file"] and all(p["file"] for p in out["passages"]) and (place is None or cited["place"] == place)
