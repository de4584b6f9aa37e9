"""How a finished build replaces the index folder, and how readers stay safe meanwhile.

A build holds an exclusive lock (`.index.lock` beside the folder), writes a temporary folder,
then swaps it in with two renames (index → `.index.old`, temporary → index). A crash between
the renames is mended by `recover`; a reader arriving between them waits (`settle`) instead of
moving anything while a build holds the lock.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

from qa.errors import IndexBusyError, IndexWriteError

log = logging.getLogger(__name__)


def sibling(target: Path, kind: str) -> Path:
    """The hidden folder or file beside the index that a build uses: ".index.old", ".index.lock", ".index.tmp-…"."""
    return target.parent / f".{target.name}.{kind}"


def fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def swap_in(tmp: Path, target: Path) -> None:
    """Replace `target` by `tmp`: two renames; `recover` mends a crash between them."""
    old = sibling(target, "old")
    shutil.rmtree(old, ignore_errors=True)
    if target.exists():
        os.replace(target, old)
    os.replace(tmp, target)
    fsync(target.parent)
    shutil.rmtree(old, ignore_errors=True)


def recover(target: Path) -> None:
    old = sibling(target, "old")
    if not target.exists() and (old / "manifest.json").exists():
        log.warning("restoring the previous index from %s (a build was interrupted)", old)
        os.replace(old, target)


def settle(target: Path, wait: float = 5.0) -> None:
    """Before reading: wait out a swap in progress (between its two renames, microseconds), or
    mend one that crashed there. A reader never moves a folder while a build holds the lock."""
    deadline = time.monotonic() + wait
    while not target.exists() and (sibling(target, "old") / "manifest.json").exists():
        if not build_running(target):
            recover(target)
            return
        if time.monotonic() > deadline:
            return
        time.sleep(0.02)


def build_running(target: Path) -> bool:
    return locked_by_another(sibling(target, "lock"))


def locked_by_another(path: Path) -> bool:
    """Whether another process holds an exclusive `flock` on the file at `path` (False when it is missing)."""
    try:
        with path.open("rb") as f:
            fcntl.flock(f, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    except OSError:
        return False
    return False


@contextlib.contextmanager
def build_lock(target: Path) -> Iterator[None]:
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        lock = sibling(target, "lock").open("a")
    except OSError as error:
        raise IndexWriteError(f"cannot write in {target.parent}/ ({error.strerror or error}); the previous index"
                              " is untouched") from None
    with lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise IndexBusyError(f"another `qa index` is already building {target}/: wait for it to finish") from None
        yield
