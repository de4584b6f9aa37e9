"""The chat as a person uses it, in a real browser (Playwright with Debian's Chromium) on the real
app: each answer's own sources, the document view, Stop, history across a reload, and indexing
(upload, removal) that never blocks a question asked meanwhile."""

import json
import re
import shutil
import time
from pathlib import Path

import pytest
from conftest import CHROMIUM, qa, running_app

FIRST = "When did Japan and South Korea establish diplomatic relations?"
SECOND = "What are the Liancourt Rocks called in Korean?"


@pytest.fixture(scope="module")
def server(seed_workdir: Path):
    with running_app(seed_workdir, {"QA_GENERATIVE": "on"}) as url:  # streaming tests use the bundled model
        yield url


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    assert CHROMIUM.exists(), "Debian's chromium is needed: apt-get install -y chromium (make test does it)"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=["--no-sandbox", "--disable-gpu"])
        yield browser
        browser.close()


def open_chat(browser, url: str):  # noqa: ANN001, ANN201 - a Playwright page, ready to take questions
    # A new page is a new browser context, so its conversation starts empty. Tests do not press
    # Clear first: its reply can land after the next question was sent and empty that conversation.
    from playwright.sync_api import expect

    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(url)
    expect(page.locator("#status")).to_contain_text("Ready", timeout=60_000)
    return page


def ask(page, question: str) -> float:  # noqa: ANN001
    """Ask in the page; seconds until the answer (or the decline) is shown in full."""
    replies = page.locator("#chat .bot-row").count()
    blocks = page.locator("#sources .answer-sources").count()
    page.locator("#question textarea").fill(question)
    began = time.monotonic()
    page.locator("#ask").click()
    page.wait_for_function(  # the reply, final, and its sources in the panel
        f"""() => {{
            const rows = document.querySelectorAll('#chat .bot-row');
            return rows.length > {replies} && !rows[rows.length - 1].querySelector('.draft')
                && document.querySelectorAll('#sources .answer-sources').length > {blocks};
        }}""",
        timeout=60_000,
    )
    return time.monotonic() - began


@pytest.mark.slow  # loads the real models
def test_a_marker_in_an_older_answer_selects_that_answers_passage(server: str, browser):
    from playwright.sync_api import expect

    page = open_chat(browser, server)
    ask(page, FIRST)
    ask(page, SECOND)
    first_marker = page.locator("#chat a.cite").first
    assert "1965" in first_marker.get_attribute("title")  # hovering previews the quoted sentence
    first_marker.click()
    selected = page.locator("#sources .source.selected")
    expect(selected).to_have_count(1)
    expect(selected).to_be_visible()
    assert selected.get_attribute("id") == first_marker.get_attribute("href")[1:]
    expect(selected.locator("mark")).to_contain_text("1965")
    expect(page.locator("#sources .answer-sources").last).to_be_hidden()  # the second answer's sources
    page.locator("#chat a.cite").last.click()
    expect(page.locator("#sources .source.selected")).to_contain_text("Dokdo")
    labels = page.evaluate("Array.from(document.querySelectorAll('#chat [aria-label]'), e => e.getAttribute('aria-label'))")
    assert any(label.startswith("bot's message: December 1965") for label in labels)
    assert not any("<" in label for label in labels)  # plain text for screen readers, no markup
    page.close()


@pytest.mark.slow  # loads the real models
def test_a_cited_passage_opens_the_whole_document_at_the_span(server: str, browser):
    from playwright.sync_api import expect

    page = open_chat(browser, server)
    ask(page, SECOND)
    page.locator("#sources .source").first.locator("a.open-doc").click()
    cited = page.locator("#document mark#cited")
    expect(cited).to_contain_text("called Dokdo", timeout=30_000)
    expect(cited).to_be_in_viewport()
    expect(page.locator("#document h3")).to_have_text("Japan–South Korea relations")
    assert len(page.locator("#document .doc-text").inner_text()) > 30_000  # the whole article (35 KB), not the passage
    page.close()


