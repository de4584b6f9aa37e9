"""The reader: windows, span decoding, loading; the shipped model on a clear case (slow)."""

from pathlib import Path

import numpy as np
import pytest

from qa.answer.reader import TrainedReader, Window, best_span, reading, window_at, window_sentences
from qa.errors import ModelLoadError
from qa.models.locate import BUNDLED_READER, reader_model_dir

TEXT = "Busan is a port. It was founded in 1876 by traders. The harbour is deep."
SPANS = ((0, 16), (17, 51), (52, 72))


def test_a_window_is_the_sentence_with_the_neighbours_that_fit():
    assert window_sentences([5, 5, 5], 1, budget=15) == (0, 3)
    assert window_sentences([5, 5, 5], 1, budget=10) == (0, 2)  # the previous neighbour first
    assert window_sentences([5, 20, 5], 1, budget=10) == (1, 2)  # a long sentence stands alone
    assert window_sentences([5, 5], 0, budget=10) == (0, 2)


def test_a_wide_window_adds_neighbours_while_they_fit():
    assert window_sentences([5, 5, 5, 5, 5], 2, budget=15, wide=True) == (1, 4)
    assert window_sentences([5, 5, 5, 5, 5], 2, budget=25, wide=True) == (0, 5)
    assert window_sentences([5, 5, 30, 5], 1, budget=20, wide=True) == (0, 2)  # a neighbour too long stops that side


def test_window_at_keeps_document_offsets():
    w = window_at(TEXT, 100, SPANS, [5, 9, 5], 1, budget=14, marker=3, chunk_id="c", score=0.5)
    assert (w.text, w.start, w.sentences) == (TEXT[:51], 100, ((100, 116), (117, 151)))
    assert (w.marker, w.chunk_id, w.score) == (3, "c", 0.5)


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


def test_a_reader_folder_without_weights_is_explained(tmp_path: Path):
    assert reader_model_dir("") == BUNDLED_READER
    with pytest.raises(ModelLoadError, match="reader model folder not found"):
        reader_model_dir(str(tmp_path))


@pytest.mark.slow
def test_a_question_longer_than_the_readers_input_is_read_not_refused():
    reader = TrainedReader(BUNDLED_READER)
    window = Window(1, "c", 0, len(TEXT), TEXT, SPANS, score=0.65)
    for question in ("Tell me about the city. " * 90 + "When was Busan founded?", "釜山" * 1000):
        (found,) = reader.read(question, [window])
        assert 0.0 <= found.answerable <= 1.0 and TEXT[found.start:found.end] == found.text


@pytest.mark.slow
def test_the_shipped_reader_finds_the_answer_and_knows_when_there_is_none():
    reader = TrainedReader(BUNDLED_READER)
    # 0.65: what the product scores this sentence for the first question (cosine + word overlap)
    window = Window(1, "c", 0, len(TEXT), TEXT, SPANS, score=0.65)
    (found,) = reader.read("When was Busan founded?", [window])
    assert found.text == "1876" and found.answerable >= reader.threshold
    (none,) = reader.read("Who was the first mayor of Tokyo?", [window])
    assert none.answerable < reader.threshold
    assert 0.0 < reader.threshold < 1.0


@pytest.mark.slow
def test_counting_and_reading_from_many_threads_at_once_never_breaks_a_batch():
    """Indexing counts tokens while questions are read: the shared tokenizer's padding must hold."""
    import collections
    import threading

    reader = TrainedReader(reader_model_dir(BUNDLED_READER))
    texts = ["Japan and South Korea established diplomatic relations in December 1965 after the treaty." * k
             for k in (1, 2, 3)]
    windows = [Window(1, "c", 0, len(t), t, ((0, len(t)),), 0.5) for t in texts] * 2
    errors = collections.Counter()

    def work(n: int) -> None:
        for i in range(150):
            try:
                if n % 2:
                    reader.count_tokens([t * (1 + i % 3) for t in texts] * 5)
                else:
                    reader.read("When were relations established? " * (1 + i % 10), windows)
            except Exception as error:  # noqa: BLE001 - counted
                errors[type(error).__name__] += 1

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors


def test_the_reader_is_calibrated_for_the_embedder_that_scores_its_windows(tmp_path: Path):
    """A window's score is its sentence's cosine, whose scale is the embedder's: the reader uses the
    calibration fitted for the embedder in use (`by_embedder`), the bundled MiniLM's otherwise."""
    import json
    import shutil

    folder = tmp_path / "reader"
    shutil.copytree(BUNDLED_READER, folder)
    calibration = json.loads((folder / "calibration.json").read_text())
    calibration["by_embedder"] = {"e5": {"threshold": 0.777, "window_score": 0.0}}
    (folder / "calibration.json").write_text(json.dumps(calibration))
    minilm, e5 = TrainedReader(folder, 2), TrainedReader(folder, 2, embedder="e5")
    assert minilm.threshold == calibration["threshold"] and e5.threshold == 0.777
    assert e5.probability(1.0, 0.9) == e5.probability(1.0, 0.1) != minilm.probability(1.0, 0.1)
