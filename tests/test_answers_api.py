"""The answers API (OpenAI-compatible) and the MCP server, driven by the real `openai` and `mcp`
clients against the running app (and `qa mcp` over stdio)."""

import json
import os
import sys
from pathlib import Path

import pytest
from conftest import running_app

pytestmark = pytest.mark.slow

QUESTION = "When did Japan and South Korea establish diplomatic relations?"
KEY = "k3y-for-tests"


@pytest.fixture(scope="module")
def app_url(seed_workdir: Path):
    with running_app(seed_workdir, {"QA_API_KEY": KEY, "QA_MCP": "1"}) as url:
        yield url


@pytest.fixture
def client(app_url: str):
    import openai

    return openai.OpenAI(base_url=f"{app_url}v1", api_key=KEY, max_retries=0, timeout=120)


def test_a_question_gets_the_cited_answer_with_citations_as_data(client, seed_workdir: Path):
    reply = client.chat.completions.create(model="docqa", messages=[{"role": "user", "content": QUESTION}])
    content = reply.choices[0].message.content
    assert "1965" in content and "[1]" in content
    citations = reply.model_extra["citations"]
    assert citations and citations[0]["path"] == "japan_south_korea_relations.txt"
    text = (seed_workdir / "corpus" / citations[0]["path"]).read_text(encoding="utf-8")
    assert text[citations[0]["start"] : citations[0]["end"]] == citations[0]["quote"]  # verbatim at its offsets
    assert reply.model_extra["outcome"] == "answer" and 0 < reply.model_extra["confidence"] <= 1
    assert reply.usage.prompt_tokens >= 10 and reply.usage.completion_tokens > 10  # the question's, the answer's tokens
    assert reply.usage.total_tokens == reply.usage.prompt_tokens + reply.usage.completion_tokens
    assert [m.id for m in client.models.list()] == ["docqa", "docqa-evidence", "docqa-generative"]


def test_the_streamed_pieces_join_to_the_same_answer(client):
    whole = client.chat.completions.create(model="docqa-evidence", messages=[{"role": "user", "content": QUESTION}])
    pieces, citations = [], None
    for chunk in client.chat.completions.create(model="docqa-evidence", stream=True,
                                                messages=[{"role": "user", "content": QUESTION}]):
        if chunk.choices and chunk.choices[0].delta.content:
            pieces.append(chunk.choices[0].delta.content)
        citations = (chunk.model_extra or {}).get("citations", citations)
    assert len(pieces) > 1 and "".join(pieces) == whole.choices[0].message.content
    assert citations == whole.model_extra["citations"]


def test_a_follow_up_uses_the_earlier_question_and_a_question_not_in_the_documents_is_declined(client):
    reply = client.chat.completions.create(model="docqa", messages=[
        {"role": "user", "content": "Where are the Liancourt Rocks?"},
        {"role": "assistant", "content": "In the Sea of Japan."},
        {"role": "user", "content": "and what are they called in Korean?"}])
    assert "Dokdo" in reply.choices[0].message.content
    declined = client.chat.completions.create(model="docqa", messages=[
        {"role": "user", "content": "What is the population of Busan?"}])
    assert declined.choices[0].message.content.startswith("The documents do not say.")
    assert declined.model_extra["citations"] == [] and declined.model_extra["outcome"] == "declined"
    assert declined.choices[0].finish_reason == "stop" and 0 <= declined.model_extra["confidence"] < 1


def test_a_bad_key_or_bad_input_gets_an_openai_error(app_url: str, client):
    import openai

    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=f"{app_url}v1", api_key="wrong", max_retries=0).chat.completions.create(
            model="docqa", messages=[{"role": "user", "content": QUESTION}])
    with pytest.raises(openai.BadRequestError, match="model must be one of"):
        client.chat.completions.create(model="gpt-4", messages=[{"role": "user", "content": QUESTION}])
    with pytest.raises(openai.BadRequestError, match="empty"):
        client.chat.completions.create(model="docqa", messages=[{"role": "user", "content": "   "}])
    with pytest.raises(openai.BadRequestError, match="last message must be the user"):
        client.chat.completions.create(model="docqa", messages=[{"role": "assistant", "content": "hi"}])
    with pytest.raises(openai.BadRequestError, match="text only: tools"):
        client.chat.completions.create(model="docqa", messages=[{"role": "user", "content": QUESTION}],
                                       tool_choice="required", tools=[{"type": "function", "function": {"name": "f"}}])
    with pytest.raises(openai.BadRequestError, match='"n" must be 1'):
        client.chat.completions.create(model="docqa", messages=[{"role": "user", "content": QUESTION}], n=3)
    import httpx

    headers = {"Authorization": f"Bearer {client.api_key}", "Content-Type": "application/json"}
    for body in ('{"model": [], "messages": []}', '{"model": {}, "messages": []}', "[" * 100_000 + "]" * 100_000):
        reply = httpx.post(f"{app_url}v1/chat/completions", content=body, headers=headers, timeout=30)
        assert reply.status_code == 400 and reply.json()["error"]["type"] == "invalid_request_error", reply.text
    question = [{"role": "user", "content": QUESTION}]
    for field, value in (("max_tokens", "x"), ("temperature", "hot"), ("top_p", []), ("stop", 5), ("max_tokens", True)):
        reply = httpx.post(f"{app_url}v1/chat/completions", json={"model": "docqa", "messages": question, field: value},
                           headers=headers, timeout=30)
        assert reply.status_code == 400 and field in reply.json()["error"]["message"], (field, reply.text)


