"""Read one file into a `Document`: decode it safely, turn its headings into sections.

Decoding: UTF-8 with or without BOM, UTF-16 with BOM, Latin-1/cp1252; binaries and undecodable
files raise `UnreadableFile` (the build skips them with a warning naming the file); line ends
normalised. Wiki headings (`= Title =`, `== Section ==`) and Markdown headings (`# Title`) become
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
from collections.abc import Iterator, Sequence
from pathlib import Path

from charset_normalizer import from_bytes

from qa.ingest import ocr
from qa.text import CONTROL
from qa.types import Document, Section, make_id

log = logging.getLogger(__name__)

_HTML_HEADINGS = ("h1", "h2", "h3", "h4", "h5", "h6")
_HTML_BLOCKS = ("p", "li", "pre", "blockquote", "td", "th", "dt", "dd", "figcaption", "caption")
_WIKI_HEADING = re.compile(r"^(={1,6})[ \t]*(.+?)[ \t]*\1[ \t]*$")
_MD_HEADING = re.compile(r"^(#{1,6})[ \t]+(.+?)(?:[ \t]+#+)?[ \t]*$")
_LATIN_FAMILY = re.compile(r"^(cp125\d|latin_?1|iso8859_\d+|mac_roman|windows_125\d)$")
_CJK = {"gb18030", "gbk", "gb2312", "big5", "big5hkscs", "cp932", "shift_jis", "euc_jp", "cp949", "euc_kr", "iso2022_jp"}


def shown_path(path: object) -> str:
    """A path as it can be printed, whatever bytes its name has."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


class UnreadableFile(Exception):
    """Raised by `decode` for bytes that are not text; the caller skips the file."""


