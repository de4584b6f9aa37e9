"""The web app's page (Gradio): a chat whose answers cite their sources, a Sources panel, a
document view and an Index tab, wired to the handlers in `qa.app.webchat`; `serve` starts it.

Each answer owns its sources: clicking its `[n]` shows that answer's passages with passage n
selected and the cited span highlighted, and hovering previews the quote; "open the document"
shows the whole document scrolled to the span. The conversation is kept in the browser (it
survives a reload; Clear drops it). Indexing runs on its own queue, so questions keep being
answered from the current index until the new one is swapped in. A named API endpoint `ask`
returns the same object as `qa ask --json`.
"""

from __future__ import annotations

import functools
import os
import sys
import threading
from types import SimpleNamespace

import gradio as gr

from qa.app.answers_api import AnswersAPI, RequireKey
from qa.app.browser_key import browser_key
from qa.app.feedback import FEEDBACK_OPTIONS, FEEDBACK_PER_MINUTE, Repeats, noted
from qa.app.index_tab import index_view, ready, rebuild, remove, upload
from qa.app.guards import HostRule, KeyGuard, KeyLogin, LimitToolCalls, LoginGuard, Mounted, RateLimit, RequestGuard
from qa.app.render import plain_text
from qa.app.webchat import (
    EMPTY_CONVERSATION,
    bounded_conversation,
    examples_view,
    NO_SOURCES,
    api_ask,
    chat,
    client_of,
    export_conversation,
    GENERATIVE_NOTE,
    NO_GENERATIVE_NOTE,
    judged,
    restore,
    restore_search_in,
    restore_settings,
    show_document,
    show_overview,
    stopped,
)
from qa.config import Settings
from qa.ingest.corpus import MAX_EXAMPLES, SUFFIXES
from qa.pipeline import Pipeline


# Chat and API questions: a few at a time, so an evidence answer (milliseconds) never waits
# behind a generated one (generation itself runs one at a time: the generator holds a lock).
MODEL_QUEUE, MODEL_CONCURRENCY = "model", 4
# The document view reads and parses a file (seconds for a big PDF): two at a time, on the shared
# queue, so views never starve the questions.
DOCUMENT_QUEUE, DOCUMENT_CONCURRENCY = "document", 2
INDEX_QUEUE = "index"  # uploads, removals and rebuilds: one at a time, never in the chat's way
QUEUE_SIZE = 64  # requests waiting at most; 20 users asking at once fit
CSS = """
#sources .answer-sources { display: none; } #sources .answer-sources:last-child { display: block; }
#sources .source { border-left: 3px solid #bbb; padding: 0 .6em; margin: .6em 0; }
#sources .source.selected { border-left-color: #e8a100; background: #fff8e1; color: #1f2937; }
#sources mark, #document mark, #chat mark { background: #ffe082; color: #1f2937; }
#sources .where { font-size: .9em; } #sources .details { color: #666; font-size: .85em; }
#sources .asked, #sources .searched-in { font-size: .9em; color: #555; }
.dark #sources .source.selected { background: #3d2f00; color: #f4f4f5; }
.dark #sources mark, .dark #document mark, .dark #chat mark { background: #7a5c00; color: #ffffff; }
.dark #sources .details, .dark #sources .asked, .dark #sources .searched-in { color: #c4c4cc; }
#document .doc-text { max-height: 60vh; overflow-y: auto; white-space: normal; border: 1px solid #ddd; padding: .5em; }
.hidden-trigger { display: none !important; }
#chat .inline-source { border-left: 3px solid #e8a100; padding: .2em .6em; margin-top: .5em; font-size: .95em; }
#chat .draft { color: #777; font-style: italic; } #chat .draft-note { color: #999; }
#chat .copy-sources { display: none; }  /* what the copy button adds after the answer */
#chat .tentative { border-left: 3px dashed #9ca3af; padding-left: .6em; } #chat .not-sure { font-style: italic; opacity: .8; }
#chat .bubble-wrap { margin-top: 28px; height: calc(100% - 28px); }  /* below the floating "Answers" label, not under it */
#answer-mode label.disabled, #answer-mode label.disabled input { opacity: .5; cursor: not-allowed; }
"""
# Clicking a marker shows its answer's sources with the passage selected; "open the document"
# asks the server for the whole document (through the hidden #open-doc button); chat messages
# get plain-text aria-labels (Gradio puts the message's markup in them).
JS = r"""
() => {
  document.addEventListener('click', (event) => {
    const link = event.target.closest('a.cite');
    if (link) {
      event.preventDefault();
      const target = document.getElementById((link.getAttribute('href') || '').slice(1));
      if (!target) return;
      if (window.innerWidth <= 600 && link.closest('#chat')) {  // narrow: the passage opens below the answer
        const reply = link.closest('.reply') || link.parentElement;
        let box = reply.querySelector(':scope > .inline-source');
        if (box && box.dataset.for === target.id) { box.remove(); return; }
        if (!box) { box = document.createElement('div'); box.className = 'inline-source'; reply.appendChild(box); }
        box.dataset.for = target.id;
        const where = target.querySelector('.where');
        const quoted = [...target.querySelectorAll('mark')].map((m) => m.outerHTML).join(' … ');
        box.innerHTML = (where ? where.outerHTML : '') + (quoted ? `<p>“${quoted}”</p>` : target.innerHTML);
        // Into view now and again after the chat's own scrolling settles.
        [0, 200, 600].forEach((ms) => setTimeout(() => box.isConnected && box.scrollIntoView({block: 'center'}), ms));
        return;
      }
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
      if (opener.closest('#overview')) {  // from the Index tab: the document view is on the Chat tab
        [...document.querySelectorAll('button[role="tab"]')].find((b) => b.textContent.trim() === 'Chat')?.click();
      }
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
  // The chat's copy buttons copy a message's HTML; the clipboard gets its text ("[1]" markers kept).
  const asText = (value) => {
    if (typeof value !== 'string' || !/<(strong|mark|a|br|p|div|span|em)\b/i.test(value)) return value;
    const body = new DOMParser().parseFromString(value, 'text/html').body;  // inert: nothing runs or loads
    body.querySelectorAll('br').forEach((br) => br.replaceWith('\n'));
    body.querySelectorAll('p, div, li, blockquote, h1, h2, h3, h4').forEach((el) => { el.before('\n'); el.append('\n'); });
    return body.textContent.replace(/\n{3,}/g, '\n\n').trim();
  };
  if (navigator.clipboard && navigator.clipboard.writeText) {
    const write = navigator.clipboard.writeText.bind(navigator.clipboard);
    navigator.clipboard.writeText = (value) => write(asText(value));
  }
}
"""
SCROLL_TO_CITED = "() => setTimeout(() => document.querySelector('#document mark#cited')?.scrollIntoView({block: 'center'}), 150)"


