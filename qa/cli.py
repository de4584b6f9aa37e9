"""The `qa` console script: thin; it parses flags, calls the library and prints.

    qa index                      build (or rebuild) the index of corpus/
    qa ask "QUESTION" [--json] [--doc NAME]     a cited answer, streamed, then its sources
    qa search "QUESTION" [--json] [--doc NAME]  ranked passages with section and offsets
    qa eval QUESTIONS.jsonl       score the pipeline on a question file
    qa serve [--mcp]              the web app (and the answers API at /v1, the MCP tools at /mcp)
    qa mcp                        the MCP tools over stdio
    qa feedback export --out F    the chat's 👍/👎 as a question file for `qa eval`
    qa models [install|remove N]  opt-in language models for generative mode

Exit codes: 0 success, 1 a problem the message explains (stale index, bad question, …),
2 bad usage. Logs and progress go to stderr, so `--json` output on stdout stays pipeable.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import logging
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from qa.app.render import answer_json, highlight, passage_json, proof_view
from qa.config import Settings
from qa.errors import QAError
from qa.text import terminal_json, terminal_text
from qa.types import TENTATIVE


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s: %(message)s")
    try:
        settings = Settings.from_env(
            corpus_dir=getattr(args, "corpus", None),
            index_dir=getattr(args, "index", None),
            store=getattr(args, "store", None),
            model=getattr(args, "model", None),
            answer_mode=getattr(args, "mode", None),
        )
        return args.run(args, settings)
    except QAError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `qa … | head`: the reader left; say nothing more
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of at least 1, got {text!r}")
    return value


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--corpus", metavar="DIR", help="documents folder (default: corpus/, or $QA_CORPUS_DIR)")
    common.add_argument("--index", metavar="DIR", help="index folder (default: index/, or $QA_INDEX_DIR)")
    common.add_argument("--store", metavar="URI",
                        help="keep the index in Milvus: milvus-lite:PATH or milvus://HOST:PORT (default: the index folder, or $QA_STORE)")
    common.add_argument("-v", "--verbose", action="store_true", help="log what happens to stderr")

    parser = argparse.ArgumentParser(prog="qa", description="Ask questions about your documents; answers cite their sources.")
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    index = commands.add_parser("index", parents=[common], help="build the index of the corpus folder")
    index.add_argument("--if-stale", action="store_true", help="only build when the index is missing, stale or corrupt")
    index.set_defaults(run=cmd_index)
    _question_commands(commands, common)
    _service_commands(commands, common)
    return parser


def _question_commands(commands: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    """ask, search, eval."""
    ask = commands.add_parser("ask", parents=[common], help="answer a question with citations")
    ask.add_argument("question")
    ask.add_argument("-k", "--k", type=positive_int, default=None, metavar="N", help="passages shown to the answerer (default 5)")
    ask.add_argument("--mode", choices=["evidence", "generative"], help="answer mode (default: evidence, or $QA_ANSWER_MODE)")
    ask.add_argument("--model", metavar="NAME", help=MODEL_HELP)
    ask.add_argument("--json", action="store_true", help="print one JSON object on stdout, nothing else")
    ask.add_argument("--doc", action="append", default=[], metavar="NAME",
                        help="search only this document (path, file name or title); repeat for several")
    ask.set_defaults(run=cmd_ask)

    search = commands.add_parser("search", parents=[common], help="show the passages retrieved for a question")
    search.add_argument("question")
    search.add_argument("-k", type=positive_int, default=None, metavar="N", help="number of passages (default 5)")
    search.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    search.add_argument("--doc", action="append", default=[], metavar="NAME",
                        help="search only this document (path, file name or title); repeat for several")
    search.set_defaults(run=cmd_search)

    evaluate = commands.add_parser("eval", parents=[common], help="score the pipeline on a JSON Lines question file")
    evaluate.add_argument("questions", type=Path,
                          help="JSON Lines (id, question, answers, evidence, type), or a SQuAD-format .json file: "
                               "its articles become the corpus (indexed under --out, or a temporary folder); JSON "
                               "Lines whose questions name a `table` (WikiTableQuestions, TAT-QA): those tables do; "
                               "HotpotQA lines: their paragraphs, each question within its own")
    evaluate.add_argument("--out", type=Path, metavar="DIR", help="write results.jsonl, summary.json/.csv, report.md here")
    evaluate.add_argument("-k", "--k", type=positive_int, default=None, metavar="N", help="passages per question (default 5)")
    evaluate.add_argument("--mode", choices=["evidence", "generative"], help="answer mode")
    evaluate.add_argument("--model", metavar="NAME", help=MODEL_HELP)
    evaluate.add_argument("--limit", type=positive_int, metavar="N", help="only the first N questions")
    evaluate.add_argument("--retrieval-only", action="store_true", help="score retrieval, generate nothing")
    evaluate.set_defaults(run=cmd_eval)


def _service_commands(commands: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    """serve, feedback, mcp, models."""
    serve = commands.add_parser("serve", parents=[common], help="start the web app")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=7860)
    serve.add_argument("--auth", metavar="USER:PASSWORD", help="require this login (or set QA_AUTH)")
    serve.add_argument("--mcp", action="store_true", help="also serve the MCP tools at /mcp (or set QA_MCP=1)")
    serve.set_defaults(run=cmd_serve)
    feedback = commands.add_parser("feedback", parents=[common], help="export the 👍/👎 given in the chat")
    feedback.add_argument("action", choices=["export"])
    feedback.add_argument("--out", type=Path, required=True, metavar="FILE.jsonl", help="a question file for `qa eval`")
    feedback.set_defaults(run=cmd_feedback)
    mcp = commands.add_parser("mcp", parents=[common], help="serve the MCP tools (search_documents, ask) over stdio")
    mcp.set_defaults(run=cmd_mcp)

    models = commands.add_parser("models", help="list, install or remove the opt-in language models")
    models.add_argument("action", nargs="?", choices=["list", "install", "remove"], default="list")
    models.add_argument("name", nargs="?", help="the model, e.g. qwen-0.5b")
    models.add_argument("-v", "--verbose", action="store_true", help=argparse.SUPPRESS)
    models.set_defaults(run=cmd_models)


MODEL_HELP = ("language model for generative mode: smollm2 (bundled), qwen-0.5b or qwen-1.5b once installed "
              "(`qa models install`), a model folder or a .gguf file ($QA_MODEL)")


def cmd_models(args: argparse.Namespace, settings: Settings) -> int:
    from qa.models.catalog import catalog, install, remove

    if args.action == "list":
        for model in catalog().values():
            path = model.path(settings.models_dir)
            state = f"installed: {path}" if path.is_file() else f"not installed (qa models install {model.name})"
            print(f"{model.name:<10} {model.about}\n{'':<10} {state}\n{'':<10} provenance: {model.provenance}")
        return 0
    if not args.name:
        raise QAError(f"name the model to {args.action}: one of {', '.join(catalog())}")
    if args.action == "install":
        install(args.name, settings.models_dir, report=lambda line: print(line, file=sys.stderr))
    else:
        print(f"removed {remove(args.name, settings.models_dir)}", file=sys.stderr)
    return 0


def cmd_index(args: argparse.Namespace, settings: Settings) -> int:
    from qa.index.build import build_index
    from qa.index.store import index_state
    from qa.models.embedders import get_embedder

    if args.if_stale:
        state, message = index_state(settings, settings.embed_model)
        if state == "fresh":
            print(f"index is up to date ({message})", file=sys.stderr)
            return 0
        print(f"{message}; rebuilding", file=sys.stderr)
    embedder = get_embedder(settings.embed_model, settings.threads, settings.embed_url, settings.cache_dir,
                            settings.encoder_precision, alone=True)
    summary = build_index(settings, embedder, progress=sys.stderr.isatty())
    for rel in summary.skipped:
        print(f"skipped {rel} (unreadable or empty)", file=sys.stderr)
    print(summary.line())
    print(summary.changes())
    return 0


def cmd_search(args: argparse.Namespace, settings: Settings) -> int:
    from qa.pipeline import Pipeline

    began = time.perf_counter()
    pipeline = Pipeline(settings)
    question, passages = pipeline.search(args.question, args.k, args.doc)
    if args.json:
        out = {
            "query": question,
            "passages": [passage_json(p, pipeline.index) for p in passages],
            "timings": {"total_ms": round((time.perf_counter() - began) * 1000, 1)},
        }
        print(terminal_json(json.dumps(out, ensure_ascii=False)))
        return 0
    for p in passages:  # document text on a terminal: its control characters shown, not acted on
        where = terminal_text(pipeline.index.where(p.chunk))
        print(f"[{p.rank}] {where}  (chars {p.chunk.start}-{p.chunk.end}, score {p.score:.4f})")
        print(_indent(terminal_text(p.chunk.text)))
        print()
    if not passages:
        print("no passages found", file=sys.stderr)
    return 0


def cmd_ask(args: argparse.Namespace, settings: Settings) -> int:
    from qa.pipeline import Pipeline

    pipeline = Pipeline(settings)
    streamed = False
    stream = pipeline.ask_stream(args.question, args.k, documents=args.doc)
    for piece in stream:
        if not args.json and answer_mode_streams(settings):
            # The draft goes to stderr as it is written; stdout gets only the verified answer.
            print(("draft (being checked against the sources): " if not streamed else "") + terminal_text(piece),
                  end="", flush=True, file=sys.stderr)
            streamed = True
    answer = stream.answer()
    if streamed:
        print(file=sys.stderr)
    if args.json:
        print(terminal_json(json.dumps(answer_json(answer, pipeline.index), ensure_ascii=False)))
        return 0
    shown = proof_view(answer)
    if shown is None:
        print(terminal_text(f"{answer.headline}\n{_indent(answer.text)}" if answer.headline else answer.text))
    else:
        headline, short = shown
        quote = f"“{highlight(short, sys.stdout.isatty(), terminal_text)}” [{short.marker}]"
        print(quote if headline is None else f"{terminal_text(headline)}\n{_indent(quote)}")
    if answer.citations:
        print("\nSources:")
    for c in answer.citations:
        where = terminal_text(pipeline.index.where(answer.passages[c.marker - 1].chunk, c.start))
        print(f"[{c.marker}] {where}  (chars {c.start}-{c.end})")
        if shown is None and answer.outcome != TENTATIVE:  # else the quote is printed above
            print(_indent(terminal_text(f"“{c.quote}”")))
    return 0


def answer_mode_streams(settings: Settings) -> bool:
    """Generated text is printed as it comes; an extractive answer is printed whole, formatted."""
    return settings.answer_mode == "generative"


def cmd_eval(args: argparse.Namespace, settings: Settings) -> int:
    from qa.evaluation.evaluate import load_questions
    from qa.evaluation.hotpot import is_hotpot_file
    from qa.evaluation.tables import is_table_file

    if not args.questions.is_file():
        raise QAError(f"question file not found: {args.questions}")
    with contextlib.ExitStack() as stack:
        if args.questions.suffix.lower() == ".json":
            work = args.out or Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="qa-squad-")))
            settings, questions, problems = _squad_setup(args.questions, work, settings)
        elif is_table_file(args.questions) or is_hotpot_file(args.questions):
            work = args.out or Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="qa-eval-")))
            settings, questions, problems = _corpus_setup(args.questions, work, settings)
        else:
            questions, problems = load_questions(args.questions)
        for problem in problems:
            print(problem, file=sys.stderr)
        return _run_eval(args, settings, questions, len(problems))


def _corpus_setup(path: Path, work: Path, settings: Settings) -> tuple[Settings, list, list[str]]:
    """Settings whose corpus is what the question file carries (the tables its questions name, or
    HotpotQA's paragraphs), indexed in `work`; its questions; the problems of the lines skipped."""
    from qa.evaluation.hotpot import hotpot_corpus, is_hotpot_file
    from qa.evaluation.tables import table_corpus

    hotpot = is_hotpot_file(path)
    settings = dataclasses.replace(settings, corpus_dir=work / "eval_corpus", index_dir=work / "eval_index",
                                   store_collection=f"{settings.store_collection}_eval")  # never the product's index
    for old in [*settings.corpus_dir.glob("*.csv"), *settings.corpus_dir.glob("*.txt"), *settings.corpus_dir.glob("*.md")]:
        old.unlink()  # documents of an earlier run
    questions, problems = (hotpot_corpus if hotpot else table_corpus)(path, settings.corpus_dir)
    summary = _build_eval_index(settings)
    documents = len(list(settings.corpus_dir.glob("*.md" if hotpot else "*.csv")))
    print(f"corpus: {documents} {'paragraphs' if hotpot else 'tables'} from {path}; {summary.line()}", file=sys.stderr)
    return settings, questions, problems


def _build_eval_index(settings: Settings):  # noqa: ANN202 - qa.index.build's summary
    from qa.index.build import build_index
    from qa.models.embedders import get_embedder

    embedder = get_embedder(settings.embed_model, settings.threads, settings.embed_url, settings.cache_dir,
                            settings.encoder_precision, alone=True)
    return build_index(settings, embedder, progress=sys.stderr.isatty())


def _squad_setup(path: Path, work: Path, settings: Settings) -> tuple[Settings, list, list[str]]:
    """Settings whose corpus is the SQuAD file's articles (indexed in `work`), its questions, and
    the problems of the items skipped."""
    from qa.evaluation.evaluate import squad_corpus
    from qa.evaluation.squad import load_squad

    problems: list[str] = []
    try:
        articles = load_squad(path, problems)
    except ValueError as error:
        raise QAError(f"{path}: not a SQuAD-format file ({error}); give a JSON Lines file or SQuAD JSON") from error
    settings = dataclasses.replace(settings, corpus_dir=work / "squad_corpus", index_dir=work / "squad_index",
                                   store_collection=f"{settings.store_collection}_squad")  # never the product's index
    for old in settings.corpus_dir.glob("[0-9][0-9][0-9]_*.txt"):  # articles of an earlier run
        old.unlink()
    questions = squad_corpus(articles, settings.corpus_dir)
    summary = _build_eval_index(settings)
    print(f"corpus: {len(articles)} articles from {path}; {summary.line()}", file=sys.stderr)
    return settings, questions, problems


def _run_eval(args: argparse.Namespace, settings: Settings, questions: list, skipped: int = 0) -> int:
    from qa.evaluation.evaluate import evaluate, summarize
    from qa.evaluation.report import table, write_outputs
    from qa.pipeline import Pipeline

    questions = questions[: args.limit] if args.limit else questions
    if not questions:
        raise QAError(f"no usable questions in {args.questions}")
    pipeline = Pipeline(settings)
    pipeline.warm_up()
    k = args.k or settings.k
    began = time.perf_counter()
    records = evaluate(pipeline, questions, k, settings.answer_mode, args.retrieval_only, progress=sys.stderr.isatty())
    summary = summarize(records, k, skipped)
    what = "retrieval only" if args.retrieval_only else f"mode {settings.answer_mode}"
    settings_line = (
        f"{len(questions)} questions from {args.questions}, {what}, k={k}, embedder {settings.embed_model}, "
        f"chunks {settings.chunk_tokens}/{settings.chunk_overlap_tokens} tokens, {time.perf_counter() - began:.0f} s"
    )
    print(settings_line)
    print(terminal_text(table(summary)))
    if args.out:
        write_outputs(records, summary, args.out, settings_line)
        print(f"wrote {args.out}/results.jsonl, summary.json, summary.csv, report.md")
    return 0


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    from qa.app.web import serve

    if args.auth:
        settings = dataclasses.replace(settings, auth=args.auth)
    if args.mcp:
        settings = dataclasses.replace(settings, mcp=True)
    return serve(settings, host=args.host, port=args.port)


def cmd_feedback(args: argparse.Namespace, settings: Settings) -> int:
    from qa.app import feedback

    source = settings.feedback_path
    if not source.is_file():
        raise QAError(f"no feedback yet: {source} does not exist (👍/👎 an answer in the chat first)")
    try:
        count = feedback.export(source, args.out)
    except OSError as error:
        raise QAError(f"could not write {args.out} ({error.strerror or error})") from None
    print(f"wrote {count} questions from {source} to {args.out} (👎 ones have no gold answer yet: fill in"
          f" \"answers\"); score them with: qa eval {args.out}")
    return 0


def cmd_mcp(args: argparse.Namespace, settings: Settings) -> int:
    from qa.app.mcp_server import serve_stdio
    from qa.pipeline import Pipeline

    return serve_stdio(Pipeline(settings))


def _indent(text: str, width: int = 600) -> str:
    shown = text if len(text) <= width else text[:width].rstrip() + " …"
    return "\n".join("    " + line for line in shown.splitlines())