def decode(data: bytes, name: str = "") -> str:
    """Bytes → text with '\\n' line ends, or `UnreadableFile` saying why. UTF-8 with a few bad
    bytes stays UTF-8 (each bad byte becomes U+FFFD; a warning names the file `name`).

    >>> decode("caf\\u00e9\\r\\n".encode("latin-1"))
    'café\\n'
    >>> decode("Zürich ".encode() + b"\\xff")
    'Zürich \\ufffd'
    """
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        text = data.decode("utf-16")
    elif b"\x00" in data[:8192]:
        raise UnreadableFile("binary file (contains NUL bytes)")
    else:
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError:
            text = _mostly_utf8(data)
            if text is None:
                text = _decode_legacy(data)
            else:
                log.warning("%s: %d bytes are not valid UTF-8; each was replaced by U+FFFD",
                            name or "a file", text.count("\ufffd"))
    text = text.lstrip("\ufeff").replace("\r\n", "\n").replace("\r", "\n")
    if len(CONTROL.findall(text[:65536])) > max(2, len(text[:65536]) // 100):
        raise UnreadableFile("binary file (control characters)")
    return text


def _mostly_utf8(data: bytes) -> str | None:
    """The text when `data` is UTF-8 with a few bad bytes: at least as many valid non-ASCII
    characters as bad bytes, and bad bytes under 1 % of the text; else None (another encoding).
    A Latin-1 "café" has no valid UTF-8 sequence at all, so it is never taken for UTF-8.

    >>> _mostly_utf8("Zürich café ".encode() + b"\\xff"), _mostly_utf8("café".encode("latin-1"))
    ('Zürich café \\ufffd', None)
    """
    text = data.decode("utf-8-sig", errors="replace")
    bad = text.count("\ufffd") - data.decode("utf-8", errors="ignore").count("\ufffd")
    valid = sum(1 for ch in text if ch > "\x7f" and ch != "\ufffd")
    return text if valid >= bad and bad * 100 <= max(len(text), 300) else None


def _decode_legacy(data: bytes) -> str:
    # charset-normalizer ranks many code pages as equally good on short text; among the
    # tied best guesses prefer a CJK multibyte code, then cp1252 (what Latin-1 files nearly
    # always are), so "café" is not read as cp1250 or Urdu.
    guesses = [m for m in from_bytes(data[: 1 << 20]) if not m.encoding.startswith(("utf_16", "utf_32"))]
    if not guesses:
        raise UnreadableFile("not text in any known encoding")
    tied = [m.encoding for m in guesses if m.chaos <= guesses[0].chaos + 0.01]
    encoding = next((e for e in tied if e in _CJK), None)
    if encoding is None:
        encoding = "cp1252" if any(_LATIN_FAMILY.match(e) for e in tied) else tied[0]
    try:
        return data.decode(encoding)
    except UnicodeDecodeError:
        if encoding == "cp1252":
            return data.decode("latin-1")
        raise UnreadableFile(f"could not decode as {encoding}") from None


def read_document(path: Path, corpus_dir: Path) -> Document:
    """Read one file into a `Document`; raises `UnreadableFile` for empty, non-text or malformed
    files (whatever a parser raised on them), `OSError` when the file cannot be read."""
    data = path.read_bytes()
    suffix = path.suffix.lower()
    title, page_starts = None, ()
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
        log.warning("reading %s failed", shown_path(path), exc_info=True)
        raise UnreadableFile(f"could not be read ({type(error).__name__}: {str(error)[:200]})") from None
    if not text.strip():
        raise UnreadableFile("empty file" if suffix != ".pdf" else "no extractable text (a scanned PDF?)")
    rel = path.relative_to(corpus_dir).as_posix()
    return Document(
        doc_id=make_id(rel),
        title=title or _title(text, path),
        path=rel,
        text=text,
        sha256=hashlib.sha256(data).hexdigest(),
        page_starts=page_starts,
    )


OFFICE_SUFFIXES = (".docx", ".pptx", ".xlsx", ".csv", ".epub")  # read by `qa.ingest.office`


def office_text(suffix: str, data: bytes, name: str) -> tuple[str, tuple[int, ...], str | None]:
    """(text, page starts, title) of a Word, PowerPoint, Excel, CSV or EPUB file."""
    from qa.ingest import office

    if suffix == ".docx":
        return _with_pages(office.docx_text(data))
    if suffix == ".pptx":
        return office.pptx_text(data)
    if suffix == ".xlsx":
        return office.xlsx_text(data, name)
    if suffix == ".csv":
        return office.csv_text(data, name), (), None
    return _with_pages(office.epub_text(data))


def _with_pages(text_and_title: tuple[str, str | None]) -> tuple[str, tuple[int, ...], str | None]:
    return text_and_title[0], (), text_and_title[1]


def html_text(markup: str) -> tuple[str, str | None]:
    """(text, title) of an HTML page: headings become Markdown headings, paragraphs and list
    items become paragraphs; scripts, styles and comments are dropped.

    >>> html_text("<title>T</title><h2>Part</h2><p>One <b>two</b>.<br>Three</p><script>x()</script><ul><li>Item</li></ul>")
    ('## Part\\n\\nOne two. Three\\n\\n- Item', 'T')
    """
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(markup, "html.parser")
    for node in soup(["script", "style", "noscript", "template"]):
        node.decompose()
    for br in soup("br"):
        br.replace_with("\n")
    title = soup.title.get_text(" ", strip=True) if soup.title else None
    if soup.title:
        soup.title.decompose()
    parts = []
    for node in soup.find_all([*_HTML_HEADINGS, *_HTML_BLOCKS]):
        if node.find_parent(_HTML_BLOCKS):
            continue  # inside a block already taken whole
        text = " ".join(node.get_text().split())
        if not text:
            continue
        if node.name in _HTML_HEADINGS:
            parts.append("#" * int(node.name[1]) + " " + text)
        else:
            parts.append(("- " if node.name == "li" else "") + text)
    if not parts:  # no structure: take the text as it is
        parts = [" ".join(line.split()) for line in soup.get_text("\n").splitlines() if line.strip()]
    return "\n\n".join(parts), title or None


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
            found = ocr.read_pages(data, reader.pages, scanned, ocr_cache_dir())
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


def _heading(line: str) -> tuple[int, str] | None:
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
    heading = _heading(first)
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
        heading = _heading(text[pos:line_end]) if line_end - pos <= MAX_HEADING_CHARS else None
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