def build(pipeline: Pipeline, limit: RateLimit | None = None) -> gr.Blocks:
    """The page over `pipeline`; `limit` is the per-client question limit (shared with the API)."""
    settings = pipeline.settings
    limit = limit or RateLimit(settings.rate_limit)
    cache_age = settings.upload_cache_minutes * 60  # uploads are copied into the corpus; the cached copy is waste
    with gr.Blocks(title="docqa", analytics_enabled=False, delete_cache=(min(cache_age, 600), cache_age)) as demo:
        gr.Markdown("# docqa\nAsk about your documents. Every answer cites its sources; click a marker to check it.")
        status = gr.Markdown("Loading the index and models…", elem_id="status")
        key = browser_key(settings)
        conversation = gr.BrowserState(EMPTY_CONVERSATION, storage_key="docqa-conversation", secret=key)
        preferences = gr.BrowserState({}, storage_key="docqa-settings", secret=key)  # the chat's settings survive a reload
        searched = gr.BrowserState([], storage_key="docqa-search-in", secret=key)  # and so do the documents chosen
        with gr.Tab("Chat"):
            page = _chat_tab(settings)
        with gr.Tab("Index"):
            tab = _index_tab(settings)
        _wire_chat(pipeline, page, conversation, limit)
        listing = [tab.index_status, tab.documents, tab.details, tab.removable, page.search_in, tab.overview_of]
        tab.overview_of.change(functools.partial(show_overview, pipeline), tab.overview_of, tab.overview, api_name=False,
                               concurrency_id=DOCUMENT_QUEUE, concurrency_limit=DOCUMENT_CONCURRENCY)
        index_outputs = [tab.index_message, status, *listing]
        for button, handler, inputs, name in ((tab.rebuild, rebuild, None, "rebuild"),
                                              (tab.add, upload, tab.uploads, "upload"),
                                              (tab.remove, remove, [tab.removable, tab.delete_file], "remove")):
            event = button.click(functools.partial(handler, pipeline), inputs, index_outputs, api_name=name,
                                 concurrency_id=INDEX_QUEUE, show_progress_on=[tab.index_message])
            if button is tab.add:  # the picker empties, so the next Add does not send the same files again
                event.then(lambda: None, None, tab.uploads, api_name=False, queue=False)
        demo.load(restore, conversation, [page.chatbot, page.sources], api_name=False, queue=False)
        demo.load(functools.partial(examples_view, pipeline), None, page.examples, api_name=False, queue=False)
        chat_settings = [page.k, page.mode, page.show_details]
        demo.load(functools.partial(restore_settings, settings), preferences, chat_settings, api_name=False, queue=False)
        for control in chat_settings:
            control.change(lambda k, mode, details: {"k": k, "mode": mode, "details": details}, chat_settings,
                           preferences, api_name=False, queue=False)
        demo.load(functools.partial(ready, pipeline), None, status, api_name=False).then(
            functools.partial(index_view, pipeline), None, listing, api_name=False
        ).then(functools.partial(restore_search_in, pipeline), searched, page.search_in, api_name=False, queue=False)
        page.search_in.change(lambda chosen: chosen, page.search_in, searched, api_name=False, queue=False)
    return demo


