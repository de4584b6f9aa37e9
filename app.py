"""docqa web app (Gradio): a chat whose answers cite their sources; thin over `qa`.

    python app.py [--host 127.0.0.1] [--port 7860] [--corpus DIR] [--index DIR]

The page: a chat that streams answers, citation markers that link to a Sources panel (the cited
span highlighted, its offsets; passages retrieved but not cited collapsed below), settings,
example questions, and an Index tab (documents, index state, rebuild, uploads). A named API endpoint
`ask` returns the same object as `qa ask --json`. All rendering of document and model text goes
through `qa.render`, which escapes it.
"""

from __future__ import annotations

import argparse
import functools
import logging
import os
import sys
from pathlib import Path

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import gradio as gr  # noqa: E402

from qa.config import Settings  # noqa: E402
from qa.corpus import UnreadableFile, add_file  # noqa: E402
from qa.errors import QAError  # noqa: E402
from qa.index import build_index, index_state  # noqa: E402
from qa.pipeline import Pipeline  # noqa: E402
from qa.render import answer_json, escape_text, reply_html, sources_html  # noqa: E402
from qa.types import Answer  # noqa: E402

log = logging.getLogger("app")

MODEL_QUEUE = "model"  # chat, API and rebuild share one model: one at a time, in order
EXAMPLES = [
    "When did Japan and South Korea establish diplomatic relations?",
    "What are the Liancourt Rocks called in Korean?",
    "Why did Japan restrict exports to South Korea in 2019?",
    "What is the population of Busan?",
]
CSS = """
#sources .source { border-left: 3px solid #bbb; padding: 0 .6em; margin: .6em 0; }
#sources .source:target, #sources .source.selected { border-left-color: #e8a100; background: #fff8e1; }
#sources mark { background: #ffe082; }
#sources .where { font-size: .9em; } #sources .offsets, #sources .scores { color: #666; font-size: .85em; }
"""
# Clicking a marker selects (and scrolls to) its passage in the Sources panel.
JS = """
() => {
  document.addEventListener('click', (event) => {
    const link = event.target.closest('a.cite');
    if (!link) return;
    event.preventDefault();
    const target = document.getElementById((link.getAttribute('href') || '').slice(1));
    if (!target) return;
    document.querySelectorAll('#sources .source.selected').forEach((el) => el.classList.remove('selected'));
    target.classList.add('selected');
    target.scrollIntoView({behavior: 'smooth', block: 'center'});
  }, true);
}
"""


def chat(pipeline: Pipeline, message: str, history: list, asked: list, k: int, mode: str, show_scores: bool):
    """Streams (chat history, sources panel, asked questions) while the answer is produced."""
    history = [*history, {"role": "user", "content": escape_text(message or "")}]
    yield history, "", asked
    try:
        text = ""
        for item in pipeline.ask_stream(message, int(k), mode, history=asked):
            if isinstance(item, Answer):
                break
            text += item
            yield [*history, {"role": "assistant", "content": escape_text(text)}], "", asked
    except QAError as error:
        yield [*history, {"role": "assistant", "content": escape_text(str(error))}], "", asked
        return
    except Exception:  # never a traceback in the page; the server log has it
        log.exception("answering failed")
        yield [*history, {"role": "assistant", "content": "Something went wrong while answering; the server log has the details."}], "", asked
        return
    reply = reply_html(item)
    panel = sources_html(item, pipeline.index.title, show_scores)
    yield [*history, {"role": "assistant", "content": reply}], panel, [*asked, item.query]


def api_ask(pipeline: Pipeline, question: str) -> dict:
    """The `ask` endpoint: the same object as `qa ask --json`."""
    try:
        answer = pipeline.ask(question)
    except QAError as error:
        raise gr.Error(str(error)) from None
    return answer_json(answer, pipeline.index.title)


def index_view(pipeline: Pipeline) -> tuple[str, list[list]]:
    state, message = index_state(pipeline.settings, pipeline.settings.embed_model)
    if state != "fresh":
        return f"**Index {state}.** {escape_text(message)}", []
    index = pipeline.index
    built = index.manifest["built_at"]
    rows = [[d.title, d.path, d.chunks, d.sha256[:16] + "…", built] for d in index.documents.values()]
    return f"**Index fresh.** {len(index.chunks)} passages from {len(rows)} documents, built {built}.", rows


def rebuild(pipeline: Pipeline, progress=gr.Progress(track_tqdm=True)) -> tuple[str, list[list]]:
    progress(0, desc="Indexing…")
    try:
        summary = build_index(pipeline.settings, pipeline.embedder, progress=True)
    except QAError as error:
        return f"**Rebuild failed.** {escape_text(str(error))}", []
    pipeline.reload()
    status, rows = index_view(pipeline)
    return f"{status} ({escape_text(summary.line())}; {escape_text(summary.changes())})", rows


