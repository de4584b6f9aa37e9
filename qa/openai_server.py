"""Serve a local model through the OpenAI chat-completions API (the subset docqa uses).

    python -m qa.openai_server [--model smollm2] [--host 127.0.0.1] [--port 8001]

`GET /v1/models` and `POST /v1/chat/completions` (streamed as server-sent events, or whole).
Greedy decoding; one generation at a time. It lets one machine generate for several docqa apps
(`QA_GENERATOR_URL=http://host:8001`), and it is how the tests exercise `OpenAIGenerator` against
a real model rather than canned replies.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from qa.config import Settings
from qa.generate import Generator, get_generator


def build_app(generator: Generator):  # noqa: ANN201 - a Starlette app
    from starlette.applications import Starlette
    from starlette.concurrency import iterate_in_threadpool
    from starlette.requests import Request
    from starlette.responses import JSONResponse, StreamingResponse
    from starlette.routing import Route

    async def models(request: Request) -> JSONResponse:
        return JSONResponse({"object": "list", "data": [{"id": generator.name, "object": "model"}]})

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
            def events():
                yield chunk({"role": "assistant"})
                for piece in generator.stream(messages, max_tokens):
                    yield chunk({"content": piece})
                yield chunk({}, "stop")
                yield "data: [DONE]\n\n"

            return StreamingResponse(iterate_in_threadpool(events()), media_type="text/event-stream")
        text = "".join(generator.stream(messages, max_tokens))
        return JSONResponse({"object": "chat.completion", "created": created, "model": generator.name,
                             "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                                          "finish_reason": "stop"}]})

    return Starlette(routes=[Route("/v1/models", models), Route("/v1/chat/completions", chat, methods=["POST"])])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="bundled 'smollm2' (default), a model folder or a .gguf file")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001)
    args = parser.parse_args(argv)
    settings = Settings.from_env(model=args.model)
    generator = get_generator(settings.model, settings.threads, settings.models_dir)
    generator.warm_up()
    import uvicorn

    uvicorn.run(build_app(generator), host=args.host, port=args.port, log_level="warning")
    return 0


if __name__ == "__main__":
    sys.exit(main())
