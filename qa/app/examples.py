"""The chat's example questions, the first thing a person clicks, so each one gets an answer.

Listed ones (`corpus/.qaexamples`) are offered only when the reader answers them (or they ask
for an overview); the others are left out and logged. Without a file (or when none of it is
answered), "When" questions made from the documents' dated sentences ("In August 2017, South
Korea and Japan decided to renew the agreement." → "When did South Korea and Japan decide to
renew the agreement?"), kept only when the reader answers them with that date, then
"Summarize <title>". Checked once per index and example file: a page load after that costs
nothing. (Questions made from section headings — "What are the Liancourt Rocks?" — were tried
and left out: the reader's answers to them were mostly fragments.)
"""

from __future__ import annotations

import logging
import re
import threading

from qa.errors import QAError
from qa.ingest.corpus import MAX_EXAMPLES, example_questions
from qa.pipeline import Pipeline
from qa.types import ANSWERED

log = logging.getLogger(__name__)

MADE_EXAMPLES = 3  # "When" questions made from dated sentences, beside "Summarize …"
OFFERED = 4  # examples offered when the corpus lists none: the made ones, then "Summarize <title>"s
CANDIDATES = 12  # dated sentences tried at most (each is asked once, in evidence mode)
MAX_QUESTION_CHARS = 90  # a longer made question reads as a sentence copied, not as a question
_MONTH = r"(?:January|February|March|April|May|June|July|August|September|October|November|December)"
_DATE = rf"(?:{_MONTH} )?(?:\d{{1,2}},? )?(?:{_MONTH} )?\d{{4}}"
_SUBJECT = r"(?P<subject>(?:the )?[A-Z][\w'’–-]*(?: (?:and|of|the|[A-Z][\w'’–-]*))*)"
_ADVERB = r"(?:formally |officially |also |then |again |later |first )?"
_DATED = (re.compile(rf"^(?:In|On|By) (?P<date>{_DATE}), {_SUBJECT} {_ADVERB}(?P<verb>[a-z]{{3,}}ed) "
                     r"(?P<rest>[^,;:()\"“”]{4,90}?)\.$"),
          re.compile(rf"^{_SUBJECT} {_ADVERB}(?P<verb>[a-z]{{3,}}ed) (?P<rest>[^,;:()\"“”]{{4,90}}?),? (?:in|on) "
                     rf"(?P<date>{_DATE})\.$"))
_ADDS_E = re.compile(r"(?:at|iz|is|ut|ur|ir|ar|or|ag|iv|ov|uc|nc|rc|rg|dg|ng|ok|ab|ud|id|ad|od|as|us|os|ot)$")

_lock = threading.Lock()
_checked: dict[tuple[int, tuple[str, ...]], tuple[object, list[str]]] = {}


def base_form(verb: str) -> str:
    """The base form of a regular past tense ("did" takes it); irregular ones never end in -ed.

    >>> [base_form(v) for v in ("established", "signed", "agreed", "created", "stopped", "occurred", "announced", "tried")]
    ['establish', 'sign', 'agree', 'create', 'stop', 'occur', 'announce', 'try']
    """
    stem = verb[:-2]
    if verb.endswith("eed"):
        return verb[:-1]
    if verb.endswith("ied"):
        return verb[:-3] + "y"
    if len(stem) > 2 and stem[-1] == stem[-2] and stem[-1] not in "lsz":
        return stem[:-1]
    return stem + "e" if _ADDS_E.search(stem) else stem


def when_question(sentence: str) -> tuple[str, str] | None:
    """(a "When" question, its answer) made from a sentence that dates what someone did; None
    for any other sentence.

    >>> when_question("In August 2017, South Korea and Japan decided to renew the agreement.")
    ('When did South Korea and Japan decide to renew the agreement?', 'August 2017')
    >>> when_question("On April 12, 2019, the WTO overturned its decision.")
    ('When did the WTO overturn its decision?', 'April 12, 2019')
    >>> when_question("The WTO overturned its previous decision on April 12, 2019."), when_question("It rained in 2019.")
    (('When did the WTO overturn its previous decision?', 'April 12, 2019'), None)
    """
    for pattern in _DATED:
        if match := pattern.match(sentence.strip()):
            subject = re.sub(r"^The ", "the ", match["subject"])
            if subject.casefold() in ("it", "they", "he", "she", "this", "these"):
                return None
            return f"When did {subject} {base_form(match['verb'])} {match['rest']}?", match["date"]
    return None


def answered(pipeline: Pipeline, question: str, expected: str = "") -> float | None:
    """How sure the reader is of its answer to `question` (1.0 for an overview); None when it does
    not answer it (not sure, declined, an error, or a short answer other than `expected`)."""
    try:
        answer = pipeline.ask(question, mode="evidence")
    except QAError as error:
        log.info("example %r not offered: %s", question, error)
        return None
    if answer.model == "overview":
        return 1.0
    if answer.outcome != ANSWERED or not answer.readings:
        return None
    if expected and (answer.short_answer is None or answer.short_answer.text.strip(" .,") != expected):
        return None
    return answer.readings[0].answerable


def made_questions(pipeline: Pipeline) -> list[str]:
    """Up to `MADE_EXAMPLES` "When" questions the reader answers with their date, most surely
    first, then "Summarize <title>" for the first documents, `OFFERED` in all (one at least)."""
    index = pipeline.index
    documents = sorted(index.documents.values(), key=lambda d: d.path)
    made = [m for u in range(index.sentence_count)
            if (m := when_question(index.sentence_text(u))) and len(m[0]) <= MAX_QUESTION_CHARS][:CANDIDATES]
    sure = {q: p for q, date in made if (p := answered(pipeline, q, date)) is not None}
    best = sorted(sure, key=lambda q: -sure[q])[:MADE_EXAMPLES]
    summaries = [f"Summarize {d.title}" for d in documents[:max(1, OFFERED - len(best))]]
    return best + summaries


def example_buttons(pipeline: Pipeline) -> list[str]:
    """The example questions to offer, checked (see the module's text); [] with no index."""
    listed = tuple(example_questions(pipeline.settings.corpus_dir))
    try:
        index = pipeline.index
    except QAError:
        return []
    key = (id(index), listed)
    with _lock:  # one check per index and file, even when pages load together
        if key in _checked and _checked[key][0] is index:
            return list(_checked[key][1])
        kept = [q for q in listed if answered(pipeline, q) is not None]
        for question in set(listed) - set(kept):
            log.info("example %r not offered: the reader does not answer it from the documents", question)
        questions = (kept or made_questions(pipeline))[:MAX_EXAMPLES]
        _checked.clear()  # only the current index's
        _checked[key] = (index, questions)
        return list(questions)
