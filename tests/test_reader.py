"""The reader: windows, span decoding, loading; the shipped model on a clear case (slow)."""

from pathlib import Path

import numpy as np
import pytest

from qa.errors import ModelLoadError
from qa.reader import MODEL_DIR, TrainedReader, Window, best_span, reading, window_sentences

TEXT = "Busan is a port. It was founded in 1876 by traders. The harbour is deep."
SPANS = ((0, 16), (17, 51), (52, 72))


def test_a_window_is_the_sentence_with_the_neighbours_that_fit():
    assert window_sentences([5, 5, 5], 1, budget=15) == (0, 3)
    assert window_sentences([5, 5, 5], 1, budget=10) == (0, 2)  # the previous neighbour first
    assert window_sentences([5, 20, 5], 1, budget=10) == (1, 2)  # a long sentence stands alone
    assert window_sentences([5, 5], 0, budget=10) == (0, 2)


def test_the_best_span_stays_inside_the_context_and_keeps_start_before_end():
    start = np.array([9.0, 0.0, 1.0, 0.0])  # token 0 is [CLS]: never part of a span
    end = np.array([9.0, 3.0, 0.0, 2.0])
    context = np.array([False, True, True, True])
    assert best_span(start, end, context) == (1, 1, 3.0)
    assert best_span(start, end, context, max_tokens=1)[:2] == (1, 1)


def test_a_reading_carries_document_offsets_and_the_sentence_holding_the_span():
    window = Window(2, "c9", 100, 100 + len(TEXT), TEXT, tuple((100 + a, 100 + b) for a, b in SPANS))
    a = TEXT.index("1876")
    r = reading(window, a, a + 4, score=8.0, margin=3.0, probability=0.8)
    assert (r.text, r.start, r.end, r.marker, r.chunk_id) == ("1876", 100 + a, 104 + a, 2, "c9")
    assert r.sentence == "It was founded in 1876 by traders." and (r.sentence_start, r.sentence_end) == (117, 151)


def test_a_missing_reader_model_is_explained(tmp_path: Path):
    with pytest.raises(ModelLoadError, match="reader model is missing"):
        TrainedReader(tmp_path).warm_up()


@pytest.mark.slow
def test_the_shipped_reader_finds_the_answer_and_knows_when_there_is_none():
    reader = TrainedReader(MODEL_DIR)
    # 0.65: what the product scores this sentence for the first question (cosine + word overlap)
    window = Window(1, "c", 0, len(TEXT), TEXT, SPANS, score=0.65)
    (found,) = reader.read("When was Busan founded?", [window])
    assert found.text == "1876" and found.answerable >= reader.threshold
    (none,) = reader.read("Who was the first mayor of Tokyo?", [window])
    assert none.answerable < reader.threshold
    assert 0.0 < reader.threshold < 1.0
