"""docqa web app (Gradio): a chat whose answers cite their sources; thin over `qa`.

    python app.py [--host 127.0.0.1] [--port 7860] [--corpus DIR] [--index DIR]

The page: a chat that streams answers (Stop cancels one); each answer owns its sources: clicking
its `[n]` shows that answer's passages in the Sources panel with passage n selected and the cited
span highlighted, and hovering previews the quote; "open the document" shows the whole document
scrolled to the span. The conversation is kept in the browser (it survives a reload; Clear drops
it). The Index tab lists the documents, adds uploads, removes documents and rebuilds: indexing runs
off the chat queue, so questions keep being answered from the current index until the new one is
swapped in. A named API endpoint `ask` returns the same object as `qa ask --json`. All rendering of
document and model text goes through `qa.render`, which escapes it.
"""

from __future__ import annotations

import argparse
import bisect
import functools
import json
import logging
import os
import sys
import uuid
from datetime import datetime
from pathlib import Path

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import gradio as gr  # noqa: E402

from qa.config import Settings  # noqa: E402
from qa.corpus import UnreadableFile, add_file, file_sha256  # noqa: E402
from qa.errors import QAError  # noqa: E402
from qa.manifest import corpus_changes  # noqa: E402
from qa.limits import LoginGuard, RateLimit  # noqa: E402
from qa.pipeline import Pipeline  # noqa: E402
from qa.render import answer_json, document_html, escape_text, reply_html, sources_html  # noqa: E402
from qa.types import Answer  # noqa: E402

log = logging.getLogger("app")

# Chat and API questions: a few at a time, so an evidence answer (milliseconds) never waits
# behind a generated one (generation itself runs one at a time: the generator holds a lock).
MODEL_QUEUE, MODEL_CONCURRENCY = "model", 4
INDEX_QUEUE = "index"  # uploads, removals and rebuilds: one at a time, never in the chat's way
QUEUE_SIZE = 64  # requests waiting at most; 20 users asking at once fit
KEPT_ANSWERS = 30  # answers (with their sources) kept in the browser's storage
EMPTY_CONVERSATION = {"chat": [], "sources": [], "asked": []}
NO_SOURCES = "Sources of the answer appear here."
EXAMPLES = [
    "When did Japan and South Korea establish diplomatic relations?",
    "What are the Liancourt Rocks called in Korean?",
    "Why did Japan restrict exports to South Korea in 2019?",
    "What is the population of Busan?",
]
EXAMPLE_LABELS = [*EXAMPLES[:3], "What is the population of Busan? (not in the documents: a check that it says so)"]
CSS = """
#sources .answer-sources { display: none; } #sources .answer-sources:last-child { display: block; }
#sources .source { border-left: 3px solid #bbb; padding: 0 .6em; margin: .6em 0; }
#sources .source.selected { border-left-color: #e8a100; background: #fff8e1; }
#sources mark, #document mark { background: #ffe082; }
#sources .where { font-size: .9em; } #sources .details { color: #666; font-size: .85em; }
#sources .asked { font-size: .9em; color: #555; }
#document .doc-text { max-height: 60vh; overflow-y: auto; white-space: normal; border: 1px solid #ddd; padding: .5em; }
.hidden-trigger { display: none !important; }
#chat .draft { color: #777; font-style: italic; } #chat .draft-note { color: #999; }
"""
# Clicking a marker shows its answer's sources with the passage selected; "open the document"
# asks the server for the whole document (through the hidden #open-doc button); chat messages
# get plain-text aria-labels (Gradio puts the message's markup in them).
JS = """
() => {
  document.addEventListener('click', (event) => {
    const link = event.target.closest('a.cite');
    if (link) {
      event.preventDefault();
      const target = document.getElementById((link.getAttribute('href') || '').slice(1));
      if (!target) return;
      const block = target.closest('.answer-sources');
      block.parentElement.querySelectorAll('.answer-sources').forEach((b) => { b.style.display = b === block ? 'block' : 'none'; });
      document.querySelectorAll('#sources .source.selected').forEach((el) => el.classList.remove('selected'));
      target.classList.add('selected');
      const details = target.closest('details');
      if (details) details.open = true;
      target.scrollIntoView({behavior: 'smooth', block: 'center'});
      return;
    }
    const opener = event.target.closest('a.open-doc');
    if (opener) {
      event.preventDefault();
      window.docqaDocument = JSON.stringify({doc: opener.dataset.doc, start: +opener.dataset.start, end: +opener.dataset.end});
      document.querySelector('#open-doc').click();
    }
  }, true);
  const plain = () => document.querySelectorAll('#chat [aria-label*="s message: "]').forEach((el) => {
    const label = el.getAttribute('aria-label');
    const wanted = label.slice(0, label.indexOf('s message: ') + 11) + el.innerText.trim();
    if (label !== wanted) el.setAttribute('aria-label', wanted);  // equal: no new mutation, no loop
  });
  new MutationObserver(plain).observe(document.body, {subtree: true, childList: true, attributes: true, attributeFilter: ['aria-label']});
}
"""
SCROLL_TO_CITED = "() => setTimeout(() => document.querySelector('#document mark#cited')?.scrollIntoView({block: 'center'}), 150)"