@pytest.mark.slow  # loads the real models
def test_the_conversation_survives_a_reload_until_it_is_cleared(server: str, browser):
    from playwright.sync_api import expect

    page = open_chat(browser, server)
    ask(page, FIRST)
    page.reload()
    expect(page.locator("#status")).to_contain_text("Ready", timeout=60_000)
    expect(page.locator("#chat")).to_contain_text("December 1965")
    page.locator("#chat a.cite").first.click()
    expect(page.locator("#sources .source.selected mark")).to_contain_text("1965")
    page.locator("#clear").click()
    expect(page.locator("#chat a.cite")).to_have_count(0)
    page.reload()
    expect(page.locator("#status")).to_contain_text("Ready", timeout=60_000)
    page.wait_for_timeout(1000)
    expect(page.locator("#chat")).not_to_contain_text("December 1965")
    page.close()


@pytest.mark.slow  # loads the real models
def test_stop_ends_an_answer_being_written(server: str, browser):
    from playwright.sync_api import expect

    page = open_chat(browser, server)
    page.locator("#chat-settings").get_by_text("Settings").click()
    page.get_by_label("generative").check()
    page.locator("#question textarea").fill(FIRST)
    page.locator("#ask").click()
    stop = page.locator("#stop")
    expect(stop).to_be_visible(timeout=10_000)
    stop.click()
    last = page.locator("#chat .message-row").last
    expect(last).to_contain_text("Stopped before the answer was finished.", timeout=10_000)
    expect(page.locator("#ask")).to_be_visible()
    page.wait_for_timeout(3000)  # nothing of the cancelled answer arrives afterwards
    expect(page.locator("#chat .message-row").last).to_contain_text("Stopped before the answer was finished.")
    page.close()


@pytest.mark.slow  # loads the real models
def test_the_box_empties_once_a_question_is_sent_and_keeps_what_is_typed_during_the_answer(server: str, browser):
    from playwright.sync_api import expect

    page = open_chat(browser, server)
    page.locator("#chat-settings").get_by_text("Settings").click()
    page.get_by_label("generative").check()  # an answer long enough to type during it
    box = page.locator("#question textarea")
    box.fill(FIRST)
    page.locator("#ask").click()
    expect(page.locator("#stop")).to_be_visible(timeout=10_000)
    expect(box).to_have_value("", timeout=10_000)
    box.fill("What are the Liancourt Rocks called in Korean?")
    assert page.locator("#stop").is_visible()  # typed while the answer was being written
    expect(page.locator("#ask")).to_be_visible(timeout=60_000)  # the answer is finished
    expect(page.locator("#chat")).to_contain_text("1965")
    page.wait_for_timeout(1000)
    expect(box).to_have_value("What are the Liancourt Rocks called in Korean?")
    page.close()


@pytest.mark.slow  # loads the real models
def test_a_tab_closed_mid_answer_does_not_hold_up_the_next_question(server: str, browser):
    from playwright.sync_api import expect

    for _ in range(2):  # each leaves while its answer is being written
        page = open_chat(browser, server)
        page.locator("#chat-settings").get_by_text("Settings").click()
        page.get_by_label("generative").check()
        page.locator("#question textarea").fill(FIRST)
        page.locator("#ask").click()
        expect(page.locator("#stop")).to_be_visible(timeout=10_000)
        page.close()
    page = open_chat(browser, server)
    assert ask(page, "What are the Liancourt Rocks called in Korean?") < 30
    expect(page.locator("#chat")).to_contain_text("Dokdo")
    page.close()


RECORD_REPLIES = """() => {
    window.replySnapshots = [];
    const chat = document.querySelector('#chat');
    new MutationObserver(() => {
        const rows = chat.querySelectorAll('.bot-row');
        const row = rows[rows.length - 1];
        if (row) window.replySnapshots.push({row: rows.length, draft: !!row.querySelector('.draft'),
                                             text: row.innerText.trim()});
    }).observe(chat, {subtree: true, childList: true, characterData: true});
}"""


