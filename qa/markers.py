"""Citation markers: the `[n]` that ties a sentence of an answer to the n-th shown passage.

Parsing them out of model text, removing them, and making a document's own "[7]"-style
brackets inert so they are never taken for ours.
"""

from __future__ import annotations

import re

from qa.chunking import sentence_spans

MARKER = re.compile(r"\[(\d{1,3}(?:\s*[,;]\s*\d{1,3})*)\]")


def parse_markers(text: str) -> list[int]:
    """The passage numbers cited in `text`, in order.

    >>> parse_markers("In 1965 [1][3]. Also [2, 4].")
    [1, 3, 2, 4]
    """
    return [int(n) for group in MARKER.findall(text) for n in re.split(r"\s*[,;]\s*", group)]


def inert_markers(text: str) -> str:
    """Document text whose own "[7]"-style brackets get a zero-width space after "[", so they
    look the same but are never taken for (or rendered as) our citation markers.

    >>> inert_markers("built in 1954 [7].")
    'built in 1954 [\u200b7].'
    """
    return MARKER.sub(lambda m: f"[\u200b{m.group(1)}]", text)


def strip_markers(text: str) -> str:
    return re.sub(r"\s*" + MARKER.pattern, "", text).strip()


def answer_sentences(text: str) -> list[str]:
    """The sentences of an answer, each with the markers that follow it.

    >>> answer_sentences("Signed in 1965. [1] Ratified later [2].")
    ['Signed in 1965. [1]', 'Ratified later [2].']
    """
    sentences = [text[a:b] for a, b in sentence_spans(text)]
    # A marker that opens a sentence ("1965. [1] Then…") belongs to the sentence before it.
    for i in range(1, len(sentences)):
        lead = re.match(r"^(?:\s*" + MARKER.pattern + r")+", sentences[i])
        if lead:
            sentences[i - 1] += " " + lead.group(0).strip()
            sentences[i] = sentences[i][lead.end() :].strip()
    return [s for s in sentences if s]
