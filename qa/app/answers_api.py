"""Answers from the documents through the OpenAI chat-completions API, served by `qa serve`
beside the page (the same process, pipeline and limits), so any OpenAI client (the `openai`
package, Open WebUI, LibreChat, Continue) can ask the documents.

`POST /v1/chat/completions`: the last user message is the question; the earlier user messages
are the chat history used to make a follow-up standalone. `model` is `docqa` (the app's answer
mode), `docqa-evidence` or `docqa-generative`. The message content is the answer as a person
reads it (the short answer in bold, the quoted sentence that proves it, `[n]` markers); the
citations also travel as data in a top-level `citations` list. A question the documents do not
answer gets "The documents do not say." and no citations. `stream: true` sends the verified
answer as server-sent events (a generated draft is checked before anything is sent, so the
pieces join to exactly the non-streamed text). `GET /v1/models` lists the three models.

Errors use OpenAI's error object: 400 (bad request or question), 401 (a key is required:
`QA_API_KEY`, else the password of `QA_AUTH`), 429 with `Retry-After` (the app's rate limit),
503 (no index, its store unreachable, or a model that does not load).
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator

import anyio

from qa.answer.retrieve import check_question
from qa.app.guards import KeyGuard, answering
from qa.app.render import answer_markdown, citations_json, confidence
from qa.errors import (
    BadQuestionError,
    CorruptIndexError,
    MissingIndexError,
    ModelLoadError,
    QAError,
    StaleIndexError,
    StoreUnavailableError,
)
from qa.pipeline import Pipeline
from qa.types import Answer

log = logging.getLogger(__name__)

MODELS = {"docqa": None, "docqa-evidence": "evidence", "docqa-generative": "generative"}
MAX_MESSAGES = 64  # earlier turns beyond these are not read
HISTORY_CHARS = 2000  # of each earlier user message (what the page keeps of a question)
# OpenAI fields that would change what is asked for, and that docqa cannot honour: a 400 says so.
UNSUPPORTED = {"tools": "tools", "tool_choice": "tool calls", "functions": "function calls",
               "function_call": "function calls", "response_format": "a response format", "logprobs": "log probabilities"}
# OpenAI's sampling fields: docqa's answers do not use them (they are quoted or verified), but a
# bad value is a 400, as OpenAI gives, never silently taken: (smallest, largest) allowed.
NUMBERS = {"temperature": (0, 2), "top_p": (0, 1), "presence_penalty": (-2, 2), "frequency_penalty": (-2, 2)}
INTEGERS = {"max_tokens": (1, None), "max_completion_tokens": (1, None), "seed": (None, None)}
MAX_STOPS = 4
DISCONNECT_POLL_SECONDS = 0.5  # how often a non-streamed request checks that its client is still there
NOT_READY = (MissingIndexError, StaleIndexError, CorruptIndexError, ModelLoadError, StoreUnavailableError)


def error(status: int, message: str, kind: str, headers: dict | None = None):  # noqa: ANN201
    from starlette.responses import JSONResponse

    return JSONResponse({"error": {"message": message, "type": kind, "param": None, "code": None}},
                        status_code=status, headers=headers)


def parse_request(body: object) -> tuple[str, list[str], str | None, bool]:
    """(question, earlier user questions, answer mode or None, stream) or ValueError saying why.

    >>> parse_request({"model": "docqa-evidence", "messages": [{"role": "system", "content": "Be brief."},
    ...     {"role": "user", "content": "Where is Dokdo?"}, {"role": "assistant", "content": "East Sea."},
    ...     {"role": "user", "content": [{"type": "text", "text": "and its area?"}]}]})
    ('and its area?', ['Where is Dokdo?'], 'evidence', False)
    >>> parse_request({"model": "docqa", "messages": [{"role": "user", "content": 5}]})
    Traceback (most recent call last):
    ValueError: a message's content must be text
    >>> parse_request({"model": [], "messages": []})
    Traceback (most recent call last):
    ValueError: model must be one of docqa, docqa-evidence, docqa-generative, not '[]'
    >>> parse_request({"model": "docqa", "tool_choice": "required", "messages": [{"role": "user", "content": "x"}]})
    Traceback (most recent call last):
    ValueError: docqa answers with text only: tool calls ('tool_choice') are not supported
    """
    if not isinstance(body, dict):
        raise ValueError("the body must be a JSON object")
    model = body.get("model", "docqa")
    if not isinstance(model, str) or model not in MODELS:
        raise ValueError(f"model must be one of {', '.join(MODELS)}, not {str(model)[:100]!r}")
    for field, what in UNSUPPORTED.items():
        if body.get(field) not in (None, False, [], "none", "auto"):
            raise ValueError(f"docqa answers with text only: {what} ({field!r}) are not supported")
    if body.get("n", 1) != 1:
        raise ValueError('docqa gives one answer per question: "n" must be 1')
    check_sampling(body)
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise ValueError('"messages" must be a non-empty list')
    users = []
    for message in messages[-MAX_MESSAGES:]:
        if not isinstance(message, dict) or not isinstance(message.get("role"), str):
            raise ValueError('each message needs a "role" and a "content"')
        if message["role"] == "user":
            users.append(_text(message.get("content")))
    if not users or messages[-1].get("role") != "user":
        raise ValueError("the last message must be the user's question")
    users[:-1] = [u[:HISTORY_CHARS] for u in users[:-1]]  # the question itself is checked by the pipeline
    stream = body.get("stream", False)
    if not isinstance(stream, bool):
        raise ValueError('"stream" must be true or false')
    return users[-1], users[:-1], MODELS[model], stream


def check_sampling(body: dict) -> None:
    """ValueError naming the first sampling field whose value OpenAI's API would refuse.

    >>> check_sampling({"temperature": 0.2, "max_tokens": 64, "stop": ["\\n"], "top_p": None})
    >>> check_sampling({"max_tokens": "x"})
    Traceback (most recent call last):
    ValueError: "max_tokens" must be a whole number of at least 1, not 'x'
    >>> check_sampling({"temperature": "hot"})
    Traceback (most recent call last):
    ValueError: "temperature" must be a number from 0 to 2, not 'hot'
    >>> check_sampling({"stop": 5})
    Traceback (most recent call last):
    ValueError: "stop" must be a string or a list of at most 4 strings, not 5
    """
    def bad(value: object) -> str:
        return repr(value)[:100]

    for field, (low, high) in NUMBERS.items():
        value = body.get(field)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high):
            raise ValueError(f'"{field}" must be a number from {low} to {high}, not {bad(value)}')
    for field, (low, _) in INTEGERS.items():
        value = body.get(field)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or (low is not None and value < low)):
            raise ValueError(f'"{field}" must be a whole number' + (f" of at least {low}" if low else "") + f", not {bad(value)}")
    stop = body.get("stop")
    if stop is not None and not isinstance(stop, str) and not (
            isinstance(stop, list) and len(stop) <= MAX_STOPS and all(isinstance(s, str) for s in stop)):
        raise ValueError(f'"stop" must be a string or a list of at most {MAX_STOPS} strings, not {bad(stop)}')
    if body.get("user") is not None and not isinstance(body["user"], str):
        raise ValueError(f'"user" must be a string, not {bad(body["user"])}')


def _text(content: object) -> str:
    """A message's text: a string, or OpenAI's list of parts (the text parts joined)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list) and all(isinstance(p, dict) for p in content):
        return " ".join(str(p.get("text", "")) for p in content if p.get("type") == "text")
    raise ValueError("a message's content must be text")