@pytest.mark.slow  # loads the real models
def test_generated_answers_never_turn_into_a_refusal(server: str, browser):
    """Every state of a generated reply, recorded as the browser shows it: text that does not look
    provisional is shown once, final; an unanswerable question shows no generated text at all."""
    page = open_chat(browser, server)
    page.locator("#chat-settings").get_by_text("Settings").click()
    page.get_by_label("generative").check()
    page.evaluate(RECORD_REPLIES)
    questions = [FIRST, "What is the population of Busan?", SECOND]
    for row, question in enumerate(questions, start=1):
        ask(page, question)
        final = page.locator("#chat .bot-row").last.inner_text().strip()
        shown = [s for s in page.evaluate("window.replySnapshots") if s["row"] == row and s["text"]]
        assert shown, f"no reply recorded for {question!r}"
        finished_looking = {s["text"] for s in shown if not s["draft"]}
        assert finished_looking == {final}, f"{question!r}: shown as an answer before the final one: {finished_looking}"
        if "Busan" in question:
            # not answered: declined (with where the closest passage is), or the closest sentence, unsure
            assert final.startswith(("The documents do not say.", "Not sure —")) and not any(s["draft"] for s in shown)
        else:
            assert any(s["draft"] for s in shown), "generated text was not shown as a draft first"
            assert "do not say" not in final  # the reader answers these; a rejected draft leaves its answer
    page.close()


@pytest.mark.slow  # loads the real models
def test_indexing_an_upload_never_blocks_a_question_and_a_document_can_be_removed(
    seed_workdir: Path, tmp_path: Path, browser
):
    from playwright.sync_api import expect

    work = tmp_path / "w"
    shutil.copytree(seed_workdir, work, ignore=shutil.ignore_patterns("app-*.log"))
    report = tmp_path / "harbour report.md"
    lines = ["# Harbour report", "", "The Beetle hydrofoil links Busan and Fukuoka in about three hours.", ""]
    for n in range(1, 900):  # ~100 KB of varied sentences
        lines.append(f"Berth {n} of the harbour handled {n * 37 % 9000} containers in week {n % 52 + 1}, "
                     f"with crane {n % 17} serving ships from port number {n * 13 % 400}.")
    report.write_text("\n".join(lines) + "\n", encoding="utf-8")
    assert 90_000 < report.stat().st_size < 140_000
    with running_app(work) as url:
        indexing = open_chat(browser, url)
        asking = open_chat(browser, url)
        indexing.get_by_role("tab", name="Index").click()
        indexing.locator("#uploads input[type=file]").set_input_files(str(report))
        indexing.wait_for_timeout(1000)
        indexing.locator("#add").click()
        expect(indexing.locator("body")).to_contain_text("embedding harbour report.md", timeout=60_000)
        seconds = ask(asking, FIRST)
        assert "Done:" not in indexing.locator("#index-message").inner_text()  # still indexing meanwhile
        print(f"answered in {seconds:.2f} s while indexing")
        assert seconds < 2, f"a question took {seconds:.1f} s while a file was being indexed"
        expect(indexing.locator("#index-message")).to_contain_text("Done:", timeout=300_000)
        expect(indexing.locator("#index-message")).to_contain_text("1 new, 0 changed, 0 removed, 1 unchanged")
        expect(indexing.locator("#uploads")).not_to_contain_text("harbour report.md")  # the picker is empty again
        expect(indexing.locator("#status")).to_contain_text("from 2 documents")
        expect(indexing.locator("#documents")).to_contain_text("harbour report.md")
        ask(asking, "What links Busan and Fukuoka?")
        expect(asking.locator("#sources .answer-sources").last).to_contain_text("The Beetle hydrofoil")  # searchable
        asking.reload()  # the new document is offered in "Search in"
        expect(asking.locator("#status")).to_contain_text("from 2 documents", timeout=60_000)
        asking.locator("#search-in input").click()
        asking.get_by_role("option", name="Japan–South Korea relations (japan_south_korea_relations.txt)").click()
        asking.keyboard.press("Escape")
        ask(asking, "What links Busan and Fukuoka?")
        latest = asking.locator("#sources .answer-sources").last
        expect(latest).to_contain_text("Searched in: Japan–South Korea relations")
        assert "Harbour report" not in latest.inner_text()  # only the chosen document was searched

        indexing.locator("#uploads input[type=file]").set_input_files(str(report))
        indexing.wait_for_timeout(1000)
        indexing.locator("#add").click()
        expect(indexing.locator("#index-message")).to_contain_text("already indexed", timeout=60_000)

        indexing.locator("#removable input").click()
        indexing.get_by_role("option", name="Harbour report (harbour report.md)").click()
        indexing.locator("#remove").click()
        expect(indexing.locator("#index-message")).to_contain_text("0 new, 0 changed, 1 removed", timeout=120_000)
        expect(indexing.locator("#documents")).not_to_contain_text("harbour report.md")
        expect(indexing.locator("#status")).to_contain_text("from 1 document")
    assert (work / "corpus" / "harbour report.md").is_file()  # removed from the index, kept in the corpus


