"""Serve local models through the OpenAI API (the subset docqa uses).

    python -m qa.app.model_server [--serve chat|embeddings|both] [--model smollm2] [--embed-model minilm]
                               [--host 127.0.0.1] [--port 8001]

`GET /v1/models`, `POST /v1/chat/completions` (streamed as server-sent events, or whole; greedy,
one generation at a time) and `POST /v1/embeddings` (unit vectors, as `qa index` makes them). It
lets one machine generate or embed for several docqa apps (`QA_GENERATOR_URL`, `QA_EMBED_URL`),
and it is how the tests exercise the HTTP clients against real models rather than canned replies.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import queue
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable

from qa.config import Settings
from qa.errors import QAError
from qa.models.embedders import Embedder, get_embedder
from qa.models.generate import Generator, get_generator

MAX_INPUTS = 2048  # texts per embeddings request
DISCONNECT_POLL_S = 0.25  # how often a whole (non-streamed) answer checks that its client is still there


def build_app(generator: Generator | None = None, embedder: Embedder | None = None):  # noqa: ANN201 - a Starlette app
    from starlette.applications import Starlette
    from starlette.concurrency import run_in_threadpool
    from starlette.requests import Request
    from starlette.responses import JSONResponse, StreamingResponse
    from starlette.routing import Route

    async def models(request: Request) -> JSONResponse:
        served = [m for m in (generator, embedder) if m is not None]
        return JSONResponse({"object": "list", "data": [{"id": m.name, "object": "model"} for m in served]})

    async def embeddings(request: Request) -> JSONResponse:
        try:
            body = await request.json()
            texts = [body["input"]] if isinstance(body["input"], str) else body["input"]
            if not (isinstance(texts, list) and all(isinstance(t, str) for t in texts) and 0 < len(texts) <= MAX_INPUTS):
                raise TypeError
        except (ValueError, KeyError, TypeError):
            return JSONResponse({"error": {"message": f"expected input: a text or a list of 1 to {MAX_INPUTS} texts"}},
                                status_code=400)
        vectors = await run_in_threadpool(embedder.embed, texts)
        return JSONResponse({"object": "list", "model": embedder.name, "data": [
            {"object": "embedding", "index": i, "embedding": v.tolist()} for i, v in enumerate(vectors)],
            "usage": {"prompt_tokens": 0, "total_tokens": 0}})

    async def chat(request: Request):  # noqa: ANN202
        try:
            body = await request.json()
            messages = [{"role": str(m["role"]), "content": str(m["content"])} for m in body["messages"]]
            max_tokens = max(1, min(int(body.get("max_tokens") or 256), 2048))
        except (ValueError, KeyError, TypeError):
            return JSONResponse({"error": {"message": "expected messages and max_tokens"}}, status_code=400)
        created = int(time.time())

        def chunk(delta: dict, finish: str | None = None) -> str:
            payload = {"object": "chat.completion.chunk", "created": created, "model": generator.name,
                       "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
            return f"data: {json.dumps(payload)}\n\n"

        if body.get("stream"):
            events = answer_events(generator, messages, max_tokens, chunk)
            return StreamingResponse(events, media_type="text/event-stream")
        text = await whole_answer(request, generator, messages, max_tokens)
        return JSONResponse({"object": "chat.completion", "created": created, "model": generator.name,
                             "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                                          "finish_reason": "stop"}]})

    routes = [Route("/v1/models", models)]
    if generator is not None:
        routes.append(Route("/v1/chat/completions", chat, methods=["POST"]))
    if embedder is not None:
        routes.append(Route("/v1/embeddings", embeddings, methods=["POST"]))
    return Starlette(routes=routes)


async def whole_answer(request, generator: Generator, messages: list[dict], max_tokens: int) -> str:  # noqa: ANN001 - a Starlette Request
    """One answer, whole, generated in the thread pool; a client that hangs up meanwhile cancels it
    within a token (checked every `DISCONNECT_POLL_S`), as a stream's does."""
    from starlette.concurrency import run_in_threadpool

    cancel = threading.Event()
    generation = asyncio.ensure_future(run_in_threadpool(lambda: "".join(generator.stream(messages, max_tokens, cancel))))
    while not generation.done():
        await asyncio.wait({generation}, timeout=DISCONNECT_POLL_S)
        if not generation.done() and await request.is_disconnected():
            cancel.set()
    return generation.result()


def answer_events(generator: Generator, messages: list[dict], max_tokens: int, chunk: Callable[..., str]
                  ) -> AsyncIterator[str]:
    """One answer as server-sent events, generated in a thread of its own: a client that hangs up
    cancels it within a token, so the model (one generation at a time) is not kept writing for
    nobody while the next request waits."""
    from starlette.concurrency import run_in_threadpool

    cancel, events = threading.Event(), queue.Queue()

    def produce() -> None:
        try:
            for piece in generator.stream(messages, max_tokens, cancel):
                events.put(chunk({"content": piece}))
            events.put(chunk({}, "stop"))
        except Exception as error:  # noqa: BLE001 - raised in the response below
            events.put(error)
        events.put(None)

    async def respond() -> AsyncIterator[str]:
        threading.Thread(target=produce, name="generate", daemon=True).start()
        try:
            yield chunk({"role": "assistant"})
            while (event := await run_in_threadpool(events.get)) is not None:
                if isinstance(event, Exception):
                    raise event
                yield event
            yield "data: [DONE]\n\n"
        finally:  # all sent, or the client left: the model is free for the next request
            cancel.set()

    return respond()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--serve", choices=("chat", "embeddings", "both"), default="chat",
                        help="what to serve: /v1/chat/completions, /v1/embeddings or both (default: chat)")
    parser.add_argument("--model", default=None, help="bundled 'smollm2' (default), a model folder or a .gguf file")
    parser.add_argument("--embed-model", default=None, help="bundled 'minilm' (default), 'e5' or a sentence-transformers folder")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001)
    args = parser.parse_args(argv)
    settings = Settings.from_env(model=args.model, embed_model=args.embed_model)
    generator = embedder = None
    try:
        if args.serve in ("chat", "both"):
            generator = get_generator(settings.model, settings.threads, settings.models_dir)
            generator.warm_up()
        if args.serve in ("embeddings", "both"):
            embedder = get_embedder(settings.embed_model, settings.threads, cache_dir=settings.cache_dir,
                                     precision=settings.encoder_precision)
            embedder.embed(["warm up"])
    except QAError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    import uvicorn

    uvicorn.run(build_app(generator, embedder), host=args.host, port=args.port, log_level="warning")
    return 0


if __name__ == "__main__":
    sys.exit(main())