def test_a_body_too_large_without_a_length_is_a_413_and_a_client_gone_mid_body_leaves_no_traceback(
        app_url: str, seed_workdir: Path):
    import socket

    import httpx

    headers = {"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"}
    chunks = iter([b'{"model": "docqa", "messages": [{"role": "user", "content": "'] + [b"x" * 2**16] * 48 + [b'"}]}'])
    reply = httpx.post(f"{app_url}v1/chat/completions", content=chunks, headers=headers, timeout=30)  # 3 MB, chunked
    assert reply.status_code == 413 and "QA_MAX_REQUEST_MB" in reply.text
    port = int(app_url.rstrip("/").rpartition(":")[2])
    for path in ("/v1/chat/completions", "/mcp", "/gradio_api/upload"):
        with socket.create_connection(("127.0.0.1", port), timeout=5) as hung_up:
            hung_up.sendall(f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {KEY}\r\n"
                            "Content-Type: application/json\r\nContent-Length: 5000\r\n\r\n{\"x\": ".encode())
    assert httpx.get(f"{app_url}v1/models", headers=headers, timeout=10).status_code == 200
    log = (seed_workdir / f"app-{port}.log").read_text(encoding="utf-8", errors="replace")
    assert "Traceback" not in log and "Exception in ASGI application" not in log


def test_the_rate_limit_is_a_429_with_retry_after_on_v1_and_mcp_alike(seed_workdir: Path):
    import httpx
    import openai

    with running_app(seed_workdir, {"QA_RATE_LIMIT": "1", "QA_MCP": "1"}) as url:
        client = openai.OpenAI(base_url=f"{url}v1", api_key="none", max_retries=0)
        client.chat.completions.create(model="docqa", messages=[{"role": "user", "content": QUESTION}])
        with pytest.raises(openai.RateLimitError) as refused:
            client.chat.completions.create(model="docqa", messages=[{"role": "user", "content": QUESTION}])
        assert int(refused.value.response.headers["retry-after"]) >= 1
        call = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "ask", "arguments": {"question": QUESTION}}}
        mcp = httpx.post(f"{url}mcp", json=call, headers={"Accept": "application/json, text/event-stream"}, timeout=30)
        assert mcp.status_code == 429 and int(mcp.headers["retry-after"]) >= 1  # the same limit on every door
        escaped = json.dumps(call).replace("tools/call", "tools\\/call")  # the same method to a JSON reader
        mcp = httpx.post(f"{url}mcp", content=escaped, timeout=30,
                         headers={"Accept": "application/json, text/event-stream", "Content-Type": "application/json"})
        assert mcp.status_code == 429


def test_the_key_guards_every_door_and_wrong_keys_lock_the_client_out_of_all(seed_workdir: Path):
    """QA_API_KEY guards /v1, /mcp, and the page with everything it calls (ask, upload, remove):
    the page asks for the key as a login's password (any name); ten wrong keys from one address,
    on any door, lock it out (for five minutes), even with the right key."""
    import httpx
    from gradio_client import Client

    with running_app(seed_workdir, {"QA_API_KEY": KEY, "QA_MCP": "1"}) as url:
        bearer = {"Authorization": f"Bearer {KEY}"}
        for path in ("config", "gradio_api/info"):
            assert httpx.get(f"{url}{path}", timeout=10).status_code == 401  # the page's own calls need the login
        upload = httpx.post(f"{url}gradio_api/upload", files={"files": ("x.txt", b"hello")}, timeout=10)
        assert upload.status_code == 401 and not list((seed_workdir / "corpus").glob("x*.txt"))
        with pytest.raises(Exception):
            Client(url, verbose=False, headers=bearer).predict(QUESTION, api_name="/ask")  # a bearer key is no login
        assert "1965" in Client(url, verbose=False, auth=("anyone", KEY)).predict(QUESTION, api_name="/ask")["answer"]
        assert httpx.post(f"{url}login", data={"username": "x", "password": "guess"}, timeout=10).status_code == 400
        assert httpx.get(f"{url}v1/models", headers=bearer, timeout=10).status_code == 200
        for n in range(9):  # with the wrong login above, ten
            assert httpx.get(f"{url}v1/models", headers={"Authorization": f"Bearer guess{n}"}, timeout=10).status_code == 401
        assert httpx.get(f"{url}v1/models", headers=bearer, timeout=10).status_code == 401  # locked out
        call = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
        mcp = httpx.post(f"{url}mcp", json=call, timeout=10,
                         headers={**bearer, "Accept": "application/json, text/event-stream"})
        assert mcp.status_code == 401


