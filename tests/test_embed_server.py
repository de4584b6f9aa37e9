"""Embeddings from a server (QA_EMBED_URL): `RemoteEmbedder` against `python -m qa.app.model_server
--serve embeddings` (real HTTP, the real model), and its batching, retries and bound on requests in
flight against a small stand-in server."""

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
from conftest import model_server, qa

from qa.errors import ModelLoadError
from qa.models.embedders import RemoteEmbedder


class StandIn(BaseHTTPRequestHandler):
    """/v1/embeddings giving each text a vector of its length; fails the first `failures` calls with 503."""

    failures = 0
    calls = 0
    busy = 0
    most_busy = 0
    lock = threading.Lock()

    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        cls = type(self)
        with cls.lock:
            cls.calls += 1
            failing = cls.calls <= cls.failures
            cls.busy += 1
            cls.most_busy = max(cls.most_busy, cls.busy)
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        time.sleep(0.05)
        # No longer busy before replying: once the reply is out, the client may send its next request
        # before this thread runs again.
        with cls.lock:
            cls.busy -= 1
        if failing:
            self.send_response(503)
            self.end_headers()
            return
        data = [{"index": i, "embedding": [float(len(t)), 1.0, 0.0]} for i, t in reversed(list(enumerate(body["input"])))]
        reply = json.dumps({"data": data}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def log_message(self, *args) -> None:  # noqa: ANN002
        pass


@pytest.fixture
def stand_in():
    handler = type("Handler", (StandIn,), {"failures": 0, "calls": 0, "busy": 0, "most_busy": 0, "lock": threading.Lock()})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield handler, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_texts_go_in_batches_with_a_bound_on_requests_in_flight_and_come_back_in_order(stand_in):
    handler, url = stand_in
    embedder = RemoteEmbedder("minilm", url, batch_size=10, in_flight=3)
    texts = ["x" * n for n in range(1, 101)]
    vectors = embedder.embed(texts)
    assert handler.calls == 10 and handler.most_busy == 3
    expected = np.array([[n, 1.0, 0.0] for n in range(1, 101)], np.float32)
    assert vectors == pytest.approx(expected / np.linalg.norm(expected, axis=1, keepdims=True))
    assert embedder.dim == 3 and embedder.embed_query("abc").shape == (1, 3)


def test_a_failing_server_is_retried_then_named(stand_in):
    handler, url = stand_in
    handler.failures = 2
    assert RemoteEmbedder("minilm", url, attempts=3).embed(["a"]).shape == (1, 3)  # two 503s, then an answer
    handler.failures, handler.calls = 10, 0
    with pytest.raises(ModelLoadError, match=r"cannot reach the embedding server at .* after 2 tries \(HTTP 503\)"):
        RemoteEmbedder("minilm", url, attempts=2).embed(["a"])
    with pytest.raises(ModelLoadError, match="cannot reach the embedding server at http://127.0.0.1:9"):
        RemoteEmbedder("minilm", "http://127.0.0.1:9", attempts=1).warm_up()


@pytest.mark.slow  # loads the torch embedder
def test_tokens_are_counted_with_the_models_own_tokenizer(torch_embedder):
    texts = ["Japan and South Korea established relations in 1965.", "Dokdo"]
    assert RemoteEmbedder("minilm", "http://127.0.0.1:9").count_tokens(texts) == torch_embedder.count_tokens(texts)


@pytest.fixture(scope="module")
def embed_server(tmp_path_factory):
    with model_server(tmp_path_factory.mktemp("embed") / "server.log", "--serve", "embeddings") as url:
        yield url


@pytest.mark.slow
def test_the_server_gives_the_vectors_the_local_model_gives(embed_server: str, real_embedder):
    text = (Path(__file__).resolve().parent.parent / "corpus" / "japan_south_korea_relations.txt").read_text(encoding="utf-8")
    texts = [line for line in text.splitlines() if len(line) > 40][:200]
    remote, local = RemoteEmbedder("minilm", embed_server).embed(texts), real_embedder.embed(texts)
    cosines = np.sum(remote * local, axis=1) / np.linalg.norm(remote, axis=1) / np.linalg.norm(local, axis=1)
    assert remote.shape == (len(texts), 384) and cosines.min() >= 0.999


@pytest.mark.slow
def test_qa_indexes_and_answers_with_embeddings_from_the_server(embed_server: str, tmp_path: Path):
    (tmp_path / "corpus").mkdir()
    for path in (Path(__file__).resolve().parent.parent / "corpus").glob("*.txt"):
        (tmp_path / "corpus" / path.name).write_bytes(path.read_bytes())
    env = {"QA_EMBED_URL": embed_server}
    result = qa("index", cwd=tmp_path, env=env)
    assert result.returncode == 0 and result.stdout.startswith("indexed 1 documents"), result.stderr
    question = "When did Japan and South Korea establish diplomatic relations?"
    for environment in (env, {}):  # the same model's vectors: the index serves either way
        result = qa("ask", "--json", question, cwd=tmp_path, env=environment)
        assert result.returncode == 0, result.stderr
        assert json.loads(result.stdout)["short_answer"]["text"] == "December 1965"
    result = qa("ask", question, cwd=tmp_path, env={"QA_EMBED_URL": "http://127.0.0.1:9"})
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "cannot reach the embedding server at http://127.0.0.1:9" in result.stderr
