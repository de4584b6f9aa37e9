"""Questions that need two facts, split into questions the reader answers well (rules only).

- **comparison** of two named things on one property: "Which band was formed first, Wavves or
  Social Code?", "Who is younger, X or Y?", "Was X or Y born first?", "Between X and Y, which …?"
  → one question per thing ("When was Wavves formed?"), compared afterwards;
- **both**: "Are X and Y both native to Asia?" → "Is X native to Asia?", "Is Y native to Asia?";
- **same**: "Are X and Y of the same nationality?", "… by the same director?" → "What is the
  nationality of X?" …, compared for equality;
- **common**: "What profession do X and Y have in common?" → "What is the profession of X?" …;
- **two parts**: "When was the treaty signed and who signed it?" → "When was the treaty signed?",
  "Who signed the treaty?" (the second made standalone as a follow-up is), each answered apart.

Anything else is one question (`plan` returns None): a false split costs answers, so each rule
asks for two names (capitalised words or quoted titles) joined by "or"/"and". Measured by
`scripts/measure_planner.py` (how often each kind is recognised, and how often a single-fact
question is split).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from qa.answer.followup import standalone_query

_NAME = r"(?:[\"“][^\"”]{2,80}[\"”]|(?:the |a )?[A-Z0-9][\w'’.\-&]*(?:\s+(?:of|the|and|de|von|van|for|in|from|at|on|la|le|du|e|i|di|del|&|[A-Z0-9][\w'’.\-&]*))*)"
_THINGS_OR = re.compile(rf"(?P<x>{_NAME})\s*,?\s+or\s+(?P<y>{_NAME})\s*[?.!]*\s*$")
_COMPARATIVE = re.compile(r"\b(?:first|earlier|earliest|later|last|older|oldest|younger|youngest|newer|more|most|less|"
                          r"fewer|higher|highest|taller|tallest|larger|largest|bigger|biggest|longer|longest|shorter|"
                          r"smaller|greater|farther|further|closer|heavier|lighter|faster|slower|wider|deeper)\b",
                          re.IGNORECASE)
_DESCRIBED = r"(?:(?:the\s+)?(?:[a-z]+\s+){0,3})?"  # "the documentaries", "tennis players": before the names
_BOTH = re.compile(rf"^(?P<verb>(?i:are|were|is|was|do|did|does|have|has))\s+(?P<pre>both\s*,?\s+)?{_DESCRIBED}(?P<x>{{_NAME}})\s*,?"
                   rf"\s+and\s+(?P<y>{_NAME})\s*,?\s+(?(pre)|both\s*,?\s+)(?P<rest>[^?]+)\??\s*$".replace("{_NAME}", _NAME))
_SAME = re.compile(rf"^(?i:are|were|is|was|do|did)\s+{_DESCRIBED}(?P<x>{_NAME})\s+and\s+(?P<y>{_NAME})\s+"
                   r"(?:[a-z]+\s+){0,3}?(?:of |from |by |in |on )?(?:the )?same\s+(?P<prop>[\w\s]+?)\s*\??\s*$")
_COMMON = re.compile(rf"^(?i:what)\s+(?:(?P<prop>[a-z\s]+?)\s+)?(?:do|did|does)\s+{_DESCRIBED}(?P<x>{_NAME})\s+and\s+(?P<y>{_NAME})\s+"
                     r"(?:have|share)\s+in\s+common\s*\??\s*$")
_CHOICE = re.compile(r"^(?i:which|what|who)(?:\s+[a-z]+){0,2}\s+(?P<verb>is|was|are|were|has|had)\s+(?P<prop>[^,]+?)\s*,?\s*$")
_PARTICIPLE = re.compile(r"\b(?:was|were|is|are|been)\s+(?P<verb>[a-z]+(?:ed|en|wn|lt|ng|ne))\b(?:\s+(?:first|earlier|later))?")
_MORE_NOUN = re.compile(r"\b(?:more|most|fewer|less)\s+(?P<noun>[a-z][\w\s-]{2,40}?)(?=,|\s+(?:than|or|between)\b|\?|$)")
_WH = r"(?i:when|where|who|whom|whose|what|which|how|why)\b"
_ASKS = (r"(?i:who|whom|what|which)\b(?!'s)|(?i:when|where|how|why)\s+(?i:did|does|do|was|were|is|are|has|have|had|"
         r"will|would|can|could|long|many|much|old|far)\b")  # a question, not a clause ("when a final inspection is passed")
_TWO_PARTS = re.compile(rf"^(?P<q1>{_WH}[^?]+?)\s*,?\s+and\s+(?P<q2>(?:{_ASKS})[^?]+?)\s*\?*\s*$")
_TIME_WORDS = re.compile(r"\b(?:first|earlier|earliest|later|older|oldest|younger|youngest|newer)\b", re.IGNORECASE)


@dataclass(frozen=True)
class Plan:
    kind: str  # "comparison", "both", "same" or "common"
    things: tuple[str, str]  # the two named things, as written
    parts: tuple[str, str]  # one question per thing
    asks: str  # what is compared: "when", "how many", "yes/no", "equal"…
    wants: str = ""  # of a comparison: "min" (first, older, fewer…) or "max" (later, younger, more…)


def _clean(name: str) -> str:
    return name.strip().strip("\"“”").strip()


def plan(question: str) -> Plan | None:
    """How `question` splits into two questions, or None when it is one question.

    >>> plan("Which band was formed first, Wavves or Social Code?").parts
    ('When was Wavves formed?', 'When was Social Code formed?')
    >>> plan("Are Pterostyrax and Dregea both native to Asia?").parts
    ('Is Pterostyrax native to Asia?', 'Is Dregea native to Asia?')
    >>> plan("Are the documentaries Out of Place and The Mosuo Sisters by the same director?").parts
    ('What is the director of Out of Place?', 'What is the director of The Mosuo Sisters?')
    >>> plan("Which genus has more species, Bactris or Epigaea?").parts
    ('How many species does Bactris have?', 'How many species does Epigaea have?')
    >>> plan("When did Japan and South Korea sign the treaty?"), plan("Is it hot or cold in Busan?")
    (None, None)
    """
    q = " ".join(question.split())
    q = q[:1] + q[1:2].lower() + q[2:] if q[:2].isupper() and not q[:3].isupper() else q  # "WHich"
    for rule in (_both, _same, _common, _comparison, _two_parts):
        found = rule(q)
        if found is not None and all(len(t) >= 2 for t in found.things) and found.things[0] != found.things[1]:
            return found
    return None


def _two_parts(q: str) -> Plan | None:
    """"When did X happen and who signed it?": two questions, each with its own question word."""
    match = _TWO_PARTS.match(q)
    if not match or re.search(r"\b(?:who|whom|whose|which|that)\b", match["q1"].split(None, 1)[-1], re.IGNORECASE):
        return None  # "the singer who … and whose third album …": clauses of one question
    first = match["q1"].strip(" ,") + "?"
    second = standalone_query(match["q2"].strip(" ?") + "?", [first])
    second = second[:1].upper() + second[1:]
    return Plan("two parts", (first, second), (first, second), "two")


def _both(q: str) -> Plan | None:
    match = _BOTH.match(q)
    if not match:
        return None
    x, y = _clean(match["x"]), _clean(match["y"])
    verb = {"are": "Is", "were": "Was", "do": "Does", "did": "Did", "have": "Has"}.get(match["verb"].lower(), match["verb"].capitalize())
    rest = match["rest"].strip()
    return Plan("both", (x, y), (f"{verb} {x} {rest}?", f"{verb} {y} {rest}?"), "yes/no")


def _same(q: str) -> Plan | None:
    match = _SAME.match(q)
    if not match:
        return None
    x, y, prop = _clean(match["x"]), _clean(match["y"]), match["prop"].strip()
    return Plan("same", (x, y), (f"What is the {prop} of {x}?", f"What is the {prop} of {y}?"), "equal")


def _common(q: str) -> Plan | None:
    match = _COMMON.match(q)
    if not match:
        return None
    x, y, prop = _clean(match["x"]), _clean(match["y"]), (match["prop"] or "").strip()
    if not prop:
        return Plan("common", (x, y), (f"What is {x}?", f"What is {y}?"), "common")
    return Plan("common", (x, y), (f"What is the {prop} of {x}?", f"What is the {prop} of {y}?"), "common")


def _comparison(q: str) -> Plan | None:
    """"…, X or Y?", "Between X and Y, which …?", "Was X or Y born first?" with a comparative word."""
    between = re.match(rf"^(?i:in\s+)?(?i:between)\s+(?P<x>{_NAME})\s+and\s+(?P<y>{_NAME})\s*,?\s*(?P<rest>.+)$", q)
    first_two = re.match(rf"^(?i:was|were|is|are|did|does|do|has|had)\s+(?P<x>{_NAME})\s+or\s+(?P<y>{_NAME})\s+(?P<rest>[a-z].+)$", q)
    if between:
        x, y, frame = between["x"], between["y"], between["rest"]
    elif first_two:
        x, y, frame = first_two["x"], first_two["y"], first_two["rest"]
    elif middle := re.match(rf"^(?P<frame>(?i:which|who|what)(?:\s+[a-z]+)?(?:\s+[A-Za-z]+)?)\s*,\s*(?P<x>{_NAME})\s*,?\s+or\s+"
                            rf"(?P<y>{_NAME})\s*,\s*(?P<rest>[a-z].+)$", q):
        x, y, frame = middle["x"], middle["y"], f"{middle['frame']} {middle['rest']}"
    elif inside := re.match(rf"^(?P<frame>(?i:which)(?:\s+[a-z]+|\s+[A-Z][a-z]+(?=,))?)\s*,?\s+(?P<x>{_NAME})\s+or\s+(?P<y>{_NAME})\s*,?\s+"
                            rf"(?P<rest>(?:was|were|is|are|has|had)\s+[a-z].+)$", q):  # "Which film X or Y was made first?"
        x, y, frame = inside["x"], inside["y"], f"{inside['frame']} {inside['rest']}"
    elif among := re.match(rf"^(?P<frame>(?i:who|which)\s+[a-z].*?)\s+(?:out of|among|of)\s+(?P<x>{_NAME})\s+and\s+"
                           rf"(?P<y>{_NAME})\s*\?*$", q):  # "Who was born first out of X and Y?"
        x, y, frame = among["x"], among["y"], among["frame"]
    else:
        match = _THINGS_OR.search(q)
        if not match or match.start() == 0:
            return None
        x, y, frame = match["x"], match["y"], q[:match.start()]
    if not _COMPARATIVE.search(frame):
        choice = _CHOICE.match(frame.strip())
        if not choice:
            return None
        verb = {"are": "is", "were": "was", "had": "has"}.get(choice["verb"], choice["verb"]).capitalize()
        x, y, prop = _clean(x), _clean(y), choice["prop"].strip()
        return Plan("choice", (x, y), (f"{verb} {x} {prop}?", f"{verb} {y} {prop}?"), "yes/no")
    if not re.search(r"\b(?:which|who|what|was|were|is|are|did)\b", q, re.IGNORECASE):
        return None
    x, y = _clean(x), _clean(y)
    parts, asks = _property_questions(frame, x, y)
    return Plan("comparison", (x, y), parts, asks, _wants(frame, asks))


def _wants(frame: str, asks: str) -> str:
    """Which end of the compared values wins: "min" (the earlier date, the smaller amount) or "max".

    >>> _wants("Who was born first", "when"), _wants("who is younger", "when"), _wants("Which has more species", "how many")
    ('min', 'max', 'max')
    """
    text = frame.lower()
    if asks == "when":
        later = re.search(r"\b(?:later|last|latest|younger|youngest|newer|newest|most recent(?:ly)?)\b", text)
        return "max" if later else "min"
    fewer = re.search(r"\b(?:less|least|fewer|fewest|smaller|smallest|shorter|shortest|lower|lowest|lighter|slower)\b", text)
    return "min" if fewer else "max"


def _property_questions(frame: str, x: str, y: str) -> tuple[tuple[str, str], str]:
    """The question each thing must answer for the comparison, and what is compared."""
    text = frame.lower()
    if re.search(r"\bborn\b|\b(?:older|younger|oldest|youngest)\b", text) and not re.search(r"\b(?:founded|built|formed)\b", text):
        return (f"When was {x} born?", f"When was {y} born?"), "when"
    participle = _PARTICIPLE.search(text)
    if participle and _TIME_WORDS.search(text):
        verb = participle["verb"]
        return (f"When was {x} {verb}?", f"When was {y} {verb}?"), "when"
    more = _MORE_NOUN.search(text)
    if more:
        noun = more["noun"].strip()
        return (f"How many {noun} does {x} have?", f"How many {noun} does {y} have?"), "how many"
    for words, template in (("taller|higher", "How high is {}?"), ("longer|lasted", "How long did {} last?"),
                            ("larger|bigger", "How large is {}?"), ("first|earlier|later", "When did {} start?")):
        if re.search(rf"\b(?:{words})\b", text):
            return (template.format(x), template.format(y)), "how much" if "How" in template else "when"
    return (f"{frame.strip(' ,?')} {x}?", f"{frame.strip(' ,?')} {y}?"), "other"
