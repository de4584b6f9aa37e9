import json
import os
import subprocess
import sys
import textwrap
from dataclasses import replace
from pathlib import Path

import pytest

from qa.answer.retrieve import Retriever
from qa.config import Settings
from qa.errors import CorruptIndexError, EmptyCorpusError, IndexBusyError, MissingIndexError, StaleIndexError
from qa.index import build as build_module
from qa.index import manifest as manifest_module
from qa.index import swap
from qa.index import writer as writer_module
from qa.index.build import build_index
from qa.index.store import index_state, load_index

ROOT = Path(__file__).resolve().parent.parent


def test_build_then_load_and_search(seed_settings: Settings, fake_embedder):
    summary = build_index(seed_settings, fake_embedder, progress=False)
    assert summary.documents == 1 and summary.chunks > 20
    index = load_index(seed_settings, "fake")
    assert index.manifest.chunk_count == len(index.chunks) == summary.chunks
    manifest = json.loads((seed_settings.index_dir / "manifest.json").read_text())
    assert manifest["embedding"] == {"model": "fake", "dim": 64}
    assert manifest["chunking"]["tokens"] == seed_settings.chunk_tokens
    assert set(manifest["sources"]) == {"japan_south_korea_relations.txt"}
    assert len(manifest["sources"]["japan_south_korea_relations.txt"]["sha256"]) == 64
    assert {"vectors.faiss", "units.faiss", "units.npy", "chunk_units.npy", "chunks.jsonl", "documents.json"} <= set(
        manifest["files"]
    )
    assert manifest["built_at"] and manifest["qa_version"]
    passages = Retriever(index, fake_embedder, seed_settings).search("Liancourt Rocks Dokdo Korean", 3)
    assert [p.rank for p in passages] == [1, 2, 3]
    assert "Dokdo" in passages[0].chunk.text
    assert passages[0].bm25_rank is not None and passages[0].dense_rank is not None


def test_sentence_units_map_to_the_chunks_that_hold_them(seed_settings: Settings, fake_embedder):
    build_index(seed_settings, fake_embedder, progress=False)
    index = load_index(seed_settings, "fake")
    assert index.sentence_count == index.manifest.unit_count > len(index.chunks)
    seen = set()
    for row, chunk in enumerate(index.chunks):
        sentences = index.sentences_of(chunk)
        assert sentences.spans[0][0] == chunk.start and sentences.spans[-1][1] == chunk.end
        for unit, (start, end) in zip(sentences.units, sentences.spans):
            assert row in index.chunks_of_unit(unit) and chunk.start <= start < end <= chunk.end
            assert index.sentence_text(unit) == chunk.text[start - chunk.start : end - chunk.start]
            seen.add(unit)
    assert seen == set(range(index.sentence_count))


def test_missing_index_says_run_qa_index(settings: Settings):
    with pytest.raises(MissingIndexError, match="qa index"):
        load_index(settings, "fake")
    assert index_state(settings, "fake")[0] == "missing"


def test_empty_corpus_folder_is_a_clear_error(settings: Settings, fake_embedder):
    with pytest.raises(EmptyCorpusError, match="no documents"):
        build_index(settings, fake_embedder, progress=False)
    assert not settings.index_dir.exists()


def test_corpus_of_only_unreadable_files_is_a_clear_error(settings: Settings, fake_embedder):
    (settings.corpus_dir / "a.txt").write_bytes(b"\x00\xff" * 100)
    (settings.corpus_dir / "b.txt").write_bytes(b"")
    with pytest.raises(EmptyCorpusError, match="no readable documents"):
        build_index(settings, fake_embedder, progress=False)


def test_bad_files_are_skipped_and_the_rest_indexed(seed_settings: Settings, fake_embedder):
    (seed_settings.corpus_dir / "binary.txt").write_bytes(b"\x00\x01\x02" * 100)
    (seed_settings.corpus_dir / "empty.md").write_bytes(b"")
    (seed_settings.corpus_dir / "latin1.txt").write_bytes("Le café de Séoul.".encode("latin-1"))
    summary = build_index(seed_settings, fake_embedder, progress=False)
    assert summary.documents == 2 and set(summary.skipped) == {"binary.txt", "empty.md"}
    assert index_state(seed_settings, "fake")[0] == "fresh"  # skipped files do not make it stale
    index = load_index(seed_settings, "fake")
    assert any("Le café de Séoul." in c.text for c in index.chunks)


