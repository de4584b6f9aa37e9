"""Turn a follow-up question into a standalone search query using the chat history.

"and when was it renewed?" only makes sense after the question before it. Without a model good
enough to rewrite it, the rule is plain: a question that leans on earlier turns (it starts with
"and"/"what about"…, uses a pronoun, or has under two content words) gets the names and numbers
of the previous question appended (its other content words when it has none); any other
question stands alone.

Measured on the tune articles, retrieval only (`scripts/measure_followup.py`; hit@1 / hit@3 of
the gold sentence): of 405 SQuAD questions asked after the one before them, which all stand alone,
the rule rewrites 71 (17.5 %): on those, 0.662 / 0.817 as asked, 0.620 / 0.873 rewritten. For 38
follow-ups made from them (a name shared with the question before replaced by "it"): 0.658 /
0.816 as asked, 0.921 / 0.974 rewritten, the same as the original questions.

>>> standalone_query("and when was it renewed?", ["When did Japan and South Korea sign GSOMIA?"])
'and when was it renewed? (Japan South Korea GSOMIA)'
>>> standalone_query("Who founded Mindan?", ["When did Japan and South Korea sign GSOMIA?"])
'Who founded Mindan?'
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from qa.text import content_words

_LEANS_ON_HISTORY = re.compile(
    r"^\s*(and|but|also|so|then|what about|how about|and what|why not)\b"
    r"|\b(it|its|they|them|their|theirs|that|this|those|these|he|him|his|she|her|there|then)\b",
    re.IGNORECASE,
)
def standalone_query(question: str, previous_questions: Sequence[str]) -> str:
    """`question` plus context from the last question when it leans on it; otherwise unchanged."""
    if not previous_questions:
        return question
    if not (_LEANS_ON_HISTORY.search(question) or len(content_words(question)) < 2):
        return question
    have = {w.lower() for w in content_words(question)}
    previous = [w for w in dict.fromkeys(content_words(previous_questions[-1], skip_first=True)) if w.lower() not in have]
    names = [w for w in previous if w[0].isupper() or w[0].isdigit()]
    context = names or previous
    return f"{question} ({' '.join(context)})" if context else question
