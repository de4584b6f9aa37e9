"""The real Gradio server on a free port: asked through gradio_client and driven in a real
browser (Playwright with Debian's Chromium)."""

import json
import re
import threading
import urllib.error
import urllib.request
from pathlib import Path

import httpx
import pytest
from conftest import CHROMIUM, running_app

from qa.app.render import plain_text
from qa.config import Settings

pytestmark = pytest.mark.slow

QUESTION = "When did Japan and South Korea establish diplomatic relations?"


@pytest.fixture(scope="module")
def server(seed_workdir: Path):
    with running_app(seed_workdir) as url:
        yield url


@pytest.fixture
def client(server: str):
    from gradio_client import Client

    return Client(server, verbose=False)


def test_page_is_served_on_loopback_only(server: str):
    with urllib.request.urlopen(server, timeout=10) as response:
        assert response.status == 200 and b"docqa" in response.read()
    port = int(server.rstrip("/").rsplit(":", 1)[1])
    listening = set()  # local addresses with a socket listening on the app's port (IPv4)
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        local, state = line.split()[1], line.split()[3]
        address, hex_port = local.split(":")
        if state == "0A" and int(hex_port, 16) == port:
            listening.add(".".join(str(int(address[i : i + 2], 16)) for i in (6, 4, 2, 0)))
    assert listening == {"127.0.0.1"}


def test_ask_endpoint_returns_what_qa_ask_json_returns(client, seed_workdir: Path):
    out = client.predict(QUESTION, api_name="/ask")
    assert {"question", "answer", "abstained", "citations", "passages", "timings", "model"} <= set(out)
    assert "1965" in out["answer"] and out["citations"]
    source = (seed_workdir / "corpus" / "japan_south_korea_relations.txt").read_text(encoding="utf-8")
    for c in out["citations"]:
        assert source[c["start"] : c["end"]] == c["quote"]
    json.dumps(out)  # plain JSON


def test_chat_streams_an_answer_with_citation_links_and_sources(client):
    job = client.submit("What are the Liancourt Rocks called in Korean?", {}, 5, "evidence", True, api_name="/chat")
    chat, sources, conversation = job.result(timeout=120)
    assert len(job.outputs()) >= 2  # the question first, then the answer
    reply = chat[-1]["content"][0]["text"]
    answer_id = re.search(r'href="#(a[0-9a-f]+)-src-1"', reply).group(1)
    assert "Dokdo" in reply and f'id="{answer_id}-src-1"' in sources
    assert "<mark>" in sources and "characters 13511" in sources  # offsets: "show details" was asked for
    assert conversation["sources"] and len(conversation["chat"]) == 2


def test_follow_up_questions_are_made_standalone(client):
    _, _, conversation = client.predict("When did Japan and South Korea sign GSOMIA?", {}, 5, "evidence", False, api_name="/chat")
    chat, sources, _ = client.predict("and when was it renewed?", conversation, 5, "evidence", False, api_name="/chat")
    assert "Searched for: <q>When was GSOMIA renewed?</q>" in sources  # "it": the name, not "Japan and South Korea"
    assert "2017" in chat[-1]["content"][0]["text"]


def test_bad_questions_get_a_message_not_a_traceback(client):
    from gradio_client.exceptions import AppError

    with pytest.raises(AppError, match="question is empty"):
        client.predict("   ", api_name="/ask")
    # A lone surrogate (gradio_client cannot even send one): a real message, never {"error": null}.
    body = json.dumps({"data": ["What is \ud800 Dokdo?"]}).encode()  # ASCII, with the \\ud800 escape
    request = urllib.request.Request(client.src.rstrip("/") + "/gradio_api/call/ask", body,
                                     {"Content-Type": "application/json"})
    event_id = json.loads(urllib.request.urlopen(request, timeout=30).read())["event_id"]
    stream = urllib.request.urlopen(f"{client.src.rstrip('/')}/gradio_api/call/ask/{event_id}", timeout=60).read().decode()
    assert "event: error" in stream and "not valid text" in stream, stream
    chat, _, _ = client.predict("", {}, 5, "evidence", False, api_name="/chat")
    assert "question is empty" in chat[-1]["content"][0]["text"]
    chat, _, _ = client.predict("x" * 100_000, {}, 5, "evidence", False, api_name="/chat")
    assert "too long" in chat[-1]["content"][0]["text"] and "Traceback" not in str(chat)


