"""Comparing what two sub-questions' answers say (`qa.answer.planner`): dates, quantities and
names, so a comparison can be decided from two cited facts. Pure functions; which of two things
wins is decided here, how it is said and cited is the answerer's.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence

from qa.answer.planner import Plan
from qa.text import WORD_NUMBERS, date_key
from qa.types import ANSWERED, TENTATIVE, Answer, Chunk, Citation, Passage

_SCALES = {"thousand": 1e3, "million": 1e6, "billion": 1e9, "trillion": 1e12, "k": 1e3, "m": 1e6, "bn": 1e9}
_NUMBER = re.compile(r"(?P<n>-?\d[\d,]*(?:\.\d+)?)\s*(?P<scale>thousand|million|billion|trillion|bn|k|m)?\b", re.IGNORECASE)
# A country and the adjective that names its people: "American" and "United States" are the same answer.
_NATIONS = {"american": "united states", "usa": "united states", "us": "united states", "u.s.": "united states",
            "america": "united states", "british": "united kingdom", "uk": "united kingdom", "english": "united kingdom",
            "england": "united kingdom", "french": "france", "german": "germany", "italian": "italy",
            "spanish": "spain", "japanese": "japan", "korean": "south korea", "chinese": "china", "canadian": "canada",
            "australian": "australia", "russian": "russia", "indian": "india", "irish": "ireland",
            "scottish": "united kingdom", "welsh": "united kingdom", "dutch": "netherlands", "swedish": "sweden",
            "norwegian": "norway", "danish": "denmark", "polish": "poland", "mexican": "mexico",
            "brazilian": "brazil", "belgian": "belgium", "swiss": "switzerland", "austrian": "austria"}


def quantity(text: str) -> float | None:
    """The amount said in `text` ("1.2 million" → 1200000.0, "900,000", "twelve"), or None.

    >>> quantity("1.2 million people"), quantity("900,000"), quantity("twelve albums"), quantity("many")
    (1200000.0, 900000.0, 12.0, None)
    """
    match = _NUMBER.search(text)
    if match:
        scale = _SCALES.get((match["scale"] or "").casefold(), 1.0)
        return float(match["n"].replace(",", "")) * scale
    word = next((w for w in re.findall(r"[a-z]+", text.casefold()) if w in WORD_NUMBERS), None)
    return float(WORD_NUMBERS[word]) if word else None


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


def decided(plan: Plan, facts: Sequence[str | None], verdicts: Sequence[str]) -> str | None:
    """The composed short answer from the two parts' short answers (`facts`) and yes/no verdicts,
    or None when they do not decide it (a part unanswered, a tie, no date or amount to compare).

    >>> from qa.answer.planner import plan
    >>> decided(plan("Which band was formed first, Wavves or Social Code?"), ["2008", "July 2001"], ["", ""])
    'Social Code'
    >>> decided(plan("Are Pterostyrax and Dregea both native to Asia?"), ["Yes", "Yes"], ["yes", "yes"])
    'Yes'
    >>> decided(plan("Which genus has more species, Bactris or Epigaea?"), ["about 80 species", None], ["", ""])
    """
    x, y = plan.things
    if plan.kind == "both" and all(verdicts):
        return "Yes" if all(v == "yes" for v in verdicts) else "No"
    if plan.kind == "choice" and sorted(verdicts) == ["no", "yes"]:
        return x if verdicts[0] == "yes" else y
    if None in facts:
        return None
    a, b = facts  # type: ignore[misc]
    if plan.kind == "same":
        return "Yes" if same_thing(a, b) else "No"
    if plan.kind == "common":
        return a if same_thing(a, b) else None
    if plan.kind == "comparison":
        first = earlier(a, b) if plan.asks == "when" else larger(a, b)
        if first is None:
            return None
        if plan.asks == "when":  # `earlier` names the earlier one: wanted for "min"
            return (x, y)[first if plan.wants == "min" else 1 - first]
        return (x, y)[first if plan.wants == "max" else 1 - first]
    return None


def fact(plan: Plan, thing: str, part: Answer) -> tuple[str, str] | None:
    """(what a part says, its yes/no verdict): its short answer when it answered; for "which came
    first", also a "Not sure" part whose closest sentence names the thing and holds a date (that
    sentence, its first date compared); None otherwise."""
    if part.outcome == ANSWERED and part.short_answer is not None:
        return part.short_answer.short_text, part.short_answer.verdict
    sentence = part.citations[0].quote if part.outcome == TENTATIVE and part.citations else ""
    named = {w.casefold() for w in re.findall(r"\w{3,}", thing)} & {w.casefold() for w in re.findall(r"\w{3,}", sentence)}
    if plan.kind == "comparison" and plan.asks == "when" and named and date_key(sentence):
        return sentence, ""
    return None


def composed_answer(question: str, plan: Plan, parts: Sequence[Answer]) -> Answer | None:
    """One answer from two sub-answers: the composed short answer as its headline, then each
    thing's proof sentence quoted and cited ("Wavves: “…” [1] · Social Code: “…” [2]"), both
    parts' passages shown; None when the parts do not decide it (the question is then read whole).
    A two-part question is answered part by part (`two_part_answer`)."""
    if plan.kind == "two parts":
        return two_part_answer(question, parts)
    if len(parts) != 2 or not all(p.citations for p in parts):
        return None
    facts = [fact(plan, thing, part) for thing, part in zip(plan.things, parts, strict=True)]
    if None in facts:
        return None
    headline = decided(plan, [f for f, _ in facts], [v for _, v in facts])
    if headline is None:
        return None
    headline = headline[:1].upper() + headline[1:]  # "the Treaty …" leads the answer: "The Treaty …"
    passages: list[Passage] = []
    citations, quoted = [], []
    for thing, part in zip(plan.things, parts, strict=True):
        citations.append(cited := _cited(part, passages))
        quoted.append(f"{thing[:1].upper()}{thing[1:]}: “{cited.quote}” [{cited.marker}]")
    read = [p.short_answer or p.readings[0] for p in parts if p.short_answer or p.readings]
    readings = tuple(sorted(read, key=lambda r: r.answerable))  # the less sure part first
    return Answer(question, " · ".join(quoted), tuple(citations), tuple(passages), abstained=False, mode="evidence",
                  model=parts[0].model, raw_text="", readings=readings, outcome=ANSWERED, headline=headline,
                  parts=tuple(parts))


def two_part_answer(question: str, parts: Sequence[Answer]) -> Answer | None:
    """Each part's short answer (joined: the headline) and proof sentence, quoted and cited under its
    question ("When …? “…” [1] · Who …? “…” [2]"); a part the documents do not answer says so. None
    when neither part is answered (the question is then read whole)."""
    if not any(p.outcome == ANSWERED and p.citations for p in parts):
        return None
    passages: list[Passage] = []
    citations, quoted, words = [], [], []
    for part in parts:
        if part.outcome != ANSWERED or not part.citations:
            quoted.append(f"{part.question} The documents do not say.")
            continue
        citations.append(cited := _cited(part, passages))
        quoted.append(f"{part.question} “{cited.quote}” [{cited.marker}]")
        words.append(part.short_text)
    readings = tuple(sorted((p.short_answer for p in parts if p.outcome == ANSWERED and p.short_answer),
                            key=lambda r: r.answerable))
    return Answer(question, " · ".join(quoted), tuple(citations), tuple(passages), abstained=False, mode="evidence",
                  model=parts[0].model, raw_text="", readings=readings, outcome=ANSWERED, headline="; ".join(words),
                  parts=tuple(parts))


def _cited(part: Answer, passages: list[Passage]) -> Citation:
    """A part's first citation, renumbered for the composed answer's `passages` (its passage added once)."""
    cited = part.citations[0]
    shown = part.passages[cited.marker - 1]
    return dataclasses.replace(cited, marker=marker_of(passages, shown.chunk, shown.score))


def marker_of(passages: list[Passage], chunk: Chunk, score: float = 0.0) -> int:
    """The [n] of `chunk` among the `passages` an answer shows, appending it when not yet shown."""
    marker = next((n for n, p in enumerate(passages, start=1) if p.chunk.chunk_id == chunk.chunk_id), 0)
    if not marker:
        passages.append(Passage(chunk, score, len(passages) + 1))
        marker = len(passages)
    return marker
