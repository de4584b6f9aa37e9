"""Calibrate the trained reader on held-out articles, then report on others.

    .venv/bin/python scripts/calibrate_reader.py     # ~10 minutes on 2 CPU cores

The product retrieves and reads for each question of the TUNE articles (whole articles as the
corpus: retrieval must find the paragraph). Over every window read, a logistic regression maps
(margin = span score minus no-answer score, the window's sentence score) to "this span answers
the question" (F1 ≥ 0.5 against the gold answers); then, taking each question's most probable
reading, the threshold that maximises SQuAD 2.0 F1 on TUNE is chosen. Both go to
qa/reader_model/calibration.json. (Leave-one-article-out on TUNE, `scripts/diagnose_reader.py`,
shipped reader: the margin alone 0.567 SQuAD F1; with the window score 0.597; adding the passage's
dense, BM25 or fused score, its rank, the span score, agreement between windows or the answer's
overlap with the question instead gave 0.581-0.594.) Then the product, calibrated, runs on the
REPORT articles, which nothing was chosen on; the figures go to qa/reader_model/heldout.json.

With --embedder, the same for the embedder and chunking the environment sets, e.g.
`QA_EMBED_MODEL=e5 QA_CHUNK_TOKENS=256 QA_CHUNK_OVERLAP_TOKENS=64 … --embedder`: a window's score is
its sentence's cosine, whose scale is the embedder's, so the reader keeps a calibration per embedder
(calibration.json's `by_embedder`); the bundled MiniLM's and the rest stay as they are.
"""

from __future__ import annotations

from qa.training.calibration import calibrate, calibrate_for_embedder, reader_arguments


def main() -> None:
    args = reader_arguments(__doc__.splitlines()[0], embedder=True)
    (calibrate_for_embedder if args.embedder else calibrate)(args.data, args.model, args.work)


if __name__ == "__main__":
    main()
