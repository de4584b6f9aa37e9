"""The index's two stores behind one contract: the files in index/ and Milvus (milvus-lite here,
embedded and as a server; the same pymilvus code reaches a Milvus cluster)."""

import dataclasses
import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import FakeEmbedder, free_port, qa

from qa.app.render import plain_text

from qa.answer.retrieve import Retriever
from qa.config import Settings
from qa.errors import IndexWriteError, MissingIndexError, QAError, StaleIndexError
from qa.index import milvus as milvus_store
from qa.index import milvus_write
from qa.index.build import build_index
from qa.index.store import index_state, load_index

ROOT = Path(__file__).resolve().parent.parent
STORES = ["files", "milvus-lite"]
QUESTIONS = [json.loads(line) for line in (ROOT / "eval" / "questions.jsonl").read_text(encoding="utf-8").splitlines()]


def on_store(settings: Settings, store: str, tmp_path: Path) -> Settings:
    return dataclasses.replace(settings, store="" if store == "files" else f"milvus-lite:{tmp_path / 'milvus' / 'm.db'}")


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> dict:
    """The seed article indexed with the fake embedder into each store: {store: loaded Index}."""
    tmp = tmp_path_factory.mktemp("stores")
    (tmp / "corpus").mkdir()
    for path in (ROOT / "corpus").glob("*.txt"):
        (tmp / "corpus" / path.name).write_bytes(path.read_bytes())
    (tmp / "corpus" / "busan.md").write_text("# Busan\n\nThe Yeongdo lighthouse in Busan was built in 1954.\n")
    settings = Settings(corpus_dir=tmp / "corpus", index_dir=tmp / "index")
    out = {}
    for store in STORES:
        s = on_store(settings, store, tmp)
        build_index(s, FakeEmbedder(), progress=False)
        out[store] = (s, load_index(s, "fake"))
    return out