def sources_panel(blocks: list[str]) -> str:
    """Every kept answer's sources; CSS shows the latest, a clicked marker shows its own."""
    return f'<div class="answers">{"".join(blocks)}</div>' if blocks else NO_SOURCES


def chat(pipeline: Pipeline, message: str, conversation: dict, k: int, mode: str, show_details: bool,
         wait: float = 0.0):
    """Streams (chat messages, sources panel, conversation) while the answer is produced; the
    conversation (messages, each answer's sources, the questions asked) is kept in the browser.
    `wait` > 0: the client is over its rate limit; it is told so instead."""
    conversation = {**EMPTY_CONVERSATION, **(conversation or {})}
    panel = sources_panel(conversation["sources"])
    history = [*conversation["chat"], {"role": "user", "content": escape_text(message or "")}]
    yield history, panel, conversation
    if wait > 0:
        yield [*history, {"role": "assistant", "content": too_many(wait)}], panel, conversation
        return
    try:
        text, item = "", None
        for item in pipeline.ask_stream(message, int(k), mode, history=conversation["asked"]):
            if isinstance(item, Answer):
                break
            text += item
            if mode == "generative":  # an evidence answer is verified as it comes: no draft to show
                yield [*history, {"role": "assistant", "content": draft_html(text)}], panel, conversation
    except QAError as error:
        reply, item = escape_text(str(error)), None
    except Exception:  # never a traceback in the page; the server log has it
        log.exception("answering failed")
        reply, item = "Something went wrong while answering; the server log has the details.", None
    blocks, asked = conversation["sources"], conversation["asked"]
    if isinstance(item, Answer):
        answer_id = "a" + uuid.uuid4().hex[:10]
        reply = reply_html(item, answer_id)
        blocks = [*blocks, sources_html(item, pipeline.index.title, show_details, answer_id)][-KEPT_ANSWERS:]
        asked = [*asked, item.query][-KEPT_ANSWERS:]
    messages = [*history, {"role": "assistant", "content": reply}][-2 * KEPT_ANSWERS:]
    yield messages, sources_panel(blocks), {"chat": messages, "sources": blocks, "asked": asked}


def draft_html(text: str) -> str:
    """Generated text while it is being written: visibly a draft, replaced by the verified answer
    (which may keep less of it, or decline) when generation ends."""
    return (f'<span class="draft">{escape_text(text)} …</span><br>'
            '<small class="draft-note">Draft: being checked against the sources.</small>')


def stopped(question: str, conversation: dict) -> tuple:
    """After Stop: the question with a note in place of the unfinished answer (never a draft
    that looks final); Ask is back."""
    conversation = {**EMPTY_CONVERSATION, **(conversation or {})}
    messages = [*conversation["chat"], {"role": "user", "content": escape_text(question or "")},
                {"role": "assistant", "content": "Stopped before the answer was finished."}][-2 * KEPT_ANSWERS:]
    conversation = {**conversation, "chat": messages}
    return messages, conversation, "", gr.update(visible=True), gr.update(visible=False)


def restore(conversation: dict) -> tuple[list, str]:
    conversation = {**EMPTY_CONVERSATION, **(conversation or {})}
    return conversation["chat"], sources_panel(conversation["sources"])


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
    return document_html(doc.title, doc.text, start, end, page)


def too_many(wait: float) -> str:
    return f"Too many questions from your address in the last minute: ask again in {wait:.0f} s."


def client_of(request: gr.Request | None) -> str:
    return getattr(getattr(request, "client", None), "host", None) or "unknown"


def api_ask(pipeline: Pipeline, question: str, wait: float = 0.0) -> dict:
    """The `ask` endpoint: the same object as `qa ask --json`."""
    if wait > 0:
        raise gr.Error(too_many(wait))
    try:
        answer = pipeline.ask(question)
    except QAError as error:
        raise gr.Error(str(error)) from None
    except Exception:  # a message, never a bare error object; the server log has the traceback
        log.exception("answering failed")
        raise gr.Error("Something went wrong while answering; the server log has the details.") from None
    return answer_json(answer, pipeline.index.title)