@pytest.mark.slow  # loads the real models
def test_an_answer_can_be_cancelled_through_the_api(server: str):
    from gradio_client import Client
    from gradio_client.utils import Status

    job = Client(server, verbose=False).submit(FIRST, {}, 5, "generative", False, api_name="/chat")
    deadline = time.monotonic() + 60
    while not job.outputs():  # the question is shown first: the answer is under way
        assert time.monotonic() < deadline and not job.done()
        time.sleep(0.05)
    assert job.cancel()
    deadline = time.monotonic() + 30
    while job.status().code is not Status.CANCELLED:
        assert time.monotonic() < deadline, job.status()
        time.sleep(0.1)


@pytest.mark.slow  # loads the real models
def test_an_out_of_date_index_answers_under_a_banner(seed_workdir: Path, tmp_path: Path, browser):
    from playwright.sync_api import expect

    work = tmp_path / "w"
    shutil.copytree(seed_workdir, work, ignore=shutil.ignore_patterns("app-*.log"))
    (work / "corpus" / "left behind.md").write_text("# Notes\n\nAn upload the server died before indexing.\n")
    with running_app(work) as url:
        page = open_chat(browser, url)
        expect(page.locator("#status")).to_contain_text("The index is out of date")
        expect(page.locator("#status")).to_contain_text("1 added (left behind.md)")
        ask(page, FIRST)
        expect(page.locator("#chat .bot-row").last).to_contain_text("December 1965")
        page.close()


def test_generated_text_is_shown_as_a_draft_until_the_verified_answer_replaces_it():
    from qa.answer.answerer import AnswerStream
    from qa.app import webchat
    from qa.types import Answer

    class Drafting:  # streams a claim the verification then rejects
        replaced = False  # True: the reader's quoted answer replaces the draft (instead of a refusal)

        def ask_stream(self, question, k, mode, history=(), documents=()):  # noqa: ANN001, ANN202
            return AnswerStream(self.items(question, mode))

        def items(self, question, mode):  # noqa: ANN001, ANN202
            yield "Busan has 9 million "
            yield "people [1]."
            if self.replaced:
                yield Answer(question, "“Busan is a port.”", (), (), False, "evidence", "m", raw_text="Busan has…")
            else:
                yield Answer(question, "The documents do not say.", (), (), True, mode, "m", raw_text="Busan has…")

        class index:  # noqa: N801
            title = staticmethod(lambda chunk: "T")
            where = staticmethod(lambda chunk, start=None: "T")

    steps = list(webchat.chat(Drafting(), "What is the population of Busan?", {}, 5, "generative", False))
    drafts = [chat[-1]["content"] for chat, _, _ in steps[1:-1]]
    assert drafts and all('class="draft"' in d and "being checked against the sources" in d for d in drafts)
    final = steps[-1][0][-1]["content"]
    assert final.endswith(">The documents do not say.</div>") and "draft" not in final
    evidence = list(webchat.chat(Drafting(), "What is the population of Busan?", {}, 5, "evidence", False))
    assert len(evidence) == 2  # the question, then the answer: nothing provisional in evidence mode
    replacing = Drafting()
    replacing.replaced = True
    final = list(webchat.chat(replacing, "What is Busan?", {}, 5, "generative", False))[-1][0][-1]["content"]
    assert "Busan is a port" in final and "did not hold up against the sources" in final  # said, calmly


