"""What the Index tab does: the index's status and documents, uploads, removal and rebuilds (each
with readable progress, a clear message on failure, and the previous index kept); `header` and
`ready` give the status line above the chat.
"""

from __future__ import annotations

import functools
import logging
from datetime import datetime
from pathlib import Path

import gradio as gr

from qa.app.render import escape_text
from qa.errors import QAError
from qa.index.manifest import corpus_changes
from qa.ingest.corpus import SUFFIXES, add_file, file_sha256
from qa.ingest.readers import UnreadableFile
from qa.pipeline import Pipeline

log = logging.getLogger(__name__)


def when(iso: str) -> str:
    """'2026-11-30T17:05:00+00:00' -> '30 Nov 2026, 17:05 UTC' (as a person writes it)."""
    try:
        return datetime.fromisoformat(iso).strftime("%d %b %Y, %H:%M UTC").lstrip("0")
    except ValueError:
        return iso


def index_view(pipeline: Pipeline) -> tuple[str, list[list], list[list], dict, dict]:
    """(index status, documents table, details table, removal choices, "search in" choices)."""
    try:
        index = pipeline.index
    except QAError as error:
        return (f"**No index loaded.** {escape_text(str(error))}", [], [], gr.update(choices=[], value=None),
                gr.update(choices=[]), gr.update(choices=[], value=None))
    docs = sorted(index.documents.values(), key=lambda d: d.path)
    rows = [[d.title, d.path, d.chunks, d.notes] for d in docs]
    details = [[d.path, d.sha256, d.chars, index.manifest.built_at] for d in docs]
    status = (f"**{len(index.chunks)} passages from {len(docs)} document{'s' if len(docs) != 1 else ''}**, indexed"
              f" {when(index.manifest.built_at)}.")
    changes = corpus_changes(pipeline.settings, index.manifest)
    if changes:
        status += f" The corpus folder has changed since ({escape_text('; '.join(changes))}); rebuild to include them."
    choices = [(f"{d.title} ({d.path})", d.doc_id) for d in docs]
    return (status, rows, details, gr.update(choices=choices, value=None), gr.update(choices=choices),
            gr.update(choices=choices, value=None))


def index_outputs(pipeline: Pipeline, message: str) -> tuple:
    """What every Index-tab action returns: (message, header, *index_view)."""
    return (message, header(pipeline), *index_view(pipeline))


def header(pipeline: Pipeline) -> str:
    try:
        index = pipeline.index
    except QAError as error:
        return f"**Not ready:** {escape_text(str(error))}"
    documents = len(index.documents)
    status = f"Ready: {len(index.chunks)} passages from {documents} document{'s' if documents != 1 else ''}."
    if index.out_of_date:
        status += (f" **The index is out of date:** {escape_text(index.out_of_date)}. Answers come from the index as"
                   " built; rebuild it in the Index tab to include the changes.")
    return status


def reindex(work, progress: gr.Progress) -> str:  # noqa: ANN001
    """Run `work(report)` (a rebuild or a removal) with readable progress; the message to show."""
    progress(0, desc="Indexing…")
    try:
        summary = work(lambda text, done: progress(done, desc=text))
    except QAError as error:
        return f"**Not done.** {escape_text(str(error))}"
    except Exception:  # never a blank "Error"; the server log has the traceback
        log.exception("indexing failed")
        return "**Not done.** Something went wrong while indexing; the server log has the details."
    note = f" {escape_text(summary.note[0].upper() + summary.note[1:])}." if summary.note else ""
    return f"Done: {escape_text(summary.line())} ({escape_text(summary.changes())}).{note}"


def rebuild(pipeline: Pipeline, progress=gr.Progress()) -> tuple:  # noqa: ANN001
    return index_outputs(pipeline, reindex(pipeline.rebuild, progress))


def upload(pipeline: Pipeline, files: list | None, progress=gr.Progress()) -> tuple:  # noqa: ANN001
    """Save uploaded files into the corpus under safe names, then index them (incrementally)."""
    if not files:
        return index_outputs(pipeline, f"Choose one or more {', '.join(SUFFIXES)} files first.")
    try:
        indexed = {d.sha256: d.path for d in pipeline.index.documents.values()}
    except QAError:
        indexed = {}
    saved, notes = [], []
    for file in files:
        path = Path(file)
        try:
            digest = file_sha256(path)
            if digest in indexed:
                notes.append(f"{path.name}: already indexed (as {indexed[digest]})")
                continue
            saved.append(add_file(pipeline.settings.corpus_dir, path.name, path, pipeline.settings.max_file_mb).name)
        except (UnreadableFile, OSError) as error:
            notes.append(f"{path.name}: refused ({error})")
    message = f"Added {', '.join(saved)}." if saved else "Nothing was added."
    if notes:
        message += " " + "; ".join(notes) + "."
    if saved:
        indexed_message = reindex(pipeline.rebuild, progress)
        if indexed_message.startswith("**Not done.**"):
            indexed_message = indexed_message.replace("**Not done.**", "**Saved in the corpus folder but not indexed:**")
        return index_outputs(pipeline, f"{escape_text(message)} {indexed_message}")
    return index_outputs(pipeline, escape_text(message))


def remove(pipeline: Pipeline, doc_id: str | None, delete_file: bool, progress=gr.Progress()) -> tuple:  # noqa: ANN001
    if not doc_id or not isinstance(doc_id, str):
        return index_outputs(pipeline, "Choose a document to remove first. Nothing was changed.")
    if not isinstance(delete_file, bool):
        return index_outputs(pipeline, "Not done: 'delete file' must be true or false. Nothing was changed.")
    return index_outputs(pipeline, reindex(functools.partial(pipeline.remove, doc_id, delete_file), progress))


def ready(pipeline: Pipeline) -> str:
    try:
        pipeline.warm_up(generator=False)
    except QAError as error:
        return f"**Not ready:** {escape_text(str(error))}"
    status = header(pipeline)
    if pipeline.settings.answer_mode == "generative":
        try:
            pipeline.generator.warm_up()
        except QAError as error:
            status += f" **The language model is not available** ({escape_text(str(error))}); evidence answers work."
    return status