def when(iso: str) -> str:
    """'2026-11-30T17:05:00+00:00' -> '30 Nov 2026, 17:05 UTC' (as a person writes it)."""
    try:
        return datetime.fromisoformat(iso).strftime("%d %b %Y, %H:%M UTC").lstrip("0")
    except ValueError:
        return iso


def index_view(pipeline: Pipeline) -> tuple[str, list[list], list[list], dict]:
    """(index status, documents table, details table, removal choices)."""
    try:
        index = pipeline.index
    except QAError as error:
        return f"**No index loaded.** {escape_text(str(error))}", [], [], gr.update(choices=[], value=None)
    docs = sorted(index.documents.values(), key=lambda d: d.path)
    rows = [[d.title, d.path, d.chunks] for d in docs]
    details = [[d.path, d.sha256, d.chars, index.manifest.built_at] for d in docs]
    status = f"**{len(index.chunks)} passages from {len(docs)} documents**, indexed {when(index.manifest.built_at)}."
    changes = corpus_changes(pipeline.settings, index.manifest)
    if changes:
        status += f" The corpus folder has changed since ({escape_text('; '.join(changes))}); rebuild to include them."
    choices = gr.update(choices=[(f"{d.title} ({d.path})", d.doc_id) for d in docs], value=None)
    return status, rows, details, choices


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
    return f"Done: {escape_text(summary.line())} ({escape_text(summary.changes())})."


def rebuild(pipeline: Pipeline, progress=gr.Progress()) -> tuple:  # noqa: ANN001
    return index_outputs(pipeline, reindex(pipeline.rebuild, progress))


def upload(pipeline: Pipeline, files: list | None, progress=gr.Progress()) -> tuple:  # noqa: ANN001
    """Save uploaded files into the corpus under safe names, then index them (incrementally)."""
    if not files:
        return index_outputs(pipeline, "Choose one or more .txt, .md, .html or .pdf files first.")
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
        message = f"{escape_text(message)} {reindex(pipeline.rebuild, progress)}"
        return index_outputs(pipeline, message)
    return index_outputs(pipeline, escape_text(message))


def remove(pipeline: Pipeline, doc_id: str | None, delete_file: bool, progress=gr.Progress()) -> tuple:  # noqa: ANN001
    if not doc_id:
        return index_outputs(pipeline, "Choose a document to remove first.")
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