@pytest.mark.slow  # loads the real models
def test_highlights_stay_readable_in_dark_mode(server: str, browser):
    page = browser.new_page(viewport={"width": 1400, "height": 1000}, color_scheme="dark")
    page.goto(server)
    from playwright.sync_api import expect

    expect(page.locator("#status")).to_contain_text("Ready", timeout=60_000)
    assert page.evaluate("document.body.classList.contains('dark')")  # the page follows the system setting
    ask(page, FIRST)
    contrast = page.evaluate("""() => {
        const channel = (c) => { c /= 255; return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4; };
        const luminance = (rgb) => { const [r, g, b] = rgb.match(/\\d+/g).map(Number);
                                     return 0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b); };
        return [...document.querySelectorAll('#sources .answer-sources:last-child mark')].map((mark) => {
            const style = getComputedStyle(mark);
            const [a, b] = [luminance(style.color), luminance(style.backgroundColor)].sort((x, y) => y - x);
            return (a + 0.05) / (b + 0.05);
        });
    }""")
    assert contrast and min(contrast) >= 4.5, contrast


@pytest.mark.slow  # loads the real models
def test_a_thumbs_down_is_kept_and_exported_as_a_question_file(seed_workdir: Path, tmp_path: Path, browser):
    from playwright.sync_api import expect

    from qa.evaluation.evaluate import load_questions

    feedback = tmp_path / "feedback.jsonl"
    with running_app(seed_workdir, {"QA_FEEDBACK_FILE": str(feedback)}) as url:
        page = open_chat(browser, url)
        ask(page, FIRST)
        ask(page, "What is the population of Busan?")
        page.locator("#chat").get_by_role("button", name="Like", exact=True).nth(0).click()  # one per answer
        expect(page.get_by_text("Saved — thanks").first).to_be_visible(timeout=10_000)  # said, not just coloured
        page.locator("#chat").get_by_role("button", name="Feedback", exact=True).nth(1).hover()  # the reasons' menu
        page.locator("#chat .extra-feedback-options").nth(1).get_by_text("Should have answered").click()  # one click…
        page.locator("#feedback-note textarea").fill("The documents do not give Busan's population.")
        page.locator("#send-note").click()  # the note goes with the last judgement
        expect(page.get_by_text("Note saved with your feedback").first).to_be_visible(timeout=10_000)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and (not feedback.exists() or len(feedback.read_text().splitlines()) < 3):
            time.sleep(0.2)
        page.wait_for_timeout(500)
        judged = """() => [...document.querySelectorAll(
                              '#chat button[aria-label=Like], #chat button[aria-label=Dislike], #chat .extra-feedback-options button')]
                          .map(b => b.textContent + (b.getAttribute('aria-label') || '') + ':' + (b.querySelector('path')
                                    ? b.querySelector('path').getAttribute('d') : b.style.fontWeight))"""
        before = page.evaluate(judged)
        assert len(before) == 9  # a 👍 shows only the choice; a reason both thumbs; each answer its 3 reasons
        assert [b for b in before if b.endswith(":bold")] == ["Should have answered:bold"]  # the reason chosen
        page.reload()  # the choices are shown again with the conversation
        expect(page.locator("#chat .bot-row")).to_have_count(2, timeout=30_000)
        assert page.evaluate(judged) == before
    liked, disliked, noted = [json.loads(line) for line in feedback.read_text(encoding="utf-8").splitlines()]  # …one line
    assert liked["liked"] and liked["short_answer"] == "December 1965" and liked["citations"][0]["quote"]
    assert not disliked["liked"] and disliked["question"] == "What is the population of Busan?"
    assert disliked["reason"] == "Should have answered"
    assert noted["answer_id"] == disliked["answer_id"] and noted["note"].startswith("The documents do not give")
    out = tmp_path / "regression.jsonl"
    result = qa("feedback", "export", "--out", str(out), cwd=seed_workdir, env={"QA_FEEDBACK_FILE": str(feedback)})
    assert result.returncode == 0, result.stderr
    questions, problems = load_questions(out)
    assert not problems and [q.answers for q in questions] == [("December 1965",), ()]
    assert questions[0].evidence and questions[1].type == "disliked"  # the note replaced its judgement's line
    assert json.loads(out.read_text().splitlines()[1])["note"].startswith("The documents do not give")