def test_twenty_users_asking_three_questions_each_all_get_their_own_answer(server: str):
    from gradio_client import Client

    questions = [
        ("When did Japan and South Korea establish diplomatic relations?", "1965"),
        ("What are the Liancourt Rocks called in Korean?", "Dokdo"),
        ("How many Koreans did the Empire of Japan conscript into forced labor?", "7.8 million"),
        ("Which Korean TV series became a runaway hit in Japan in 2003?", "Winter Sonata"),
        ("What was the annual trade between Japan and South Korea as of 2024?", "$77.2 billion"),
    ]
    results: dict[tuple[int, int], tuple[str, str, dict]] = {}
    errors: list[str] = []

    def user(u: int) -> None:
        client = Client(server, verbose=False)
        for i in range(3):
            question, expected = questions[(u + i) % len(questions)]
            try:
                results[u, i] = question, expected, client.predict(question, api_name="/ask")
            except Exception as error:  # collected: every failure is reported below
                errors.append(f"user {u}: {type(error).__name__}: {error}")

    threads = [threading.Thread(target=user, args=(u,)) for u in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=600)
    assert errors == [] and len(results) == 60  # no "Queue is full", no error
    for question, expected, out in results.values():
        assert out["question"] == question  # nobody gets another user's answer
        assert expected in out["answer"] and out["citations"], out["answer"]


def test_server_refuses_files_and_monitoring(server: str):
    for path in ("file=/etc/passwd", "gradio_api/file=/etc/passwd", "gradio_api/file=../../etc/passwd", "gradio_api/file=%2e%2e/%2e%2e/etc/passwd", "monitoring/summary"):
        with pytest.raises(urllib.error.HTTPError) as error:
            urllib.request.urlopen(server + path, timeout=10)
        assert error.value.code in (403, 404), path


def test_foreign_hosts_origins_and_big_bodies_are_refused_before_any_route(server: str, seed_workdir: Path):
    port = server.rstrip("/").rsplit(":", 1)[1]
    assert httpx.get(server, headers={"Host": f"localhost:{port}"}, timeout=10).status_code == 200
    assert httpx.get(server, headers={"Host": "attacker.example:7874"}, timeout=10).status_code == 400
    remove = f"{server}gradio_api/call/remove"  # DNS rebinding: a foreign page posting through the browser
    body = {"data": ["any", True]}
    assert httpx.post(remove, json=body, headers={"Host": "attacker.example:7874"}, timeout=10).status_code == 400
    assert httpx.post(remove, json=body, headers={"Origin": "http://attacker.example"}, timeout=10).status_code == 403
    big = httpx.post(f"{server}gradio_api/queue/join", content=b"{" + b" " * (3 * 2**20), timeout=30)
    assert big.status_code == 413 and "QA_MAX_REQUEST_MB" in big.text
    assert sorted(p.name for p in (seed_workdir / "corpus").glob("[!.]*")) == ["japan_south_korea_relations.txt"]


def test_api_values_of_the_wrong_type_get_a_message_and_change_nothing(client, seed_workdir: Path):
    from gradio_client.exceptions import AppError

    with pytest.raises(AppError):  # Gradio's slider refuses a string before the handler runs
        client.predict(QUESTION, {}, "5", "evidence", False, api_name="/chat")
    chat, _, _ = client.predict(QUESTION, {}, 5, "evidence", "yes", api_name="/chat")
    assert "details must be true or false" in chat[-1]["content"][0]["text"]
    chat, _, _ = client.predict(QUESTION, {"chat": "junk", "asked": [5]}, 5, "evidence", False, api_name="/chat")
    assert "1965" in chat[-1]["content"][0]["text"]  # a malformed conversation is dropped, the question answered
    message, *_ = client.predict("any-id", "false", api_name="/remove")
    assert "must be true or false" in message and "Nothing was changed" in message
    assert (seed_workdir / "corpus" / "japan_south_korea_relations.txt").is_file()


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
        passage = page.locator(f"#sources {link.get_attribute('href')}")
        expect(passage).to_have_class("source selected")
        expect(passage.locator("mark")).to_be_visible()
        expect(passage.locator("mark")).to_contain_text("1965")
        page.screenshot(path=str(tmp_path / "answer.png"), full_page=True)
        assert dialogs == []
        browser.close()
    assert (tmp_path / "answer.png").stat().st_size > 10_000


