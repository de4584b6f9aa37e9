"""The key that signs what the page keeps in the browser (the conversation, the settings)."""

from __future__ import annotations

import contextlib
import logging
import os
import re
import secrets

from qa.config import Settings

log = logging.getLogger(__name__)


def browser_key(settings: Settings) -> str:
    """The key for what the page keeps in the browser: `settings.browser_key`, else one made once
    and kept beside the index folder, mode 0600 (replicas sharing that folder share it). Gradio's
    default, a new key per process, loses the conversation at every restart. A key file that is
    damaged (not 64 hex digits) is replaced, with a warning: conversations kept with it are lost."""
    if settings.browser_key:
        return settings.browser_key
    path = settings.index_dir.parent / ".docqa-browser-key"
    try:
        key = path.read_bytes().decode("ascii").strip() if path.is_file() else ""
    except (OSError, UnicodeDecodeError):
        key = ""
    if _KEY.fullmatch(key):
        with contextlib.suppress(OSError):
            if path.stat().st_mode & 0o077:
                path.chmod(0o600)
        return key
    if path.exists() or path.is_symlink():
        log.warning("the browser key %s is damaged; a new one replaces it (conversations kept in browsers are lost)", path)
    key = secrets.token_hex(32)
    partial = path.with_name(f".docqa-browser-key.{os.getpid()}")
    try:
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="ascii") as f:
            f.write(key)
        if path.is_dir() and not path.is_symlink():
            path.rmdir()  # an empty folder in its place; one with files in it stays, and the replace fails
        os.replace(partial, path)
    except OSError as error:  # a read-only folder: the conversation lasts as long as this process
        log.warning("could not keep the browser key in %s (%s)", path, error.strerror or error)
        with contextlib.suppress(OSError):
            partial.unlink()
    return key


_KEY = re.compile(r"[0-9a-f]{64}")