@pytest.mark.slow  # loads the real models
def test_the_conversation_exports_as_markdown_with_every_answer_and_source(server: str, browser):
    from playwright.sync_api import expect

    page = open_chat(browser, server)
    ask(page, FIRST)
    ask(page, "What are the Liancourt Rocks called in Korean?")
    page.locator("#export").click()
    link = page.locator("#exported a[href]").first
    expect(link).to_be_visible(timeout=30_000)
    markdown = page.request.get(link.get_attribute("href")).text()
    assert f"## {FIRST}" in markdown and "## What are the Liancourt Rocks called in Korean?" in markdown
    assert "December 1965" in markdown and "Dokdo" in markdown
    assert markdown.count("- [1] Japan–South Korea relations") == 2 and "<" not in markdown  # plain Markdown


@pytest.mark.slow  # loads the real models
def test_the_chat_settings_and_the_documents_searched_survive_a_reload(server: str, browser):
    from playwright.sync_api import expect

    page = open_chat(browser, server)
    page.locator("#chat-settings").get_by_text("Settings").first.click()
    page.get_by_label("generative").check()
    expect(page.locator("#mode-note")).to_contain_text("make model")  # what to expect of the small model
    page.locator("#search-in input").click()
    page.get_by_role("option", name="Japan–South Korea relations (japan_south_korea_relations.txt)").click()
    page.keyboard.press("Escape")
    page.wait_for_timeout(500)
    page.reload()
    expect(page.locator("#status")).to_contain_text("Ready", timeout=60_000)
    expect(page.locator("#search-in")).to_contain_text("Japan–South Korea relations", timeout=30_000)
    page.locator("#chat-settings").get_by_text("Settings").first.click()
    expect(page.get_by_label("generative")).to_be_checked()
    page.get_by_label("evidence").check()  # as it was, for the other tests on this server
    page.wait_for_timeout(500)


@pytest.mark.slow  # loads the real models
def test_a_click_on_an_example_asks_it(server: str, browser):
    from playwright.sync_api import expect

    page = open_chat(browser, server)
    example = page.locator("#examples").get_by_role("button", name=FIRST)
    expect(example).to_be_visible(timeout=30_000)  # from corpus/.qaexamples
    example.click()
    expect(page.locator("#chat .bot-row").last).to_contain_text("December 1965", timeout=60_000)
    buttons = page.locator("#examples button:visible")
    assert buttons.count() >= 4
    for n in range(1, buttons.count()):  # every example offered gets an answer: not "Not sure", not a refusal
        buttons.nth(n).click()
        expect(page.locator("#chat .bot-row")).to_have_count(n + 1, timeout=60_000)
        page.wait_for_function("() => !document.querySelector('#chat .bot-row:last-child .draft')")
        text = page.locator("#chat .bot-row").last.inner_text()
        assert not text.startswith(("Not sure", "The documents do not say")), text


@pytest.mark.slow  # loads the real models
def test_on_a_narrow_screen_a_marker_opens_its_passage_below_the_answer(server: str, browser):
    page = browser.new_page(viewport={"width": 400, "height": 800})
    page.goto(server)
    from playwright.sync_api import expect

    expect(page.locator("#status")).to_contain_text("Ready", timeout=60_000)
    ask(page, FIRST)
    marker = page.locator("#chat a.cite").last
    marker.click()
    passage = page.locator("#chat .inline-source").last
    expect(passage).to_contain_text("December 1965")
    page.wait_for_timeout(1000)  # scrolled into view after the chat's own scrolling settles
    box = passage.bounding_box()
    assert box and 0 <= box["y"] and box["y"] + box["height"] <= 800  # within the viewport, not 1,000 px down


