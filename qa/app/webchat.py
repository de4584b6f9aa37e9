"""What the web app does when a person acts: answering in the chat (a visible draft while a
generated answer is written, then the verified answer and its sources), Stop, restoring the
conversation kept in the browser, opening a cited document, the `ask` API. The Index tab's
handlers are `qa.app.index_tab`; layout and wiring live in `qa.app.web`; all document and model
text is escaped by `qa.app.render`.
"""

from __future__ import annotations

import bisect
import contextlib
import html
import json
import logging
import os
import re
import tempfile
import time
import uuid
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

import gradio as gr

from qa.app.render import (
    answer_json,
    answer_markdown,
    citation_json,
    document_html,
    escape_text,
    overview_html,
    reply_html,
    sources_html,
)
from qa.app import feedback
from qa.app.examples import example_buttons
from qa.app.feedback import FEEDBACK_OPTIONS
from qa.config import ANSWER_MODES
from qa.ingest.corpus import MAX_EXAMPLES
from qa.errors import QAError
from qa.pipeline import Pipeline
from qa.text import heading_path, inert_markdown, place
from qa.types import Answer

log = logging.getLogger(__name__)

KEPT_ANSWERS = 30  # answers (with their sources) kept in the browser's storage
EMPTY_CONVERSATION = {"chat": [], "sources": [], "asked": [], "answers": {}, "feedback": {}}
# 👍, 👎, and reasons for a 👎 (Gradio shows them under a flag next to the thumbs).
GENERATIVE_NOTE = (
    "**evidence**: the sentence that answers, quoted (about 0.1 s). **generative**: the language model "
    "(`{model}`) writes the answer, which is then checked against the sources; with the bundled small model expect "
    "2–15 s and answers often replaced by the quoted sentence. A stronger model: `make model` (see docs/models.md)."
)
NO_GENERATIVE_NOTE = (
    "**evidence**: the sentence that answers, quoted (about 0.1 s). **generative** answers need a stronger "
    "language model than the bundled 135M one, whose drafts rarely survive checking against the sources: "
    "`qa models install qwen-1.5b`, then start the app with `QA_MODEL=qwen-1.5b` (see docs/models.md)."
)
NO_SOURCES = "Sources of the answer appear here."


MAX_CONVERSATION_CHARS = 1_000_000  # of a conversation sent back by the browser; older turns are dropped


def bounded_conversation(conversation: object, max_question_chars: int = 2000) -> dict:
    """The conversation a browser sent, checked and bounded: the expected shape (anything else
    is dropped), the last KEPT_ANSWERS answers, at most MAX_CONVERSATION_CHARS in all (oldest
    turns dropped first), questions cut to `max_question_chars`. Keeps a crafted or huge
    history from costing the server.

    >>> bounded_conversation({"chat": [{"role": "user", "content": "hi"}, 5], "sources": "x", "asked": ["q" * 9]}, 4)
    {'chat': [{'role': 'user', 'content': 'hi'}], 'sources': [], 'asked': ['qqqq'], 'answers': {}, 'feedback': {}}
    """
    raw = conversation if isinstance(conversation, dict) else {}
    chat = [m for m in raw.get("chat") or () if isinstance(m, dict) and isinstance(m.get("content"), str)
            and m.get("role") in ("user", "assistant")] if isinstance(raw.get("chat"), list) else []
    sources = [b for b in raw.get("sources") or () if isinstance(b, str)] if isinstance(raw.get("sources"), list) else []
    asked = [q[:max_question_chars] for q in raw.get("asked") or () if isinstance(q, str)] \
        if isinstance(raw.get("asked"), list) else []
    chat, sources, asked = chat[-2 * KEPT_ANSWERS:], sources[-KEPT_ANSWERS:], asked[-KEPT_ANSWERS:]
    while chat and sum(len(m["content"]) for m in chat) + sum(map(len, sources)) > MAX_CONVERSATION_CHARS:
        chat = chat[2:]
        sources = sources[1:]
    answers = raw.get("answers") if isinstance(raw.get("answers"), dict) else {}
    answers = {k: v for k, v in list(answers.items())[-KEPT_ANSWERS:] if isinstance(k, str) and isinstance(v, dict)}
    given = raw.get("feedback") if isinstance(raw.get("feedback"), dict) else {}
    given = {k: v for k, v in given.items() if k in answers and v in FEEDBACK_OPTIONS}
    return {"chat": [{"role": m["role"], "content": m["content"]} for m in chat], "sources": sources, "asked": asked,
            "answers": answers, "feedback": given}


def sources_panel(blocks: list[str]) -> str:
    """Every kept answer's sources; CSS shows the latest, a clicked marker shows its own."""
    return f'<div class="answers">{"".join(blocks)}</div>' if blocks else NO_SOURCES


