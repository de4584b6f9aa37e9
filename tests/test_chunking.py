from pathlib import Path

import pytest
from conftest import count_words

from qa.ingest.chunking import pack, split_document
from qa.ingest.readers import parse_sections, read_document
from qa.sentences import HARD_MAX_CHARS, sentence_spans, unit_blocks
from qa.types import Document, make_id

SEED = Path(__file__).resolve().parent.parent / "corpus" / "japan_south_korea_relations.txt"


def doc_of(text: str) -> Document:
    return Document(make_id("t"), "T", "t.txt", text, "0" * 64)


@pytest.fixture(scope="module")
def seed_doc() -> Document:
    return read_document(SEED, SEED.parent)


@pytest.mark.parametrize("budget, overlap", [(160, 40), (60, 0), (400, 100), (20, 10)])
def test_every_chunk_is_the_exact_source_span(seed_doc: Document, budget: int, overlap: int):
    chunks = split_document(seed_doc, count_words, budget, overlap).chunks
    assert chunks
    for chunk in chunks:
        assert seed_doc.text[chunk.start : chunk.end] == chunk.text


def test_chunks_never_cut_inside_a_sentence(seed_doc: Document):
    units = [u for s in parse_sections(seed_doc.text) for u in sentence_spans(seed_doc.text, s.start, s.end)]
    starts, ends = {a for a, _ in units}, {b for _, b in units}
    for chunk in split_document(seed_doc, count_words, 60, 20).chunks:
        assert chunk.start in starts and chunk.end in ends


def test_chunks_respect_the_budget_unless_one_sentence_exceeds_it(seed_doc: Document):
    for chunk in split_document(seed_doc, count_words, 120, 30).chunks:
        units = sentence_spans(seed_doc.text, chunk.start, chunk.end)
        assert count_words([chunk.text])[0] <= 140 or len(units) == 1


def test_seed_sections_and_infobox(seed_doc: Document):
    chunks = split_document(seed_doc, count_words, 160, 40).chunks
    infobox = [c for c in chunks if "Infobox" in c.text]
    assert len(infobox) == 1 and infobox[0].text.startswith("Infobox") and "Envoy2: Lee Hyeok" in infobox[0].text
    assert "Mission2" in infobox[0].text and "diplomatic relations" not in infobox[0].text
    assert any(c.section == "Disputes > Liancourt Rocks" and "Dokdo" in c.text for c in chunks)
    assert max(len(c.text) for c in chunks) <= 1100


def test_overlap_repeats_whole_trailing_sentences():
    text = " ".join(f"Sentence number {i} is here." for i in range(12))
    chunks = split_document(doc_of(text), count_words, budget=20, overlap=7).chunks
    assert len(chunks) > 2
    for a, b in zip(chunks, chunks[1:]):
        assert b.start < a.end  # overlapping
        assert b.text.startswith("Sentence number")


def test_pack_always_makes_progress():
    assert pack([500, 500, 500], budget=100, overlap=400) == [(0, 1), (1, 2), (2, 3)]
    assert pack([], budget=10, overlap=5) == []


def test_sentence_splitting_handles_abbreviations_quotes_and_cjk():
    text = 'Dr. Kim met Mr. Abe in the U.S. in 1998. He said "Sorry." Then they left! 日本は島国。韓国は半島。'
    assert [text[a:b] for a, b in sentence_spans(text)] == [
        "Dr. Kim met Mr. Abe in the U.S. in 1998.",
        'He said "Sorry."',
        "Then they left!",
        "日本は島国。",
        "韓国は半島。",
    ]


def test_list_lines_are_units_of_their_own():
    text = "See also:\n- Alpha\n- Beta two\n\nA wrapped\nsentence continues here."
    assert [text[a:b] for a, b in sentence_spans(text)] == [
        "See also:",
        "- Alpha",
        "- Beta two",
        "A wrapped\nsentence continues here.",
    ]


def test_a_run_without_sentence_ends_is_capped():
    text = "word " * 5000
    spans = sentence_spans(text)
    assert len(spans) > 1 and all(b - a <= HARD_MAX_CHARS for a, b in spans)
    assert [len(block) for block in unit_blocks(text)] == [len(spans)]


def test_chunk_ids_are_stable_and_unique(seed_doc: Document):
    first = split_document(seed_doc, count_words, 160, 40).chunks
    second = split_document(seed_doc, count_words, 160, 40).chunks
    assert [c.chunk_id for c in first] == [c.chunk_id for c in second]
    assert len({c.chunk_id for c in first}) == len(first)


def test_cjk_document_chunks_keep_offsets():
    text = "= 日韓関係 =\n\n== 歴史 ==\n" + "日本と韓国は一九六五年に国交を正常化した。" * 40
    doc = doc_of(text)
    chunks = split_document(doc, lambda ts: [len(t) for t in ts], 100, 20).chunks
    assert len(chunks) > 1 and all(doc.text[c.start : c.end] == c.text and c.section == "歴史" for c in chunks)
