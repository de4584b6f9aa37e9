"""Two-fact questions end to end on HotpotQA: each question against its own 10 paragraphs (one
index of all of them; each question's search restricted to its paragraphs, as "Search in" does).

    .venv/bin/python scripts/eval_multihop.py --work /tmp/multihop [--report] [--type comparison]

Per question: whether the planner split it, whether the answer was composed (both parts answered
and deciding), and whether the answer holds the gold (its headline or short answer equals it,
normalised, or the answer's text contains it). The halves are `scripts/measure_planner.py`'s.
"""

from __future__ import annotations

import argparse
import collections
import json
from pathlib import Path

from measure_planner import MULTIHOP, half

from qa.config import Settings
from qa.evaluation.hotpot import paragraph_file
from qa.index.build import build_index
from qa.models.embedders import get_embedder
from qa.pipeline import Pipeline
from qa.text import normalize_answer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--report", action="store_true")
    parser.add_argument("--type", default="comparison", choices=("comparison", "bridge", "all"))
    parser.add_argument("--limit", type=int, default=0)
    args = parser.parse_args()
    rows = [json.loads(line) for name in ("hotpotqa_train_100.jsonl", "hotpotqa_dev_1009.jsonl")
            for line in (MULTIHOP / name).read_text(encoding="utf-8").splitlines()]
    rows = [r for r in rows if half(r["_id"]) == ("report" if args.report else "choose")
            and args.type in ("all", r["type"])][:args.limit or None]
    settings = Settings(corpus_dir=args.work / "corpus", index_dir=args.work / "index")
    settings.corpus_dir.mkdir(parents=True, exist_ok=True)
    names: dict[str, str] = {}
    for r in rows:
        for title, sentences in r["context"]:
            if title not in names:
                names[title] = paragraph_file(title)
                (settings.corpus_dir / names[title]).write_text(f"# {title}\n\n{''.join(sentences).strip()}\n", encoding="utf-8")
    if not (settings.index_dir / "manifest.json").is_file():
        build_index(settings, get_embedder(settings.embed_model, settings.threads, cache_dir=settings.cache_dir,
                                           precision=settings.encoder_precision), progress=False)
    pipeline = Pipeline(settings)
    pipeline.warm_up()
    counts = collections.Counter()
    for r in rows:
        answer = pipeline.ask(r["question"], documents=[names[t] for t, _ in r["context"]])
        gold = normalize_answer(r["answer"])
        said = answer.headline or (answer.short_answer.short_text if answer.short_answer else "")
        holds = normalize_answer(said) == gold or (not answer.abstained and gold and gold in normalize_answer(answer.text))
        counts["questions"] += 1
        counts["composed"] += bool(answer.parts)
        counts["right"] += bool(holds)
        counts["right when composed"] += bool(holds and answer.parts)
        counts["yes/no"] += r["answer"] in ("yes", "no")
        counts["yes/no right"] += bool(holds and r["answer"] in ("yes", "no"))
    n = counts["questions"]
    print(f"{n} {args.type} questions ({'report' if args.report else 'choose'} half): answer holds the gold "
          f"{counts['right'] / n:.3f}; composed {counts['composed'] / n:.3f}, right when composed "
          f"{counts['right when composed'] / max(counts['composed'], 1):.3f}; yes/no right "
          f"{counts['yes/no right']}/{counts['yes/no']}")


if __name__ == "__main__":
    main()