@pytest.mark.parametrize(
    "question, expect",
    [
        ("x", None),
        ("🙂🙂🙂", "no words"),
        ("What\x00 are the\x01 Liancourt Rocks called in Korean?", "Dokdo"),
        # Noise around the question may lower the reader's confidence below its threshold: then
        # the honest reply is the decline, never a wrong answer or an error.
        ("독도 Dokdo とは what are the Liancourt Rocks called in Korean?", "Dokdo|The documents do not say."),
        ("<img src=x onerror=alert(1)> **What** are the [Liancourt Rocks](javascript:alert(2)) called in Korean?",
         "Dokdo|The documents do not say."),
    ],
)
def test_odd_questions_get_an_answer_or_a_message(client, question: str, expect: str | None):
    chat, _, _ = client.predict(question, {}, 5, "evidence", False, api_name="/chat")
    shown_question, reply = chat[-2]["content"][0]["text"], chat[-1]["content"][0]["text"]
    assert reply and "Traceback" not in reply and "went wrong" not in reply
    if expect:
        assert re.search(expect, reply)
    assert "<img" not in shown_question and "](javascript" not in shown_question  # shown as text


def test_browser_runs_nothing_from_hostile_documents_or_questions(hostile_workdir: Path, tmp_path: Path):
    from playwright.sync_api import expect, sync_playwright

    with running_app(hostile_workdir) as url, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_page()
        dialogs: list[str] = []
        outside: list[str] = []
        page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
        page.on("request", lambda r: outside.append(r.url) if "attacker.example" in r.url else None)
        page.goto(url)
        expect(page.locator("#status")).to_contain_text("Ready", timeout=60_000)
        for question in (
            "When was the Yeongdo lighthouse in Busan built?",
            "<img src=x onerror=alert('q')> <script>alert('q2')</script> what does the harbour note say?",
        ):
            page.locator("#question textarea").fill(question)
            page.locator("#ask").click()
            page.wait_for_timeout(500)
            expect(page.locator("#chat .message-row").last.locator(".draft")).to_have_count(0, timeout=60_000)
        expect(page.locator("#chat")).to_contain_text("1954", timeout=60_000)
        latest = page.locator("#sources .answer-sources").last  # the newest answer's sources are shown
        latest.locator("details summary").first.click() if latest.locator("details").count() else None
        expect(page.locator("#sources")).to_contain_text("<script>alert('doc')</script>")  # shown as text
        page.wait_for_timeout(1000)
        page.screenshot(path=str(tmp_path / "hostile.png"), full_page=True)
        assert dialogs == [] and outside == []
        assert page.evaluate("document.querySelectorAll('#chat img[src=\"x\"], #sources img').length") == 0
        browser.close()


def test_a_language_model_that_fails_to_load_leaves_retrieval_working(seed_workdir: Path, tmp_path: Path):
    from gradio_client import Client

    empty = tmp_path / "empty-model"
    empty.mkdir()
    with running_app(seed_workdir, {"QA_MODEL": str(empty), "QA_ANSWER_MODE": "generative"}) as url:
        client = Client(url, verbose=False)
        chat, _, _ = client.predict("What are the Liancourt Rocks called in Korean?", {}, 5, "generative", False, api_name="/chat")
        assert "could not load the language model" in chat[-1]["content"][0]["text"]
        chat, sources, _ = client.predict("What are the Liancourt Rocks called in Korean?", {}, 5, "evidence", False, api_name="/chat")
        assert "Dokdo" in chat[-1]["content"][0]["text"] and "<mark>" in sources


def test_a_login_can_be_required_and_guessing_it_locks_the_name_out(seed_workdir: Path):
    from gradio_client import Client
    from gradio_client.exceptions import AuthenticationError

    with running_app(seed_workdir, {"QA_AUTH": "reader:s3cret"}) as url:
        with pytest.raises(AuthenticationError, match="credentials were not provided"):
            Client(url, verbose=False).predict("Dokdo?", api_name="/ask")
        out = Client(url, auth=("reader", "s3cret"), verbose=False).predict(QUESTION, api_name="/ask")
        assert "1965" in out["answer"]
        for guess in ("a", "b", "c", "d", "e"):
            with pytest.raises(ValueError, match="Could not login"):
                Client(url, auth=("reader", guess), verbose=False)
        with pytest.raises(ValueError, match="Could not login"):  # locked out: even the right password
            Client(url, auth=("reader", "s3cret"), verbose=False)
        huge = httpx.post(f"{url}login", content=b"username=" + b"a" * (3 * 2**20) + b"&password=x",
                          headers={"Content-Type": "application/x-www-form-urlencoded"}, timeout=30)
        assert huge.status_code == 413  # refused from its length, before the login is parsed