async def _use_mcp(session) -> tuple[list[str], dict, dict]:
    await session.initialize()
    tools = sorted(t.name for t in (await session.list_tools()).tools)
    asked = await session.call_tool("ask", {"question": QUESTION})
    found = await session.call_tool("search_documents", {"query": "Liancourt Rocks Korean name", "k": 3})
    return tools, asked.structured_content, found.structured_content


def test_an_mcp_client_over_http_lists_two_tools_and_gets_the_answer(app_url: str):
    import anyio
    import httpx
    from mcp import ClientSession
    from mcp.client.streamable_http import streamable_http_client

    async def run(key: str):
        async with httpx.AsyncClient(headers={"Authorization": f"Bearer {key}"}, timeout=120) as http, \
                streamable_http_client(f"{app_url}mcp", http_client=http) as (read, write, *_), \
                ClientSession(read, write) as session:
            return await _use_mcp(session)

    assert httpx.post(f"{app_url}mcp", json={}, timeout=10).status_code == 401  # the API key guards it too
    tools, asked, found = anyio.run(run, KEY)
    assert tools == ["ask", "search_documents"]
    assert "1965" in asked["short_answer"] and asked["citations"][0]["quote"] and asked["outcome"] == "answer"
    assert len(found["passages"]) == 3 and any("Dokdo" in p["text"] for p in found["passages"])


def test_qa_mcp_over_stdio_gives_the_same_answer(seed_workdir: Path):
    import anyio
    from mcp import ClientSession, StdioServerParameters
    from mcp.client.stdio import stdio_client

    qa_script = Path(sys.executable).parent / "qa"  # the console script, as a client's configuration names it
    params = StdioServerParameters(command=str(qa_script), args=["mcp"], cwd=str(seed_workdir), env=dict(os.environ))

    async def run():
        async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
            return await _use_mcp(session)

    tools, asked, found = anyio.run(run)
    assert tools == ["ask", "search_documents"]
    assert "1965" in asked["short_answer"] and json.dumps(asked["citations"])
    assert found["passages"]


def test_without_an_index_the_api_says_not_ready_with_a_503(tmp_path: Path):
    import openai

    (tmp_path / "corpus").mkdir()
    with running_app(tmp_path) as url:
        client = openai.OpenAI(base_url=f"{url}v1", api_key="none", max_retries=0)
        with pytest.raises(openai.InternalServerError) as refused:
            client.chat.completions.create(model="docqa", messages=[{"role": "user", "content": QUESTION}])
        assert refused.value.status_code == 503 and "qa index" in str(refused.value)


def test_an_unreachable_index_store_is_a_503_that_names_it(tmp_path: Path):
    import openai

    (tmp_path / "corpus").mkdir()
    with running_app(tmp_path, {"QA_STORE": "milvus://127.0.0.1:9"}) as url:
        client = openai.OpenAI(base_url=f"{url}v1", api_key="none", max_retries=0)
        with pytest.raises(openai.InternalServerError) as refused:
            client.chat.completions.create(model="docqa", messages=[{"role": "user", "content": QUESTION}])
        assert refused.value.status_code == 503 and "cannot reach the Milvus store milvus://127.0.0.1:9" in str(refused.value)


def test_earlier_messages_are_read_only_as_far_as_the_page_keeps_a_question():
    from qa.app.answers_api import HISTORY_CHARS, parse_request

    question, history, _, _ = parse_request({"messages": [
        {"role": "user", "content": "Where are the Liancourt Rocks? " + "x" * 1_900_000},
        {"role": "assistant", "content": "y" * 1_900_000}, {"role": "user", "content": "and their area?"}]})
    assert question == "and their area?" and [len(h) for h in history] == [HISTORY_CHARS]


def test_a_streamed_answer_sends_the_role_at_once_and_stops_when_the_client_leaves():
    """The role chunk goes out before the answer is ready (the first byte does not wait for it);
    a client that hangs up meanwhile stops its answer's generation (the cancel event is set)."""
    import asyncio
    import threading
    from types import SimpleNamespace

    from qa.app.answers_api import AnswersAPI

    started, stopped = threading.Event(), threading.Event()

    class Slow:  # an answer that takes until it is cancelled (or 10 s)
        def __init__(self, cancel: threading.Event) -> None:
            self.cancel = cancel

        def answer(self):  # noqa: ANN202
            started.set()
            if self.cancel.wait(10):
                stopped.set()
            raise RuntimeError("not answered")

    pipeline = SimpleNamespace(settings=SimpleNamespace(answer_mode="evidence", max_question_chars=2000),
                               ask_stream=lambda question, mode, cancel, history: Slow(cancel))
    api = AnswersAPI(pipeline, wait=lambda client: 0.0)

    async def hang_up() -> str:
        events = api.streamed(QUESTION, [], "generative")
        first = await events.__anext__()
        pending = asyncio.ensure_future(events.__anext__())
        await asyncio.to_thread(started.wait, 10)
        pending.cancel()  # what the server does when the client disconnects
        with pytest.raises(asyncio.CancelledError):
            await pending
        return first

    first = asyncio.run(hang_up())
    assert '"role": "assistant"' in first and '"model": "docqa-generative"' in first
    assert stopped.wait(5)