@pytest.mark.parametrize("store", STORES)
def test_every_store_holds_the_same_chunks_ids_offsets_and_sentences(built: dict, store: str):
    _, files = built["files"]
    _, index = built[store]
    assert index.chunks == files.chunks and index.documents == files.documents
    assert index.manifest.chunk_count == len(index.chunks) and index.sentence_count == files.sentence_count
    for chunk in index.chunks[:: max(1, len(index.chunks) // 10)]:
        sentences = index.sentences_of(chunk)
        assert sentences == files.sentences_of(chunk)
        assert [index.sentence_text(u) for u in sentences.units] == [files.sentence_text(u) for u in sentences.units]
        assert index.sentence_vectors(sentences.units) == pytest.approx(files.sentence_vectors(sentences.units), abs=1e-6)
    doc_id = index.chunks[-1].doc_id
    assert index.stored_document(doc_id).chunk_vectors == pytest.approx(files.stored_document(doc_id).chunk_vectors, abs=1e-6)


@pytest.mark.parametrize("store", STORES)
def test_every_store_ranks_alike_whole_and_within_one_document(built: dict, store: str):
    settings, files = built["files"]
    _, index = built[store]
    embedder = FakeEmbedder()
    expected, found = Retriever(files, embedder, settings), Retriever(index, embedder, settings)
    for q in QUESTIONS[:20]:
        assert [p.chunk.chunk_id for p in found.search(q["question"], 5)] == [
            p.chunk.chunk_id for p in expected.search(q["question"], 5)]
        lexical, wanted = found.lexical(q["question"], 10), expected.lexical(q["question"], 10)
        assert [row for row, _ in lexical] == [row for row, _ in wanted]
        assert [score for _, score in lexical] == pytest.approx([score for _, score in wanted], rel=1e-4)
    busan = next(d.doc_id for d in index.documents.values() if d.path == "busan.md")
    within = found.search("When was the lighthouse built?", 3, documents=[busan])
    assert [p.chunk.doc_id for p in within] == [busan]
    assert index.bm25_search("Dokdo", 5) and not index.bm25_search("the of and", 5)


def test_a_milvus_rebuild_embeds_only_new_documents_and_drops_old_generations(seed_settings: Settings, tmp_path: Path):
    settings = on_store(seed_settings, "milvus-lite", tmp_path)
    embedder = FakeEmbedder()
    build_index(settings, embedder, progress=False)
    first = load_index(settings, "fake")
    (settings.corpus_dir / "busan.md").write_text("# Busan\n\nThe Yeongdo lighthouse in Busan was built in 1954.\n")
    embedded = []
    embedder.embed = lambda texts, inner=embedder.embed: embedded.extend(texts) or inner(texts)
    summary = build_index(settings, embedder, progress=False)
    assert (summary.new, summary.unchanged) == (1, 1) and embedded and all("Busan" in t for t in embedded)
    second = load_index(settings, "fake")
    assert set(first.chunks) < set(second.chunks) and len(second.chunks) == len(first.chunks) + 1
    build_index(settings, embedder, progress=False)  # a third generation: the first is dropped
    client = milvus_store.connect(settings)
    generations = {milvus_write._generation_of(c, "docqa") for c in client.list_collections()}
    assert len(generations) == 2


def test_a_milvus_build_takes_no_file_lock_and_writes_nothing_beside_the_index_folder(seed_settings: Settings,
                                                                                     tmp_path: Path):
    settings = dataclasses.replace(on_store(seed_settings, "milvus-lite", tmp_path), index_dir=tmp_path / "folder" / "index")
    build_index(settings, FakeEmbedder(), progress=False)
    assert not (tmp_path / "folder").exists()  # no .index.lock, no .index.tmp-…
    assert load_index(settings, "fake").chunks


def test_a_failed_milvus_build_leaves_the_previous_index_answering(seed_settings: Settings, tmp_path: Path, monkeypatch):
    settings = on_store(seed_settings, "milvus-lite", tmp_path)
    build_index(settings, FakeEmbedder(), progress=False)
    before = milvus_store.connect(settings).list_collections()
    (settings.corpus_dir / "busan.md").write_text("# Busan\n\nThe Yeongdo lighthouse in Busan was built in 1954.\n")

    def fail(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(milvus_write, "_insert_units", fail)
    with pytest.raises(IndexWriteError, match="disk full.*previous index is untouched"):
        build_index(settings, FakeEmbedder(), progress=False)
    assert sorted(milvus_store.connect(settings).list_collections()) == sorted(before)  # nothing half-written kept
    index = load_index(settings, "fake", require_fresh=False)
    assert {d.path for d in index.documents.values()} == {"japan_south_korea_relations.txt"}


def test_two_builds_into_one_milvus_store_at_once_leave_the_newer_index_answering(seed_settings: Settings,
                                                                                  tmp_path: Path, monkeypatch):
    """Two machines build into one store; the first to start finishes last. Each waits for its
    turn, so neither drops the generation the other published (the index stays, with both files)."""
    import threading

    first = on_store(seed_settings, "milvus-lite", tmp_path)
    build_index(first, FakeEmbedder(), progress=False)
    second = dataclasses.replace(first, index_dir=tmp_path / "other-index")
    (first.corpus_dir / "busan.md").write_text("# Busan\n\nThe Yeongdo lighthouse in Busan was built in 1954.\n")
    slow = threading.Event()
    insert_units = milvus_write._insert_units

    def slowly(*args, **kwargs):  # the first build writes slowly; the second starts meanwhile
        if not slow.is_set():
            slow.set()
            time.sleep(3)
        return insert_units(*args, **kwargs)

    monkeypatch.setattr(milvus_write, "_insert_units", slowly)
    errors = []
    builds = [threading.Thread(target=lambda s=s: errors.extend(_build_errors(s))) for s in (first, second)]
    builds[0].start()
    assert slow.wait(30)
    builds[1].start()
    for build in builds:
        build.join(120)
    assert errors == []
    index = load_index(first, "fake")
    assert {d.path for d in index.documents.values()} == {"japan_south_korea_relations.txt", "busan.md"}
    assert not [c for c in milvus_store.connect(first).list_collections() if "_build_" in c]  # turns given back


def test_a_killed_builds_ticket_stops_counting_once_it_is_not_renewed(seed_settings: Settings, tmp_path: Path):
    """A build killed while it holds its turn leaves its ticket; the next build drops it as soon as
    it has gone unrenewed for the lease (not after hours), while a renewed ticket is waited for."""
    import threading

    settings = on_store(seed_settings, "milvus-lite", tmp_path)
    client = milvus_store.connect(settings)
    stopped_ns = time.time_ns() - (milvus_write.LEASE_SECONDS + 5) * 1_000_000_000
    dead = f"{settings.store_collection}_build_{stopped_ns}_999999_deadbeef"  # as a killed build leaves it
    client.create_collection(dead, dimension=2)
    began = time.monotonic()
    build_index(settings, FakeEmbedder(), progress=False)
    assert time.monotonic() - began < 60 and dead not in client.list_collections()
    done, held = threading.Event(), threading.Event()

    def hold_the_turn() -> None:
        with milvus_write.build_turn(milvus_store.connect(settings), settings.store_collection):
            held.set()
            done.wait(30)

    holder = threading.Thread(target=hold_the_turn)
    holder.start()
    assert held.wait(30)
    time.sleep(milvus_write.RENEW_SECONDS + 1)  # renewed at least once since
    with pytest.raises(IndexWriteError, match="another build has been writing"):
        with milvus_write.build_turn(client, settings.store_collection, wait=2):
            pass
    done.set()
    holder.join(30)
    assert not [c for c in client.list_collections() if "_build_" in c]


def _build_errors(settings: Settings) -> list[str]:
    try:
        build_index(settings, FakeEmbedder(), progress=False)
    except QAError as error:
        return [str(error)]
    return []


def test_a_milvus_index_says_what_is_wrong(seed_settings: Settings, tmp_path: Path):
    settings = on_store(seed_settings, "milvus-lite", tmp_path)
    with pytest.raises(MissingIndexError, match="no index named 'docqa' in the Milvus store.*qa index"):
        load_index(settings, "fake")
    assert index_state(settings, "fake")[0] == "missing"
    build_index(settings, FakeEmbedder(), progress=False)
    with pytest.raises(StaleIndexError, match="built with embedding model 'fake', now 'minilm'"):
        load_index(settings, "minilm")
    (settings.corpus_dir / "japan_south_korea_relations.txt").unlink()
    assert index_state(settings, "fake") == ("stale", "index is stale: run `qa index` (1 removed (japan_south_korea_relations.txt))")


def test_a_collection_that_is_not_a_docqa_index_is_named_not_overwritten(seed_settings: Settings, tmp_path: Path):
    settings = on_store(seed_settings, "milvus-lite", tmp_path)
    milvus_store.connect(settings).create_collection("docqa", dimension=8)
    embedder = FakeEmbedder()
    embedder.embed = lambda texts: pytest.fail("embedded before the store was checked")
    for attempt in (lambda: load_index(settings, "fake"), lambda: build_index(settings, embedder, progress=False)):
        with pytest.raises(QAError, match="holds a collection named 'docqa' that is not a docqa index: choose another"
                                          " name with QA_STORE_COLLECTION"):
            attempt()
    assert milvus_store.connect(settings).list_collections() == ["docqa"]


@pytest.mark.slow
def test_an_unreachable_milvus_server_is_one_clear_line(tmp_path: Path):
    (tmp_path / "corpus").mkdir()
    (tmp_path / "corpus" / "a.md").write_text("# A\n\nSome text.\n")
    for args in (["index"], ["ask", "What?"], ["search", "text"]):
        result = qa(*args, "--store", "milvus://127.0.0.1:9", cwd=tmp_path)
        assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
        assert result.stderr.startswith("error: cannot reach the Milvus store milvus://127.0.0.1:9"), result.stderr


@pytest.mark.slow
def test_qa_index_into_a_local_milvus_logs_no_traceback(tmp_path: Path):
    (tmp_path / "corpus").mkdir()
    (tmp_path / "corpus" / "a.md").write_text("# A\n\nThe Beetle hydrofoil links Busan and Fukuoka.\n")
    result = qa("index", "--store", f"milvus-lite:{tmp_path / 'm' / 'm.db'}", cwd=tmp_path)
    assert result.returncode == 0 and result.stdout.startswith("indexed 1 documents"), result.stderr
    assert "Traceback" not in result.stderr and "ERROR" not in result.stderr, result.stderr


@pytest.mark.slow
def test_a_local_milvus_open_in_another_process_is_one_clear_line(seed_settings: Settings, tmp_path: Path):
    settings = on_store(seed_settings, "milvus-lite", tmp_path)
    build_index(settings, FakeEmbedder(), progress=False)  # this process now holds the local store
    result = qa("search", "Dokdo", "--store", settings.store, "--corpus", str(settings.corpus_dir), cwd=tmp_path)
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
    assert result.stderr.startswith("error: another process has the local Milvus store"), result.stderr
    assert "QA_STORE=milvus://HOST:PORT" in result.stderr


def test_a_collection_released_by_a_restarted_milvus_is_loaded_again(seed_settings: Settings, tmp_path: Path):
    """A restarted Milvus server holds every collection released: the next search loads it again
    instead of answering "call load()" until some other process does."""
    settings = on_store(seed_settings, "milvus-lite", tmp_path)
    build_index(settings, FakeEmbedder(), progress=False)
    retriever = Retriever(load_index(settings, "fake"), FakeEmbedder(), settings)
    question = "When did Japan and South Korea establish diplomatic relations?"
    before = [p.chunk.chunk_id for p in retriever.search(question, 3)]
    client = milvus_store.connect(settings)

    def release_all() -> None:
        for collection in client.list_collections():
            client.release_collection(collection)

    release_all()
    assert [p.chunk.chunk_id for p in retriever.search(question, 3)] == before
    release_all()
    assert retriever.index._unit_vectors.get(0, 2).shape[0] == 2  # read by key: loaded again too


@pytest.mark.parametrize("garbage", [b"\xff\xfe garbage", b'{"docqa": ', b"[1, 2]"])
def test_a_damaged_local_alias_file_is_named_and_qa_index_repairs_it(seed_settings: Settings, tmp_path: Path,
                                                                      garbage: bytes):
    settings = on_store(seed_settings, "milvus-lite", tmp_path)
    store = Path(milvus_store.uri_of(settings.store))
    store.mkdir(parents=True)
    (store / "aliases.json").write_bytes(garbage)
    with pytest.raises(QAError, match=r"alias file .*aliases.json is damaged: run `qa index`"):
        load_index(settings, "fake")
    build_index(settings, FakeEmbedder(), progress=False)  # sets the file aside and builds anew
    assert [p.read_bytes() for p in store.glob("aliases.json.damaged-*")] == [garbage]
    assert {d.path for d in load_index(settings, "fake").documents.values()} == {"japan_south_korea_relations.txt"}


@pytest.fixture
def milvus_server(tmp_path: Path):
    """`milvus-lite server` on a free loopback port; yields its `milvus://` store setting."""
    port = free_port()
    log = (tmp_path / "milvus.log").open("w")
    process = subprocess.Popen([str(Path(sys.executable).parent / "milvus-lite"), "server", "--data-dir",
                                str(tmp_path / "milvus-data"), "--host", "127.0.0.1", "--port", str(port)],
                               stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, (tmp_path / "milvus.log").read_text()
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "milvus-lite server did not start within 60 s"
                time.sleep(0.2)
        yield f"milvus://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()


@pytest.mark.slow
def test_qa_indexes_into_a_milvus_server_and_answers_from_it(milvus_server: str, tmp_path: Path):
    (tmp_path / "corpus").mkdir()
    for path in (ROOT / "corpus").glob("*.txt"):
        (tmp_path / "corpus" / path.name).write_bytes(path.read_bytes())
    env = {"QA_STORE": milvus_server}
    result = qa("index", cwd=tmp_path, env=env)
    assert result.returncode == 0 and result.stdout.startswith("indexed 1 documents"), result.stderr
    assert not (tmp_path / "index").exists()  # nothing in the folder: the index is in Milvus
    result = qa("ask", "--json", "When did Japan and South Korea establish diplomatic relations?", cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["short_answer"]["text"] == "December 1965"


@pytest.mark.slow
def test_the_gold_passage_is_found_alike_in_both_stores(seed_settings: Settings, tmp_path: Path, real_embedder):
    found = {}
    for store in STORES:
        settings = on_store(seed_settings, store, tmp_path)
        build_index(settings, real_embedder, progress=False)
        retriever = Retriever(load_index(settings, real_embedder.name), real_embedder, settings)
        found[store] = [
            any(e in p.chunk.text for p in retriever.search(q["question"], 5) for e in q["evidence"])
            for q in QUESTIONS if q.get("evidence")
        ]
    assert found["milvus-lite"] == found["files"] and sum(found["files"]) >= 0.8 * len(found["files"])


@pytest.mark.slow
def test_two_app_replicas_on_one_milvus_see_each_others_uploads_and_removals(milvus_server: str, tmp_path: Path):
    from conftest import running_app
    from gradio_client import Client, handle_file

    work = tmp_path / "w"
    (work / "corpus").mkdir(parents=True)
    for path in (ROOT / "corpus").glob("*.txt"):
        (work / "corpus" / path.name).write_bytes(path.read_bytes())
    env = {"QA_STORE": milvus_server}
    assert qa("index", cwd=work, env=env).returncode == 0
    note = tmp_path / "ferries.md"
    note.write_text("# Ferries\n\nThe Beetle hydrofoil links Busan and Fukuoka.\n", encoding="utf-8")
    question = "What links Busan and Fukuoka?"

    def answer_on(client: Client, wanted: bool) -> dict:  # the other replica sees a new build within seconds
        deadline = time.monotonic() + 30
        while True:
            out = client.predict(question, api_name="/ask")
            if ("Beetle" in out["answer"]) == wanted or time.monotonic() > deadline:
                return out
            time.sleep(1)

    with running_app(work, env) as first, running_app(work, env) as second:
        one, two = Client(first, verbose=False), Client(second, verbose=False)
        assert "Beetle" not in two.predict(question, api_name="/ask")["answer"]
        message, *_ = one.predict([handle_file(str(note))], api_name="/upload")
        assert "Added ferries.md" in plain_text(message)
        out = answer_on(two, wanted=True)
        assert "Beetle" in out["answer"], out
        doc_id = next(p["doc_id"] for p in out["passages"] if p["title"] == "Ferries")
        message, *_ = one.predict(doc_id, False, api_name="/remove")
        assert "Beetle" not in answer_on(two, wanted=False)["answer"]
