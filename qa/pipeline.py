"""The pipeline a front end holds: settings, the loaded index and the models, each loaded once.

The CLI and the app build one `Pipeline` and call it; they hold no pipeline logic themselves.
Loading is lazy: `Pipeline(settings)` is cheap; `warm_up()` or the first call loads the index
and models, raising a `QAError` that says what to do when something is missing or stale.
`rebuild()` indexes the corpus while questions keep being answered from the loaded index, then
swaps the new one in; `document()` and `remove()` serve the app's document view and removal.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from qa.answer.answerer import Answerer, AnswerStream
from qa.answer.compose import composed_answer
from qa.answer.followup import standalone_query
from qa.answer.overview import Overview, document_overview, overview_answer, overview_request
from qa.answer.planner import plan
from qa.answer.reader import Reader, get_reader
from qa.answer.retrieve import Retriever, check_question
from qa.answer.scope import documents_named
from qa.answer.table_answer import table_answer
from qa.config import Settings
from qa.errors import QAError
from qa.index.build import BuildSummary, build_index
from qa.index.loaded import Index
from qa.index.removal import remove_document
from qa.index.store import open_store
from qa.ingest.corpus import file_sha256
from qa.ingest.readers import UnreadableFile, read_document
from qa.models.embedders import Embedder, get_embedder
from qa.models.generate import Generator, Message, get_generator
from qa.models.locate import reader_model_dir
from qa.types import Answer, Document, Passage

KEPT_DOCUMENTS = 4  # documents kept parsed for the document view
KEPT_OVERVIEWS = 16
STORE_CHECK_SECONDS = 2.0  # how stale a replica's view of a shared Milvus store may be
log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Snapshot:
    """What a question is answered from: one index and the retriever and answerer over it. A
    rebuild or a newer published build replaces it whole, so no question mixes two indexes."""

    index: Index
    retriever: Retriever
    answerer: Answerer


class Pipeline:
    def __init__(self, settings: Settings, embedder: Embedder | None = None, generator: Generator | None = None,
                 reader: Reader | None = None) -> None:
        self.settings = settings
        self.store = open_store(settings)
        self._embedder = embedder
        self._reader = reader
        self._generator = generator
        self._snapshot: Snapshot | None = None
        self._swap = threading.Lock()  # guards `_snapshot`, replaced whole
        self._models = threading.Lock()  # guards making the embedder, reader and generator (not loading them)
        self._building = threading.Lock()  # one rebuild at a time in this process
        self._documents: dict[str, Document] = {}  # the last documents opened, by content hash
        self._overviews: dict[tuple[str, str], Overview] = {}  # the last overviews made, by (index, document)
        self._store_checked = time.monotonic()

    @property
    def embedder(self) -> Embedder:
        with self._models:  # one per pipeline, even when the start-up warm-up and a first request race
            if self._embedder is None:
                s = self.settings
                self._embedder = get_embedder(s.embed_model, s.threads, s.embed_url, s.cache_dir, s.encoder_precision)
            return self._embedder

    @property
    def reader(self) -> Reader:
        with self._models:
            if self._reader is None:
                s = self.settings
                self._reader = get_reader(reader_model_dir(s.reader_model), s.threads, s.cache_dir, s.encoder_precision,
                                          s.embed_model)
            return self._reader

    @property
    def generator(self) -> Generator:
        """The language model of generative mode: made here, loaded on its first use (`warm_up`)."""
        with self._models:
            if self._generator is None:
                s = self.settings
                self._generator = get_generator(s.model, s.threads, s.models_dir, s.generator_url)
            return self._generator

    def snapshot(self) -> Snapshot:
        """The current snapshot; the index is loaded on first use. In a store shared by replicas, a
        build another process published replaces it (asked at most every STORE_CHECK_SECONDS, by one
        thread while the others answer)."""
        with self._swap:
            if self._snapshot is None:
                self._snapshot = self._load()
            current = self._snapshot
            ask_store = self.store.shared and time.monotonic() - self._store_checked >= STORE_CHECK_SECONDS
            if ask_store:
                self._store_checked = time.monotonic()
        if ask_store and self._newer_build_published(current.index):
            fresh = self._load()
            with self._swap:
                if self._snapshot is current:
                    self._snapshot = current = fresh
        return current

    def _load(self) -> Snapshot:
        index = self.store.load(self.embedder.name)
        generator = self._generator or _MadeWhenUsed(lambda: self.generator)  # evidence answers never make it
        return Snapshot(index, Retriever(index, self.embedder, self.settings),
                        Answerer(index, self.embedder, self.settings, self.reader, generator))

    def _newer_build_published(self, index: Index) -> bool:
        try:
            return self.store.live_generation() != index.generation
        except QAError as error:  # the store is down: keep answering from what is loaded
            log.warning("%s", error)
            return False

    @property
    def index(self) -> Index:
        return self.snapshot().index

    @property
    def retriever(self) -> Retriever:
        return self.snapshot().retriever

    @property
    def answerer(self) -> Answerer:
        return self.snapshot().answerer

    def warm_up(self, generator: bool | None = None) -> None:
        """Load the index and models now rather than on the first question; the language model
        too when `generator` is true (default: when the answer mode is generative)."""
        self.retriever.search("warm up", 1)
        self.reader.warm_up()
        if generator if generator is not None else self.settings.answer_mode == "generative":
            self.generator.warm_up()

    def rebuild(self, report: Callable[[str, float], None] | None = None) -> BuildSummary:
        """Index the corpus (incrementally) and swap the new index in; until then questions are
        answered from the loaded one. `report` is told in words how far the build is."""
        with self._building:
            summary = build_index(self.settings, self.embedder, progress=False, report=report)
            fresh = self._load()
            with self._swap:
                self._snapshot = fresh
        return summary

    def document(self, doc_id: str) -> Document:
        """An indexed document read again from the corpus; a `QAError` if it is gone or changed
        since it was indexed (its offsets would no longer point at the cited text)."""
        info = self.index.documents.get(doc_id) if isinstance(doc_id, str) else None
        if info is None:
            raise QAError("that document is no longer in the index")
        path = self.settings.corpus_dir / info.path
        try:
            if info.sha256 in self._documents and file_sha256(path) == info.sha256:
                return self._documents[info.sha256]  # unchanged: not parsed again (a big PDF takes seconds)
            doc = read_document(path, self.settings.corpus_dir)
        except (UnreadableFile, OSError) as error:
            raise QAError(f"{info.path} can no longer be read ({error}); rebuild the index") from None
        if doc.sha256 != info.sha256:
            raise QAError(f"{info.path} has changed since it was indexed; rebuild the index to see it")
        self._documents = {**dict(list(self._documents.items())[-(KEPT_DOCUMENTS - 1):]), doc.sha256: doc}
        return doc

    def overview(self, doc_id: str) -> Overview:
        """An indexed document's outline, opening and key sentences (`qa.answer.overview`), kept per index."""
        index = self.index
        if not isinstance(doc_id, str) or doc_id not in index.documents:
            raise QAError("that document is not in the index")
        key = (index.generation or index.manifest.built_at, doc_id)
        if key not in self._overviews:
            self._overviews = {**dict(list(self._overviews.items())[-(KEPT_OVERVIEWS - 1):]),
                               key: document_overview(index, doc_id)}
        return self._overviews[key]

    def remove(self, doc_id: str, delete_file: bool = False,
               report: Callable[[str, float], None] | None = None) -> BuildSummary:
        """Take a document out of the index (`qa.index.removal`): a failure (another build running,
        a read-only or missing corpus folder, a full disk) changes nothing and says why."""
        if not isinstance(delete_file, bool):
            raise QAError(f"'delete file' must be true or false, not {delete_file!r}")
        documents = self.index.documents
        info = documents.get(doc_id) if isinstance(doc_id, str) else None
        if info is None:
            raise QAError("that document is not in the index")
        if len(documents) == 1:
            raise QAError("this is the only document in the index; add another before removing it")
        return remove_document(self.settings.corpus_dir, info, delete_file, lambda: self.rebuild(report))

    def search(self, question: str, k: int | None = None, documents: Sequence[str] = ()) -> tuple[str, list[Passage]]:
        """(the cleaned question, its passages); raises `BadQuestionError` for unusable input.
        `documents`: search only these (ids, paths, file names or titles; `documents_named`)."""
        cleaned = check_question(question, self.settings.max_question_chars)
        snapshot = self.snapshot()
        return cleaned, snapshot.retriever.search(cleaned, k, documents=documents_named(snapshot.index, documents))

    def ask_stream(
        self,
        question: str,
        k: int | None = None,
        mode: str | None = None,
        cancel: threading.Event | None = None,
        history: Sequence[str] = (),
        documents: Sequence[str] = (),
    ) -> AnswerStream:
        """The answer's text pieces as they come, then (`answer()`) the verified `Answer`.
        `history` holds the earlier questions of a chat, for follow-ups like "and when?";
        `documents` restricts the search to some documents (see `documents_named`)."""
        return AnswerStream(self._ask(question, k, mode, cancel, history, documents))

    def _ask(self, question: str, k: int | None, mode: str | None, cancel: threading.Event | None,
             history: Sequence[str], documents: Sequence[str]) -> Iterator[str | Answer]:
        began = time.perf_counter()
        cleaned = check_question(question, self.settings.max_question_chars)
        query = standalone_query(cleaned, history)
        snapshot = self.snapshot()
        chosen = documents_named(snapshot.index, documents)
        overview_of = overview_request(cleaned, snapshot.index, chosen)
        if overview_of:  # "Summarize X": X's opening and key sentences, quoted and cited
            answer = overview_answer(cleaned, snapshot.index, overview_of)
            elapsed = round((time.perf_counter() - began) * 1000, 1)
            yield answer.text
            yield dataclasses.replace(answer, timings={"retrieve_ms": elapsed, "first_token_ms": elapsed, "total_ms": elapsed})
            return
        planned = plan(cleaned) if query == cleaned else None  # two facts: one question per thing, then compared
        if planned is not None:
            parts = [self._answered(snapshot, part, k, chosen, cancel) for part in planned.parts]
            composed = composed_answer(cleaned, planned, parts)
            if composed is not None:
                elapsed = round((time.perf_counter() - began) * 1000, 1)
                yield composed.text
                yield dataclasses.replace(composed, query=query, timings={
                    "retrieve_ms": elapsed, "first_token_ms": elapsed, "total_ms": elapsed})
                return
        vector = snapshot.retriever.embedder.embed_query(query)  # once, for retrieval and evidence scoring
        passages = snapshot.retriever.search(query, k, vector, chosen)
        retrieve_ms = round((time.perf_counter() - began) * 1000, 1)
        tabled = table_answer(query, passages, snapshot.index)  # a cell of a table whose row ranks first
        if tabled is not None:
            elapsed = round((time.perf_counter() - began) * 1000, 1)
            yield tabled.text
            yield dataclasses.replace(tabled, question=cleaned, query=query,
                                      timings={"retrieve_ms": retrieve_ms, "first_token_ms": elapsed, "total_ms": elapsed})
            return
        stream = snapshot.answerer.stream(query, passages, mode, cancel, vector)
        yield from stream
        answer = stream.answer()
        timings = {
            "retrieve_ms": retrieve_ms,
            "first_token_ms": round(retrieve_ms + answer.timings["first_token_ms"], 1),
            "total_ms": round((time.perf_counter() - began) * 1000, 1),
        }
        yield dataclasses.replace(answer, question=cleaned, query=query, timings=timings)

    @staticmethod
    def _answered(snapshot, question: str, k: int | None, chosen: Sequence[str], cancel: threading.Event | None) -> Answer:  # noqa: ANN001
        """A sub-question's evidence answer: retrieved and read as any question is."""
        vector = snapshot.retriever.embedder.embed_query(question)
        stream = snapshot.answerer.stream(question, snapshot.retriever.search(question, k, vector, chosen), "evidence",
                                          cancel, vector)
        for _ in stream:
            pass
        return dataclasses.replace(stream.answer(), question=question)

    def ask(self, question: str, k: int | None = None, mode: str | None = None,
            documents: Sequence[str] = (), history: Sequence[str] = ()) -> Answer:
        """The verified answer (see `ask_stream`), without its text as it comes."""
        return self.ask_stream(question, k, mode, history=history, documents=documents).answer()


class _MadeWhenUsed:
    """The pipeline's language model as the answerer holds it: made on first use, so a question
    answered in evidence mode never makes one (nor fails for a model that is not installed)."""

    def __init__(self, make: Callable[[], Generator]) -> None:
        self._make = make

    @property
    def name(self) -> str:
        return self._make().name

    def warm_up(self) -> None:
        self._make().warm_up()

    def stream(self, messages: Sequence[Message], max_new_tokens: int,
               cancel: threading.Event | None = None) -> Iterator[str]:
        return self._make().stream(messages, max_new_tokens, cancel)
