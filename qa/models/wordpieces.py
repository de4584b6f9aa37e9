"""The encoder's tokenizer (`tokenizers` on the model's own `tokenizer.json`, the file
transformers reads too), for the embedder, the reader and the reader's training, and how its
encodings become the arrays a session reads (`padded`, `token_batches`)."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np

COUNTS_KEPT = 20_000  # token counts remembered per tokenizer


class WordPieces:
    """The model's tokenizer (`tokenizer.json`), one object per setting of truncation and padding,
    each set once when it is made: none is changed while another thread encodes with it, so
    encoding holds no lock, and a question's tokens never wait for an index build's (one shared,
    reconfigured tokenizer under a lock made them wait ~0.5 s per 10,000 sentences of a file
    counted, ~30 ms per batch embedded)."""

    def __init__(self, folder: Path) -> None:
        self._file = folder / "tokenizer.json"
        self._json = self._file.read_text(encoding="utf-8")
        self._tokenizers: dict[tuple, object] = {}
        self._counts: dict[str, int] = {}
        self._lock = threading.Lock()  # guards the two dicts

    def _tokenizer(self, max_tokens: int | None = None, strategy: str = "longest_first", pad: bool = False):  # noqa: ANN202
        """The tokenizer cutting to `max_tokens` (None: never) by `strategy`, padding if `pad`."""
        from tokenizers import Tokenizer

        from qa.errors import ModelLoadError

        key = (max_tokens, strategy, pad)
        with self._lock:
            if key not in self._tokenizers:  # ~30 ms, once per setting
                try:
                    tokenizer = Tokenizer.from_str(self._json)
                except Exception as error:  # a damaged file means the same to the user whatever the library says
                    raise ModelLoadError(f"could not read the tokenizer {self._file}: {error}") from None
                if max_tokens is None:
                    tokenizer.no_truncation()
                else:
                    tokenizer.enable_truncation(max_tokens, strategy=strategy)
                if pad:
                    tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")
                else:
                    tokenizer.no_padding()
                self._tokenizers[key] = tokenizer
            return self._tokenizers[key]

    def count(self, texts: Sequence[str]) -> list[int]:
        """Tokens per text, without special tokens or truncation (remembered: the sentences of
        the passages shown are counted again for each question)."""
        with self._lock:
            known = {text: self._counts.get(text) for text in dict.fromkeys(texts)}
        missing = [text for text, n in known.items() if n is None]
        if missing:
            counted = token_lengths(self._tokenizer(), missing)
            with self._lock:
                if len(self._counts) + len(counted) > COUNTS_KEPT:
                    self._counts.clear()
                self._counts.update(counted)
            known.update(counted)
        return [known[text] for text in texts]

    def offsets(self, text: str) -> list[tuple[int, int]]:
        """Each token's character offsets in `text` (no special tokens)."""
        return list(self._tokenizer().encode(text, add_special_tokens=False).offsets)

    def batch(self, inputs: Sequence[str | tuple[str, str]], max_tokens: int, pairs_truncate_second: bool = False):  # noqa: ANN201
        """Padded (input_ids, attention_mask, token_type_ids) arrays and the encodings (for
        offsets and sequence ids). Pairs are cut from their second text only."""
        strategy = "only_second" if pairs_truncate_second else "longest_first"
        encodings = self._tokenizer(max_tokens, strategy, pad=True).encode_batch(list(inputs))
        return padded(encodings), encodings

    def encode(self, texts: Sequence[str], max_tokens: int) -> list:
        """Each text's encoding (special tokens, cut to `max_tokens`), unpadded: for `padded`."""
        return self._tokenizer(max_tokens).encode_batch(list(texts))


def token_lengths(tokenizer, texts: list[str]) -> dict[str, int]:  # noqa: ANN001 - a tokenizers.Tokenizer
    """Each text's number of tokens (no special tokens), by `tokenizer` as it is set."""
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
    783 sentences in 3.4 s against 5.6 s as 32 texts a batch (2 cores; docs/benchmarks.md, "Indexing, since").

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
