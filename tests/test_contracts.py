"""The promises every generator and every embedder keeps, checked the same way for each: the real
ones (llama.cpp, an OpenAI-compatible server, the ONNX and the torch embedder) and the stand-ins
the unit tests use, so a stand-in cannot pass a test the real part would fail."""

import threading

import numpy as np
import pytest
from conftest import FakeEmbedder, ScriptedGenerator

from qa.answer.prompts import messages

CHAT = messages("When did Japan and South Korea establish diplomatic relations?",
                [(1, "Japan and South Korea formally established diplomatic relations in December 1965.")])
REPLY = " ".join(["Relations were established in December 1965 [1]."] * 10)  # 70 words: more than any limit below


@pytest.fixture(scope="module", params=["scripted", pytest.param("llama.cpp", marks=pytest.mark.slow),
                                        pytest.param("openai", marks=pytest.mark.slow)])
def generator(request):
    from qa.models.generate import LlamaCppGenerator, OpenAIGenerator

    if request.param == "scripted":
        return ScriptedGenerator(REPLY)
    if request.param == "llama.cpp":
        return LlamaCppGenerator("smollm2", 2)
    return OpenAIGenerator(request.getfixturevalue("generator_server"), "smollm2")


def test_a_generator_has_one_name_before_and_after_loading(generator):
    name = generator.name
    generator.warm_up()
    assert isinstance(name, str) and name and generator.name == name


def test_a_generator_streams_text_pieces_within_the_token_limit(generator):
    pieces = list(generator.stream(CHAT, 12))
    assert 1 < len(pieces) <= 12 and all(isinstance(piece, str) for piece in pieces) and "".join(pieces).strip()
    assert "".join(generator.stream(CHAT, 12)) == "".join(pieces)  # greedy: the same text again


def test_a_generator_stops_soon_after_cancel(generator):
    cancel, seen = threading.Event(), []
    for piece in generator.stream(CHAT, 64, cancel):
        seen.append(piece)
        cancel.set()
    assert 1 <= len(seen) <= 3  # within a piece or two, not after 64


@pytest.fixture(scope="module", params=["fake", pytest.param("onnx", marks=pytest.mark.slow),
                                        pytest.param("torch", marks=pytest.mark.slow)])
def embedder(request):
    if request.param == "fake":
        return FakeEmbedder()
    return request.getfixturevalue("real_embedder" if request.param == "onnx" else "torch_embedder")


def test_an_embedder_gives_unit_float32_rows_the_same_for_the_same_text(embedder):
    texts = ["The treaty was signed in 1965.", "Busan is a port city.", "The treaty was signed in 1965."]
    vectors = embedder.embed(texts)
    assert vectors.dtype == np.float32 and vectors.shape == (3, embedder.dim)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-3)
    assert np.allclose(vectors[0], vectors[2], atol=1e-5)
    query = embedder.embed_query("When was the treaty signed?")
    assert query.shape == (1, embedder.dim) and query.dtype == np.float32
    cosines = vectors @ query[0]
    assert cosines[0] > cosines[1]  # the passage that answers is nearer than the one that does not


def test_an_embedder_counts_tokens_per_text(embedder):
    counts = embedder.count_tokens(["one", "The treaty was signed in 1965 by both governments."])
    assert all(isinstance(n, int) and n > 0 for n in counts) and counts[0] < counts[1]
    assert embedder.count_tokens([]) == []
