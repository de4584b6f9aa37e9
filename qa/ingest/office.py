"""Word, PowerPoint, Excel, CSV and EPUB files as text the rest of the pipeline reads.

Each reader keeps what a citation needs: headings become Markdown headings (so they become
sections), a slide or a sheet is a "page" (its number is shown with the citation), and a table
becomes one paragraph per row with its header ("Country: Japan; Exports 2024: 12"), so a cell can
be cited. Libraries: python-docx, python-pptx and openpyxl (well kept, pure Python over lxml, no
conversion to another format that would lose the structure); EPUB is read here from its zip
(the container, the package's spine, each chapter through `html_text`), XML through defusedxml.
Budgets that hold for any file: a zip that unpacks to more than `MAX_UNPACKED_BYTES`, or whose
parts that are parsed (XML, HTML: not the pictures) unpack to more than `MAX_PARSED_BYTES`, is
refused before it is parsed (a "zip bomb"); a document keeps at most `MAX_TEXT_CHARS` of text, a
spreadsheet or CSV file `MAX_ROWS` rows and `MAX_CELLS` cells (its real cells, not the extent its
`<dimension>` claims), an EPUB reads each chapter once however often its spine lists it; past a
budget the rest is left out with a warning that names the file. Any failure of a library on a
damaged file becomes `UnreadableFile` in `read_document`, so one file never stops a build.
"""

from __future__ import annotations

import csv
import datetime
import io
import logging
import posixpath
import re
import zipfile
from collections.abc import Iterable, Iterator, Sequence

from qa.ingest.plain import UnreadableFile, decode, html_text

log = logging.getLogger(__name__)

MAX_UNPACKED_BYTES = 300 * 2**20  # what a zipped document may unpack to
MAX_PARSED_BYTES = 64 * 2**20  # what its parsed parts (XML, HTML) may unpack to: parsing takes ~20 × that
MAX_TEXT_CHARS = 20_000_000  # of a document's text; the rest is left out
MAX_ROWS = 100_000  # rows of a spreadsheet or CSV file (all sheets together); the rest are left out
MAX_CELLS = 2_000_000  # cells of a spreadsheet (all sheets together)
MAX_CELL_CHARS = 2000
PARSED = (".xml", ".rels", ".xhtml", ".html", ".htm", ".opf", ".ncx", ".vml")
OLE = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # the container of encrypted and of old binary Office files


def check_zip(data: bytes, kind: str) -> None:
    """`UnreadableFile` unless `data` is a zip that unpacks to at most `MAX_UNPACKED_BYTES`, its
    parsed parts to at most `MAX_PARSED_BYTES` (zipfile never reads past a member's declared size).

    >>> check_zip(OLE + "EncryptedPackage".encode("utf-16-le"), ".docx")
    Traceback (most recent call last):
    qa.ingest.plain.UnreadableFile: a password-protected .docx file (open it, save an unprotected copy, add that)
    """
    if data.startswith(OLE):
        if "EncryptedPackage".encode("utf-16-le") in data:
            raise UnreadableFile(f"a password-protected {kind} file (open it, save an unprotected copy, add that)")
        raise UnreadableFile(f"an old binary Office file named {kind} (.doc, .xls or .ppt): save it as {kind}")
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            members = archive.infolist()
    except (zipfile.BadZipFile, ValueError, EOFError) as error:
        raise UnreadableFile(f"not a readable {kind} file (a damaged zip: {error})") from None
    unpacked = sum(info.file_size for info in members)
    parsed = sum(info.file_size for info in members if info.filename.lower().endswith(PARSED))
    if unpacked > MAX_UNPACKED_BYTES:
        raise UnreadableFile(f"unpacks to {unpacked / 2**20:.0f} MB, over the {MAX_UNPACKED_BYTES // 2**20} MB "
                             "a document may hold")
    if parsed > MAX_PARSED_BYTES:
        raise UnreadableFile(f"its text parts unpack to {parsed / 2**20:.0f} MB, over the "
                             f"{MAX_PARSED_BYTES // 2**20} MB a document's text may take")


def _within_budget(parts: Iterable[str], name: str) -> Iterator[str]:
    """`parts` while their characters stay within `MAX_TEXT_CHARS` (a warning when cut)."""
    left = MAX_TEXT_CHARS
    for part in parts:
        if len(part) > left:
            log.warning("%s: only the first %d characters of text were read (the rest are left out)",
                        name or "a document", MAX_TEXT_CHARS)
            if left > 0:
                yield part[:left]
            return
        left -= len(part) + 2
        yield part


