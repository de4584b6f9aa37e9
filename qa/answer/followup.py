"""Turn a follow-up question into a standalone question using the chat history.

"and when was it renewed?" only makes sense after the question before it. Without a model good
enough to rewrite it, the rules are plain. A question leans on earlier turns when it starts with
"and"/"what about"…, or a word that points back (it, they, his, this, there…: not "that", which
mostly starts a clause, nor "is there") comes before any content word of its own, or it is too
short to name anything (`leans_on_history`); any other question stands alone and is searched and
read as written. One that leans gets its first pronoun replaced by the longest name
of the question before it that agrees with it ("it" → "GSOMIA", never "Japan and South Korea";
"its" → "GSOMIA's") and is then searched and read
like any question; when there is no such pronoun or name, the names and numbers of the question
before (its other content words when it has none) are appended for the search.

Measured on the tune articles, retrieval only (`scripts/measure_followup.py`; hit@1 / hit@3 of
the gold sentence): see docs/architecture.md (follow-ups).

>>> standalone_query("and when was it renewed?", ["When did Japan and South Korea sign GSOMIA?"])
'When was GSOMIA renewed?'
>>> standalone_query("What is its area?", ["Where are the Liancourt Rocks?"])
"What is Liancourt Rocks's area?"
>>> standalone_query("and the population?", ["What is the area of Busan?"])
'and the population? (Busan)'
>>> standalone_query("Which prime minister visited the war shrine every year?", ["How many live on the islets?"])
'Which prime minister visited the war shrine every year?'
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from qa.text import content_words

_LEAD = re.compile(r"^\s*(?:and|but|also|so|then|what about|how about|and what|why not)\b[\s,]*", re.IGNORECASE)
_PERSONAL = r"it|they|them|he|him|she"
_POSSESSIVE = r"its|their|his"
_UNSPACED = re.compile(r"[\u3040-\u30ff\u3400-\u9fff\uac00-\ud7af]")
_WITHIN = {"its", "their", "his", "her", "they", "he", "she"}  # after a content word, most often its own subject's
_POINTS_BACK = re.compile(rf"\b({_PERSONAL}|{_POSSESSIVE}|theirs|her|there|this|these|those)\b", re.IGNORECASE)
# Pointing words that point nowhere: "is there", "there are"; "is it hard to", "it is possible that", "does it mean".
_EXISTENTIAL = re.compile(r"\b(?:(?:is|are|was|were|be)\s+there|there\s+(?:is|are|was|were|be))\b"
                          r"|\b(?:(?:is|was|has|had)\s+it|it\s+(?:is|was|has|had))(?:\s+\w+){1,3}?\s+(?:to|that)\b"
                          r"|\bdoes\s+it\s+mean\b", re.IGNORECASE)
_REPLACEABLE = re.compile(rf"\b(?:(?P<personal>{_PERSONAL})|(?P<possessive>{_POSSESSIVE}))\b", re.IGNORECASE)
_NAME = re.compile(r"\b[A-Z][\w'’-]*(?:\s+(?:of\s+|the\s+|and\s+)?[A-Z][\w'’-]*)*")
_DEFINITION = re.compile(r"^\s*(?:what|who)\s+(?:is|are|was|were)\s+(?:an?\s+|the\s+)?[\w'’-]+\s*\?*\s*$", re.IGNORECASE)


def leans_on_history(question: str) -> bool:
    """Whether `question` needs the one before it to be understood: it opens like a follow-up
    ("and …", "what about …"), or has a pointing word that points outside it: "it", "them",
    "there", "this" … ("How many people live there?"), or a possessive or subject pronoun before
    any content word of its own ("When was it renewed?", not "What do cnidarians use their combs
    for?"; "is there" and "is it hard to" point nowhere), or it has no content word, or one and
    is no definition question ("Which year?", not "What is a statocyst?").

    >>> [leans_on_history(q) for q in ("When was it renewed?", "How do plankton fertilize their eggs?",
    ...                                "How many types of cilia are there?", "What is a hermaphrodite?", "Which year?",
    ...                                "Why is it hard to date rocks?", "How many people live there?")]
    [True, False, False, False, True, False, True]
    """
    if _LEAD.search(question):
        return True
    if _UNSPACED.search(question):
        return False  # Chinese, Japanese, Korean: words are not counted by spaces; only a lead word shows a follow-up
    own = content_words(question)
    if len(own) < 2:
        return not (own and _DEFINITION.match(question))
    text = _EXISTENTIAL.sub(" ", question)
    for pointer in _POINTS_BACK.finditer(text):
        if pointer.group().lower() not in _WITHIN or not content_words(text[:pointer.start()]):
            return True  # "live there", "sign it", "When did they …": what it points at comes before
    return False


def subject_of(question: str, singular: bool = False) -> str | None:
    """The longest name in `question` after its first word (the question word), or None;
    `singular`: not two names joined by "and" (what "it" may stand for).

    >>> subject_of("Which South Korean president hailed it?"), subject_of("Where are they?")
    ('South Korean', None)
    >>> subject_of("When did Japan and South Korea sign GSOMIA?"), subject_of("When did Japan and Korea sign GSOMIA?", True)
    ('Japan and South Korea', 'GSOMIA')
    """
    first = re.match(r"\s*\S+\s*", question)
    rest = question[first.end():] if first else question
    names = [m.group() for m in _NAME.finditer(rest) if not (singular and re.search(r"\s+and\s+", m.group()))]
    return max(names, key=len) if names else None


def standalone_query(question: str, previous_questions: Sequence[str]) -> str:
    """`question` made standalone from the last question when it leans on it; otherwise unchanged."""
    if not previous_questions or not leans_on_history(question):
        return question
    if subject_of(question) and not _LEAD.search(question):  # it names its own subject
        return question
    previous = previous_questions[-1]
    pronoun = _REPLACEABLE.search(question)
    subject = subject_of(previous, singular=bool(pronoun) and pronoun.group().lower() in ("it", "its"))
    if subject and pronoun and subject.lower() not in question.lower():
        named = subject if pronoun.group("personal") else f"{subject}'s"
        rewritten = _LEAD.sub("", question[:pronoun.start()] + named + question[pronoun.end():], count=1)
        return rewritten[:1].upper() + rewritten[1:]
    have = {w.lower() for w in content_words(question)}
    words = [w for w in dict.fromkeys(content_words(previous, skip_first=True)) if w.lower() not in have]
    names = [w for w in words if w[0].isupper() or w[0].isdigit()]
    context = names or words
    return f"{question} ({' '.join(context)})" if context else question
