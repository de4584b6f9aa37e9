"""Where an answer span starts and ends in its text: on whole words, and never with an unpaired
bracket or quote (a span the reader cut inside "(and future President …)" is closed or trimmed)."""

from __future__ import annotations


def whole_words(text: str, a: int, b: int) -> tuple[int, int]:
    """[a, b) widened to whole words (a span may end inside a word's last sub-token).

    >>> whole_words("in Busan harbour", 3, 6)
    (3, 8)
    """
    while a > 0 and text[a - 1].isalnum() and text[a].isalnum():
        a -= 1
    while b < len(text) and text[b - 1].isalnum() and text[b].isalnum():
        b += 1
    return a, b


_CLOSERS = {"(": ")", "[": "]", "{": "}", "“": "”", "«": "»"}
_OPENERS = {v: k for k, v in _CLOSERS.items()}


def _unpaired(span: str) -> tuple[int, bool] | None:
    """The first quote mark or bracket of `span` without its partner: (index, whether it opens)."""
    stack: list[int] = []
    quote = None  # the index of an open straight quote
    for i, c in enumerate(span):
        if c in _CLOSERS:
            stack.append(i)
        elif c in _OPENERS:
            if stack and span[stack[-1]] == _OPENERS[c]:
                stack.pop()
            else:
                return i, False
        elif c == '"':
            quote = i if quote is None else None
    if quote is not None:
        return quote, quote > 0 and span[quote - 1].isspace() or quote == 0 and len(span) > 1 and span[1].isalnum()
    return (stack[0], True) if stack else None


def balanced(text: str, a: int, b: int, reach: int = 60) -> tuple[int, int]:
    """[a, b) of `text` without an unpaired quote mark or bracket: widened to its partner when
    that is within `reach` characters, else cut before (or after) it; unchanged if nothing is left.

    >>> text = 'a "heartfelt apology" for colonialism (and more'
    >>> [text[slice(*balanced(text, a, b))] for a, b in ((3, 37), (26, 47), (38, 47))]
    ['"heartfelt apology" for colonialism', 'colonialism', 'and more']
    """
    start, end = a, b
    for _ in range(4):
        found = _unpaired(text[a:b])
        if found is None:
            return a, b
        i, opens = found
        c = text[a + i]
        partner = '"' if c == '"' else (_CLOSERS[c] if opens else _OPENERS[c])
        if opens:  # its partner after the span, or the span cut before it (after it, if it begins the span)
            j = text.find(partner, b, b + reach)
            a, b = (a, j + 1) if j != -1 else (a + 1, b) if i == 0 else (a, a + i)
        else:  # its partner before the span, or the span cut after it (before it, if it ends the span)
            j = text.rfind(partner, max(0, a - reach), a)
            a, b = (j, b) if j != -1 else (a, b - 1) if a + i == b - 1 else (a + i + 1, b)
        while a < b and text[a].isspace():
            a += 1
        while b > a and text[b - 1].isspace():
            b -= 1
        if a >= b:
            return start, end
    return a, b