@pytest.mark.slow  # loads the real models
def test_the_copy_button_copies_the_answer_as_text(server: str, browser):
    context = browser.new_context(viewport={"width": 1400, "height": 1000}, permissions=["clipboard-read", "clipboard-write"])
    page = context.new_page()
    from playwright.sync_api import expect

    page.goto(server)
    expect(page.locator("#status")).to_contain_text("Ready", timeout=60_000)
    ask(page, FIRST)
    page.locator("#chat").get_by_role("button", name="Copy message").last.click()  # the answer's (the question's first)
    page.wait_for_timeout(300)
    copied = page.evaluate("navigator.clipboard.readText()")
    answer, _, sources = copied.partition("\n")
    assert answer.startswith("December 1965 — “") and answer.endswith("[1]"), copied
    assert sources.startswith("Sources:\n[1] Japan–South Korea relations") and "1965" in sources, copied
    assert "<" not in copied and "\\" not in copied
    context.close()


@pytest.mark.slow  # loads the real models
def test_summarize_a_document_gets_a_cited_overview_and_the_document_view_opens_with_it(server: str, browser):
    from playwright.sync_api import expect

    page = open_chat(browser, server)
    ask(page, "Summarize Japan-South Korea relations")  # a hyphen for the title's en dash
    reply = page.locator("#chat .bot-row").last
    expect(reply).to_contain_text("Japan–South Korea relations: “Japan–South Korea relations (")  # the opening
    sections = re.findall(r"^([^:“\n]+): “", reply.inner_text(), re.MULTILINE)[1:]  # the title's line first
    assert len(sections) >= 6 and {"History", "Public opinion"} <= set(sections), sections
    assert reply.locator("a.cite").count() >= 8  # every sentence cited
    page.locator("#sources .answer-sources").last.locator("a.open-doc").first.click()
    overview = page.locator("#document .overview")
    expect(overview).to_contain_text("Sections:", timeout=30_000)
    expect(overview.locator("li").nth(5)).to_be_visible()
    page.get_by_role("tab", name="Index").click()
    page.locator("#overview-of input").click()
    page.get_by_role("option", name="Japan–South Korea relations (japan_south_korea_relations.txt)").click()
    expect(page.locator("#overview li").nth(5)).to_be_visible(timeout=30_000)
    page.locator("#overview a.open-doc").nth(2).click()  # opens the document there, on the Chat tab
    expect(page.locator("#document mark#cited")).to_be_visible(timeout=30_000)


@pytest.mark.slow  # loads the real models
def test_the_conversation_survives_a_restart_of_the_app(seed_workdir: Path, tmp_path: Path, browser):
    from conftest import free_port
    from playwright.sync_api import expect

    work = tmp_path / "w"
    shutil.copytree(seed_workdir, work, ignore=shutil.ignore_patterns("app-*.log", ".docqa-browser-key"))
    port, errors = free_port(), []
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.on("console", lambda message: message.type == "error" and errors.append(message.text))
    for restart in (False, True):
        with running_app(work, port=port) as url:
            page.goto(url)
            expect(page.locator("#status")).to_contain_text("Ready", timeout=60_000)
            if restart:
                expect(page.locator("#chat")).to_contain_text("December 1965")
            else:
                ask(page, FIRST)
            page.goto("about:blank")  # else the page, seeing its server go, reloads itself when the next one comes up
    assert (work / ".docqa-browser-key").stat().st_mode & 0o077 == 0  # readable by its owner only
    assert not [e for e in errors if "localStorage" in e], errors
    context.close()


@pytest.mark.slow  # loads the real models
def test_answers_show_the_documents_text_as_written_in_chat_copy_and_export(seed_workdir: Path, server: str, browser):
    """No Markdown escape shows (the article has no backslash): "Park Chung-hee", "(…)" as written,
    in the chat, on the clipboard and in the exported conversation."""
    from playwright.sync_api import expect

    questions = [q for q in (seed_workdir / "corpus" / ".qaexamples").read_text(encoding="utf-8").splitlines()
                 if q and not q.startswith("#")] + ["Who was the military ruler who normalised relations with Japan?"]
    context = browser.new_context(viewport={"width": 1400, "height": 1000}, permissions=["clipboard-read", "clipboard-write"])
    page = context.new_page()
    page.goto(server)
    expect(page.locator("#status")).to_contain_text("Ready", timeout=60_000)
    shown = []
    for question in questions:
        ask(page, question)
        text = page.locator("#chat .bot-row").last.inner_text().strip()
        page.locator("#chat").get_by_role("button", name="Copy message").last.click()
        page.wait_for_timeout(300)
        copied = page.evaluate("navigator.clipboard.readText()").partition("\nSources:")[0].strip()
        assert "\\" not in text and "&#" not in text and "&amp;" not in text, text
        assert " ".join(copied.split()) in " ".join(text.split()), (copied, text)
        shown.append(copied)
    assert any("Park Chung-hee" in s or "(" in s for s in shown), shown  # the characters that were escaped
    page.locator("#export").click()
    link = page.locator("#exported a[href]").first
    expect(link).to_be_visible(timeout=30_000)
    markdown = page.request.get(link.get_attribute("href")).text()
    assert "\\" not in markdown and "&#" not in markdown
    context.close()