@pytest.mark.parametrize("change", ["edit", "add", "remove", "model", "chunking"])
def test_stale_index_is_detected(seed_settings: Settings, fake_embedder, change: str):
    (seed_settings.corpus_dir / "extra.md").write_text("# Extra\n\nSome text.\n", encoding="utf-8")
    build_index(seed_settings, fake_embedder, progress=False)
    settings, model = seed_settings, "fake"
    if change == "edit":
        with (seed_settings.corpus_dir / "extra.md").open("a", encoding="utf-8") as f:
            f.write("More.\n")
    elif change == "add":
        (seed_settings.corpus_dir / "new.txt").write_text("New.", encoding="utf-8")
    elif change == "remove":
        (seed_settings.corpus_dir / "extra.md").unlink()
    elif change == "model":
        model = "another-model"
    else:
        settings = replace(seed_settings, chunk_tokens=99)
    assert index_state(settings, model)[0] == "stale"
    if change in ("model", "chunking"):  # built for other settings: it cannot serve these
        with pytest.raises(StaleIndexError, match="index is stale: run `qa index`"):
            load_index(settings, model)
    else:  # the corpus changed: the index as built still answers, saying it is out of date
        index = load_index(settings, model)
        assert index.chunks and index.out_of_date.startswith("the corpus folder changed since the index was built (1 ")


def test_touching_a_file_without_changing_it_keeps_the_index_fresh(seed_settings: Settings, fake_embedder):
    build_index(seed_settings, fake_embedder, progress=False)
    path = next(seed_settings.corpus_dir.iterdir())
    os.utime(path, ns=(1, 1))
    load_index(seed_settings, "fake")


