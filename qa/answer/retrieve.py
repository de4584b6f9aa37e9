"""Hybrid retrieval: dense (FAISS, cosine) and lexical (BM25) rankings fused by reciprocal rank.

Dense search finds paraphrases (each chunk is scored by the better of its own vector and its best
sentence's vector); BM25 finds rare names, numbers and exact terms. Each retriever returns its
`candidates` best rows; reciprocal rank fusion merges them without having to
calibrate their scores against each other. Returns `Passage`s carrying the fused score and each
retriever's own score and rank.

>>> reciprocal_rank_fusion([[7, 3], [3, 9]], k=60)[0][0]
3
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

from qa.config import Settings
from qa.errors import BadQuestionError, CorruptIndexError
from qa.index.loaded import Index
from qa.models.embedders import Embedder
from qa.text import CONTROL
from qa.types import Passage

_WORD = re.compile(r"\w")
# Sentences searched per chunk wanted: a chunk scores its best sentence among the best
# SENTENCE_POOL × n sentences. On the tune articles (`scripts/tune_constants.py
# qa.answer.retrieve.SENTENCE_POOL 4 1 2 8`): 1, 2, 4 and 8 all give hit@1 0.718, hit@3 0.855;
# SQuAD2 F1 0.661 with 1, 0.662 with 2 to 8 (with 50 candidates a pool of 100 is already enough).
SENTENCE_POOL = 4


_SURROGATE = re.compile("[\ud800-\udfff]")


def check_question(question: str, max_chars: int) -> str:
    """The question with control characters removed and whitespace trimmed, or a clear error."""
    if question is not None and not isinstance(question, str):
        raise BadQuestionError(f"The question must be text, not {type(question).__name__}.")
    cleaned = CONTROL.sub(" ", question or "").strip()
    if not cleaned:
        raise BadQuestionError("The question is empty: type a question about the documents.")
    if _SURROGATE.search(cleaned):  # undecodable bytes (a non-UTF-8 terminal) or a lone UTF-16 half
        raise BadQuestionError("The question holds characters that are not valid text (not UTF-8): type it again.")
    if len(cleaned) > max_chars:
        raise BadQuestionError(
            f"The question is too long ({len(cleaned):,} characters; the limit is {max_chars:,}). "
            "Ask about one thing at a time."
        )
    if not _WORD.search(cleaned):
        raise BadQuestionError("The question has no words in it: ask it in words.")
    return cleaned


def reciprocal_rank_fusion(rankings: Sequence[Sequence[int]], k: int = 60) -> list[tuple[int, float]]:
    """Fuse ranked lists of ids: score(id) = Σ 1 / (k + rank), rank starting at 1; best first."""
    scores: dict[int, float] = {}
    for ranking in rankings:
        for rank, item in enumerate(ranking, start=1):
            scores[item] = scores.get(item, 0.0) + 1.0 / (k + rank)
    return sorted(scores.items(), key=lambda pair: (-pair[1], pair[0]))


class Retriever:
    """Searches one loaded `Index` with one embedder."""

    def __init__(self, index: Index, embedder: Embedder, settings: Settings) -> None:
        self.index = index
        self.embedder = embedder
        self.settings = settings

    def dense(self, query: str, n: int, vector: np.ndarray | None = None,
              within: tuple[np.ndarray, np.ndarray] | None = None) -> list[tuple[int, float]]:
        """(row, cosine) of the n best chunks, best first.

        A chunk scores the cosine of its best sentence, or its own when better and the index holds
        passage vectors (`QA_PASSAGE_VECTORS`): a long chunk's vector blurs the one sentence that
        answers a pointed question. `vector` is the query's embedding when the caller already has
        it; `within` (rows, units) restricts the search to some documents' chunks and sentences.
        """
        index = self.index
        if vector is None:
            vector = self.embedder.embed_query(query)
        if vector.ndim != 2 or vector.shape[1] != index.dim:
            # faiss only asserts this, and asserts vanish under `python -O`.
            raise CorruptIndexError(
                f"the index holds {index.dim}-dimensional vectors but the embedder gives "
                f"{vector.shape[-1]}: run `qa index`"
            )
        rows, units = within if within is not None else (None, None)
        best = dict(index.search_chunks(vector, n, rows))  # empty without passage vectors
        for unit, score in index.search_sentences(vector, SENTENCE_POOL * n, units):
            for row in index.chunks_of_unit(unit):
                best[row] = max(best.get(row, -1.0), score)
        return sorted(best.items(), key=lambda pair: (-pair[1], pair[0]))[:n]

    def lexical(self, query: str, n: int, rows: np.ndarray | None = None) -> list[tuple[int, float]]:
        """(row, BM25 score) of the best n chunks (among `rows` when given) sharing a term with the query."""
        return self.index.bm25_search(query, n, rows)

    def search(self, query: str, k: int | None = None, vector: np.ndarray | None = None,
               documents: Sequence[str] = ()) -> list[Passage]:
        """The k best passages for `query`, fused from both retrievers (`vector`: see `dense`);
        from the documents whose ids are in `documents` only, when any are given."""
        k = k or self.settings.k
        n = max(self.settings.candidates, k)
        within = self.index.rows_and_units(documents) if documents else None
        dense = self.dense(query, n, vector, within)
        lexical = self.lexical(query, n, within[0] if within else None)
        fused = reciprocal_rank_fusion([[r for r, _ in dense], [r for r, _ in lexical]], self.settings.rrf_k)
        dense_at = {row: (rank, score) for rank, (row, score) in enumerate(dense, start=1)}
        lexical_at = {row: (rank, score) for rank, (row, score) in enumerate(lexical, start=1)}
        passages = []
        for rank, (row, score) in enumerate(fused[:k], start=1):
            d_rank, d_score = dense_at.get(row, (None, None))
            l_rank, l_score = lexical_at.get(row, (None, None))
            passages.append(
                Passage(self.index.chunks[row], score, rank, d_score, d_rank, l_score, l_rank)
            )
        return passages