@pytest.mark.slow  # loads the real models
def test_the_chat_label_covers_no_message_and_an_unoffered_mode_looks_disabled(seed_workdir: Path, browser):
    from playwright.sync_api import expect

    with running_app(seed_workdir, {"QA_GENERATIVE": "off"}) as url:
        page = open_chat(browser, url)
        for question in (FIRST, "What is GSOMIA?", "Where are the Liancourt Rocks?"):  # enough to scroll
            ask(page, question)
        label, scroller, block = page.evaluate("""() => ['[data-testid="block-label"]', '.bubble-wrap', ''].map((s) => {
            const b = document.querySelector('#chat ' + s).getBoundingClientRect(); return [b.top, b.bottom]; })""")
        assert label[1] <= scroller[0] and scroller[1] <= block[1]  # messages scroll below the "Answers" label, not under it
        page.locator("#chat-settings").get_by_text("Settings").first.click()  # open the settings
        expect(page.locator("#answer-mode label").first).to_be_visible(timeout=30_000)
        looks = page.evaluate("""() => [...document.querySelectorAll('#answer-mode label')].map((l) => [
            l.querySelector('input').disabled, Number(getComputedStyle(l).opacity), getComputedStyle(l).cursor])""")
    assert len(looks) == 2 and all(disabled and opacity <= 0.6 and cursor == "not-allowed" for disabled, opacity, cursor in looks)


@pytest.mark.slow  # loads the real models
def test_questions_over_a_sheet_a_csv_and_a_deck_cite_the_row_and_slide_without_markup(tmp_path: Path, browser):
    from conftest import qa
    from test_office import make_pptx

    import openpyxl

    from playwright.sync_api import expect

    (tmp_path / "corpus").mkdir()
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.title = "Exports 2024"
    for row in (["Country", "Units shipped", "Revenue"], ["Korea", 80, 0], ["Japan", 1200, 61.4], ["Vietnam", 300, 12.5]):
        sheet.append(row)
    workbook.save(tmp_path / "corpus" / "sales.xlsx")
    (tmp_path / "corpus" / "branches.csv").write_text("Branch,City,Staff\nNorth,Busan,14\nSouth,Jeju,6\n", encoding="utf-8")
    make_pptx(tmp_path / "corpus" / "results.pptx")
    assert qa("index", cwd=tmp_path).returncode == 0
    asked = {"Which country had the most revenue?": ("Japan", "sheet Exports 2024, row 3"),
             "How many units were shipped to Vietnam?": ("300", "sheet Exports 2024, row 4"),
             "In which city is the South branch?": ("Jeju", "branches › row 3"),
             "What is the growth target for 2025?": ("15 percent", "Outlook, slide 2"),
             "What is the total revenue?": ("73.9", "sheet Exports 2024, row ")}  # computed: its rows cited
    with running_app(tmp_path) as url:
        page = open_chat(browser, url)
        for question, (value, place) in asked.items():
            ask(page, question)
            reply = page.locator("#chat .bot-row").last
            expect(reply).to_contain_text(value)
            text = reply.inner_text()
            assert "<a" not in text and "##" not in text and "**" not in text, text  # no markup shown as text
            where = page.locator("#sources .answer-sources").last.locator(".source .where").first.inner_text()
            assert place in where, (question, where)