def key_accepted(keys: KeyGuard | None, client: str, headers) -> bool:  # noqa: ANN001
    """True when no key is required or `Authorization: Bearer <key>` gives it (`keys` counts the
    client's failures and locks it out after too many)."""
    if keys is None:
        return True
    given = headers.get("authorization", "")
    return keys(client, given[7:].strip() if given.startswith("Bearer ") else "")


KEY_REQUIRED = "a valid API key is required: Authorization: Bearer <QA_API_KEY, or the password of QA_AUTH>"


class RequireKey:
    """ASGI wrapper: 401 unless the request carries the key (the MCP endpoint's guard)."""

    def __init__(self, app, keys: KeyGuard | None) -> None:  # noqa: ANN001
        self.app, self.keys = app, keys

    async def __call__(self, scope, receive, send) -> None:  # noqa: ANN001
        from starlette.datastructures import Headers

        client = (scope.get("client") or ("unknown",))[0]
        if scope["type"] == "http" and not key_accepted(self.keys, client, Headers(scope=scope)):
            return await error(401, KEY_REQUIRED, "invalid_request_error")(scope, receive, send)
        return await self.app(scope, receive, send)


class AnswersAPI:
    """The `/v1` routes as an ASGI app over `pipeline`; `wait(client)` is the app's rate limit
    (seconds to wait, 0 to go on) and `keys` checks the bearer token (None: none required)."""

    def __init__(self, pipeline: Pipeline, wait: Callable[[str], float], keys: KeyGuard | None = None) -> None:
        from starlette.applications import Starlette
        from starlette.routing import Route

        self.pipeline, self.wait, self.keys = pipeline, wait, keys
        self.app = Starlette(routes=[Route("/v1/models", self.models),
                                     Route("/v1/chat/completions", self.chat, methods=["POST"])])

    async def __call__(self, scope, receive, send) -> None:  # noqa: ANN001
        await self.app(scope, receive, send)

    def refused(self, request):  # noqa: ANN001, ANN201
        """An error response when the request lacks the key, else None."""
        client = request.client.host if request.client else "unknown"
        return None if key_accepted(self.keys, client, request.headers) else error(
            401, KEY_REQUIRED, "invalid_request_error")

    async def models(self, request):  # noqa: ANN001, ANN201
        from starlette.responses import JSONResponse

        if (refusal := self.refused(request)) is not None:
            return refusal
        return JSONResponse({"object": "list", "data": [
            {"id": name, "object": "model", "created": 0, "owned_by": "docqa"} for name in MODELS]})

    async def chat(self, request):  # noqa: ANN001, ANN201
        from starlette.responses import JSONResponse, StreamingResponse

        if (refusal := self.refused(request)) is not None:
            return refusal
        try:
            question, history, mode, stream = parse_request(json.loads(await request.body()))
        except RecursionError:
            return error(400, "bad request: the JSON is nested too deeply", "invalid_request_error")
        except (ValueError, UnicodeDecodeError) as problem:
            return error(400, f"bad request: {problem}", "invalid_request_error")
        wait = self.wait(request.client.host if request.client else "unknown")
        if wait > 0:
            return error(429, f"Too many questions from your address in the last minute: ask again in {wait:.0f} s.",
                         "rate_limit_error", {"Retry-After": str(max(1, round(wait)))})
        if stream:  # the role at once, the answer's words once it is verified; a client that leaves stops it
            try:
                check_question(question, self.pipeline.settings.max_question_chars)
            except BadQuestionError as problem:
                return error(400, str(problem), "invalid_request_error")
            return StreamingResponse(self.streamed(question, history, mode), media_type="text/event-stream",
                                     headers={"Cache-Control": "no-cache"})
        try:
            answer = await self.answered(request, question, history, mode)
        except Exception as problem:  # noqa: BLE001 - each becomes an OpenAI error object, never a traceback
            return error(*failure(problem))
        return JSONResponse(self.completion(answer))

    async def answered(self, request, question: str, history: list[str], mode: str | None) -> Answer:  # noqa: ANN001
        """The answer, its work told to stop (a generation ends at its next token) when the client
        hangs up meanwhile, so the next client does not wait for an answer nobody reads."""
        cancel = threading.Event()
        async with anyio.create_task_group() as watching:
            async def watch() -> None:
                while not await request.is_disconnected():
                    await anyio.sleep(DISCONNECT_POLL_SECONDS)
                cancel.set()
                log.info("a client left before its answer was sent; the answer was stopped")

            watching.start_soon(watch)
            try:
                answer = await anyio.to_thread.run_sync(
                    lambda: self.pipeline.ask_stream(question, mode=mode, cancel=cancel, history=history).answer(),
                    limiter=answering())
            except Exception as problem:  # noqa: BLE001 - raised as it is below, not in the task group's wrapping
                answer = problem
            watching.cancel_scope.cancel()
        if isinstance(answer, Exception):
            raise answer
        return answer

    async def streamed(self, question: str, history: list[str], mode: str | None) -> AsyncIterator[str]:
        """The answer as OpenAI chunks: the role at once, then (`events`) the answer once it is
        verified. When the client hangs up meanwhile, the answer's generation is told to stop."""
        head = {"id": f"chatcmpl-{uuid.uuid4().hex[:24]}", "object": "chat.completion.chunk",
                "created": int(time.time()), "model": f"docqa-{mode or self.pipeline.settings.answer_mode}"}
        cancel, sent = threading.Event(), False
        try:
            yield chunk(head, {"role": "assistant", "content": ""})
            try:  # abandoned when the client leaves: `finally` then tells the work to stop at once
                answer = await anyio.to_thread.run_sync(
                    lambda: self.pipeline.ask_stream(question, mode=mode, cancel=cancel, history=history).answer(),
                    limiter=answering(), abandon_on_cancel=True)
            except Exception as problem:  # noqa: BLE001 - the status is sent: the error goes as an event
                status, message, kind = failure(problem)
                yield f"data: {json.dumps({'error': {'message': message, 'type': kind, 'code': status}})}\n\n"
            else:
                for event in self.events({**self.completion(answer), **head}):
                    yield event
            sent = True
        finally:
            if not sent:
                cancel.set()
                log.info("a client left before its streamed answer was sent; the answer was stopped")

    def completion(self, answer: Answer) -> dict:
        """The OpenAI completion object of `answer`; `usage` counts the embedder's (WordPiece)
        tokens of the question and of the answer's content: the documents' words, not a generator's."""
        content = answer_markdown(answer)
        asked, written = self.pipeline.embedder.count_tokens([answer.question, content])
        return {
            "id": f"chatcmpl-{uuid.uuid4().hex[:24]}", "object": "chat.completion", "created": int(time.time()),
            "model": f"docqa-{answer.mode}",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": asked, "completion_tokens": written, "total_tokens": asked + written},
            "citations": citations_json(answer, self.pipeline.index),
            "abstained": answer.abstained,
            "outcome": answer.outcome,
            "confidence": confidence(answer),
        }

    @staticmethod
    def events(completion: dict) -> Iterator[str]:
        """After the role: the completion's content a few words at a time, the citations, outcome
        and confidence with the final chunk, then [DONE]."""
        content = completion["choices"][0]["message"]["content"]
        head = {k: completion[k] for k in ("id", "object", "created", "model")}
        words = content.split(" ")
        for i in range(0, len(words), 4):
            piece = " ".join(words[i : i + 4])
            yield chunk(head, {"content": piece if i == 0 else " " + piece})
        yield chunk(head, {}, "stop", citations=completion["citations"], abstained=completion["abstained"],
                    outcome=completion["outcome"], confidence=completion["confidence"])
        yield "data: [DONE]\n\n"


def chunk(head: dict, delta: dict, finish: str | None = None, **extra: object) -> str:
    """One server-sent event of a streamed completion."""
    body = {**head, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}], **extra}
    return f"data: {json.dumps(body, ensure_ascii=False)}\n\n"


def failure(problem: Exception) -> tuple[int, str, str]:
    """(HTTP status, message, OpenAI error type) for an exception raised while answering."""
    if isinstance(problem, BadQuestionError):
        return 400, str(problem), "invalid_request_error"
    if isinstance(problem, NOT_READY):
        return 503, f"not ready: {problem}", "server_error"
    if isinstance(problem, QAError):
        return 400, str(problem), "invalid_request_error"
    log.error("answering through the API failed", exc_info=problem)  # never a traceback to the client
    return 500, "something went wrong while answering; the server log has the details", "server_error"
