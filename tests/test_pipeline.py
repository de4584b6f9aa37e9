"""The pipeline a front end holds: rebuilds swap the index in while questions keep being answered,
documents can be opened at a cited span and removed (fake embedder and reader)."""

import os
import threading
from pathlib import Path

import pytest
from conftest import FakeReader, ScriptedGenerator

from qa.config import Settings
from qa.errors import QAError
from qa.index.build import build_index
from qa.ingest.corpus import find_files
from qa.pipeline import Pipeline


def two_documents(settings: Settings) -> None:
    (settings.corpus_dir / "rocks.md").write_text("# Rocks\n\nThe Liancourt Rocks are called Dokdo in Korean.\n")
    (settings.corpus_dir / "treaty.md").write_text("# Treaty\n\nRelations were established in December 1965.\n")


@pytest.fixture
def pipeline(settings: Settings, fake_embedder) -> Pipeline:
    two_documents(settings)
    build_index(settings, fake_embedder, progress=False)
    return Pipeline(settings, fake_embedder, reader=FakeReader(("Dokdo", "December 1965", "Beetle")))


def test_questions_are_answered_from_the_old_index_until_the_new_one_is_swapped_in(pipeline: Pipeline, monkeypatch):
    old = pipeline.index
    (pipeline.settings.corpus_dir / "ferry.md").write_text("# Ferry\n\nThe Beetle hydrofoil links Busan and Fukuoka.\n")
    building, answered = threading.Event(), threading.Event()
    import qa.pipeline

    real_build = qa.pipeline.build_index

    def slow_build(*args, **kwargs):
        building.set()
        assert answered.wait(30), "a question was not answered while the index was being built"
        return real_build(*args, **kwargs)

    monkeypatch.setattr(qa.pipeline, "build_index", slow_build)
    reports: list[tuple[str, float]] = []
    builder = threading.Thread(target=lambda: pipeline.rebuild(lambda text, done: reports.append((text, done))))
    builder.start()
    assert building.wait(30)
    during = pipeline.ask("What are the Liancourt Rocks called in Korean?")
    assert during.short_answer is not None and during.short_answer.text == "Dokdo" and pipeline.index is old
    answered.set()
    builder.join(60)
    assert pipeline.index is not old and len(pipeline.index.documents) == 3
    assert pipeline.ask("What links Busan and Fukuoka?").short_answer.text == "Beetle"
    assert any(text.startswith("reading ferry.md (1 of 1 to index)") for text, _ in reports)  # the unchanged not counted
    assert any(text.startswith("embedding ferry.md") and 0 <= done < 1 for text, done in reports)
    assert reports[-1] == ("writing the index", 1.0) and all(0 <= done <= 1 for _, done in reports)


def test_a_document_is_read_again_for_the_document_view_and_must_not_have_changed(pipeline: Pipeline):
    answer = pipeline.ask("When were relations established?")
    citation = answer.citations[0]
    doc_id = next(p.chunk.doc_id for p in answer.passages if p.chunk.chunk_id == citation.chunk_id)
    doc = pipeline.document(doc_id)
    assert doc.text[citation.start : citation.end] == citation.quote
    (pipeline.settings.corpus_dir / doc.path).write_text("# Treaty\n\nRewritten.\n")
    with pytest.raises(QAError, match="has changed since it was indexed"):
        pipeline.document(doc_id)
    with pytest.raises(QAError, match="no longer in the index"):
        pipeline.document("nope")


def test_removing_a_document_keeps_its_file_unless_asked(pipeline: Pipeline):
    corpus = pipeline.settings.corpus_dir
    by_path = {d.path: d.doc_id for d in pipeline.index.documents.values()}
    summary = pipeline.remove(by_path["rocks.md"])
    assert summary.changes() == "0 new, 0 changed, 1 removed, 1 unchanged"
    assert (corpus / "rocks.md").is_file() and [p.name for p in find_files(corpus)] == ["treaty.md"]
    assert [d.path for d in pipeline.index.documents.values()] == ["treaty.md"]
    with pytest.raises(QAError, match="only document"):
        pipeline.remove(by_path["treaty.md"], delete_file=True)
    assert (corpus / "treaty.md").is_file()
    (corpus / "notes.md").write_text("# Notes\n\nSomething else entirely.\n")
    pipeline.rebuild()
    notes = next(d.doc_id for d in pipeline.index.documents.values() if d.path == "notes.md")
    pipeline.remove(notes, delete_file=True)
    assert not (corpus / "notes.md").exists() and [d.path for d in pipeline.index.documents.values()] == ["treaty.md"]


