"""The generator behind an OpenAI-compatible HTTP server: `python -m qa.app.model_server` serving
the bundled model, asked by `OpenAIGenerator` and by the whole pipeline (QA_GENERATOR_URL)."""

import time
from dataclasses import replace
from pathlib import Path

import pytest
from conftest import free_port

from qa.answer.prompts import messages
from qa.config import Settings
from qa.errors import ModelLoadError
from qa.models.generate import LlamaCppGenerator, OpenAIGenerator
from qa.pipeline import Pipeline

pytestmark = pytest.mark.slow

CHAT = messages(
    "When did Japan and South Korea establish diplomatic relations?",
    [(1, "Japan and South Korea formally established diplomatic relations in December 1965.")],
)


@pytest.fixture(scope="module")
def server(generator_server: str) -> str:
    return generator_server


def test_the_server_streams_what_the_local_model_writes(server: str):
    remote = OpenAIGenerator(server, "smollm2")
    remote.warm_up()
    pieces = list(remote.stream(CHAT, 24))
    local = "".join(LlamaCppGenerator("smollm2", 2).stream(CHAT, 24))
    assert len(pieces) > 1 and "".join(pieces) == local  # greedy: the same text, in pieces


def test_clients_that_leave_mid_answer_do_not_hold_up_the_next_one(server: str):
    import httpx

    body = {"model": "smollm2", "messages": CHAT, "max_tokens": 300, "stream": True}
    for _ in range(3):  # each reads the first piece, then hangs up
        with httpx.stream("POST", f"{server}/v1/chat/completions", json=body, timeout=30) as response:
            next(line for line in response.iter_lines() if '"content"' in line)
    began = time.monotonic()
    whole = httpx.post(f"{server}/v1/chat/completions", json={**body, "stream": False, "max_tokens": 8}, timeout=60)
    assert whole.status_code == 200 and whole.json()["choices"][0]["message"]["content"]
    assert time.monotonic() - began < 15  # not behind the abandoned answers' 300 tokens each
    assert "".join(OpenAIGenerator(server, "smollm2", timeout=30).stream(CHAT, 8))


def test_a_client_that_leaves_before_its_whole_answer_does_not_hold_up_the_next_one(server: str):
    import httpx

    story = [{"role": "user", "content": "Write the longest story you can about a dragon."}]  # runs to max_tokens
    with pytest.raises(httpx.ReadTimeout):  # ~30 s of generating; the client gives up after 2 and hangs up
        httpx.post(f"{server}/v1/chat/completions", json={"messages": story, "max_tokens": 2048}, timeout=2)
    began = time.monotonic()
    whole = httpx.post(f"{server}/v1/chat/completions", json={"messages": CHAT, "max_tokens": 8}, timeout=60)
    assert whole.status_code == 200 and whole.json()["choices"][0]["message"]["content"]
    assert time.monotonic() - began < 10  # not behind the abandoned answer


def test_the_pipeline_generates_through_qa_generator_url(server: str, seed_workdir: Path):
    settings = Settings.from_env(
        {"QA_GENERATOR_URL": server, "QA_MODEL": "smollm2"},
        corpus_dir=seed_workdir / "corpus", index_dir=seed_workdir / "index",
    )
    pipeline = Pipeline(settings)
    answer = pipeline.ask("When did Japan and South Korea establish diplomatic relations?", mode="generative")
    assert pipeline.generator.name == f"smollm2 at {server}" and answer.raw_text.strip()  # it wrote through the server
    assert not answer.abstained and answer.citations and "1965" in answer.text
    assert answer.model == (pipeline.generator.name if answer.mode == "generative" else pipeline.reader.name)
    for c in answer.citations:  # verified like any other generator's
        assert c.quote in answer.passages[c.marker - 1].chunk.text


def test_an_unreachable_server_is_a_clear_error(seed_workdir: Path):
    port = free_port()  # nothing listens there
    settings = replace(Settings(corpus_dir=seed_workdir / "corpus", index_dir=seed_workdir / "index"),
                       generator_url=f"http://127.0.0.1:{port}")
    with pytest.raises(ModelLoadError, match="cannot reach the generator"):
        Pipeline(settings).generator.warm_up()
