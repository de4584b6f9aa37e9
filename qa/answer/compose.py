"""Comparing what two sub-questions' answers say (`qa.answer.planner`): dates, quantities and
names, so a comparison can be decided from two cited facts. Pure functions; which of two things
wins is decided here, how it is said and cited is the answerer's.
"""

from __future__ import annotations

import re

_MONTHS = {m: n for n, m in enumerate("january february march april may june july august september october november "
                                      "december".split(), start=1)}
_MONTHS |= {m[:3]: n for m, n in list(_MONTHS.items())}
_SCALES = {"thousand": 1e3, "million": 1e6, "billion": 1e9, "trillion": 1e12, "k": 1e3, "m": 1e6, "bn": 1e9}
_YEAR = re.compile(r"\b(?P<year>\d{3,4})(?:\s*(?P<era>BC|BCE|AD|CE))?\b")
_NUMBER = re.compile(r"(?P<n>-?\d[\d,]*(?:\.\d+)?)\s*(?P<scale>thousand|million|billion|trillion|bn|k|m)?\b", re.IGNORECASE)
_WORD_NUMBERS = {w: n for n, w in enumerate("zero one two three four five six seven eight nine ten eleven twelve".split())}
# A country and the adjective that names its people: "American" and "United States" are the same answer.
_NATIONS = {"american": "united states", "usa": "united states", "us": "united states", "u.s.": "united states",
            "america": "united states", "british": "united kingdom", "uk": "united kingdom", "english": "united kingdom",
            "england": "united kingdom", "french": "france", "german": "germany", "italian": "italy",
            "spanish": "spain", "japanese": "japan", "korean": "south korea", "chinese": "china", "canadian": "canada",
            "australian": "australia", "russian": "russia", "indian": "india", "irish": "ireland",
            "scottish": "united kingdom", "welsh": "united kingdom", "dutch": "netherlands", "swedish": "sweden",
            "norwegian": "norway", "danish": "denmark", "polish": "poland", "mexican": "mexico",
            "brazilian": "brazil", "belgian": "belgium", "swiss": "switzerland", "austrian": "austria"}


def date_key(text: str) -> tuple[int, int, int] | None:
    """A date said in `text` as (year, month, day) for ordering (months and days 0 when not said;
    years BC negative), or None.

    >>> date_key("born 12 March 1921"), date_key("in July 2008"), date_key("c. 500 BC"), date_key("soon")
    ((1921, 3, 12), (2008, 7, 0), (-500, 0, 0), None)
    >>> date_key("March 5, 1991")
    (1991, 3, 5)
    """
    year = _YEAR.search(text)
    if not year:
        return None
    value = int(year["year"]) * (-1 if year["era"] in ("BC", "BCE") else 1)
    words = re.findall(r"[a-z]+|\b\d{1,2}\b", text.casefold())
    month = next((_MONTHS[w] for w in words if w in _MONTHS), 0)
    day = next((int(w) for w in words if w.isdigit() and 1 <= int(w) <= 31), 0) if month else 0
    return value, month, day


def quantity(text: str) -> float | None:
    """The amount said in `text` ("1.2 million" → 1200000.0, "900,000", "twelve"), or None.

    >>> quantity("1.2 million people"), quantity("900,000"), quantity("twelve albums"), quantity("many")
    (1200000.0, 900000.0, 12.0, None)
    """
    match = _NUMBER.search(text)
    if match:
        scale = _SCALES.get((match["scale"] or "").casefold(), 1.0)
        return float(match["n"].replace(",", "")) * scale
    word = next((w for w in re.findall(r"[a-z]+", text.casefold()) if w in _WORD_NUMBERS), None)
    return float(_WORD_NUMBERS[word]) if word else None


def same_thing(a: str, b: str) -> bool:
    """Whether two answers name the same thing: case, "the", punctuation and a nation's two names
    ("American", "United States") aside.

    >>> same_thing("American", "the United States"), same_thing("Paris, France", "paris"), same_thing("Rome", "Milan")
    (True, True, False)
    """
    def key(text: str) -> str:
        words = re.sub(r"[^\w\s.]", " ", text.casefold()).split()
        words = [w for w in words if w != "the"]
        joined = " ".join(words)
        return _NATIONS.get(joined, joined)
    ka, kb = key(a), key(b)
    return ka == kb or ka.startswith(kb + " ") or kb.startswith(ka + " ")


def earlier(a: str, b: str) -> int | None:
    """0 when `a` names the earlier date, 1 when `b` does, None when either has none or they tie.

    >>> earlier("1844", "March 1989"), earlier("July 2008", "May 2008"), earlier("1990", "unknown")
    (0, 1, None)
    """
    ka, kb = date_key(a), date_key(b)
    if ka is None or kb is None or ka == kb:
        return None
    return 0 if ka < kb else 1


def larger(a: str, b: str) -> int | None:
    """0 when `a` names the larger amount, 1 when `b` does, None when either has none or they tie."""
    qa, qb = quantity(a), quantity(b)
    if qa is None or qb is None or qa == qb:
        return None
    return 0 if qa > qb else 1