def chat(pipeline: Pipeline, message: str, conversation: dict, k: int, mode: str, show_details: bool,
         wait: float = 0.0, documents: list | None = None):
    """Streams (chat messages, sources panel, conversation) while the answer is produced; the
    conversation (messages, each answer's sources, the questions asked) is kept in the browser.
    `wait` > 0: the client is over its rate limit; it is told so instead. `documents`: the ids of
    the documents to search (none: all)."""
    conversation = bounded_conversation(conversation)
    panel = sources_panel(conversation["sources"])
    history = [*conversation["chat"], {"role": "user", "content": escape_text(message if isinstance(message, str) else "")}]
    yield history, panel, conversation
    documents = documents or []
    problem = too_many(wait) if wait > 0 else bad_chat_options(k, mode, show_details)
    if not problem and not (isinstance(documents, list) and all(isinstance(d, str) for d in documents)):
        problem = "documents must be a list of document names"
    if problem:
        yield [*history, {"role": "assistant", "content": escape_text(problem)}], panel, conversation
        return
    try:
        text = ""
        stream = pipeline.ask_stream(message, int(k), mode, history=conversation["asked"], documents=documents)
        for piece in stream:
            text += piece
            if mode == "generative":  # an evidence answer is verified as it comes: no draft to show
                yield [*history, {"role": "assistant", "content": draft_html(text)}], panel, conversation
        item = stream.answer()
    except QAError as error:
        reply, item = escape_text(str(error)), None
    except Exception:  # never a traceback in the page; the server log has it
        log.exception("answering failed")
        reply, item = "Something went wrong while answering; the server log has the details.", None
    blocks, asked, answers = conversation["sources"], conversation["asked"], conversation["answers"]
    if isinstance(item, Answer):
        answer_id = "a" + uuid.uuid4().hex[:10]
        reply = reply_html(item, answer_id)
        answers = dict(list({**answers, answer_id: kept_answer(pipeline, item, documents)}.items())[-KEPT_ANSWERS:])
        if mode == "generative" and item.mode == "evidence" and item.raw_text and not item.abstained:
            reply += ('<br><small class="draft-note">The written answer did not hold up against the sources,'
                      ' so the quoted answer is shown instead.</small>')
        index = pipeline.index
        titles = [index.documents[d].title for d in documents if d in index.documents]
        blocks = [*blocks, sources_html(item, index.where, show_details, answer_id, searched_in=titles)][-KEPT_ANSWERS:]
        asked = [*asked, item.query][-KEPT_ANSWERS:]
        lines = source_lines(answers[answer_id]["citations"])
        if lines:  # not shown; the copy button copies it with the answer
            reply += '<div class="copy-sources">Sources:<br>' + "<br>".join(map(html.escape, lines)) + "</div>"
        reply = f'<div class="reply" data-answer="{answer_id}">{reply}</div>'  # 👍/👎 find the answer by it
    messages = [*history, {"role": "assistant", "content": reply}][-2 * KEPT_ANSWERS:]
    kept = bounded_conversation({"chat": messages, "sources": blocks, "asked": asked, "answers": answers,
                                 "feedback": conversation["feedback"]})
    yield messages, sources_panel(blocks), kept  # plain messages: /chat's API callers read them (thumbs: `restore`)


def kept_answer(pipeline: Pipeline, answer: Answer, documents: list[str]) -> dict:
    """What the conversation keeps of an answer for feedback: question, answer, short answer, citations."""
    short = answer.short_answer
    chunks = {p.chunk.chunk_id: p.chunk for p in answer.passages}
    citations = [citation_json(c, chunks[c.chunk_id], pipeline.index) for c in answer.citations]
    return {"question": answer.question, "answer": answer_markdown(answer),
            "short_answer": None if short is None else short.short_text,
            "citations": citations, "documents": documents}


def conversation_markdown(conversation: dict) -> str:
    """Every kept answer of a conversation as Markdown: the question, the answer, its sources as
    `[n] Title › place: “quote”`.

    >>> print(conversation_markdown({"answers": {"a1": {"question": "When?", "answer": "**1965**",
    ...     "citations": [{"marker": 1, "title": "T", "section": "History", "page": None, "quote": "In 1965."}]}}}))
    # docqa conversation
    <BLANKLINE>
    ## When?
    <BLANKLINE>
    **1965**
    <BLANKLINE>
    Sources:
    <BLANKLINE>
    - [1] T › History: “In 1965.”
    <BLANKLINE>
    """
    parts = ["# docqa conversation", ""]
    for answer in bounded_conversation(conversation)["answers"].values():
        parts += [f"## {inert_markdown(str(answer.get('question', '')))}", "", str(answer.get("answer", "")), ""]
        lines = source_lines(answer.get("citations") or ())
        if lines:
            parts += ["Sources:", "", *(f"- {line}" for line in lines), ""]
    return "\n".join(parts)


