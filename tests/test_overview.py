"""A document's extractive overview and the questions that ask for one."""

import random

import numpy as np
import pytest
from conftest import FakeEmbedder, FakeReader

from qa.config import Settings
from qa.index.build import build_index
from qa.answer.overview import MAX_KEY_SENTENCES, NEAR_COPY, document_overview, overview_request
from qa.index.store import load_index
from qa.pipeline import Pipeline

FALCON = """# Project Falcon

Project Falcon is a plan to build a small supersonic drone for mapping coastal reefs.

## Budget

The budget of Project Falcon is four million euros over three years, paid by the regional council.

## Team

The team of Project Falcon has twelve engineers working in Brest and two divers who test the drone.
"""


@pytest.fixture
def two_documents(seed_settings: Settings) -> Settings:
    (seed_settings.corpus_dir / "falcon.md").write_text(FALCON, encoding="utf-8")
    (seed_settings.corpus_dir / "report.md").write_text("# Falcon Report\n\nThe Falcon Report reviews the drone's first "
                                                        "year at sea and the reefs it mapped off Brest.\n", encoding="utf-8")
    build_index(seed_settings, FakeEmbedder(), progress=False)
    return seed_settings


@pytest.mark.parametrize(("question", "named"), [
    ("Summarize the Project Falcon document.", "falcon"),
    ("summarise falcon.md", "falcon"),
    ("Give me an overview of Project Falcon", "falcon"),
    ("What is Project Falcon about?", "falcon"),
    ("What's in the falcon file?", "falcon"),
    ("Summarize Japan–South Korea relations", "seed"),
    ("Summarize Japan-South Korea relations", "seed"),  # a hyphen for the title's en dash
    ("summarize the japan - south korea relations.", "seed"),
    ("Give an overview of “Japan—South Korea Relations”", "seed"),
    ("Summarize Falcon Report", "report"),
    ("What is the budget about?", None),  # names no document: a question like any other
    ("Summarize the treaty of 1965", None),
    ("Summarize the Falcon Report", "report"),  # "Report" is part of the title, not filler
    ("What are the Liancourt Rocks called in Korean?", None),
])
def test_a_question_asks_for_an_overview_only_when_it_names_a_document(two_documents: Settings, question: str, named):
    index = load_index(two_documents, "fake")
    ids = {("falcon" if d.path == "falcon.md" else "report" if d.path == "report.md" else "seed"): d.doc_id
           for d in index.documents.values()}
    assert overview_request(question, index) == ([ids[named]] if named else [])


def test_summarize_this_document_means_the_chosen_ones(two_documents: Settings):
    index = load_index(two_documents, "fake")
    falcon = next(d.doc_id for d in index.documents.values() if d.path == "falcon.md")
    assert overview_request("Summarize this document", index) == []  # three documents: which one?
    assert overview_request("Summarize this document", index, [falcon]) == [falcon]


def test_an_overview_is_the_outline_and_a_key_sentence_from_each_section_in_document_order(two_documents: Settings):
    index = load_index(two_documents, "fake")
    seed = next(d.doc_id for d in index.documents.values() if d.path.endswith(".txt"))
    overview = document_overview(index, seed)
    sections = [c.section for c in index.chunks if c.doc_id == seed and c.section]
    assert list(overview.outline) == list(dict.fromkeys(sections)) and "Disputes > Liancourt Rocks" in overview.outline
    assert 6 <= len(overview.sentences) <= MAX_KEY_SENTENCES
    assert len({s.chunk.section for s in overview.sentences}) == len(overview.sentences)  # one per section: the whole article
    assert {s.chunk.section.split(" > ")[0] for s in overview.sentences} >= {"History", "Disputes", "Public opinion"}
    assert overview.lead[0].text.startswith("Japan–South Korea relations (")  # the opening paragraph, not the infobox
    assert not any(s.text.startswith(("It ", "This ", "However", "The issue")) for s in overview.sentences)
    starts = [s.start for s in overview.sentences]
    assert starts == sorted(starts)
    for s in overview.sentences:
        assert s.chunk.doc_id == seed and s.chunk.text[s.start - s.chunk.start:s.end - s.chunk.start] == s.text
    vectors = FakeEmbedder().embed([s.text for s in overview.sentences])
    similar = vectors @ vectors.T - np.eye(len(vectors))
    assert similar.max() < NEAR_COPY + 0.05  # no near-copies (the index's vectors are embedding texts, close to these)