def upload(pipeline: Pipeline, files: list | None, progress=gr.Progress(track_tqdm=True)) -> tuple[str, list[list]]:
    """Save uploaded files into the corpus under safe names, then index them (incrementally)."""
    if not files:
        return "Choose one or more .txt, .md, .html or .pdf files first.", index_view(pipeline)[1]
    saved, refused = [], []
    for file in files:
        path = Path(file)
        try:
            saved.append(add_file(pipeline.settings.corpus_dir, path.name, path).name)
        except (UnreadableFile, OSError) as error:
            refused.append(f"{path.name}: {error}")
    message = f"Added {', '.join(saved)}." if saved else "Nothing was added."
    if refused:
        message += " Refused: " + "; ".join(refused) + "."
    if saved:
        status, rows = rebuild(pipeline, progress)
        return f"{escape_text(message)} {status}", rows
    return escape_text(message), index_view(pipeline)[1]


def ready(pipeline: Pipeline) -> str:
    try:
        pipeline.warm_up(generator=False)
    except QAError as error:
        return f"**Not ready:** {escape_text(str(error))}"
    documents = len(pipeline.index.documents)
    status = f"Ready: {len(pipeline.index.chunks)} passages from {documents} document{'s' if documents != 1 else ''}."
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
        asked = gr.State([])
        with gr.Tab("Chat"):
            with gr.Row():
                with gr.Column(scale=3):
                    chatbot = gr.Chatbot(label="Answers", elem_id="chat", height=480, sanitize_html=True)
                    question = gr.Textbox(
                        label="Question", placeholder="Ask a question about the documents", elem_id="question"
                    )
                    with gr.Row():
                        ask = gr.Button("Ask", variant="primary", elem_id="ask")
                        clear = gr.Button("Clear", elem_id="clear")
                    gr.Examples(EXAMPLES, inputs=question)
                    with gr.Accordion("Settings", open=False):
                        k = gr.Slider(1, 10, value=settings.k, step=1, label="Passages")
                        mode = gr.Radio(["evidence", "generative"], value=settings.answer_mode, label="Answer mode")
                        show_scores = gr.Checkbox(False, label="Show retrieval scores")
                with gr.Column(scale=2):
                    gr.Markdown("### Sources")
                    sources = gr.HTML("Sources of the answer appear here.", elem_id="sources")
        with gr.Tab("Index"):
            index_status = gr.Markdown()
            documents = gr.Dataframe(
                headers=["title", "file", "chunks", "sha256", "indexed at"], interactive=False, wrap=True
            )
            rebuild_button = gr.Button("Rebuild index")
            uploads = gr.File(
                label="Add documents (.txt, .md, .html, .pdf; up to 20 MB each)",
                file_count="multiple",
                file_types=[".txt", ".md", ".html", ".htm", ".pdf"],
                elem_id="uploads",
            )
            add_button = gr.Button("Add to the corpus and index", elem_id="add")

        inputs = [question, chatbot, asked, k, mode, show_scores]
        outputs = [chatbot, sources, asked]
        respond = functools.partial(chat, pipeline)
        ask.click(respond, inputs, outputs, api_name="chat", concurrency_id=MODEL_QUEUE).then(
            lambda: "", None, question, api_name=False, queue=False
        )
        question.submit(respond, inputs, outputs, api_name=False, concurrency_id=MODEL_QUEUE).then(
            lambda: "", None, question, api_name=False, queue=False
        )
        clear.click(lambda: ([], "Sources of the answer appear here.", []), None, outputs, api_name=False, queue=False)
        rebuild_button.click(
            functools.partial(rebuild, pipeline), None, [index_status, documents], api_name="rebuild",
            concurrency_id=MODEL_QUEUE,
        )
        def ask_endpoint(question: str) -> dict:
            """Answer a question; returns the same object as `qa ask --json`."""
            return api_ask(pipeline, question)

        gr.api(ask_endpoint, api_name="ask", concurrency_id=MODEL_QUEUE)
        add_button.click(
            functools.partial(upload, pipeline), uploads, [index_status, documents], api_name="upload",
            concurrency_id=MODEL_QUEUE,
        )
        demo.load(functools.partial(ready, pipeline), None, status, api_name=False).then(
            functools.partial(index_view, pipeline), None, [index_status, documents], api_name=False
        )
    return demo


def serve(settings: Settings, host: str = "127.0.0.1", port: int = 7860) -> int:
    pipeline = Pipeline(settings)
    print(ready(pipeline).replace("**", ""), file=sys.stderr)
    demo = build(pipeline)
    demo.queue(max_size=16, default_concurrency_limit=1)
    demo.launch(
        auth=_auth(settings.auth),
        server_name=host,
        server_port=port,
        share=False,
        max_file_size="20mb",
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


def _auth(spec: str) -> tuple[str, str] | None:
    """("user", "password") from "user:password"; None when no login is asked for."""
    if not spec:
        return None
    user, _, password = spec.partition(":")
    return user, password


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
