"""Yes/no questions, measured apart: how often the product answers "Yes"/"No" right, end to end.

    .venv/bin/python scripts/eval_yesno.py [--split tune|report] [--limit N] [--model READER_FOLDER]

Two held-out sets, neither trained on:
- boolq: BoolQ dev (`../shared/data/yesno/boolq_dev.jsonl`, CC BY-SA 3.0): every passage a document of
  one corpus; `--split tune` takes the questions at even line positions (choices are made there),
  `report` the odd ones.
- squad: the answerable questions of the SQuAD 2.0 tune or report articles (whole articles as the
  corpus) turned into yes/no questions as training turns train questions (`qa.evaluation.yesno`):
  about half ask about the gold answer ("Yes"), the rest about another name or number ("No").
Prints, per set: accuracy of the answered ones, the share answered, and accuracy counting every
question not answered as wrong; and how many questions of the SQuAD split that are not yes/no
questions the rule (`qa.answer.yesno.is_yes_no`) takes for one (they would get "Yes"/"No").
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import random
from pathlib import Path

from qa.answer.reader import TrainedReader
from qa.answer.yesno import is_yes_no
from qa.config import Settings
from qa.evaluation.evaluate import Question, evaluate, squad_corpus
from qa.evaluation.splits import DATA, dev_splits
from qa.evaluation.yesno import other_answer, yes_no_question
from qa.index.build import build_index
from qa.models.embedders import get_embedder
from qa.models.locate import BUNDLED_READER
from qa.pipeline import Pipeline


def boolq_questions(folder: Path, split: str, limit: int) -> list[Question]:
    """BoolQ dev questions of the split, each passage written into `folder` as a document."""
    folder.mkdir(parents=True, exist_ok=True)
    items = [json.loads(line) for line in (DATA.parent / "yesno" / "boolq_dev.jsonl").read_text().splitlines()]
    items = [x for x in items if int(x["id"].rsplit("-", 1)[1]) % 2 == (0 if split == "tune" else 1)][:limit or None]
    questions = []
    for n, item in enumerate(items):
        (folder / f"{n:04d}.txt").write_text(f"= {item['title']} =\n\n{item['passage']}\n", encoding="utf-8")
        questions.append(Question(item["id"], item["question"], ("yes" if item["answer"] else "no",), type="boolq"))
    return questions


def squad_yes_no(folder: Path, split: str, limit: int) -> tuple[list[Question], int, int]:
    """The split's answerable SQuAD questions as yes/no questions (the articles written into
    `folder`); and how many of its questions the rule takes for yes/no ones, of how many."""
    articles = dev_splits(DATA)[split]
    originals = squad_corpus(articles, folder)
    flagged = sum(is_yes_no(q.question) for q in originals)
    rng, out = random.Random(13), []
    text = {a.title: "\n".join(a.paragraphs) for a in articles}
    for q in originals:
        if not q.answers:
            continue
        wrong = other_answer(q.answers[0], " ".join(q.evidence), text[q.extra["title"]], rng) if rng.random() < 0.5 else None
        asked = yes_no_question(q.question, wrong or q.answers[0])
        if asked:
            out.append(dataclasses.replace(q, id=f"yn-{q.id}", question=asked, answers=("no" if wrong else "yes",),
                                           evidence=(), type="squad-yesno"))
    return out[:limit or None], flagged, len(originals)


def pipeline_for(folder: Path, model: Path, settings: Settings) -> Pipeline:
    settings = dataclasses.replace(settings, corpus_dir=folder / "corpus", index_dir=folder / "index")
    embedder = get_embedder(settings.embed_model, settings.threads, cache_dir=settings.cache_dir,
                            precision=settings.encoder_precision)
    build_index(settings, embedder, progress=False)
    reader = TrainedReader(model, settings.threads, settings.cache_dir, settings.encoder_precision)
    return Pipeline(settings, embedder=embedder, reader=reader)


def report(name: str, records: list[dict]) -> None:
    answered = [r for r in records if not r.get("abstained", True)]
    right = [r["squad_exact"] for r in answered]
    gold_yes = sum(r["gold"] == ["yes"] for r in records)
    print(f"{name}: {len(records)} questions ({gold_yes} yes), answered {len(answered) / len(records):.3f}, "
          f"accuracy of answered {sum(right) / max(1, len(right)):.3f}, accuracy counting not answered as wrong "
          f"{sum(right) / len(records):.3f}, tentative {sum(r.get('outcome') == 'tentative' for r in records) / len(records):.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--split", choices=["tune", "report"], default="tune")
    parser.add_argument("--limit", type=int, default=600, help="questions per set (0: all)")
    parser.add_argument("--model", type=Path, default=BUNDLED_READER)
    parser.add_argument("--work", type=Path, default=Path(".reader-train/yesno"))
    args = parser.parse_args()
    settings = Settings.from_env()

    questions = boolq_questions(args.work / args.split / "boolq" / "corpus", args.split, args.limit)
    pipeline = pipeline_for(args.work / args.split / "boolq", args.model, settings)
    report(f"boolq dev ({args.split})", evaluate(pipeline, questions, settings.k, "evidence"))

    questions, flagged, total = squad_yes_no(args.work / args.split / "squad" / "corpus", args.split, args.limit)
    pipeline = pipeline_for(args.work / args.split / "squad", args.model, settings)
    report(f"SQuAD {args.split} articles as yes/no", evaluate(pipeline, questions, settings.k, "evidence"))
    print(f"SQuAD {args.split} articles: {flagged} of {total} questions taken for yes/no questions by the rule")


if __name__ == "__main__":
    main()
