"""Bytes and HTML into plain text: the decoding every text-like reader shares (`qa.ingest.readers`,
`qa.ingest.office`).

Decoding: UTF-8 with or without BOM, UTF-16 with BOM, Latin-1/cp1252; binaries and undecodable
files raise `UnreadableFile` (the build skips them with a warning naming the file); line ends
normalised. HTML becomes text with its headings written as Markdown headings (BeautifulSoup;
scripts, styles and comments dropped).
"""

from __future__ import annotations

import logging
import re

from charset_normalizer import from_bytes

from qa.text import CONTROL

log = logging.getLogger(__name__)

_HTML_HEADINGS = ("h1", "h2", "h3", "h4", "h5", "h6")
_HTML_BLOCKS = ("p", "li", "pre", "blockquote", "td", "th", "dt", "dd", "figcaption", "caption")
_LATIN_FAMILY = re.compile(r"^(cp125\d|latin_?1|iso8859_\d+|mac_roman|windows_125\d)$")
_CJK = {"gb18030", "gbk", "gb2312", "big5", "big5hkscs", "cp932", "shift_jis", "euc_jp", "cp949", "euc_kr", "iso2022_jp"}


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
