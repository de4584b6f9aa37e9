"""The encoder's tokenizer (`tokenizers` on the model's own `tokenizer.json`, the file
transformers reads too), for the embedder, the reader and the reader's training, and how its
encodings become the arrays a session reads (`padded`, `token_batches`)."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np

COUNTS_KEPT = 20_000  # token counts remembered per tokenizer
# This many texts (an index build's: a file's sentences counted, a flush's embedded) go to a
# tokenizer of their own, outside the lock: on the shared one a file's count held up questions
# ~0.5 s per 10,000 sentences, a flush's encoding ~40 ms.
BULK_TEXTS = 256


class WordPieces:
    """The model's tokenizer (`tokenizer.json`), with one lock: its truncation and padding are
    settings of one shared object, so a count in one thread must not change them under a batch
    in another. An index build's many texts (`BULK_TEXTS`) go to tokenizers of their own."""

    def __init__(self, folder: Path) -> None:
        from tokenizers import Tokenizer

        self._tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        self._bulk: dict[int | None, object] = {}  # see `_own`
        self._counts: dict[str, int] = {}
        self._lock = threading.Lock()

    def count(self, texts: Sequence[str]) -> list[int]:
        """Tokens per text, without special tokens or truncation (remembered: the sentences of
        the passages shown are counted again for each question)."""
        with self._lock:
            known = {text: self._counts.get(text) for text in dict.fromkeys(texts)}
            missing = [text for text, n in known.items() if n is None]
            bulk = self._own(None) if len(missing) >= BULK_TEXTS else None
            if missing and not bulk:
                self._tokenizer.no_truncation()
                self._tokenizer.no_padding()
                known.update(self._remember(token_lengths(self._tokenizer, missing)))
        if bulk:
            counted = token_lengths(bulk, missing)
            with self._lock:
                known.update(self._remember(counted))
        return [known[text] for text in texts]

    def _own(self, max_tokens: int | None):  # noqa: ANN202 - the lock held
        """The bulk tokenizer cutting to `max_tokens` (None: never), unpadded: made once (~30 ms),
        never set again, so it encodes without the lock."""
        if max_tokens not in self._bulk:
            tokenizer = type(self._tokenizer).from_str(self._tokenizer.to_str())
            if max_tokens is None:
                tokenizer.no_truncation()
            else:
                tokenizer.enable_truncation(max_tokens)
            tokenizer.no_padding()
            self._bulk[max_tokens] = tokenizer
        return self._bulk[max_tokens]

    def _remember(self, counts: dict[str, int]) -> dict[str, int]:  # the lock held
        if len(self._counts) + len(counts) > COUNTS_KEPT:
            self._counts.clear()
        self._counts.update(counts)
        return counts

    def offsets(self, text: str) -> list[tuple[int, int]]:
        """Each token's character offsets in `text` (no special tokens)."""
        with self._lock:
            self._tokenizer.no_truncation()
            self._tokenizer.no_padding()
            return list(self._tokenizer.encode(text, add_special_tokens=False).offsets)

    def batch(self, inputs: Sequence[str | tuple[str, str]], max_tokens: int, pairs_truncate_second: bool = False):  # noqa: ANN201
        """Padded (input_ids, attention_mask, token_type_ids) arrays and the encodings (for
        offsets and sequence ids). Pairs are cut from their second text only."""
        with self._lock:
            self._tokenizer.enable_truncation(max_tokens, strategy="only_second" if pairs_truncate_second else "longest_first")
            self._tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")
            encodings = self._tokenizer.encode_batch(list(inputs))
        return padded(encodings), encodings

    def encode(self, texts: Sequence[str], max_tokens: int) -> list:
        """Each text's encoding (special tokens, cut to `max_tokens`), unpadded: for `padded`."""
        with self._lock:
            if len(texts) >= BULK_TEXTS:
                bulk = self._own(max_tokens)
            else:
                self._tokenizer.enable_truncation(max_tokens)
                self._tokenizer.no_padding()
                return self._tokenizer.encode_batch(list(texts))
        return bulk.encode_batch(list(texts))


def token_lengths(tokenizer, texts: list[str]) -> dict[str, int]:  # noqa: ANN001 - a tokenizers.Tokenizer
    """Each text's number of tokens, by `tokenizer` as it is set."""
    return {text: len(e.ids) for text, e in zip(texts, tokenizer.encode_batch(texts, add_special_tokens=False))}


def padded(encodings: Sequence) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(input_ids, attention_mask, token_type_ids) of `encodings`, padded with zeros to the longest."""
    width = max((len(e.ids) for e in encodings), default=0)
    arrays = tuple(np.zeros((len(encodings), width), dtype=np.int64) for _ in range(3))
    for row, e in enumerate(encodings):
        for array, values in zip(arrays, (e.ids, e.attention_mask, e.type_ids)):
            array[row, :len(values)] = values
    return arrays


def token_batches(lengths: Sequence[int], budget: int) -> list[list[int]]:
    """Indices of `lengths` grouped longest first, each group's rows × longest ≤ `budget` (at
    least one row). Batches of ~512 tokens kept the embedder's activations in cache: 208 chunks and
    783 sentences in 3.4 s against 5.6 s as 32 texts a batch (2 cores; README, "Indexing, since").

    >>> token_batches([3, 10, 4, 9], 20)
    [[1, 3], [2, 0]]
    """
    batches: list[list[int]] = []
    for i in sorted(range(len(lengths)), key=lambda i: -lengths[i]):
        if batches and (len(batches[-1]) + 1) * lengths[batches[-1][0]] <= budget:
            batches[-1].append(i)
        else:
            batches.append([i])
    return batches
