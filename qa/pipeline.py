"""The pipeline a front end holds: settings, the loaded index and the models, each loaded once.

The CLI and the app build one `Pipeline` and call it; they hold no pipeline logic themselves.
Loading is lazy: `Pipeline(settings)` is cheap; `warm_up()` or the first call loads the index
and models, raising a `QAError` that says what to do when something is missing or stale.
"""

from __future__ import annotations

import threading

from qa.config import Settings
from qa.index import Index, load_index
from qa.models import Embedder, get_embedder
from qa.retrieve import Retriever, check_question
from qa.types import Passage


class Pipeline:
    def __init__(self, settings: Settings, embedder: Embedder | None = None) -> None:
        self.settings = settings
        self._embedder = embedder
        self._retriever: Retriever | None = None
        self._lock = threading.Lock()

    @property
    def embedder(self) -> Embedder:
        if self._embedder is None:
            self._embedder = get_embedder(self.settings.embed_model, self.settings.threads)
        return self._embedder

    @property
    def retriever(self) -> Retriever:
        with self._lock:
            if self._retriever is None:
                index = load_index(self.settings, self.embedder.name)
                self._retriever = Retriever(index, self.embedder, self.settings)
            return self._retriever

    @property
    def index(self) -> Index:
        return self.retriever.index

    def warm_up(self) -> None:
        """Load the index and models now rather than on the first question."""
        self.retriever.search("warm up", 1)

    def reload(self) -> None:
        """Drop the loaded index so the next call loads the one on disk (after a rebuild)."""
        with self._lock:
            self._retriever = None

    def search(self, question: str, k: int | None = None) -> tuple[str, list[Passage]]:
        """(the cleaned question, its passages); raises `BadQuestionError` for unusable input."""
        cleaned = check_question(question, self.settings.max_question_chars)
        return cleaned, self.retriever.search(cleaned, k)
