"""The real Gradio server on a free port: asked through gradio_client and driven in a real
browser (Playwright with Debian's Chromium)."""

import json
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from conftest import ROOT

pytestmark = pytest.mark.slow

CHROMIUM = Path("/usr/bin/chromium")
QUESTION = "When did Japan and South Korea establish diplomatic relations?"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(seed_workdir: Path):
    port = free_port()
    log = (seed_workdir / f"app-{port}.log").open("w")
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "app.py"), "--port", str(port)], cwd=seed_workdir, stdout=log, stderr=subprocess.STDOUT
    )
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        assert process.poll() is None, (seed_workdir / f"app-{port}.log").read_text()
        try:
            urllib.request.urlopen(url, timeout=2)
            break
        except OSError:
            time.sleep(0.5)
    else:
        process.kill()
        pytest.fail("app did not start within 180 s")
    yield url
    process.terminate()
    process.wait(timeout=30)
    log.close()


@pytest.fixture
def client(server: str):
    from gradio_client import Client

    return Client(server, verbose=False)


def test_page_is_served_on_loopback_only(server: str):
    with urllib.request.urlopen(server, timeout=10) as response:
        assert response.status == 200 and b"docqa" in response.read()
    assert server.startswith("http://127.0.0.1:")


def test_ask_endpoint_returns_what_qa_ask_json_returns(client, seed_workdir: Path):
    out = client.predict(QUESTION, api_name="/ask")
    assert {"question", "answer", "abstained", "citations", "passages", "timings", "model"} <= set(out)
    assert "1965" in out["answer"] and out["citations"]
    source = (seed_workdir / "corpus" / "japan_south_korea_relations.txt").read_text(encoding="utf-8")
    for c in out["citations"]:
        assert source[c["start"] : c["end"]] == c["quote"]
    json.dumps(out)  # plain JSON


def test_chat_streams_an_answer_with_citation_links_and_sources(client):
    job = client.submit("What are the Liancourt Rocks called in Korean?", [], 5, "evidence", False, api_name="/chat")
    chat, sources = job.result(timeout=120)
    assert len(job.outputs()) >= 2  # the question first, then the answer
    reply = chat[-1]["content"][0]["text"]
    assert "Dokdo" in reply and 'href="#src-1"' in reply
    assert 'id="src-1"' in sources and "<mark>" in sources and "characters 13511" in sources


def test_follow_up_questions_are_made_standalone(client):
    client.predict("When did Japan and South Korea sign GSOMIA?", [], 5, "evidence", False, api_name="/chat")
    chat, sources = client.predict("and when was it renewed?", [], 5, "evidence", False, api_name="/chat")
    assert "Searched for:" in sources and "GSOMIA" in sources
    assert "2017" in chat[-1]["content"][0]["text"]


def test_bad_questions_get_a_message_not_a_traceback(client):
    from gradio_client.exceptions import AppError

    with pytest.raises(AppError, match="question is empty"):
        client.predict("   ", api_name="/ask")
    chat, _ = client.predict("", [], 5, "evidence", False, api_name="/chat")
    assert "question is empty" in chat[-1]["content"][0]["text"]
    chat, _ = client.predict("x" * 100_000, [], 5, "evidence", False, api_name="/chat")
    assert "too long" in chat[-1]["content"][0]["text"] and "Traceback" not in str(chat)


def test_five_concurrent_users_each_get_a_complete_answer(server: str):
    from gradio_client import Client

    questions = [
        ("When did Japan and South Korea establish diplomatic relations?", "1965"),
        ("What are the Liancourt Rocks called in Korean?", "Dokdo"),
        ("How many Koreans did the Empire of Japan conscript into forced labor?", "7.8 million"),
        ("Which Korean TV series became a runaway hit in Japan in 2003?", "Winter Sonata"),
        ("What was the annual trade between Japan and South Korea as of 2024?", "$77.2 billion"),
    ]
    results: dict[int, dict] = {}

    def ask(i: int, question: str) -> None:
        results[i] = Client(server, verbose=False).predict(question, api_name="/ask")

    threads = [threading.Thread(target=ask, args=(i, q)) for i, (q, _) in enumerate(questions)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert len(results) == 5
    for i, (_, expected) in enumerate(questions):
        assert expected in results[i]["answer"] and results[i]["citations"], results[i]["answer"]


def test_server_refuses_files_and_monitoring(server: str):
    for path in ("gradio_api/file=/etc/passwd", "gradio_api/file=../../etc/passwd", "monitoring/summary"):
        with pytest.raises(urllib.error.HTTPError) as error:
            urllib.request.urlopen(server + path, timeout=10)
        assert error.value.code in (403, 404), path


def test_browser_asks_clicks_a_citation_and_sees_the_passage(server: str, tmp_path: Path):
    from playwright.sync_api import expect, sync_playwright

    assert CHROMIUM.exists(), "Debian's chromium is needed: apt-get install -y chromium (make test does it)"
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=str(CHROMIUM),
            headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"],
        )
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        dialogs: list[str] = []
        page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
        page.goto(server)
        expect(page.locator("#status")).to_contain_text("Ready", timeout=60_000)
        page.locator("#question textarea").fill(QUESTION)
        page.locator("#ask").click()
        link = page.locator("#chat a.cite").first
        expect(link).to_be_visible(timeout=60_000)
        expect(page.locator("#chat")).to_contain_text("1965")
        link.click()
        passage = page.locator("#sources #src-1")
        expect(passage).to_have_class("source selected")
        expect(passage.locator("mark")).to_be_visible()
        expect(passage.locator("mark")).to_contain_text("1965")
        page.screenshot(path=str(tmp_path / "answer.png"), full_page=True)
        assert dialogs == []
        browser.close()
    assert (tmp_path / "answer.png").stat().st_size > 10_000
