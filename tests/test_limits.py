"""The server's guards, unit-tested on a small ASGI app (the real server: tests/test_app.py)."""

import pytest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from qa.app.guards import MAX_KEYS, HostRule, LoginGuard, RateLimit, RequestGuard


async def echo(request):
    return JSONResponse({"bytes": len(await request.body())})


@pytest.fixture
def guarded() -> TestClient:
    app = Starlette(routes=[Route("/run", echo, methods=["GET", "POST"]), Route("/gradio_api/upload", echo, methods=["POST"])],
                    middleware=[Middleware(RequestGuard, rule=HostRule("docs.example.org"), max_body=1000,
                                           max_upload_body=5000)])
    return TestClient(app, base_url="http://localhost:7860")


def test_foreign_hosts_and_origins_are_refused(guarded: TestClient):
    assert guarded.post("/run", content=b"x").json() == {"bytes": 1}
    assert guarded.post("/run", headers={"Host": "docs.example.org"}).status_code == 200
    refused = guarded.post("/run", headers={"Host": "attacker.example:7874"})
    assert refused.status_code == 400 and "QA_ALLOWED_HOSTS" in refused.json()["error"]
    assert guarded.post("/run", headers={"Origin": "http://attacker.example:7874"}).status_code == 403
    assert guarded.post("/run", headers={"Origin": "http://127.0.0.1:3000"}).status_code == 200
    null = guarded.post("/gradio_api/upload", headers={"Origin": "null", "Content-Type": "text/plain"}, content=b"x")
    assert null.status_code == 403  # what a sandboxed frame on any page sends


def test_bodies_over_the_limit_are_refused_with_or_without_a_length(guarded: TestClient):
    assert guarded.post("/run", content=b"x" * 1000).status_code == 200
    too_big = guarded.post("/run", content=b"x" * 1001)
    assert too_big.status_code == 413 and "QA_MAX_REQUEST_MB" in too_big.json()["error"]
    chunked = guarded.post("/run", content=iter([b"x" * 600, b"x" * 600]))  # no Content-Length
    assert chunked.status_code == 413
    assert guarded.post("/gradio_api/upload", content=b"x" * 4000).status_code == 200
    assert guarded.post("/gradio_api/upload", content=b"x" * 5001).status_code == 413


def test_failed_logins_with_huge_or_countless_names_keep_memory_bounded():
    guard = LoginGuard("reader:s3cret", clock=lambda: 0.0)
    assert not guard("x" * 500_000, "pw") and not guard._failures  # refused, not remembered
    for n in range(MAX_KEYS + 100):
        guard(f"user{n}", "wrong")
    assert len(guard._failures) <= MAX_KEYS
    assert guard("reader", "s3cret")


def test_the_rate_limit_remembers_a_bounded_number_of_clients():
    limit = RateLimit(per_minute=1, clock=lambda: 0.0)
    for n in range(MAX_KEYS + 100):
        limit.wait(f"10.0.{n // 256}.{n % 256}")
    assert len(limit._seen) <= MAX_KEYS


def test_the_app_empties_gradios_upload_cache(settings, fake_embedder):
    import dataclasses

    from conftest import FakeReader

    from qa.app.web import build
    from qa.pipeline import Pipeline

    settings = dataclasses.replace(settings, upload_cache_minutes=30)
    demo = build(Pipeline(settings, embedder=fake_embedder, reader=FakeReader()))
    assert demo.delete_cache == (600, 1800)  # every 10 minutes, files older than 30 minutes


def test_only_the_pages_upload_path_gets_the_upload_limit(guarded: TestClient):
    assert guarded.post("/gradio_api/upload", content=b"x" * 4000).status_code == 200
    for path in ("/mcp/upload", "/v1/upload", "/run/upload"):  # read whole before their 404, 4 at once: +768 MB
        assert guarded.post(path, content=b"x" * 2000).status_code == 413


@pytest.fixture
def served():  # noqa: ANN201 - the guarded app on a real server (uvicorn's HTTP parser), and its address
    import threading
    import time

    import uvicorn
    from conftest import free_port

    app = Starlette(routes=[Route("/run", echo, methods=["GET", "POST"])],
                    middleware=[Middleware(RequestGuard, rule=HostRule(), max_body=1000, max_upload_body=5000)])
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=free_port(), log_level="info"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    yield ("127.0.0.1", server.config.port)
    server.should_exit = True
    thread.join(5)