def clean(text: object) -> str:
    """A cell or paragraph as one line: whitespace runs made one space, at most `MAX_CELL_CHARS`.

    >>> clean("  Exports\\n 2024 "), clean(12.0), clean(datetime.date(2024, 5, 1)), clean(None)
    ('Exports 2024', '12', '2024-05-01', '')
    """
    if text is None:
        return ""
    if isinstance(text, float) and text.is_integer():
        text = int(text)
    elif isinstance(text, (datetime.date, datetime.time)):
        text = text.isoformat()
    return " ".join(str(text).split())[:MAX_CELL_CHARS]


def table_lines(rows: Iterable[Sequence[object]], numbered: bool = False) -> Iterator[str]:
    """A table as one line per row, each cell named by its column's header (the first row that
    has any text); a row with one cell of text (a caption, a note) is that text.

    >>> list(table_lines([["Country", "Exports"], ["Japan", 12], ["Korea", None], ["0", "0"]], numbered=True))
    ['Row 2: Country: Japan; Exports: 12', 'Korea', 'Row 4: Country: 0; Exports: 0']
    >>> list(table_lines([["Note only"], ["", "Exports", "Imports"], ["Japan", 12, 3]]))
    ['Note only', 'Column 1: Japan; Exports: 12; Imports: 3']
    """
    header: list[str] | None = None
    for number, row in enumerate(rows, 1):
        cells = [clean(c) for c in row]
        filled = [c for c in cells if c]
        if len(filled) <= 1:
            if filled:
                yield filled[0]
            continue
        if header is None:
            header = [c or f"Column {i + 1}" for i, c in enumerate(cells)]
            continue
        line = "; ".join(f"{header[i] if i < len(header) else f'Column {i + 1}'}: {c}" for i, c in enumerate(cells) if c)
        yield f"Row {number}: {line}" if numbered else line


def _word_cells(row) -> list[str]:  # noqa: ANN001 - a python-docx row
    """A Word table row's cells; a merged cell (python-docx repeats it) counted once."""
    cells, seen = [], set()
    for cell in row.cells:
        cells.append("" if id(cell._tc) in seen else cell.text)
        seen.add(id(cell._tc))
    return cells


def _heading_level(style: str) -> int:
    """The Markdown level of a Word paragraph style: "Title" 1, "Heading N" N + 1 (under the title)."""
    if style == "Title":
        return 1
    if style.startswith("Heading ") and style[8:].isdigit():
        return min(6, int(style[8:]) + 1)
    return 0


def docx_text(data: bytes, name: str = "") -> tuple[str, str | None]:
    """(text, title) of a Word document: paragraphs and tables in order, headings as Markdown."""
    check_zip(data, ".docx")
    from docx import Document as WordDocument
    from docx.table import Table

    document = WordDocument(io.BytesIO(data))
    parts: list[str] = []
    for block in document.iter_inner_content():
        if isinstance(block, Table):
            parts.extend(table_lines(_word_cells(row) for row in block.rows))
            continue
        text = clean(block.text)
        if not text:
            continue
        style = block.style.name if block.style is not None else ""
        level = _heading_level(style)
        if level == 1 and parts:
            level = 2  # a second "Title" paragraph is a section, not the document's title
        parts.append(f"{'#' * level} {text}" if level else (f"- {text}" if style.startswith("List") else text))
    title = clean(document.core_properties.title) or None
    return "\n\n".join(_within_budget(parts, name)), title


def _shapes(shapes) -> Iterator:  # noqa: ANN001 - python-pptx shapes, groups walked into
    for shape in shapes:
        if shape.shape_type is not None and getattr(shape, "shapes", None) is not None and not shape.has_text_frame:
            yield from _shapes(shape.shapes)
        else:
            yield shape


def pptx_text(data: bytes) -> tuple[str, tuple[int, ...], str | None]:
    """(text, slide start offsets, title) of a PowerPoint deck: each slide a page headed by its
    title (or "Slide N"), then its text boxes and tables in order, then its notes."""
    check_zip(data, ".pptx")
    from pptx import Presentation

    deck = Presentation(io.BytesIO(data))
    text, starts, first_title = "", [], ""
    for number, slide in enumerate(deck.slides, 1):
        title_shape = slide.shapes.title
        title = clean(title_shape.text_frame.text) if title_shape is not None and title_shape.has_text_frame else ""
        first_title = first_title or title
        parts = [f"## {title or f'Slide {number}'}"]
        for shape in _shapes(slide.shapes):
            if title_shape is not None and shape.shape_id == title_shape.shape_id:
                continue
            if getattr(shape, "has_table", False) and shape.has_table:
                parts.extend(table_lines([cell.text for cell in row.cells] for row in shape.table.rows))
            elif shape.has_text_frame:
                parts.extend(line for p in shape.text_frame.paragraphs if (line := clean("".join(r.text for r in p.runs))))
        if slide.has_notes_slide and slide.notes_slide.notes_text_frame is not None:
            notes = clean(slide.notes_slide.notes_text_frame.text)
            if notes:
                parts.append(f"Notes: {notes}")
        if text:
            text += "\n\n"
        starts.append(len(text))  # a slide without text (pictures only) keeps its number, holds nothing
        if title or len(parts) > 1:
            text += "\n\n".join(parts)
    return text, tuple(starts), clean(deck.core_properties.title) or first_title or None