def test_summarize_gets_a_cited_overview_in_both_modes(two_documents: Settings):
    pipeline = Pipeline(two_documents, embedder=FakeEmbedder(), reader=FakeReader())
    for mode in ("evidence", "generative"):
        answer = pipeline.ask("Summarize the Project Falcon document.", mode=mode)
        assert not answer.abstained and answer.model == "overview"
        assert answer.text.startswith("Project Falcon: “Project Falcon is a plan to build a small supersonic drone")
        assert "\n\nBudget: “The budget" in answer.text and "\n\nTeam: “The team" in answer.text
        assert len(answer.citations) == 3
        for c in answer.citations:
            chunk = answer.passages[c.marker - 1].chunk
            assert chunk.text[c.start - chunk.start:c.end - chunk.start] == c.quote and f"[{c.marker}]" in answer.text
    assert pipeline.ask("What is the budget about?").model != "overview"


def test_the_chat_offers_only_examples_that_are_answered(two_documents: Settings):
    from qa.app.webchat import examples_view

    pipeline = Pipeline(two_documents, embedder=FakeEmbedder(), reader=FakeReader(("four million euros", "August 2017")))
    (two_documents.corpus_dir / ".qaexamples").write_text("What is the budget of Project Falcon?\nWhat is the capital of "
                                                          "Mars?\n", encoding="utf-8")
    assert [b["value"] for b in examples_view(pipeline) if b.get("visible")] == ["What is the budget of Project Falcon?"]
    (two_documents.corpus_dir / ".qaexamples").unlink()  # none listed: made from the documents, each answered
    offered = [b["value"] for b in examples_view(pipeline) if b.get("visible")]
    assert offered == ["When did South Korea and Japan decide to renew the agreement?", "Summarize Project Falcon",
                       "Summarize Japan–South Korea relations", "Summarize Falcon Report"]
    assert pipeline.ask(offered[0]).short_answer.text == "August 2017"
    assert all(pipeline.ask(q).model == "overview" for q in offered[1:])


def test_an_overview_quotes_no_speaker_notes_labels_or_leaning_sentences(settings: Settings):
    body = "\n\n".join(
        f"## Part {n}\n\nThe reef survey of part {n} counted {n * 7} coral colonies along the northern shelf of the bay. "
        f"Notes: the reef survey of part {n} counted coral colonies along the northern shelf, as the slide says. "
        f"\n\nFinding {n}: the reef survey of part {n} counted coral colonies along the northern shelf of the bay.\n\n"
        f"However, the reef survey of part {n} counted coral colonies along the northern shelf of the bay twice."
        for n in range(1, 7))
    notes_first = "Notes: the speaker thanks the divers of the reef survey team before the first slide of the deck."
    (settings.corpus_dir / "deck.md").write_text(f"# Reef survey\n\n{notes_first}\n\n{body}\n", encoding="utf-8")
    build_index(settings, FakeEmbedder(), progress=False)
    index = load_index(settings, "fake")
    overview = document_overview(index, next(iter(index.documents)))
    assert len(overview.sentences) >= 2 and overview.lead[0].text.startswith("The reef survey of part 1 ")
    for s in overview.sentences:
        assert s.text.startswith("The reef survey of part"), s.text  # not the notes, the finding or "However"


def test_a_document_without_headings_is_overviewed_from_end_to_end(settings: Settings):
    topics = ["harbour", "glacier", "orchard", "railway", "library", "volcano", "vineyard", "lighthouse", "canal"]
    rng = random.Random(7)
    words = [f"{a}{b}{c}" for a in "bcdfgklmnprstvz" for b in "aeiou" for c in ("ne", "sk", "ll", "rt")]
    paragraphs = [" ".join(f"The {t} {' '.join(rng.sample(words, 4))} was studied by team {k} in the year {1900 + k}."
                           for k in range(8)) for t in topics]
    text = "\n\n".join(paragraphs) + "\n"
    (settings.corpus_dir / "plain.txt").write_text(text, encoding="utf-8")
    build_index(settings, FakeEmbedder(), progress=False)
    index = load_index(settings, "fake")
    overview = document_overview(index, next(iter(index.documents)))
    starts = [0] + [s.start for s in overview.sentences] + [len(text)]
    assert len(overview.sentences) == 7 and max(b - a for a, b in zip(starts, starts[1:])) < len(text) * 2 / 7