def source_lines(citations: Sequence[object]) -> list[str]:
    """`[n] Title › place: “quote”` for each citation (kept as `kept_answer` keeps them; the place
    as `qa.text.place` names it: "sheet Exports 2024, row 4", "History › 1965, page 3"…).

    >>> source_lines([{"marker": 2, "title": "T", "section": "A > B", "place": "A › B, page 3", "quote": "In 1965."}])
    ['[2] T › A › B, page 3: “In 1965.”']
    """
    lines = []
    for c in citations:
        if isinstance(c, dict):
            where = " › ".join(p for p in (str(c.get("title", "")), str(c.get("place", heading_path("", str(c.get("section", "")))))) if p)
            lines.append(inert_markdown(f"[{c.get('marker')}] {where}: “{c.get('quote', '')}”"))
    return lines


EXPORTS = Path(tempfile.gettempdir()) / f"docqa-exports-{os.getpid()}"


def export_conversation(conversation: dict) -> str:
    """A Markdown file of the conversation, for download; its path. Exports older than an hour
    are deleted as new ones are made (Gradio serves its own copy)."""
    EXPORTS.mkdir(exist_ok=True)
    for old in EXPORTS.glob("*.md"):
        with contextlib.suppress(OSError):
            if time.time() - old.stat().st_mtime > 3600:
                old.unlink()
    path = EXPORTS / f"docqa-conversation-{datetime.now():%Y%m%d-%H%M%S}-{uuid.uuid4().hex[:6]}.md"
    path.write_text(conversation_markdown(conversation), encoding="utf-8")
    return str(path)


_ANSWER_ID = re.compile(r'data-answer="(a[0-9a-f]{10})"')


def judged(pipeline: Pipeline, conversation: dict, data: gr.LikeData, wait: float = 0.0) -> tuple[dict, str]:
    """A 👍/👎 on an answer: its question, answer and sources go to the feedback file, the choice
    to the conversation (so it is shown again after a reload), unless the client must `wait` (the
    feedback limit: one client cannot fill the file for everyone). Returns (the conversation, what
    to tell the person)."""
    conversation = bounded_conversation(conversation)
    match = _ANSWER_ID.search(str(data.value))
    answer = conversation["answers"].get(match.group(1)) if match else None
    reason = data.liked if data.liked in FEEDBACK_OPTIONS[2:] else ""  # a reason is a 👎 that says why
    if answer is None or not (isinstance(data.liked, bool) or reason):
        return conversation, ""  # not an answer (a message, a question) or an unknown choice
    if wait > 0:
        return conversation, feedback.too_many(wait)
    liked = data.liked is True
    conversation["feedback"].pop(match.group(1), None)  # re-inserted: the last judged answer is last
    conversation["feedback"][match.group(1)] = reason or ("Like" if liked else "Dislike")
    record = {**feedback.record_for(answer, liked, reason), "answer_id": match.group(1)}
    if not feedback.append(pipeline.settings.feedback_path, record):
        log.warning("the feedback file %s is full; this judgement was not kept", pipeline.settings.feedback_path)
        return conversation, "Not saved: the feedback file is full (see the server's log)."
    return conversation, "Saved — thanks. " + ("It counts as a right answer." if liked else
                                               f"{reason + ': ' if reason else ''}the command qa feedback export turns it "
                                               "into a question to check.")


def feedback_values(conversation: dict) -> list[str | None]:
    """The 👍/👎 given to each assistant message of the conversation, in order (None: none)."""
    values = []
    for message in conversation["chat"]:
        if message["role"] == "assistant":
            match = _ANSWER_ID.search(message["content"])
            values.append(conversation["feedback"].get(match.group(1)) if match else None)
    return values


def bad_chat_options(k: object, mode: object, show_details: object) -> str:
    """What is wrong with the chat options an API caller sent ("" when nothing is).

    >>> bad_chat_options(5, "evidence", False), bad_chat_options("5", "evidence", "false")
    ('', "passages must be a whole number from 1 to 10, not '5'")
    """
    if isinstance(k, bool) or not isinstance(k, (int, float)) or k != int(k) or not 1 <= k <= 10:
        return f"passages must be a whole number from 1 to 10, not {k!r}"
    if mode not in ANSWER_MODES:
        return f"mode must be one of {', '.join(ANSWER_MODES)}, not {mode!r}"
    if not isinstance(show_details, bool):
        return f"details must be true or false, not {show_details!r}"
    return ""


