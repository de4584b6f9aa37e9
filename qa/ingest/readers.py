"""Read one file into a `Document`: decode it safely (`qa.ingest.plain`), turn its headings into sections.

Wiki headings (`= Title =`, `== Section ==`) and Markdown headings (`# Title`) become
section paths. HTML becomes text with its headings written as Markdown headings (BeautifulSoup;
scripts, styles and comments dropped); a PDF becomes the text of its pages (pypdf), with each
page's start offset kept.

>>> [s.path for s in parse_sections("= T =\\nlead\\n== A ==\\nx\\n=== B ===\\ny\\n")]
['', 'A', 'A > B']
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path

from qa.ingest import ocr
from qa.ingest.plain import UnreadableFile, decode, html_text  # noqa: F401 - UnreadableFile, decode: re-exported
from qa.text import CONTROL
from qa.types import Document, Section, make_id

log = logging.getLogger(__name__)

# Titles a program writes when a person sets none ("Word Document", "Presentation1"): not a title.
_GENERATOR_TITLE = re.compile(r"^\s*(?:word document|powerpoint presentation|presentation\d*|document\d*|book\d*|"
                              r"untitled(?: document| presentation)?|slide \d+|microsoft (?:word|powerpoint) - .*)\s*$",
                              re.IGNORECASE)
_WIKI_HEADING = re.compile(r"^(={1,6})[ \t]*(.+?)[ \t]*\1[ \t]*$")
_ROW = re.compile(r"^Row \d+: ", re.MULTILINE)  # a table row's passage (`qa.ingest.office.table_lines`)
_MD_HEADING = re.compile(r"^(#{1,6})[ \t]+(.+?)(?:[ \t]+#+)?[ \t]*$")


def shown_path(path: object) -> str:
    """A path as it can be printed, whatever bytes its name has."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


def read_document(path: Path, corpus_dir: Path) -> Document:
    """Read one file into a `Document`; raises `UnreadableFile` for empty, non-text or malformed
    files (whatever a parser raised on them), `OSError` when the file cannot be read."""
    data = path.read_bytes()
    suffix = path.suffix.lower()
    title, page_starts = None, ()
    notes = _Notes(path.name)
    logging.getLogger("qa.ingest").addHandler(notes)
    try:
        if suffix == ".pdf":
            text, page_starts, title = pdf_text(data, path.name)
        elif suffix in (".html", ".htm"):
            text, title = html_text(decode(data, path.name))
        elif suffix in OFFICE_SUFFIXES:
            text, page_starts, title = office_text(suffix, data, path.name)
        else:
            text = decode(data, path.name)
    except UnreadableFile:
        raise
    except Exception as error:  # noqa: BLE001 - one malformed file never stops a build or an upload
        log.debug("reading %s failed", shown_path(path), exc_info=True)  # the reason is said once, as a warning
        raise UnreadableFile(f"could not be read ({type(error).__name__}: {str(error)[:200]})") from None
    finally:
        logging.getLogger("qa.ingest").removeHandler(notes)
    if not text.strip():
        raise UnreadableFile("empty file" if suffix != ".pdf" else "no extractable text (a scanned PDF?)")
    rel = path.relative_to(corpus_dir).as_posix()
    return Document(
        doc_id=make_id(rel),
        title=title if title and not _GENERATOR_TITLE.match(title) else _title(text, path),
        path=rel,
        text=text,
        sha256=hashlib.sha256(data).hexdigest(),
        page_starts=page_starts,
        notes="; ".join(filter(None, (contents(suffix, text, page_starts), *notes.lines))),
    )


def contents(suffix: str, text: str, page_starts: Sequence[int]) -> str:
    """What a file held, as the Index tab says it: "12 pages", "3 slides", "2 sheets, 40 rows", "40 rows".

    >>> contents(".xlsx", "Row 2: A: 1\\n\\nRow 3: A: 2", (0, 12)), contents(".csv", "Row 2: A: 1", ()), contents(".txt", "x", ())
    ('2 sheets, 2 rows', '1 row', '')
    """
    def counted(n: int, what: str) -> str:
        return f"{n:,} {what}{'' if n == 1 else 's'}"

    rows = len(_ROW.findall(text))
    if suffix == ".pdf":
        return counted(len(page_starts), "page")
    if suffix == ".pptx":
        return counted(len(page_starts), "slide")
    if suffix == ".xlsx":
        return f"{counted(len(page_starts), 'sheet')}, {counted(rows, 'row')}"
    return counted(rows, "row") if suffix == ".csv" else ""


class _Notes(logging.Handler):
    """The warnings the readers log while this thread reads one file (its name dropped from their
    start): they become the document's notes, as the Index tab shows them."""

    def __init__(self, name: str) -> None:
        super().__init__(logging.WARNING)
        self.name_prefix, self.thread, self.lines = f"{name}: ", threading.get_ident(), []

    def emit(self, record: logging.LogRecord) -> None:
        if record.thread == self.thread:
            line = record.getMessage()
            self.lines.append(line[len(self.name_prefix):] if line.startswith(self.name_prefix) else line)


OFFICE_SUFFIXES = (".docx", ".pptx", ".xlsx", ".csv", ".epub")  # read by `qa.ingest.office`


def office_text(suffix: str, data: bytes, name: str) -> tuple[str, tuple[int, ...], str | None]:
    """(text, page starts, title) of a Word, PowerPoint, Excel, CSV or EPUB file."""
    from qa.ingest import office  # python-docx, python-pptx, openpyxl: loaded for such files only

    if suffix == ".docx":
        return _with_pages(office.docx_text(data, name))
    if suffix == ".pptx":
        return office.pptx_text(data)
    if suffix == ".xlsx":
        return office.xlsx_text(data, name)
    if suffix == ".csv":
        return office.csv_text(data, name), (), None
    return _with_pages(office.epub_text(data, name))