def _capped(rows: Iterable[Sequence[object]], left: list[int], name: str,
            cells: list[int] | None = None) -> Iterator[Sequence[object]]:
    """`rows` while `left` (rows) and `cells` (cells, if given) last; a warning when cut."""
    for row in rows:
        if left[0] <= 0 or (cells is not None and cells[0] < len(row)):
            log.warning("%s: only the first %d rows or %d cells were read (the rest are left out)",
                        name, MAX_ROWS, MAX_CELLS)
            left[0] = 0
            return
        left[0] -= 1
        if cells is not None:
            cells[0] -= len(row)
        yield row


def _trimmed(rows: Iterable[Sequence[object]]) -> Iterator[Sequence[object]]:
    """Each row without its trailing empty cells."""
    for row in rows:
        row = list(row)
        while row and row[-1] in (None, ""):
            row.pop()
        yield row


def xlsx_text(data: bytes, name: str = "") -> tuple[str, tuple[int, ...], None]:
    """(text, sheet start offsets, None) of an Excel workbook: each sheet a page headed by its
    name, each row a paragraph ("Row N: Header: value; …"); formulas as their saved values."""
    check_zip(data, ".xlsx")
    from openpyxl import load_workbook

    workbook = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    text, starts, left, cells = "", [], [MAX_ROWS], [MAX_CELLS]
    try:
        for sheet in workbook.worksheets:
            if hasattr(sheet, "reset_dimensions"):  # its real cells, not the extent <dimension> claims
                sheet.reset_dimensions()
            rows = _trimmed(_capped(sheet.iter_rows(values_only=True), left, name, cells))
            lines = list(table_lines(rows, numbered=True))
            if not lines:
                continue
            if text:
                text += "\n\n"
            starts.append(len(text))
            text += "\n\n".join([f"## {clean(sheet.title)}", *lines])
    finally:
        workbook.close()
    return text, tuple(starts), None


def csv_text(data: bytes, name: str = "") -> str:
    """The text of a CSV (or tab-separated) file: each row a paragraph named by the header."""
    text = decode(data, name)
    try:
        dialect = csv.Sniffer().sniff(text[:65536], delimiters=",;\t|")
    except csv.Error:
        dialect = csv.excel
    csv.field_size_limit(max(len(text), 131_072))  # a huge cell is cut by `clean`, not the whole file lost
    rows = csv.reader(io.StringIO(text), dialect)
    return "\n\n".join(table_lines(_capped(rows, [MAX_ROWS], name), numbered=True))


def epub_text(data: bytes, name: str = "") -> tuple[str, str | None]:
    """(text, title) of an EPUB book: its chapters in reading order (the package's spine), each
    read once (a spine may list a chapter again) as HTML (headings kept), within `MAX_TEXT_CHARS`."""
    from defusedxml import ElementTree

    check_zip(data, ".epub")
    with zipfile.ZipFile(io.BytesIO(data)) as book:
        container = ElementTree.fromstring(book.read("META-INF/container.xml"))
        rootfile = next(e.get("full-path") for e in container.iter() if e.tag.endswith("rootfile"))
        package = ElementTree.fromstring(book.read(rootfile))
        base = posixpath.dirname(rootfile)
        manifest = {e.get("id"): e.get("href") for e in package.iter() if e.tag.endswith("}item") or e.tag == "item"}
        spine = [e.get("idref") for e in package.iter() if e.tag.endswith("itemref") or e.tag == "itemref"]
        title = next((clean(e.text) for e in package.iter() if e.tag.endswith("}title") and e.text), None)
        paths = [posixpath.normpath(posixpath.join(base, manifest[idref].split("#")[0]))
                 for idref in spine if manifest.get(idref)]

        def chapters() -> Iterator[str]:
            for path in dict.fromkeys(paths):  # each once, in reading order
                chapter, _ = html_text(decode(book.read(path), path))
                if chapter.strip():  # its headings a level down: the book's title is the only level 1
                    yield re.sub(r"^(#{1,5}) ", r"#\1 ", chapter, flags=re.MULTILINE)

        text = "\n\n".join(_within_budget(chapters(), name))
    return text, title or None
