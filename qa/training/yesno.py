"""Yes/no questions for training and measuring the reader's yes/no head: answerable questions
turned into yes/no questions (`yes_no_question`; "No" when asked about `other_answer`), and the
yes/no data sets in `../shared/data/yesno/` (see SOURCES.md there)."""

from __future__ import annotations

import json
import random
import re
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from qa.config import Settings
    from qa.evaluation.evaluate import Question
    from qa.pipeline import Pipeline

_NAME_OR_NUMBER = re.compile(r"\b(?:[A-Z][a-z]+|\d[\d,.]*\d|\d)\b")
_WH_BE = re.compile(r"^(what|who|which|when|where)\s+(is|was|are|were)\s+(.+?)[\s?]*$", re.IGNORECASE)
_WH_DID = re.compile(r"^(?:when|where|what year|in what year|in which year)\s+(did|does|do)\s+(.+?)[\s?]*$", re.IGNORECASE)
_PREPOSITION = re.compile(r"^(?:in|on|at|during|from|by|after|before|around|near|since|until)\b", re.IGNORECASE)
YES, NO = 0, 1  # the yes/no logits' order in the head (`qa_outputs` rows 2 and 3)
UNDECIDED = 2  # the verdict branch's third logit: this window does not decide the question
YES_NO_FILES = ("boolq_train_eraser_val.jsonl", "boolq_train_lifelongicl_sample.jsonl", "pubmedqa_pqal.jsonl",
                "hotpotqa_yesno_sample.jsonl")  # ../shared/data/yesno/: train splits only (boolq_dev is held out)


def yes_no_question(question: str, answer: str) -> str | None:
    """A yes/no question asking whether `answer` answers `question` (a "What/Who/When/Where is…"
    or "When/Where did…" question); None for other forms.

    >>> yes_no_question("What is the capital of France?", "Paris"), yes_no_question("When did the war end?", "1945")
    ('Is the capital of France Paris?', 'Did the war end in 1945?')
    >>> yes_no_question("Where was Chopin born?", "in Warsaw"), yes_no_question("How did it end?", "badly")
    ('Was Chopin born in Warsaw?', None)
    """
    question = question.strip()
    if m := _WH_BE.match(question):
        wh, verb, rest = m.groups()
        place = wh.lower() in ("when", "where") and not _PREPOSITION.match(answer)
        return f"{verb.capitalize()} {rest}{' in' if place else ''} {answer}?"
    if m := _WH_DID.match(question):
        verb, rest = m.groups()
        return f"{verb.capitalize()} {rest}{'' if _PREPOSITION.match(answer) else ' in'} {answer}?"
    return None


def other_answer(answer: str, window: str, article_text: str, rng: random.Random) -> str | None:
    """The answer with its number, or else its name, replaced by another of the article that the
    window does not hold (a name: a capitalised word not opening a sentence): what makes the
    answer to a yes/no question "No". None when there is none.

    >>> other_answer("June 1965", "Signed in June 1965.", "In 1910 and 1965 Tokyo met Seoul.", random.Random(0))
    'June 1910'
    >>> other_answer("Seoul", "Signed in Seoul.", "In 1910 Tokyo met Seoul.", random.Random(0))
    'Tokyo'
    """
    if len(answer.split()) > 4:
        return None
    lower = window.lower()
    number = re.search(r"\d[\d,.]*\d|\d", answer)
    if number:
        target = number
        pool = {m.group() for m in re.finditer(r"\d[\d,.]*\d|\d", article_text)}
    else:
        target = _NAME_OR_NUMBER.search(answer)
        pool = {m.group() for m in _NAME_OR_NUMBER.finditer(article_text) if not m.group()[0].isdigit()
                and m.start() > 1 and article_text[m.start() - 2] not in ".!?\n"}
    if target is None:
        return None
    pool = sorted(w for w in pool if w.lower() not in lower and w.lower() not in answer.lower())
    return answer[:target.start()] + rng.choice(pool) + answer[target.end():] if pool else None


def yes_no_files(folder: Path) -> list[tuple[str, str, int]]:
    """(question, passage, YES or NO) of the yes/no train files in `folder`."""
    out = []
    for name in YES_NO_FILES:
        for line in (folder / name).read_text(encoding="utf-8").splitlines():
            item = json.loads(line)
            out.append((item["question"], item["passage"], YES if item["answer"] else NO))
    return out


def boolq_questions(folder: Path, split: str, limit: int) -> list[Question]:
    """BoolQ dev questions of the split, each passage written into `folder` as a document."""
    from qa.evaluation.evaluate import Question
    from qa.training.splits import DATA

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
    import dataclasses

    from qa.answer.yesno import is_yes_no
    from qa.evaluation.evaluate import squad_corpus
    from qa.training.splits import DATA, dev_splits

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
    """A pipeline over the corpus in `folder`/corpus (indexed in `folder`/index) with the reader in `model`."""
    import dataclasses

    from qa.answer.reader import TrainedReader
    from qa.index.build import build_index
    from qa.models.embedders import get_embedder
    from qa.pipeline import Pipeline

    settings = dataclasses.replace(settings, corpus_dir=folder / "corpus", index_dir=folder / "index")
    embedder = get_embedder(settings.embed_model, settings.threads, cache_dir=settings.cache_dir,
                            precision=settings.encoder_precision)
    build_index(settings, embedder, progress=False)
    reader = TrainedReader(model, settings.threads, settings.cache_dir, settings.encoder_precision)
    return Pipeline(settings, embedder=embedder, reader=reader)