def _with_pages(text_and_title: tuple[str, str | None]) -> tuple[str, tuple[int, ...], str | None]:
    return text_and_title[0], (), text_and_title[1]


def pdf_text(data: bytes, name: str = "") -> tuple[str, tuple[int, ...], str | None]:
    """(text, page start offsets, title) of a PDF; pages are separated by a blank line. Pages
    without text (scans) are read by OCR (`qa.ingest.ocr`) when it is available, with a warning
    naming them. A PDF encrypted without a user password (permissions only) is read; any other
    failure of the PDF library on a malformed file becomes `UnreadableFile`, so one file never
    stops a build."""
    import io

    from pypdf import PdfReader

    logging.getLogger("pypdf").setLevel(logging.ERROR)  # its per-object repair notes flood the log
    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted and not reader.decrypt(""):
            raise UnreadableFile("a password-protected PDF (open it, save an unprotected copy, add that)")
        pages = [(page.extract_text() or "") for page in reader.pages]
        scanned = [i for i, page in enumerate(pages) if not page.strip()]
        if scanned and ocr.available():
            found = ocr.read_pages(data, reader.pages, scanned, ocr_cache_dir(), name)
            for i, (page, _) in found.items():
                pages[i] = page
            read = [i for i in scanned if found[i][0].strip()]
            if read:
                confidence = sum(found[i][1] for i in read) / len(read)
                log.warning("%s: %s %s had no text layer and %s read by OCR (mean word confidence %.0f %%)",
                            name or "a PDF", "pages" if len(read) > 1 else "page", _page_list(read),
                            "were" if len(read) > 1 else "was", confidence)
        title = str(reader.metadata.title or "").strip() if reader.metadata else ""
        title = title or _xmp_title(reader) or None
    except UnreadableFile:
        raise
    except RecursionError:
        raise UnreadableFile("not a readable PDF (nested too deeply)") from None
    except Exception as error:  # noqa: BLE001 - pypdf raises many types on malformed input
        raise UnreadableFile(f"not a readable PDF ({type(error).__name__}: {str(error)[:200]})") from None
    text, starts = "", []
    for page in pages:
        page = CONTROL.sub(" ", page.replace("\r\n", "\n").replace("\r", "\n")).strip()
        if text:
            text += "\n\n"
        starts.append(len(text))
        text += page
    return text, tuple(starts), title


def _page_list(indexes: Sequence[int]) -> str:
    """Page numbers for a message, runs joined.

    >>> _page_list([0, 1, 2, 4, 6, 7])
    '1–3, 5, 7–8'
    """
    runs: list[list[int]] = []
    for i in indexes:
        if runs and i == runs[-1][-1] + 1:
            runs[-1].append(i)
        else:
            runs.append([i])
    return ", ".join(f"{r[0] + 1}–{r[-1] + 1}" if len(r) > 1 else f"{r[0] + 1}" for r in runs)


def ocr_cache_dir() -> Path:
    """Where OCR results are kept: the cache folder (`QA_CACHE_DIR`, else the user's)."""
    from qa.config import user_cache_dir

    return Path(os.environ["QA_CACHE_DIR"]) if os.environ.get("QA_CACHE_DIR") else user_cache_dir(os.environ)


MAX_HEADING_CHARS = 300  # a longer line is text, even if it starts with "#" or "="


def heading_of(line: str) -> tuple[int, str] | None:
    if len(line) > MAX_HEADING_CHARS:
        return None
    match = _WIKI_HEADING.match(line) or _MD_HEADING.match(line)
    if not match:
        return None
    return len(match.group(1)), match.group(2).strip()


def _xmp_title(reader) -> str:  # noqa: ANN001 - a pypdf PdfReader
    """The dc:title of a PDF's XMP metadata (where some tools keep the title), or ""."""
    try:
        titles = reader.xmp_metadata.dc_title if reader.xmp_metadata else None
    except Exception:  # noqa: BLE001 - malformed XMP: the file is still read, titled otherwise
        return ""
    if not titles:
        return ""
    return str(titles.get("x-default") or next(iter(titles.values()), "")).strip()


def _title(text: str, path: Path) -> str:
    first = text.lstrip().split("\n", 1)[0]
    heading = heading_of(first)
    if heading and heading[0] == 1:
        return heading[1]
    return path.stem.replace("_", " ").replace("-", " ").strip() or path.name


def parse_sections(text: str) -> list[Section]:
    """Split text at heading lines into sections with heading paths and body offsets.

    A level-1 heading on the first line is the document title, not part of any path.
    Sections whose body is only whitespace are dropped.
    """
    return list(iter_sections(text))


def iter_sections(text: str) -> Iterator[Section]:
    """`parse_sections`, lazily: a file of millions of lines is walked, not copied line by line."""
    stack: list[tuple[int, str]] = []
    body_start = 0
    pos = 0
    first_content_line = True
    while pos < len(text):
        line_end = text.find("\n", pos)
        line_end = len(text) if line_end < 0 else line_end
        heading = heading_of(text[pos:line_end]) if line_end - pos <= MAX_HEADING_CHARS else None
        if heading:
            if text[body_start:pos].strip():
                yield Section(" > ".join(name for _, name in stack), body_start, pos)
            level, name = heading
            if not (first_content_line and level == 1):
                while stack and stack[-1][0] >= level:
                    stack.pop()
                stack.append((level, name))
            body_start = min(line_end + 1, len(text))
        if first_content_line and not text[pos:line_end].isspace() and line_end > pos:
            first_content_line = False
        pos = line_end + 1
    if text[body_start:].strip():
        yield Section(" > ".join(name for _, name in stack), body_start, len(text))