def _chat_tab(settings: Settings) -> SimpleNamespace:
    with gr.Row():
        with gr.Column(scale=3):
            chatbot = gr.Chatbot(label="Answers", elem_id="chat", height=480, sanitize_html=True,
                                 feedback_options=FEEDBACK_OPTIONS, buttons=["copy", "copy_all"])  # no "share": it posts to Hugging Face
            with gr.Row(visible=False, elem_id="feedback-note-row") as note_row:  # shown once an answer is judged
                note = gr.Textbox(show_label=False, placeholder="Add a note to your feedback (optional): what was wrong, "
                                  "what the answer should be…", max_length=1000, scale=4, elem_id="feedback-note")
                send_note = gr.Button("Send note", size="sm", scale=1, elem_id="send-note")
            search_in = gr.Dropdown(label="Search in", info="the documents to search; none chosen: all of them",
                                    choices=[], multiselect=True, elem_id="search-in")
            question = gr.Textbox(label="Question", placeholder="Ask a question about the documents", elem_id="question")
            with gr.Row():
                ask = gr.Button("Ask", variant="primary", elem_id="ask")
                stop = gr.Button("Stop", variant="stop", elem_id="stop", visible=False)
                clear = gr.Button("Clear the conversation", elem_id="clear")
                export = gr.Button("Export the conversation", elem_id="export")
            exported = gr.File(label="The conversation, as Markdown", visible=False, elem_id="exported")
            with gr.Row(elem_id="examples"):  # the corpus's example questions; a click asks one
                examples = [gr.Button("", size="sm", visible=False, elem_classes="example")
                            for _ in range(MAX_EXAMPLES)]
            with gr.Accordion("Settings", open=False, elem_id="chat-settings"):
                k = gr.Slider(1, 10, value=settings.k, step=1, label="Passages")
                offered = settings.generative_offered
                mode = gr.Radio(["evidence", "generative"], value=settings.answer_mode if offered else "evidence",
                                label="Answer mode", interactive=offered, elem_id="answer-mode")
                gr.Markdown(GENERATIVE_NOTE.format(model=settings.model) if offered else NO_GENERATIVE_NOTE,
                            elem_id="mode-note")
                show_details = gr.Checkbox(False, label="Show details (character offsets, retrieval scores)")
        with gr.Column(scale=2):
            gr.Markdown("### Sources")
            sources = gr.HTML(NO_SOURCES, elem_id="sources")
            document = gr.HTML("", elem_id="document")
            document_request = gr.Textbox(visible=False)
            open_document = gr.Button("open", elem_id="open-doc", elem_classes="hidden-trigger")
    return SimpleNamespace(chatbot=chatbot, note_row=note_row, note=note, send_note=send_note, search_in=search_in, question=question, examples=examples, ask=ask, stop=stop, clear=clear,
                           export=export, exported=exported, k=k, mode=mode,
                           show_details=show_details, sources=sources, document=document,
                           document_request=document_request, open_document=open_document)


