"""Turn a follow-up question into a standalone question using the chat history.

"and when was it renewed?" only makes sense after the question before it. Without a model good
enough to rewrite it, the rules are plain. A question leans on earlier turns when it starts with
"and"/"what about"…, or uses a pronoun that points back (it, they, his, there…: not "that", which
mostly starts a clause) and names nothing itself, or has under two content words; any other
question stands alone and is searched and read as written. One that leans gets its first pronoun replaced by the longest name
of the question before it ("it" → "GSOMIA", "its" → "GSOMIA's") and is then searched and read
like any question; when there is no such pronoun or name, the names and numbers of the question
before (its other content words when it has none) are appended for the search.

Measured on the tune articles, retrieval only (`scripts/measure_followup.py`; hit@1 / hit@3 of
the gold sentence): see docs/architecture.md (follow-ups).

>>> standalone_query("and when was it renewed?", ["When did Japan and South Korea sign GSOMIA?"])
'When was Japan and South Korea renewed?'
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
_POINTS_BACK = re.compile(rf"\b({_PERSONAL}|{_POSSESSIVE}|theirs|her|there|this|these|those)\b", re.IGNORECASE)
_REPLACEABLE = re.compile(rf"\b(?:(?P<personal>{_PERSONAL})|(?P<possessive>{_POSSESSIVE}))\b", re.IGNORECASE)
_NAME = re.compile(r"\b[A-Z][\w'’-]*(?:\s+(?:of\s+|the\s+|and\s+)?[A-Z][\w'’-]*)*")


def leans_on_history(question: str) -> bool:
    """Whether `question` needs the one before it to be understood."""
    return bool(_LEAD.search(question) or _POINTS_BACK.search(question) or len(content_words(question)) < 2)


def subject_of(question: str) -> str | None:
    """The longest name in `question` after its first word (the question word), or None."""
    names = [m.group() for m in _NAME.finditer(question) if m.start() > 0]
    return max(names, key=len) if names else None


def standalone_query(question: str, previous_questions: Sequence[str]) -> str:
    """`question` made standalone from the last question when it leans on it; otherwise unchanged."""
    if not previous_questions or not leans_on_history(question):
        return question
    if subject_of(question) and not _LEAD.search(question):  # it names its own subject
        return question
    previous = previous_questions[-1]
    subject = subject_of(previous)
    pronoun = _REPLACEABLE.search(question)
    if subject and pronoun and subject.lower() not in question.lower():
        named = subject if pronoun.group("personal") else f"{subject}'s"
        rewritten = _LEAD.sub("", question[:pronoun.start()] + named + question[pronoun.end():], count=1)
        return rewritten[:1].upper() + rewritten[1:]
    have = {w.lower() for w in content_words(question)}
    words = [w for w in dict.fromkeys(content_words(previous, skip_first=True)) if w.lower() not in have]
    names = [w for w in words if w[0].isupper() or w[0].isdigit()]
    context = names or words
    return f"{question} ({' '.join(context)})" if context else question
