"""Text for PDF pages that have none (scanned pages): their images read by Tesseract OCR.

Tesseract (Debian's `tesseract-ocr`, which `make` installs) runs as a separate process per page,
on one core (`OMP_THREAD_LIMIT=1`, so questions keep the other), at most `PAGE_SECONDS` a page;
an image is scaled down to `MAX_SIDE` pixels first (memory stays bounded whatever the scan's
resolution). What a page's OCR gave is kept in the cache folder under the file's hash, so a
build, the document view and an upload's check read a scan once. Off with `QA_OCR=0`, or when
`tesseract` is not installed (a scanned PDF is then skipped as "no extractable text").
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import json
import logging
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

log = logging.getLogger(__name__)

PAGE_SECONDS = 120  # a page's OCR stops after this
FILE_SECONDS = 600  # a file's OCR stops after this (its other pages stay without text, a warning says which)
FILE_PAGES = 500  # pages read by OCR in one file, at most
MAX_SIDE = 3500  # pixels on an image's longer side (~300 dpi for A4)
MIN_SIDE = 200  # smaller images (logos, icons) are not read
CACHE_VERSION = 1


def available() -> bool:
    """Whether scanned pages are read: tesseract installed and QA_OCR not 0."""
    return os.environ.get("QA_OCR", "1") != "0" and shutil.which("tesseract") is not None


def lines_of(tsv: str) -> tuple[str, list[float]]:
    """Tesseract's TSV as text (a line per line, a blank line between paragraphs) and each
    word's confidence.

    >>> rows = "level\\tpage_num\\tblock_num\\tpar_num\\tline_num\\tword_num\\tleft\\ttop\\twidth\\theight\\tconf\\ttext\\n"
    >>> rows += "5\\t1\\t1\\t1\\t1\\t1\\t0\\t0\\t1\\t1\\t96\\tBuilt\\n5\\t1\\t1\\t1\\t1\\t2\\t0\\t0\\t1\\t1\\t90\\t1954.\\n"
    >>> rows += "5\\t1\\t1\\t2\\t1\\t1\\t0\\t0\\t1\\t1\\t80\\tRebuilt\\n"
    >>> lines_of(rows)
    ('Built 1954.\\n\\nRebuilt', [96.0, 90.0, 80.0])
    """
    lines: dict[tuple[str, str, str], list[str]] = {}
    confidences = []
    for row in csv.DictReader(io.StringIO(tsv), delimiter="\t", quoting=csv.QUOTE_NONE):
        word = (row.get("text") or "").strip()
        if row.get("level") != "5" or not word:
            continue
        lines.setdefault((row["block_num"], row["par_num"], row["line_num"]), []).append(word)
        with contextlib.suppress(ValueError):
            if float(row["conf"]) >= 0:
                confidences.append(float(row["conf"]))
    text, last = "", None
    for (block, paragraph, _), words in lines.items():
        if last is not None:
            text += "\n" if last == (block, paragraph) else "\n\n"
        text += " ".join(words)
        last = (block, paragraph)
    return text, confidences


def read_image(image) -> tuple[str, list[float]]:  # noqa: ANN001 - a PIL image
    """(text, word confidences) of one image."""
    image = image.convert("L")
    if max(image.size) > MAX_SIDE:
        image.thumbnail((MAX_SIDE, MAX_SIDE))
    with tempfile.TemporaryDirectory(prefix="docqa-ocr-") as folder:
        path = Path(folder) / "page.png"
        image.save(path)
        done = subprocess.run(["tesseract", str(path), "stdout", "tsv"], capture_output=True, text=True,
                              timeout=PAGE_SECONDS, env={**os.environ, "OMP_THREAD_LIMIT": "1"}, check=False)
    if done.returncode != 0:
        raise RuntimeError(done.stderr.strip()[:200] or f"tesseract exited with {done.returncode}")
    return lines_of(done.stdout)


def read_pages(data: bytes, pages: Sequence, wanted: Sequence[int], cache_dir: Path | None,
               name: str = "") -> dict[int, tuple[str, float]]:
    """{page index: (text, mean word confidence %)} for the `wanted` pages (pypdf pages) of the PDF
    `data`, from the cache when read before. A page whose OCR fails or times out gets no text; past
    `FILE_PAGES` pages or `FILE_SECONDS` of OCR in the file the rest get none (a warning says which)."""
    key = hashlib.sha256(data).hexdigest()
    cached_file = cache_dir / "ocr" / f"{key}-v{CACHE_VERSION}.json" if cache_dir else None
    cached: dict[str, list] = {}
    if cached_file is not None and cached_file.is_file():
        with contextlib.suppress(OSError, ValueError):
            cached = json.loads(cached_file.read_text(encoding="utf-8"))
    out: dict[int, tuple[str, float]] = {}
    began, read, left_out = time.monotonic(), 0, []
    for index in wanted:
        if str(index) in cached:
            text, confidence = cached[str(index)]
            out[index] = (text, float(confidence))
            continue
        if read >= FILE_PAGES or time.monotonic() - began > FILE_SECONDS:
            left_out.append(index)
            out[index] = ("", 0.0)
            continue
        read += 1
        texts, confidences = [], []
        try:
            for picture in pages[index].images:
                image = picture.image
                if image is None or min(image.size) < MIN_SIDE:
                    continue
                text, words = read_image(image)
                if text.strip():
                    texts.append(text)
                    confidences += words
        except Exception as error:  # noqa: BLE001 - a bad image or a stuck page: that page stays without text
            log.warning("OCR of page %d failed (%s)", index + 1, str(error)[:200])
        out[index] = ("\n\n".join(texts), sum(confidences) / len(confidences) if confidences else 0.0)
        cached[str(index)] = list(out[index])
    if left_out:
        log.warning("%s: OCR stopped after %d pages or %d s; %d pages were not read (from page %d on)",
                    name or "a PDF", FILE_PAGES, FILE_SECONDS, len(left_out), left_out[0] + 1)
    if cached_file is not None and wanted:
        with contextlib.suppress(OSError):
            cached_file.parent.mkdir(parents=True, exist_ok=True)
            partial = cached_file.with_name(f".{cached_file.name}.{os.getpid()}")
            partial.write_text(json.dumps(cached), encoding="utf-8")
            os.replace(partial, cached_file)
    return out