def test_a_follow_up_is_read_with_the_query_the_retriever_used(pipeline: Pipeline):
    answer = pipeline.ask_stream("and what are they called in Korean?", history=["Where are the Liancourt Rocks?"]).answer()
    question, _ = pipeline.reader.seen[-1]
    assert question == answer.query and "Liancourt" in question  # not declined for lack of its subject
    assert answer.question == "and what are they called in Korean?" and answer.short_answer.text == "Dokdo"


def test_a_removal_that_cannot_finish_changes_nothing_and_says_why(pipeline: Pipeline, monkeypatch):
    from qa.errors import IndexBusyError
    from qa.ingest.corpus import ignored_paths

    corpus = pipeline.settings.corpus_dir
    rocks = next(d.doc_id for d in pipeline.index.documents.values() if d.path == "rocks.md")
    with pytest.raises(QAError, match="must be true or false"):
        pipeline.remove(rocks, "false")  # a string is not a boolean

    def busy(report=None):
        raise IndexBusyError("another `qa index` is already building index/: wait for it to finish")

    monkeypatch.setattr(pipeline, "rebuild", busy)
    with pytest.raises(IndexBusyError):
        pipeline.remove(rocks, delete_file=True)
    assert (corpus / "rocks.md").is_file() and not ignored_paths(corpus)  # the file and the listing as they were
    monkeypatch.undo()

    def read_only(*args):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr("qa.index.removal.set_ignored", read_only)
    with pytest.raises(QAError, match="could not record the removal.*Permission denied.*nothing was changed"):
        pipeline.remove(rocks)
    monkeypatch.undo()
    summary = pipeline.remove(rocks, delete_file=True)
    assert summary.note.endswith("its file rocks.md was deleted")
    assert not (corpus / "rocks.md").exists() and not ignored_paths(corpus)


def test_a_read_only_index_folder_is_a_message_and_leftovers_are_cleaned(pipeline: Pipeline, tmp_path: Path):
    import dataclasses

    from qa.errors import IndexWriteError
    from qa.index.build import build_index

    corpus = pipeline.settings.corpus_dir
    (corpus / ".upload-999999.md").write_text("half", encoding="utf-8")  # a killed upload (no such process)
    (corpus / f".upload-{os.getpid()}.md").write_text("in progress", encoding="utf-8")  # a live one
    (corpus / ".qaignore.tmp-999999").write_text("x", encoding="utf-8")
    pipeline.rebuild()
    assert sorted(p.name for p in corpus.glob(".*")) == [f".upload-{os.getpid()}.md"]
    blocked = tmp_path / "a-file"
    blocked.write_text("not a folder", encoding="utf-8")
    settings = dataclasses.replace(pipeline.settings, index_dir=blocked / "index")  # cannot be created
    with pytest.raises(IndexWriteError, match="cannot write in"):
        build_index(settings, pipeline.embedder, progress=False)


def test_a_search_restricted_to_some_documents_finds_k_passages_in_them_only(pipeline: Pipeline):
    corpus = pipeline.settings.corpus_dir
    (corpus / "ferry.md").write_text("# Ferry\n\n" + "".join(
        f"The Beetle hydrofoil sailing {n} links Busan and Fukuoka.\n\n" for n in range(60)))  # several chunks
    pipeline.rebuild()
    _, in_ferry = pipeline.search("Where are the Liancourt Rocks?", 3, ["ferry.md"])
    ferry = next(d.doc_id for d in pipeline.index.documents.values() if d.path == "ferry.md")
    assert len(in_ferry) == 3 and {p.chunk.doc_id for p in in_ferry} == {ferry}  # filtered inside the search
    answer = pipeline.ask("What are the Liancourt Rocks called in Korean?", documents=["Treaty"])  # by title
    assert {p.chunk.doc_id for p in answer.passages} == {next(d.doc_id for d in pipeline.index.documents.values()
                                                               if d.path == "treaty.md")}
    with pytest.raises(QAError, match="no indexed document is named 'nowhere.md'"):
        pipeline.search("Where?", 3, ["nowhere.md"])


def test_an_evidence_answer_never_makes_the_language_model(seed_settings, fake_embedder, monkeypatch):
    """The generator is made when generative mode first needs it, not with the index."""
    import qa.pipeline
    from qa.pipeline import Pipeline

    made = []
    monkeypatch.setattr(qa.pipeline, "get_generator", lambda *args: made.append(args) or ScriptedGenerator("x"))
    build_index(seed_settings, fake_embedder, progress=False)
    pipeline = Pipeline(seed_settings, embedder=fake_embedder, reader=FakeReader())
    pipeline.ask("When did Japan and South Korea sign the treaty?", mode="evidence")
    assert made == []
    pipeline.ask("When did Japan and South Korea sign the treaty?", mode="generative")
    assert len(made) == 1