def build(pipeline: Pipeline) -> gr.Blocks:
    settings = pipeline.settings
    with gr.Blocks(title="docqa") as demo:
        gr.Markdown("# docqa\nAsk about your documents. Every answer cites its sources; click a marker to check it.")
        status = gr.Markdown("Loading the index and models…", elem_id="status")
        conversation = gr.BrowserState(EMPTY_CONVERSATION, storage_key="docqa-conversation")
        with gr.Tab("Chat"):
            with gr.Row():
                with gr.Column(scale=3):
                    chatbot = gr.Chatbot(label="Answers", elem_id="chat", height=480, sanitize_html=True)
                    question = gr.Textbox(
                        label="Question", placeholder="Ask a question about the documents", elem_id="question"
                    )
                    with gr.Row():
                        ask = gr.Button("Ask", variant="primary", elem_id="ask")
                        stop = gr.Button("Stop", variant="stop", elem_id="stop", visible=False)
                        clear = gr.Button("Clear the conversation", elem_id="clear")
                    gr.Examples(EXAMPLES, inputs=question, example_labels=EXAMPLE_LABELS)
                    with gr.Accordion("Settings", open=False, elem_id="chat-settings"):
                        k = gr.Slider(1, 10, value=settings.k, step=1, label="Passages")
                        mode = gr.Radio(["evidence", "generative"], value=settings.answer_mode, label="Answer mode")
                        show_details = gr.Checkbox(False, label="Show details (character offsets, retrieval scores)")
                with gr.Column(scale=2):
                    gr.Markdown("### Sources")
                    sources = gr.HTML(NO_SOURCES, elem_id="sources")
                    document = gr.HTML("", elem_id="document")
                    document_request = gr.Textbox(visible=False)
                    open_document = gr.Button("open", elem_id="open-doc", elem_classes="hidden-trigger")
        with gr.Tab("Index"):
            index_status = gr.Markdown(elem_id="index-status")
            documents = gr.Dataframe(headers=["title", "file", "passages"], interactive=False, wrap=True,
                                     elem_id="documents")
            with gr.Accordion("Details", open=False):
                details = gr.Dataframe(headers=["file", "sha256", "characters", "indexed at (UTC)"],
                                       interactive=False, wrap=True)
            uploads = gr.File(
                label=f"Add documents (.txt, .md, .html, .pdf; up to {settings.max_file_mb} MB each)",
                file_count="multiple",
                file_types=[".txt", ".md", ".html", ".htm", ".pdf"],
                elem_id="uploads",
            )
            add_button = gr.Button("Add to the corpus and index", elem_id="add")
            with gr.Row():
                removable = gr.Dropdown(label="Remove a document from the index", choices=[], elem_id="removable",
                                        allow_custom_value=True)
                delete_file = gr.Checkbox(False, label="also delete its file from the corpus folder")
                remove_button = gr.Button("Remove", elem_id="remove")
            rebuild_button = gr.Button("Rebuild the index", elem_id="rebuild")
            index_message = gr.Markdown(elem_id="index-message")

        answering = (gr.update(visible=False), gr.update(visible=True))
        idle = (gr.update(visible=True), gr.update(visible=False))
        inputs = [question, conversation, k, mode, show_details]
        outputs = [chatbot, sources, conversation]
        limit = RateLimit(settings.rate_limit)

        def respond(message: str, conversation: dict, k: int, mode: str, show_details: bool, request: gr.Request):
            yield from chat(pipeline, message, conversation, k, mode, show_details, limit.wait(client_of(request)))

        events = []
        for trigger, name in ((ask.click, "chat"), (question.submit, False)):
            event = trigger(lambda: answering, None, [ask, stop], api_name=False, queue=False).then(
                respond, inputs, outputs, api_name=name, concurrency_id=MODEL_QUEUE,
                concurrency_limit=MODEL_CONCURRENCY,
            )
            events.append(event)
            event.then(lambda: ("", *idle), None, [question, ask, stop], api_name=False, queue=False)
        stop.click(stopped, [question, conversation], [chatbot, conversation, question, ask, stop],
                   cancels=events, api_name=False, queue=False)
        forget = (lambda: ([], NO_SOURCES, "", EMPTY_CONVERSATION), None, [chatbot, sources, document, conversation])
        clear.click(*forget, api_name=False, queue=False)
        chatbot.clear(*forget, api_name=False, queue=False)  # the chat's own bin icon forgets it too
        open_document.click(functools.partial(show_document, pipeline), document_request, document,
                            js="(x) => window.docqaDocument || x", api_name=False, queue=False).then(
            None, None, None, js=SCROLL_TO_CITED)

        def ask_endpoint(question: str, request: gr.Request) -> dict:
            """Answer a question; returns the same object as `qa ask --json`."""
            return api_ask(pipeline, question, limit.wait(client_of(request)))

        gr.api(ask_endpoint, api_name="ask", concurrency_id=MODEL_QUEUE, concurrency_limit=MODEL_CONCURRENCY)
        index_outputs = [index_message, status, index_status, documents, details, removable]
        rebuild_button.click(functools.partial(rebuild, pipeline), None, index_outputs, api_name="rebuild",
                             concurrency_id=INDEX_QUEUE)
        add_button.click(functools.partial(upload, pipeline), uploads, index_outputs, api_name="upload",
                         concurrency_id=INDEX_QUEUE)
        remove_button.click(functools.partial(remove, pipeline), [removable, delete_file], index_outputs,
                            api_name="remove", concurrency_id=INDEX_QUEUE)
        demo.load(restore, conversation, [chatbot, sources], api_name=False, queue=False)
        demo.load(functools.partial(ready, pipeline), None, status, api_name=False).then(
            functools.partial(index_view, pipeline), None, index_outputs[2:], api_name=False
        )
    return demo


def serve(settings: Settings, host: str = "127.0.0.1", port: int = 7860) -> int:
    pipeline = Pipeline(settings)
    print(ready(pipeline).replace("**", ""), file=sys.stderr)
    demo = build(pipeline)
    demo.queue(max_size=QUEUE_SIZE, default_concurrency_limit=1)
    demo.launch(
        auth=LoginGuard(settings.auth) if settings.auth else None,
        server_name=host,
        server_port=port,
        share=False,
        max_file_size=f"{settings.max_file_mb}mb",
        allowed_paths=[],
        blocked_paths=[str(settings.index_dir.resolve()), str(settings.corpus_dir.resolve())],
        strict_cors=True,
        show_error=False,
        enable_monitoring=False,
        run_history=False,
        ssr_mode=False,
        mcp_server=False,
        css=CSS,
        js=JS,
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="docqa web app")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=7860)
    parser.add_argument("--corpus", metavar="DIR")
    parser.add_argument("--index", metavar="DIR")
    parser.add_argument("--auth", metavar="USER:PASSWORD", help="require this login (or set QA_AUTH)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s")
    try:
        settings = Settings.from_env(corpus_dir=args.corpus, index_dir=args.index, auth=args.auth)
    except QAError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return serve(settings, args.host, args.port)


if __name__ == "__main__":
    sys.exit(main())
