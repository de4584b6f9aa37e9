"""Yes/no questions: which questions are answered "Yes" or "No" rather than with words of the text.

A question is a yes/no question when it opens with an auxiliary verb ("Did South Korea withdraw
its complaint?", "is house tax and property tax the same") and offers no alternatives (not "Is it
A or B?", which is answered with words of the text). The reader then gives, beside its span, a
verdict from its yes/no logits (`qa.answer.reader`); the span still decides whether the documents
answer at all and which sentence proves the verdict.

>>> is_yes_no("Did the two countries sign the intelligence pact?"), is_yes_no("When did they sign it?")
(True, False)
>>> is_yes_no("Is the sea called the East Sea or the Sea of Japan?"), is_yes_no("  was it signed in 1965")
(False, True)
"""

from __future__ import annotations

import re

AUXILIARIES = ("is", "are", "was", "were", "am", "do", "does", "did", "can", "could", "will", "would", "should",
               "shall", "has", "have", "had", "may", "might", "must", "isn't", "aren't", "wasn't", "weren't",
               "don't", "doesn't", "didn't", "can't", "couldn't", "won't", "wouldn't", "shouldn't", "hasn't",
               "haven't", "hadn't")
_OPENS_WITH_AUXILIARY = re.compile(rf"^\W*(?:{'|'.join(map(re.escape, AUXILIARIES))})\s", re.IGNORECASE)
_ALTERNATIVES = re.compile(r"\bor\b", re.IGNORECASE)


def is_yes_no(question: str) -> bool:
    """Whether `question` is answered "Yes" or "No"."""
    return bool(_OPENS_WITH_AUXILIARY.match(question)) and not _ALTERNATIVES.search(question)
