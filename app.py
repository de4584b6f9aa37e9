"""docqa web app (Gradio): thin over `qa`; it renders what the pipeline returns.

This first version searches: a question shows the ranked passages with their document, section
and character offsets. Cited answers come with the "Cited answers" and "Gradio chat app" issues.

    python app.py [--host 127.0.0.1] [--port 7860] [--corpus DIR] [--index DIR]
"""

from __future__ import annotations

import argparse
import html
import logging
import os
import sys

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import gradio as gr  # noqa: E402

from qa.config import Settings  # noqa: E402
from qa.errors import QAError  # noqa: E402
from qa.pipeline import Pipeline  # noqa: E402

log = logging.getLogger("app")


def render_passages(pipeline: Pipeline, question: str) -> str:
    """Markdown for the passages of `question`, or the error message; document text is escaped."""
    try:
        cleaned, passages = pipeline.search(question)
    except QAError as error:
        return f"**{html.escape(str(error))}**"
    except Exception:  # never a traceback in the page; the log has it
        log.exception("search failed")
        return "**Something went wrong while searching. The server log has the details.**"
    if not passages:
        return "No passage matches this question."
    parts = []
    for p in passages:
        path = [pipeline.index.title(p.chunk), *p.chunk.section.split(" > ")]
        where = " › ".join(html.escape(part) for part in path if part)
        text = html.escape(p.chunk.text).replace("\n", "<br>")
        parts.append(
            f"**[{p.rank}] {where}** · characters {p.chunk.start}–{p.chunk.end} · score {p.score:.4f}\n\n"
            f"<blockquote>{text}</blockquote>"
        )
    return "\n\n".join(parts)


def build(pipeline: Pipeline) -> gr.Blocks:
    with gr.Blocks(title="docqa") as demo:
        gr.Markdown("# docqa\nSearch your documents. Every passage shows where it comes from.")
        question = gr.Textbox(label="Question", placeholder="What are the Liancourt Rocks called in Korean?", max_length=2000)
        ask = gr.Button("Search", variant="primary")
        results = gr.Markdown("Loading the index and models…" if pipeline._retriever is None else "", sanitize_html=True)
        ask.click(lambda q: render_passages(pipeline, q), question, results, api_name="search")
        question.submit(lambda q: render_passages(pipeline, q), question, results, api_name=False)
        demo.load(lambda: _ready_message(pipeline), None, results, api_name=False)
    return demo


def _ready_message(pipeline: Pipeline) -> str:
    try:
        pipeline.warm_up()
    except QAError as error:
        return f"**{html.escape(str(error))}**"
    return f"Ready: {len(pipeline.index.chunks)} passages from {len(pipeline.index.documents)} documents."


def serve(settings: Settings, host: str = "127.0.0.1", port: int = 7860) -> int:
    pipeline = Pipeline(settings)
    try:
        pipeline.warm_up()
    except QAError as error:
        print(f"warning: {error}", file=sys.stderr)
    demo = build(pipeline)
    demo.queue(max_size=16, default_concurrency_limit=1)
    demo.launch(
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
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="docqa web app")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=7860)
    parser.add_argument("--corpus", metavar="DIR")
    parser.add_argument("--index", metavar="DIR")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s")
    return serve(Settings.from_env(corpus_dir=args.corpus, index_dir=args.index), args.host, args.port)


if __name__ == "__main__":
    sys.exit(main())