@pytest.mark.parametrize("damage", ["truncate", "flip", "append", "delete", "manifest"])
def test_corrupt_index_is_a_clear_error(seed_settings: Settings, fake_embedder, damage: str):
    build_index(seed_settings, fake_embedder, progress=False)
    target = seed_settings.index_dir / "units.faiss"  # the sentence vectors: every index has them
    data = target.read_bytes()
    if damage == "truncate":
        target.write_bytes(data[: len(data) // 2])
    elif damage == "flip":
        target.write_bytes(data[:100] + bytes([data[100] ^ 1]) + data[101:])
    elif damage == "append":
        target.write_bytes(data + b"junk")
    elif damage == "delete":
        (seed_settings.index_dir / "chunks.jsonl").unlink()
    else:
        (seed_settings.index_dir / "manifest.json").write_text("{not json")
    with pytest.raises(CorruptIndexError, match="corrupt.*qa index"):
        load_index(seed_settings, "fake")
    assert index_state(seed_settings, "fake")[0] == "corrupt"


@pytest.mark.parametrize(
    "edit",
    ["rename built_at", "rename embedding", "rename vectors", "rename sources", "rename files", "rename chunking",
     "dim is text", "a source without size", "a list"],
)
def test_a_manifest_of_the_wrong_shape_is_corrupt_and_qa_index_rebuilds_it(settings: Settings, fake_embedder, edit: str):
    (settings.corpus_dir / "a.md").write_text("# A\n\nThe Beetle links Busan and Fukuoka.\n", encoding="utf-8")
    build_index(settings, fake_embedder, progress=False)
    path = settings.index_dir / "manifest.json"
    manifest = json.loads(path.read_text())
    if edit.startswith("rename "):
        key = edit.split()[1]
        manifest[key + "_x"] = manifest.pop(key)
    elif edit == "dim is text":
        manifest["embedding"]["dim"] = "384"
    elif edit == "a source without size":
        del manifest["sources"]["a.md"]["size"]
    else:
        manifest = [manifest]
    path.write_text(json.dumps(manifest))
    with pytest.raises(CorruptIndexError, match=r"corrupt .*manifest.json: .*\): run `qa index`"):
        load_index(settings, "fake")
    assert index_state(settings, "fake")[0] == "corrupt"
    assert build_index(settings, fake_embedder, progress=False).changes() == "1 new, 0 changed, 0 removed, 0 unchanged"
    assert len(load_index(settings, "fake").chunks) == 1


def test_a_failed_build_leaves_the_previous_index_intact(seed_settings: Settings, fake_embedder, monkeypatch):
    build_index(seed_settings, fake_embedder, progress=False)
    before = (seed_settings.index_dir / "manifest.json").read_text()
    (seed_settings.corpus_dir / "new.txt").write_text("New text.", encoding="utf-8")

    def explode(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(writer_module, "bm25s_module", explode)
    with pytest.raises(RuntimeError, match="disk full"):
        build_index(seed_settings, fake_embedder, progress=False)
    assert (seed_settings.index_dir / "manifest.json").read_text() == before
    assert not list(seed_settings.index_dir.parent.glob(".index.tmp-*"))


def test_an_interrupted_swap_is_recovered(seed_settings: Settings, fake_embedder):
    build_index(seed_settings, fake_embedder, progress=False)
    os.replace(seed_settings.index_dir, seed_settings.index_dir.parent / ".index.old")  # crash between renames
    assert len(load_index(seed_settings, "fake").chunks) > 0


def test_a_second_build_while_one_runs_is_refused(seed_settings: Settings, fake_embedder):
    import fcntl

    lock_path = seed_settings.index_dir.parent / ".index.lock"
    with lock_path.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        with pytest.raises(IndexBusyError, match="already building"):
            build_index(seed_settings, fake_embedder, progress=False)


def _peak_rss_of_a_build(corpus: Path, index_dir: Path) -> tuple[int, int]:
    """(chunks, peak RSS in MB) of `build_index` with the fake embedder, in a child process."""
    script = textwrap.dedent(
        f"""
        import sys
        sys.path.insert(0, {str(ROOT / "tests")!r})
        from conftest import FakeEmbedder
        from qa.evaluation.evaluate import peak_rss_mb
        from qa.config import Settings
        from qa.index.build import build_index
        from pathlib import Path
        settings = Settings(corpus_dir=Path({str(corpus)!r}), index_dir=Path({str(index_dir)!r}), max_file_mb=64,
                            max_units_per_file=10**7)  # the whole 40 MB file is indexed and measured
        summary = build_index(settings, FakeEmbedder(), progress=False)
        print(summary.chunks, peak_rss_mb())
        """
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=900, check=True)
    chunks, peak_mb = map(int, out.stdout.split())
    return chunks, peak_mb


@pytest.mark.slow
@pytest.mark.parametrize(("layout", "bound_mb"), [("one file", 600), ("120 files", 450)])
def test_a_40_mb_corpus_indexes_in_bounded_memory(tmp_path: Path, layout: str, bound_mb: int):
    """Documents are read one at a time, chunks written out as they come and vectors spooled to
    disk, so memory follows the vectors and compact per-chunk arrays, not the text."""
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    seed = (ROOT / "corpus" / "japan_south_korea_relations.txt").read_text(encoding="utf-8")
    if layout == "one file":
        with (corpus / "big.txt").open("w", encoding="utf-8") as f:
            while f.tell() < 40_000_000:
                f.write(seed)
    else:
        for n in range(120):  # 120 files of ~350 KB
            (corpus / f"doc{n:03d}.txt").write_text((seed + f"\n\nDocument {n}.\n") * 10, encoding="utf-8")
    chunks, peak_mb = _peak_rss_of_a_build(corpus, tmp_path / "index")
    assert chunks > 60_000
    # Measured ~390 MB for one 40 MB file (its chunks and sentence units are held while it is
    # split; ~560 MB before splitting was lazy) and ~280 MB for 120 files (64-dimensional vectors).
    print(f"{layout}: {chunks} chunks, peak RSS {peak_mb} MB")
    assert peak_mb < bound_mb, f"peak RSS {peak_mb} MB for 40 MB of text in {layout}"


def test_odd_files_are_indexed_or_named_as_skipped(settings: Settings, fake_embedder, caplog):
    corpus = settings.corpus_dir
    (corpus / "bom.txt").write_bytes("\ufeffA BOM file about Seoul.".encode("utf-8"))
    (corpus / "latin1.txt").write_bytes("Un texte en Latin-1 : café à Séoul.".encode("latin-1"))
    (corpus / "utf16.txt").write_bytes("A UTF-16 file about Busan.".encode("utf-16"))
    (corpus / "binary.txt").write_bytes(bytes(range(256)) * 40)
    (corpus / "empty.txt").write_bytes(b"")
    (corpus / "one_line.txt").write_text("word " * 200_000 + "end", encoding="utf-8")  # 1 MB, no sentence end
    (corpus / "headings.md").write_text("# Title\n\n## Part one\n\n## Part two\n", encoding="utf-8")
    (corpus / "copy_of_bom.txt").write_bytes("\ufeffA BOM file about Seoul.".encode("utf-8"))
    (corpus / "one_bad_byte.txt").write_bytes("Zürich and Malmö are far from Seoul. ".encode() * 3 + b"\xff")
    secret = settings.corpus_dir.parent / "secret.txt"
    secret.write_text("The password is swordfish.", encoding="utf-8")
    (corpus / "link.txt").symlink_to(secret)
    (corpus / "linked_folder").symlink_to(settings.corpus_dir.parent)
    with open(os.path.join(os.fsencode(corpus), b"b\xff.txt"), "wb") as f:  # a name that is not UTF-8
        f.write(b"Text behind a bad name.")
    with caplog.at_level("WARNING"):
        summary = build_index(settings, fake_embedder, progress=False)
    assert set(summary.skipped) == {"binary.txt", "empty.txt", "headings.md", "copy_of_bom.txt"}
    for name in summary.skipped:
        assert name in caplog.text
    assert "link.txt: a symbolic link (not followed" in caplog.text and "linked_folder: a symbolic link" in caplog.text
    assert "b\\xff.txt: its name is not valid text" in caplog.text
    assert "one_bad_byte.txt: 1 bytes are not valid UTF-8" in caplog.text
    assert "same content as bom.txt" in caplog.text and "no text under its headings" in caplog.text
    index = load_index(settings, "fake")
    texts = [c.text for c in index.chunks]
    assert "A BOM file about Seoul." in texts and "A UTF-16 file about Busan." in texts
    assert any("café à Séoul" in t for t in texts)
    assert any("Zürich and Malmö" in t for t in texts)  # UTF-8 with one bad byte stays UTF-8
    assert not any("swordfish" in t or "bad name" in t for t in texts)  # nothing outside the corpus is read
    one_line = next(d.doc_id for d in index.documents.values() if d.path == "one_line.txt")
    assert sum(c.doc_id == one_line for c in index.chunks) > 100  # the 1 MB line, in pieces
    assert max(len(t) for t in texts) <= 2000


@pytest.mark.parametrize(
    "errno_name, message", [("ENOSPC", "No space left on device"), ("EROFS", "Read-only file system")]
)
def test_a_full_or_read_only_disk_is_a_clear_error_and_the_old_index_stays(
    seed_settings: Settings, fake_embedder, monkeypatch, errno_name: str, message: str
):
    import errno

    import faiss

    from qa.errors import IndexWriteError

    build_index(seed_settings, fake_embedder, progress=False)
    before = (seed_settings.index_dir / "manifest.json").read_bytes()

    def fail(*args, **kwargs):  # root ignores permissions, so the failure is injected
        raise OSError(getattr(errno, errno_name), message)

    monkeypatch.setattr(faiss, "write_index", fail)
    monkeypatch.setattr(writer_module.IndexWriter, "close", fail)  # the flush on the way out fails too
    with pytest.raises(IndexWriteError, match=f"{message}.*previous index is untouched"):
        build_index(seed_settings, fake_embedder, progress=False)
    assert (seed_settings.index_dir / "manifest.json").read_bytes() == before
    assert not list(seed_settings.index_dir.parent.glob(".index.tmp-*"))  # the temporary build is gone
    monkeypatch.undo()
    assert load_index(seed_settings, "fake").chunks


@pytest.mark.slow
def test_killing_qa_index_half_way_leaves_the_previous_index(seed_workdir: Path, tmp_path: Path):
    import shutil
    import signal
    import time

    from conftest import QA

    work = tmp_path / "w"
    shutil.copytree(seed_workdir, work)
    before = (work / "index" / "manifest.json").read_bytes()
    seed = (work / "corpus" / "japan_south_korea_relations.txt").read_text(encoding="utf-8")
    for i in range(30):  # enough to keep the embedder busy for a while
        (work / "corpus" / f"copy{i}.txt").write_text(f"Copy {i}.\n\n" + seed, encoding="utf-8")
    process = subprocess.Popen([*QA, "index"], cwd=work, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while not list(work.glob(".index.tmp-*")) and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(3)  # well inside the embedding
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert (work / "index" / "manifest.json").read_bytes() == before
    settings = Settings(corpus_dir=work / "corpus", index_dir=work / "index")
    assert index_state(settings, "minilm")[0] == "stale"  # intact, only older than the corpus
    assert load_index(settings, "minilm", require_fresh=False).chunks
    for i in range(30):
        (work / "corpus" / f"copy{i}.txt").unlink()
    rebuilt = subprocess.run([*QA, "index"], cwd=work, capture_output=True, text=True, timeout=600)
    assert rebuilt.returncode == 0 and not list(work.glob(".index.tmp-*"))  # the killed build's leftovers


@pytest.mark.slow
def test_qa_index_if_stale_rebuilds_a_corrupt_index(seed_workdir: Path, tmp_path: Path):
    import shutil

    from conftest import qa

    work = tmp_path / "w"
    shutil.copytree(seed_workdir, work)
    (work / "index" / "vectors.faiss").write_bytes(b"garbage")
    broken = qa("search", "Dokdo", cwd=work)
    assert broken.returncode == 1 and "vectors.faiss" in broken.stderr and "qa index" in broken.stderr
    fixed = qa("index", "--if-stale", cwd=work)
    assert fixed.returncode == 0 and "corrupt" in fixed.stderr and fixed.stdout.startswith("indexed")
    assert qa("search", "Dokdo", cwd=work).returncode == 0


class CountingEmbedder:
    """The fake embedder, counting the texts it embeds."""

    def __init__(self, inner) -> None:
        self.inner, self.name, self.embedded = inner, inner.name, 0

    @property
    def dim(self) -> int:
        return self.inner.dim

    def embed(self, texts):
        self.embedded += len(texts)
        return self.inner.embed(texts)

    def embed_query(self, text):
        return self.inner.embed_query(text)

    def count_tokens(self, texts):
        return self.inner.count_tokens(texts)


def test_above_the_threshold_vectors_are_hnsw_and_find_what_exact_search_finds(seed_settings: Settings, fake_embedder):
    seed_settings = replace(seed_settings, passage_vectors=True)
    build_index(seed_settings, fake_embedder, progress=False)
    exact = load_index(seed_settings, "fake")
    ann_settings = replace(seed_settings, index_dir=seed_settings.index_dir.parent / "ann", ann_threshold=50)
    build_index(ann_settings, fake_embedder, progress=False)
    manifest = json.loads((ann_settings.index_dir / "manifest.json").read_text())
    assert manifest["vectors"]["types"] == {"vectors.faiss": "IndexHNSWSQ", "units.faiss": "IndexHNSWSQ"}
    assert json.loads((seed_settings.index_dir / "manifest.json").read_text())["vectors"]["types"] == {
        "vectors.faiss": "IndexFlatIP", "units.faiss": "IndexFlatIP"
    }
    ann = load_index(ann_settings, "fake")
    assert not list(ann_settings.index_dir.glob("*.spool"))
    for question in ("Liancourt Rocks Dokdo", "comfort women agreement 2015", "Treaty on Basic Relations 1965"):
        want = Retriever(exact, fake_embedder, seed_settings).search(question, 3)
        got = Retriever(ann, fake_embedder, ann_settings).search(question, 3)
        assert got[0].chunk.chunk_id == want[0].chunk.chunk_id, question
        assert got[0].dense_score == pytest.approx(want[0].dense_score, abs=0.02)
    # Incremental re-indexing reuses the quantised vectors of unchanged documents.
    (ann_settings.corpus_dir / "new.txt").write_text("= Notes =\n\nBusan has a famous fish market.", encoding="utf-8")
    assert build_index(ann_settings, fake_embedder, progress=False).changes() == "1 new, 0 changed, 0 removed, 1 unchanged"
    again = load_index(ann_settings, "fake")
    assert Retriever(again, fake_embedder, ann_settings).search("Busan fish market", 1)[0].chunk.doc_id != (
        want[0].chunk.doc_id
    )
    got = Retriever(again, fake_embedder, ann_settings).search("Liancourt Rocks Dokdo", 1)
    assert got[0].chunk.chunk_id == Retriever(exact, fake_embedder, seed_settings).search("Liancourt Rocks Dokdo", 1)[0].chunk.chunk_id


def test_a_build_reads_each_corpus_file_once(seed_settings: Settings, fake_embedder, monkeypatch):
    hashed = []
    real = build_module.file_sha256
    for module in (build_module, manifest_module):
        monkeypatch.setattr(module, "file_sha256", lambda path: hashed.append(path) or real(path))
    build_index(seed_settings, fake_embedder, progress=False)
    assert not [p for p in hashed if seed_settings.corpus_dir in p.parents]  # read_document hashed it already
    sources = json.loads((seed_settings.index_dir / "manifest.json").read_text())["sources"]
    assert index_state(seed_settings, "fake")[0] == "fresh" and all(len(e["sha256"]) == 64 for e in sources.values())


def test_reindexing_embeds_only_new_and_changed_documents(settings: Settings, fake_embedder):
    corpus = settings.corpus_dir
    for name in ("a", "b", "c", "d"):
        (corpus / f"{name}.md").write_text(f"# {name}\n\nDocument {name} talks about topic {name}. " * 3, encoding="utf-8")
    first = build_index(settings, fake_embedder, progress=False)
    assert first.changes() == "4 new, 0 changed, 0 removed, 0 unchanged"
    (corpus / "b.md").write_text("# b\n\nDocument b now talks about ferries instead.", encoding="utf-8")
    (corpus / "d.md").unlink()
    (corpus / "e.md").write_text("# e\n\nA new document about kimchi.", encoding="utf-8")
    counting = CountingEmbedder(fake_embedder)
    second = build_index(settings, counting, progress=False)
    assert second.changes() == "1 new, 1 changed, 1 removed, 2 unchanged"
    assert counting.embedded <= 1 + 4 + 2 + 4  # the dim probe, then e and b: chunks and sentences
    incremental = load_index(settings, "fake")
    fresh_settings = replace(settings, index_dir=settings.index_dir.parent / "fresh")
    build_index(fresh_settings, fake_embedder, progress=False)
    fresh = load_index(fresh_settings, "fake")
    assert sorted(c.chunk_id for c in incremental.chunks) == sorted(c.chunk_id for c in fresh.chunks)
    for question in ("topic a", "ferries", "kimchi", "Document c"):
        got = [p.chunk.chunk_id for p in Retriever(incremental, fake_embedder, settings).search(question, 3)]
        want = [p.chunk.chunk_id for p in Retriever(fresh, fake_embedder, settings).search(question, 3)]
        assert got == want, question
    assert build_index(settings, fake_embedder, progress=False).changes() == "0 new, 0 changed, 0 removed, 4 unchanged"


def test_other_chunking_settings_reembed_everything(settings: Settings, fake_embedder):
    (settings.corpus_dir / "a.md").write_text("# a\n\nSome text here.", encoding="utf-8")
    build_index(settings, fake_embedder, progress=False)
    counting = CountingEmbedder(fake_embedder)
    summary = build_index(replace(settings, chunk_tokens=80), counting, progress=False)
    assert summary.changes() == "0 new, 0 changed, 0 removed, 1 unchanged" and counting.embedded > 0


def test_by_default_only_sentences_are_embedded_and_passages_are_found_by_them(seed_settings: Settings, fake_embedder):
    counting = CountingEmbedder(fake_embedder)
    build_index(seed_settings, counting, progress=False)
    index = load_index(seed_settings, "fake")
    assert counting.embedded == index.sentence_count and index.vector_indexes["chunks"].count == 0
    hit = Retriever(index, fake_embedder, seed_settings).search("Liancourt Rocks Dokdo", 1)[0]
    assert "Liancourt" in hit.chunk.text and hit.dense_score is not None
    (seed_settings.corpus_dir / "new.txt").write_text("= Notes =\n\nBusan has a famous fish market.", encoding="utf-8")
    assert build_index(seed_settings, counting, progress=False).changes() == "1 new, 0 changed, 0 removed, 1 unchanged"
    again = load_index(seed_settings, "fake")
    assert Retriever(again, fake_embedder, seed_settings).search("Busan fish market", 1)[0].chunk.doc_id != hit.chunk.doc_id


def test_an_index_without_passage_vectors_is_stale_only_for_settings_that_want_them(seed_settings: Settings, fake_embedder):
    build_index(seed_settings, fake_embedder, progress=False)
    with pytest.raises(StaleIndexError, match="without passage vectors"):
        load_index(replace(seed_settings, passage_vectors=True), "fake")
    with_them = replace(seed_settings, passage_vectors=True)
    build_index(with_them, fake_embedder, progress=False)
    index = load_index(seed_settings, "fake")  # an index with them serves either way, using them
    assert index.vector_indexes["chunks"].count == len(index.chunks) and not index.out_of_date


def test_files_over_the_size_limit_are_skipped_by_name(settings: Settings, fake_embedder, caplog):
    (settings.corpus_dir / "small.md").write_text("# Small\n\nA small file about Busan.\n", encoding="utf-8")
    (settings.corpus_dir / "big.txt").write_text("Busan is a port city. " * 80_000, encoding="utf-8")  # 1.7 MB
    limited = replace(settings, max_file_mb=1)
    with caplog.at_level("WARNING"):
        summary = build_index(limited, fake_embedder, progress=False)
    assert summary.skipped == ("big.txt",) and "big.txt: 1.7 MB, over the 1 MB limit per file" in caplog.text
    assert index_state(limited, "fake")[0] == "fresh"  # a skipped file does not make the index stale


def test_a_reader_during_the_swap_waits_for_it_and_never_breaks_it(seed_settings: Settings, fake_embedder):
    import shutil
    import threading
    import time

    build_index(seed_settings, fake_embedder, progress=False)
    target = seed_settings.index_dir
    old, new = target.parent / ".index.old", target.parent / ".index.tmp-test"
    shutil.copytree(target, new)
    failures: list[BaseException] = []

    def second_rename() -> None:
        time.sleep(0.3)
        try:
            os.replace(new, target)
        except OSError as error:  # "Directory not empty" when a reader put the old index back
            failures.append(error)

    with swap.build_lock(target):  # a build between its two renames
        os.replace(target, old)
        mover = threading.Thread(target=second_rename)
        mover.start()
        manifest = manifest_module.read_manifest(target)
        mover.join()
    assert failures == [] and manifest.sources and not new.exists()
    assert load_index(seed_settings, "fake").chunks


def test_an_index_whose_vectors_an_older_runtime_computed_is_stale_and_rebuilt_in_full(seed_settings: Settings,
                                                                                       fake_embedder):
    build_index(seed_settings, fake_embedder, progress=False)
    path = seed_settings.index_dir / "manifest.json"
    manifest = json.loads(path.read_text(encoding="utf-8"))
    manifest["encoding"].pop("runtime", None)  # as written before the runtime was recorded
    manifest["encoding"]["precision"] = seed_settings.encoder_precision
    path.write_text(json.dumps(manifest), encoding="utf-8")
    assert index_state(seed_settings, "fake")[0] == "stale"
    with pytest.raises(StaleIndexError, match="older version of the encoder runtime"):
        load_index(seed_settings, "fake")
    embedded: list[str] = []
    fake_embedder.embed = lambda texts, inner=fake_embedder.embed: embedded.extend(texts) or inner(texts)
    build_index(seed_settings, fake_embedder, progress=False)
    assert len(embedded) > 59  # nothing reused: every chunk and sentence vector is computed again
    assert index_state(seed_settings, "fake")[0] == "fresh"


def test_a_file_indexed_only_in_part_is_named_in_the_summary(settings: Settings, fake_embedder):
    (settings.corpus_dir / "long.md").write_text("# Long\n\n" + "Busan is a port city number one. " * 300, encoding="utf-8")
    summary = build_index(replace(settings, max_units_per_file=50), fake_embedder, progress=False)
    assert summary.cut == ("long.md (the first 50 sentences)",)
    assert "only part of long.md (the first 50 sentences) is indexed (QA_MAX_UNITS_PER_FILE)" in summary.line()