def _index_tab(settings: Settings) -> SimpleNamespace:
    index_status = gr.Markdown(elem_id="index-status")
    documents = gr.Dataframe(headers=["title", "file", "passages", "notes"], interactive=False, wrap=True, elem_id="documents")
    with gr.Accordion("Details", open=False):
        details = gr.Dataframe(headers=["file", "sha256", "characters", "indexed at (UTC)"], interactive=False, wrap=True)
    uploads = gr.File(
        label=f"Add documents ({', '.join(SUFFIXES)}; up to {settings.max_file_mb} MB each)",
        file_count="multiple",
        file_types=list(SUFFIXES),
        elem_id="uploads",
    )
    add = gr.Button("Add to the corpus and index", elem_id="add")
    index_message = gr.Markdown(elem_id="index-message")  # next to the controls it answers
    with gr.Row():
        removable = gr.Dropdown(label="Remove a document from the index", choices=[], elem_id="removable",
                                allow_custom_value=True)
        delete_file = gr.Checkbox(False, label="also delete its file from the corpus folder")
        remove_button = gr.Button("Remove", elem_id="remove")
    rebuild_button = gr.Button("Rebuild the index", elem_id="rebuild")
    overview_of = gr.Dropdown(label="Overview of a document", choices=[], elem_id="overview-of")
    overview = gr.HTML("", elem_id="overview")
    return SimpleNamespace(index_status=index_status, documents=documents, details=details, uploads=uploads, add=add,
                           removable=removable, delete_file=delete_file, remove=remove_button,
                           rebuild=rebuild_button, index_message=index_message, overview_of=overview_of, overview=overview)


def _wire_chat(pipeline: Pipeline, page: SimpleNamespace, conversation: gr.BrowserState, limit: RateLimit) -> None:
    """Ask/Enter answer (Stop cancels), Clear forgets, "open the document", and the `ask` API."""
    answering = (gr.update(visible=False), gr.update(visible=True))
    idle = (gr.update(visible=True), gr.update(visible=False))
    inputs = [page.question, conversation, page.k, page.mode, page.show_details, page.search_in]

    def respond(message: str, conversation: dict, k: int, mode: str, show_details: bool, documents: list | None,
                request: gr.Request):
        yield from chat(pipeline, message, conversation, k, mode, show_details, limit.wait(client_of(request)),
                        documents)

    def clicked(example: gr.Button):  # noqa: ANN202 - a trigger: fill the box with the example, then ask as Ask does
        return lambda *args, **kwargs: example.click(lambda text: text, example, page.question, api_name=False,
                                                     queue=False).then(*args, **kwargs)

    asked = gr.State("")  # the question being answered, for Stop: the box is emptied once it is sent
    events = []
    triggers = [(page.ask.click, "chat"), (page.question.submit, False), *((clicked(e), False) for e in page.examples)]
    for trigger, name in triggers:
        sent = trigger(lambda question: (question, *answering), page.question, [asked, page.ask, page.stop],
                       api_name=False, queue=False)
        event = sent.then(respond, inputs, [page.chatbot, page.sources, conversation], api_name=name,
                          concurrency_id=MODEL_QUEUE, concurrency_limit=MODEL_CONCURRENCY)
        # Emptied after `respond` took the question, not when the answer ends: what is typed meanwhile stays.
        sent.then(lambda: "", None, page.question, api_name=False, queue=False)
        events.append(event)
        event.then(lambda: idle, None, [page.ask, page.stop], api_name=False, queue=False)
    page.stop.click(stopped, [asked, conversation], [page.chatbot, conversation, page.ask, page.stop],
                    cancels=events, api_name=False, queue=False)
    forget = (lambda: ([], NO_SOURCES, "", EMPTY_CONVERSATION), None,
              [page.chatbot, page.sources, page.document, conversation])
    page.clear.click(*forget, api_name=False, queue=False)
    page.chatbot.clear(*forget, api_name=False, queue=False)  # the chat's own bin icon forgets it too
    page.export.click(lambda conversation: gr.update(value=export_conversation(conversation), visible=True),
                      conversation, page.exported, api_name=False)

    _wire_feedback(pipeline, page, conversation)
    page.open_document.click(functools.partial(show_document, pipeline), page.document_request, page.document,
                             js="(x) => window.docqaDocument || x", api_name=False,
                             concurrency_id=DOCUMENT_QUEUE, concurrency_limit=DOCUMENT_CONCURRENCY).then(
        None, None, None, js=SCROLL_TO_CITED)

    _wire_api(pipeline, limit)