def test_each_client_is_limited_to_its_questions_per_minute(seed_workdir: Path):
    from gradio_client import Client
    from gradio_client.exceptions import AppError

    with running_app(seed_workdir, {"QA_RATE_LIMIT": "2"}) as url:
        client = Client(url, verbose=False)
        for _ in range(2):
            assert "1965" in client.predict(QUESTION, api_name="/ask")["answer"]
        with pytest.raises(AppError, match=r"Too many questions from your address in the last minute: ask again in \d+ s"):
            client.predict(QUESTION, api_name="/ask")
        chat, _, _ = client.predict(QUESTION, {}, 5, "evidence", False, api_name="/chat")
        assert chat[-1]["content"][0]["text"].startswith("Too many questions")
        disguised = Client(url, headers={"X-Forwarded-For": "203.0.113.9"}, verbose=False)  # not a trusted proxy
        with pytest.raises(AppError, match="Too many questions"):
            disguised.predict(QUESTION, api_name="/ask")


def test_uploads_are_sanitised_limited_indexed_and_searchable(seed_workdir: Path, tmp_path: Path):
    import shutil

    from gradio_client import Client, handle_file

    work = tmp_path / "w"
    shutil.copytree(seed_workdir, work, ignore=shutil.ignore_patterns("app-*.log"))
    files = tmp_path / "files"
    files.mkdir()
    (files / "ferry notes (1).md").write_text("# Ferries\n\nThe Beetle hydrofoil links Busan and Fukuoka.\n", encoding="utf-8")
    (files / "tool.exe").write_bytes(b"MZ\x00\x00binary")
    (files / "fake.txt").write_bytes(b"\x00\x01\x02" * 100)
    (files / "huge.txt").write_bytes(b"a" * (21 * 1024 * 1024))
    with running_app(work) as url:
        client = Client(url, verbose=False)
        from gradio_client.exceptions import AppError

        with pytest.raises(AppError, match="Invalid file type"):
            client.predict([handle_file(str(files / "tool.exe"))], api_name="/upload")
        message, header, *_ = client.predict(
            [handle_file(str(files / n)) for n in ("ferry notes (1).md", "fake.txt")], api_name="/upload"
        )
        shown = plain_text(message)
        assert "Added ferry notes _1_.md" in shown and "fake.txt: refused (binary file" in shown
        assert "1 new, 0 changed, 0 removed, 1 unchanged" in shown and "from 2 documents" in header
        assert (work / "corpus" / "ferry notes _1_.md").is_file()
        assert sorted(p.name for p in (work / "corpus").glob("[!.]*")) == ["ferry notes _1_.md", "japan_south_korea_relations.txt"]
        out = client.predict("What links Busan and Fukuoka?", api_name="/ask")
        assert "Beetle" in out["answer"]
        only_seed = client.predict("What links Busan and Fukuoka?", ["japan_south_korea_relations.txt"],
                                   api_name="/ask_in")
        assert only_seed["passages"] and {p["title"] for p in only_seed["passages"]} == {"Japan–South Korea relations"}
        with pytest.raises(AppError, match="no indexed document is named 'nowhere.md'"):
            client.predict("What links Busan and Fukuoka?", ["nowhere.md"], api_name="/ask_in")
        with pytest.raises(ValueError, match="exceeds the maximum file size of 20971520 bytes"):  # the client checks
            client.predict([handle_file(str(files / "huge.txt"))], api_name="/upload")
        with (files / "huge.txt").open("rb") as huge:  # and the server refuses it when the client does not
            refused = httpx.post(f"{url}gradio_api/upload", files={"files": ("huge.txt", huge)}, timeout=60)
        assert refused.status_code == 413 and "maximum allowed size of 20971520 bytes" in refused.text
    assert not (work / "corpus" / "huge.txt").exists()


def test_generative_mode_is_offered_only_with_a_stronger_model_than_the_bundled_one(settings: Settings):
    import dataclasses

    from qa.app.web import build
    from qa.pipeline import Pipeline

    for chosen, offered in ((settings, False), (dataclasses.replace(settings, model="qwen-1.5b"), True),
                            (dataclasses.replace(settings, generative="on"), True)):
        blocks = build(Pipeline(chosen)).blocks.values()
        radio = next(b for b in blocks if getattr(b, "label", None) == "Answer mode")
        note = next(b for b in blocks if getattr(b, "elem_id", None) == "mode-note")
        assert radio.interactive is offered and (radio.value == "evidence" or offered)
        assert ("qa models install qwen-1.5b" in note.value) is not offered