def draft_html(text: str) -> str:
    """Generated text while it is being written: visibly a draft, replaced by the verified answer
    (which may keep less of it, or decline) when generation ends."""
    return (f'<span class="draft">{escape_text(text)} …</span><br>'
            '<small class="draft-note">Draft: being checked against the sources.</small>')


def stopped(question: str, conversation: dict) -> tuple:
    """After Stop: the question with a note in place of the unfinished answer (never a draft
    that looks final); Ask is back."""
    conversation = bounded_conversation(conversation)
    messages = [*conversation["chat"], {"role": "user", "content": escape_text(question or "")},
                {"role": "assistant", "content": "Stopped before the answer was finished."}][-2 * KEPT_ANSWERS:]
    conversation = {**conversation, "chat": messages}
    return messages, conversation, gr.update(visible=True), gr.update(visible=False)


def restore_settings(settings, saved: object) -> tuple:  # noqa: ANN001
    """(passages, mode, details) as the browser saved them, each checked (else the default).

    >>> from qa.config import Settings
    >>> restore_settings(Settings(generative="on"), {"k": 3, "mode": "generative", "details": "yes"})
    (3, 'generative', False)
    >>> restore_settings(Settings(), {"mode": "generative"})  # not offered with the bundled model
    (5, 'evidence', False)
    """
    saved = saved if isinstance(saved, dict) else {}
    k = saved.get("k")
    k = int(k) if isinstance(k, (int, float)) and not isinstance(k, bool) and 1 <= k <= 10 else settings.k
    mode = saved.get("mode") if saved.get("mode") in ANSWER_MODES else settings.answer_mode
    mode = mode if settings.generative_offered else "evidence"
    details = saved.get("details") if isinstance(saved.get("details"), bool) else False
    return k, mode, details


def restore_search_in(pipeline: Pipeline, saved: object) -> dict:
    """The "Search in" choice the browser saved, without documents no longer indexed."""
    try:
        documents = pipeline.index.documents
    except QAError:
        return gr.update()
    chosen = [d for d in saved if isinstance(d, str) and d in documents] if isinstance(saved, list) else []
    return gr.update(value=chosen)


def restore(conversation: dict) -> tuple[dict, str]:
    conversation = bounded_conversation(conversation)
    return (gr.update(value=conversation["chat"], feedback_value=feedback_values(conversation)),
            sources_panel(conversation["sources"]))


def show_document(pipeline: Pipeline, request: str) -> str:
    """The whole document of a cited passage, the cited span highlighted (a message when the
    document is gone or changed)."""
    try:
        wanted = json.loads(request or "{}")
        doc = pipeline.document(str(wanted["doc"]))
        start, end = int(wanted["start"]), int(wanted["end"])
    except QAError as error:
        return f"<p>{escape_text(str(error))}</p>"
    except (ValueError, KeyError, TypeError):
        return "<p>Choose “open the document” on a passage in the Sources panel.</p>"
    page = bisect.bisect_right(doc.page_starts, start) if doc.page_starts else None
    where = place(doc.path, "", page)  # "page 3", "slide 2"; the passage's own place is in its Sources entry
    return document_html(doc.title, doc.text, start, end, where, overview=overview_html(pipeline.overview(str(wanted["doc"]))))


def show_overview(pipeline: Pipeline, doc_id: str | None) -> str:
    """The Index tab's overview of the chosen document."""
    if not doc_id:
        return ""
    try:
        return overview_html(pipeline.overview(doc_id))
    except QAError as error:
        return f"<p>{escape_text(str(error))}</p>"


def too_many(wait: float) -> str:
    return f"Too many questions from your address in the last minute: ask again in {wait:.0f} s."


def client_of(request: gr.Request | None) -> str:
    return getattr(getattr(request, "client", None), "host", None) or "unknown"


def api_ask(pipeline: Pipeline, question: str, wait: float = 0.0, documents: list | None = None) -> dict:
    """The `ask` endpoint: the same object as `qa ask --json`; `documents` (names) restricts the search."""
    if wait > 0:
        raise gr.Error(too_many(wait))
    try:
        if documents is not None and not isinstance(documents, list):
            raise QAError("documents must be a list of document names")
        answer = pipeline.ask(question, documents=documents or ())
    except QAError as error:
        raise gr.Error(str(error)) from None
    except Exception:  # a message, never a bare error object; the server log has the traceback
        log.exception("answering failed")
        raise gr.Error("Something went wrong while answering; the server log has the details.") from None
    return answer_json(answer, pipeline.index)


def examples_view(pipeline: Pipeline) -> list[dict]:
    """One button per example question (`qa.app.examples`: each one answered), never none while
    a document is indexed."""
    questions = example_buttons(pipeline)
    return [gr.update(value=q, visible=True) for q in questions] + [
        gr.update(visible=False) for _ in range(MAX_EXAMPLES - len(questions))]
