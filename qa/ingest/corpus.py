"""The corpus folder: which files are documents (`SUFFIXES`, hidden files, `.qaignore`), their
example questions (`.qaexamples`), and adding or removing files safely. Reading one file into a
`Document` is `qa.ingest.readers`; chunking is `qa.ingest.chunking`; no model work here.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import re
import unicodedata
from pathlib import Path

from qa.ingest.readers import UnreadableFile, read_document, shown_path

log = logging.getLogger(__name__)

SUFFIXES = (".txt", ".md", ".html", ".htm", ".pdf", ".docx", ".pptx", ".xlsx", ".csv", ".epub")


IGNORE_FILE = ".qaignore"  # in the corpus folder: paths (relative, one per line) kept out of the index


def find_files(corpus_dir: Path) -> list[Path]:
    """Every supported file under `corpus_dir`, recursively, sorted. Left out: hidden files, the
    paths listed in `corpus_dir/.qaignore` (documents removed from the index), and — each named in
    a warning — symbolic links (they could point outside the corpus), names that are not valid
    text, and folders that cannot be read."""
    if not corpus_dir.is_dir():
        return []
    ignored = ignored_paths(corpus_dir)
    found = []

    def unreadable(error: OSError) -> None:
        log.warning("skipping folder %s: %s", shown_path(error.filename), error.strerror or error)

    for folder, dirs, files in os.walk(corpus_dir, onerror=unreadable):
        base = Path(folder)
        for name in list(dirs):
            why = None if name.startswith(".") else _skip_reason(base / name)
            if name.startswith(".") or why:
                dirs.remove(name)
            if why:
                log.warning("skipping %s: %s", shown_path(base / name), why)
        for name in files:
            path = base / name
            if name.startswith(".") or Path(name).suffix.lower() not in SUFFIXES:
                continue
            why = _skip_reason(path)
            if why:
                log.warning("skipping %s: %s", shown_path(path), why)
            elif path.relative_to(corpus_dir).as_posix() not in ignored:
                found.append(path)
    return sorted(found)


def _skip_reason(path: Path) -> str | None:
    """Why a corpus entry is not read (a link, a name that is not text, a path too long), or None."""
    try:
        str(path).encode("utf-8")
    except UnicodeEncodeError:
        return "its name is not valid text (rename it)"
    try:
        if path.is_symlink():
            return "a symbolic link (not followed: it could point outside the corpus folder)"
        path.stat()
    except OSError as error:
        return error.strerror or str(error)
    return None


EXAMPLES_FILE = ".qaexamples"  # in the corpus folder: example questions for the chat, one per line
MAX_EXAMPLES = 8


def example_questions(corpus_dir: Path) -> list[str]:
    """The example questions listed in `corpus_dir/.qaexamples` ('#' starts a comment; at most 8,
    each at most 200 characters); none when there is no such file."""
    try:
        lines = (corpus_dir / EXAMPLES_FILE).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return []
    questions = [line.strip()[:200] for line in lines if line.strip() and not line.lstrip().startswith("#")]
    return questions[:MAX_EXAMPLES]


def ignored_paths(corpus_dir: Path) -> set[str]:
    """The paths listed in `corpus_dir/.qaignore` ('#' starts a comment)."""
    try:
        lines = (corpus_dir / IGNORE_FILE).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return set()
    return {line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")}


def set_ignored(corpus_dir: Path, rel: str, ignored: bool) -> None:
    """Add `rel` to (or drop it from) `corpus_dir/.qaignore`, written atomically."""
    paths = ignored_paths(corpus_dir)
    paths = paths | {rel} if ignored else paths - {rel}
    staged = corpus_dir / f"{IGNORE_FILE}.tmp-{os.getpid()}"
    try:
        staged.write_text("# kept out of the index (removed in the app); delete a line to index the file again\n"
                          + "".join(f"{path}\n" for path in sorted(paths)), encoding="utf-8")
        os.replace(staged, corpus_dir / IGNORE_FILE)
    finally:
        staged.unlink(missing_ok=True)  # after a failed write (a full disk) nothing is left behind


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


MAX_NAME_CHARS = 80  # 3 bytes a character at most: under the 255-byte limit of file names
_UNSAFE_NAME = re.compile(r"[^\w.\- ]+")


def safe_file_name(name: str) -> str:
    """A file name that stays inside the folder it is saved to: no directories, no leading dots,
    only word characters, dots, dashes and spaces; or `UnreadableFile` for an unsupported type.

    >>> safe_file_name("../../notes/é t<>é.TXT")
    'é t_é.TXT'
    >>> safe_file_name("..\\\\..\\\\x.md")
    'x.md'
    >>> len(safe_file_name("日本" * 100 + ".pdf"))  # at most 80 characters (240 bytes: under NAME_MAX)
    80
    """
    base = unicodedata.normalize("NFC", name.replace("\\", "/").rsplit("/", 1)[-1])
    base = _UNSAFE_NAME.sub("_", base).strip(" .")
    stem, dot, suffix = base.rpartition(".")
    if len(base) > MAX_NAME_CHARS:  # shortened, keeping its type
        base = f"{stem[: MAX_NAME_CHARS - len(suffix) - 1].rstrip(' .')}.{suffix}" if dot else base[:MAX_NAME_CHARS]
    if not dot or f".{suffix.lower()}" not in SUFFIXES or not stem.strip(" ._"):
        raise UnreadableFile(f"{name!r}: only {', '.join(SUFFIXES)} files can be added")
    return base


UPLOAD_PREFIX = ".upload-"


def remove_leftovers(corpus_dir: Path) -> list[str]:
    """Delete what an upload or a removal killed mid-write left in `corpus_dir` (hidden
    `.upload-PID.*` and `.qaignore.tmp-PID` files of processes no longer running); their names."""
    removed = []
    for path in [*corpus_dir.glob(f"{UPLOAD_PREFIX}*"), *corpus_dir.glob(f"{IGNORE_FILE}.tmp-*")]:
        pid = path.name.removeprefix(UPLOAD_PREFIX).removeprefix(f"{IGNORE_FILE}.tmp-").partition(".")[0]
        if pid.isdigit() and not _running(int(pid)):
            with contextlib.suppress(OSError):
                path.unlink()
                removed.append(path.name)
    return removed


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def add_file(corpus_dir: Path, name: str, source: Path, max_mb: int = 20) -> Path:
    """Copy an uploaded file into `corpus_dir` under a safe name, never overwriting a different
    file; refuses unsupported types, files over `max_mb` megabytes and unreadable content."""
    target = corpus_dir / safe_file_name(name)
    size = source.stat().st_size
    if size > max_mb * 2**20:
        raise UnreadableFile(f"{name!r} is {size / 2**20:.1f} MB; the limit is {max_mb} MB per file")
    data = source.read_bytes()
    stem, suffix, n = target.stem, target.suffix, 1
    while target.exists() and target.read_bytes() != data:
        target = corpus_dir / f"{stem}-{n}{suffix}"
        n += 1
    staged = corpus_dir / f"{UPLOAD_PREFIX}{os.getpid()}{suffix}"  # hidden: never indexed half-written
    try:
        staged.write_bytes(data)
        read_document(staged, corpus_dir)  # the same checks indexing makes
        os.replace(staged, target)
    finally:
        staged.unlink(missing_ok=True)
    if target.name in ignored_paths(corpus_dir):
        set_ignored(corpus_dir, target.name, False)
    return target