def _wire_feedback(pipeline: Pipeline, page: SimpleNamespace, conversation: gr.BrowserState) -> None:
    """👍/👎 (and a reason) on an answer, then an optional note on the last one judged; at most
    `FEEDBACK_PER_MINUTE` of them a minute per client address."""
    limit, repeats = RateLimit(FEEDBACK_PER_MINUTE), Repeats(2.0)

    def on_like(conversation: dict, data: gr.LikeData, request: gr.Request) -> tuple:
        if not repeats.first(f"{client_of(request)} {data.index} {data.liked}"):
            return gr.skip(), gr.skip()  # one click, sent twice: the first is kept (and the state it set)
        conversation, said = judged(pipeline, conversation, data, limit.wait(client_of(request)))
        if said:
            gr.Info(said)
        return conversation, gr.update(visible=bool(conversation["feedback"]))

    def on_note(conversation: dict, text: str, request: gr.Request) -> str:
        said = noted(pipeline, bounded_conversation(conversation), text, limit.wait(client_of(request)))
        gr.Info(said)
        return "" if said.startswith("Note saved") else text

    page.chatbot.like(on_like, conversation, [conversation, page.note_row], api_name=False)  # queued: gr.Info needs it
    for trigger in (page.send_note.click, page.note.submit):
        trigger(on_note, [conversation, page.note], page.note, api_name=False)


def _wire_api(pipeline: Pipeline, limit: RateLimit) -> None:
    """The `ask` and `ask_in` endpoints (`gradio_client`); behind the page's login when there is one."""
    def ask_endpoint(question: str, request: gr.Request) -> dict:
        """Answer a question; returns the same object as `qa ask --json`."""
        return api_ask(pipeline, question, limit.wait(client_of(request)))

    def ask_in_endpoint(question: str, documents: list[str], request: gr.Request) -> dict:
        """Answer a question from some documents only (paths, file names or titles); returns the
        same object as `qa ask --json`."""
        return api_ask(pipeline, question, limit.wait(client_of(request)), documents)

    gr.api(ask_endpoint, api_name="ask", concurrency_id=MODEL_QUEUE, concurrency_limit=MODEL_CONCURRENCY)
    gr.api(ask_in_endpoint, api_name="ask_in", concurrency_id=MODEL_QUEUE, concurrency_limit=MODEL_CONCURRENCY)


def serve(settings: Settings, host: str = "127.0.0.1", port: int = 7860) -> int:
    from starlette.middleware import Middleware

    # uvicorn rewrites the client address from X-Forwarded-For only for these peers (default: none).
    os.environ["FORWARDED_ALLOW_IPS"] = settings.trusted_proxies
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # launch() reads it: no telemetry
    guard = Middleware(RequestGuard, rule=HostRule(settings.allowed_hosts, host),
                       max_body=settings.max_request_mb * 2**20, max_upload_body=5 * settings.max_file_mb * 2**20)
    pipeline = Pipeline(settings)
    limit = RateLimit(settings.rate_limit)
    auth = LoginGuard(settings.auth) if settings.auth else None
    # One key guard for every door that takes a bearer key: the login password unless QA_API_KEY is set.
    key = settings.api_key or settings.auth.partition(":")[2]
    keys = KeyGuard(key, login=None if settings.api_key else auth) if key else None
    login = auth or (KeyLogin(keys) if keys else None)  # the page and its endpoints: a login, or the key
    apps = {"/v1/": AnswersAPI(pipeline, limit.wait, keys)}
    lifespan = None
    if settings.mcp:
        from qa.app.mcp_server import build_mcp, http_app

        mcp_app = http_app(build_mcp(pipeline))
        apps["/mcp"] = RequireKey(LimitToolCalls(mcp_app, limit.wait), keys)
        lifespan = mcp_app.router.lifespan_context  # runs the MCP session manager with the server
    mounted = Middleware(Mounted, apps=apps)
    # The page is served at once (it says "Loading the index and models…"); the models load beside it.
    print(f"Loading the index and models; the page is at http://{host}:{port}/ meanwhile.", file=sys.stderr)
    threading.Thread(target=lambda: print(plain_text(ready(pipeline)), file=sys.stderr), daemon=True).start()
    demo = build(pipeline, limit)
    demo.queue(max_size=QUEUE_SIZE, default_concurrency_limit=1)
    demo.launch(
        auth=login,
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
        app_kwargs={"middleware": [guard, mounted], **({"lifespan": lifespan} if lifespan else {})},
    )
    return 0