def exchange(address, request: bytes, close: bool = False) -> bytes:  # noqa: ANN001
    """What the server sends back for these raw bytes, until it closes (or 3 s of silence)."""
    import socket

    with socket.create_connection(address, timeout=3) as connection:
        connection.sendall(request)
        if close:
            return b""
        reply = b""
        try:
            while chunk := connection.recv(65536):
                reply += chunk
        except TimeoutError:
            pass
        return reply


def test_a_request_framed_two_ways_is_refused_and_nothing_smuggled_after_it_is_served(served):
    smuggled = b"GET /run HTTP/1.1\r\nHost: localhost\r\n\r\n"
    reply = exchange(served, b"POST /run HTTP/1.1\r\nHost: localhost\r\nContent-Length: 5\r\n"
                             b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + smuggled)
    assert reply.startswith(b"HTTP/1.1 400") and b"Transfer-Encoding" in reply
    assert reply.count(b"HTTP/1.1 ") == 1


def test_a_chunked_body_over_the_limit_gets_413_and_a_client_gone_mid_body_leaves_no_traceback(served, caplog):
    chunk = b"x" * 800
    body = b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for _ in range(4)) + b"0\r\n\r\n"
    reply = exchange(served, b"POST /run HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n" + body)
    assert reply.startswith(b"HTTP/1.1 413") and b"QA_MAX_REQUEST_MB" in reply
    for _ in range(3):
        exchange(served, b"POST /run HTTP/1.1\r\nHost: localhost\r\nContent-Length: 900\r\n\r\n" + b"x" * 100, close=True)
    assert exchange(served, b"GET /run HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").startswith(b"HTTP/1.1 200")
    assert "Exception in ASGI application" not in caplog.text and "Traceback" not in caplog.text


@pytest.mark.parametrize("stream", [False, True])
def test_a_client_that_hangs_up_on_v1_stops_its_answer(stream: bool):
    """A slow (generative) answer whose client hangs up is told to stop within a second or two,
    streamed or not, so the next client does not wait for an answer nobody reads."""
    import json
    import socket
    import threading
    import time
    from types import SimpleNamespace

    import uvicorn
    from conftest import free_port

    from qa.app.answers_api import AnswersAPI
    from qa.types import Answer

    stopped = []

    class SlowAnswer:
        def __init__(self, question: str, cancel: threading.Event) -> None:
            self.question, self.cancel = question, cancel

        def answer(self) -> Answer:
            began = time.monotonic()
            self.cancel.wait(20)  # a generation checks its cancel event at every token
            stopped.append(time.monotonic() - began if self.cancel.is_set() else None)
            return Answer(self.question, "The documents do not say.", (), (), True, "generative", "m", outcome="declined")

    settings = SimpleNamespace(max_question_chars=2000, answer_mode="generative")
    words = SimpleNamespace(count_tokens=lambda texts: [len(text.split()) for text in texts])
    pipeline = SimpleNamespace(settings=settings, index=None, embedder=words,
                               ask_stream=lambda question, mode=None, cancel=None, history=(): SlowAnswer(question, cancel))
    api = AnswersAPI(pipeline, wait=lambda client: 0.0)
    server = uvicorn.Server(uvicorn.Config(api, host="127.0.0.1", port=free_port(), log_level="warning"))
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.05)
    try:
        body = json.dumps({"model": "docqa-generative", "stream": stream,
                           "messages": [{"role": "user", "content": "Summarise the treaty."}]}).encode()
        with socket.create_connection(("127.0.0.1", server.config.port), timeout=5) as client:
            client.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
                           b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
            time.sleep(1)
        deadline = time.monotonic() + 10
        while not stopped and time.monotonic() < deadline:
            time.sleep(0.1)
        assert stopped and stopped[0] is not None and stopped[0] < 4, stopped
    finally:
        server.should_exit = True


def test_v1_says_what_is_wrong_with_a_question_through_the_hang_up_watch():
    """An error raised while the client is watched (a bad question) is the door's own error
    (400 with the reason), not a 500 from the watch's task group."""
    from types import SimpleNamespace

    from qa.app.answers_api import AnswersAPI
    from qa.errors import BadQuestionError

    def refuse(question, mode=None, cancel=None, history=()):  # noqa: ANN001, ANN202
        raise BadQuestionError("The question is empty: type a question about the documents.")

    settings = SimpleNamespace(max_question_chars=2000, answer_mode="evidence")
    api = AnswersAPI(SimpleNamespace(settings=settings, ask_stream=refuse), wait=lambda client: 0.0)
    reply = TestClient(api).post("/v1/chat/completions", json={"messages": [{"role": "user", "content": "x"}]})
    assert reply.status_code == 400 and "question is empty" in reply.json()["error"]["message"]
