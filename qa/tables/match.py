"""Which cells and columns a question over a table names: whole cells it contains, words of
cells no header explains, ordinals that name a place ("ranked 5th"), and headers by shared words.
"""

from __future__ import annotations

import re

from qa.tables.table import Table, normalized, summary_label
from qa.text import content_words, terms

_QUESTION_WORDS = {"many", "much", "what", "which", "when", "where", "does", "listed", "list", "total", "number",
                   "name", "there", "their", "they", "have", "were", "than", "more", "less", "most", "least"}
PERSON = re.compile(r"\b(?:name|player|athlete|candidate|driver|rider|winner|coach|artist|composer|person|member|"
                     r"incumbent|author|director|actor|actress|cyclist|swimmer|skater|runner|manager|president|champion)s?\b",
                     re.IGNORECASE)
_ORDINAL_WORDS = "second third fourth fifth sixth seventh eighth ninth tenth".split()
_ORDINAL = re.compile(r"\b(?:(?P<n>\d+)(?:st|nd|rd|th)|(?P<word>" + "|".join(_ORDINAL_WORDS) + r"))\b")
_PLACED = re.compile(r"rank|place|position|\bpos\b|finish|result|standing", re.IGNORECASE)
_COUNTING = re.compile(r"\b(?:(?:the )?total )?(?:number|amount|total) of\b", re.IGNORECASE)
# A question's word and the header word it means ("the most people": Population), stemmed.
_HEADER_WORDS = {"peopl": "popul", "inhabit": "popul", "live": "popul", "resid": "popul",
                 "weigh": "weight", "heavi": "weight", "heaviest": "weight", "student": "enrol", "tall": "height",
                 "tallest": "height", "long": "length", "longest": "length", "wide": "width",
                 "widest": "width", "crowd": "attend", "spectat": "attend", "earn": "revenu",
                 "old": "age", "oldest": "age", "young": "age", "youngest": "age", "sold": "sale",
                 "countri": "nation", "organiz": "organis"}
_SHORT_CELL_WORDS = 10  # a word inside a longer cell (a comment, a note) names nothing
_YEAR = re.compile(r"1\d\d\d|20\d\d")


def mentioned_cells(question: str, table: Table) -> list[tuple[int, int]]:
    """(row, column) of the cells the question names (longest first): whole cells it contains, or
    cells that contain one of its words that no header and no whole cell explains ("netherlands"
    in "Amsterdam, Netherlands"). Words found in several columns keep only the columns the
    question names, if it names any ("scored 16 points": the Points column's 16s)."""
    found, scores = mentions(question, table), column_scores(question, table)
    named = {words for _, j, words in found if scores[j] > 0}
    return [(i, j) for i, j, words in found if words not in named or scores[j] > 0]


def mentions(question: str, table: Table) -> list[tuple[int, int, str]]:
    """(row, column, the words named) for each cell the question names (see `mentioned_cells`)."""
    q = f" {normalized(question)} "
    found = []
    for i, row in enumerate(table.rows):
        for j, cell in enumerate(row):
            text = normalized(cell)
            if summary_label(text) and table.is_summary(i):
                continue  # "the highest total" names the column, not the "Total" row
            if len(text) >= 2 and text in q and text not in ("-", "—", "n/a") and _whole(text, q):
                found.append((i, j, text))
    found += placings(q, table, {(i, j) for i, j, _ in found})
    explained = " ".join(text for _, _, text in found)
    headers = set(terms(" ".join(table.header)))
    words = [w for w in content_words(q) if len(w) >= 4 and (not w.isdigit() or _YEAR.fullmatch(w)) and w not in explained
             and w not in _QUESTION_WORDS and not (terms(w) & headers)]
    for w in dict.fromkeys(words):
        for i, row in enumerate(table.rows):
            for j, cell in enumerate(row):
                text = normalized(cell)
                if w in text and text.count(" ") < _SHORT_CELL_WORDS and _whole(w, text):  # not a note's words
                    found.append((i, j, w))
    return sorted(found, key=lambda m: -len(m[2]))


def _whole(words: str, text: str) -> bool:
    """Whether `words` occur in `text` as whole words (and a number not as part of a longer one:
    "10" is not in "10,000")."""
    return re.search(rf"(?<![\w])(?<!\d[.,]){re.escape(words)}(?![\w])(?![.,]\d)", text) is not None


def placings(q: str, table: Table, known: set[tuple[int, int]]) -> list[tuple[int, int, str]]:
    """Cells of a rank or place column that an ordinal names ("ranked 5th": "5"; "second place": "2nd")."""
    placed = [j for j, header in enumerate(table.header) if _PLACED.search(header)]
    found = []
    for match in _ORDINAL.finditer(q) if placed else ():
        n = int(match["n"]) if match["n"] else _ORDINAL_WORDS.index(match["word"]) + 2
        forms = {str(n), *(f"{n}{suffix}" for suffix in ("st", "nd", "rd", "th"))}
        found += [(i, j, match[0]) for i, row in enumerate(table.rows) for j in placed
                  if (i, j) not in known and normalized(row[j]) in forms]
    return found


def column_scores(question: str, table: Table) -> list[float]:
    """How strongly the question names each column: shared stemmed words with its header ("the
    number of …", "the total of …" name no column)."""
    words = terms(_COUNTING.sub(" ", question))
    words |= {_HEADER_WORDS[w] for w in words if w in _HEADER_WORDS}
    scores = []
    for header in table.header:
        head = terms(header)
        scores.append(len(words & head) / max(len(head), 1) if head else 0.0)
    return scores


def first_place(words: list[str], header: str) -> int:
    """Where the question first names a header's word ("what is the winning party the year that…":
    the party before the year)."""
    head = terms(header)
    return next((n for n, w in enumerate(words) if w in head), len(words))


def numeric_column(table: Table, scores: list[float], avoid: set[int]) -> int | None:
    """The numeric column the question names (or the only numeric one)."""
    numeric = [j for j in range(len(table.header)) if table.numeric(j)]
    named = sorted((j for j in numeric if scores[j] > 0 and j not in avoid), key=lambda j: (-scores[j], table.identifier(j)))
    if named:
        return named[0]
    rest = [j for j in numeric if j not in avoid and not table.identifier(j)]  # not the "#" column
    return rest[-1] if rest else None


def label_column(question: str, table: Table, avoid: set[int], scores: list[float]) -> int:
    """The column that names a row (what "who" or "which X" asks for): the named text column not
    in `avoid`, else the first text column not in it."""
    text = [j for j in range(len(table.header)) if not table.numeric(j) and j not in avoid]
    named = sorted((j for j in text if scores[j] > 0), key=lambda j: -scores[j])
    if not named and re.match(r"\s*(?:who|whom|whose)\b", question, re.IGNORECASE):
        named = [j for j in text if PERSON.search(table.header[j])]  # "who…": the name, not the riding
    return named[0] if named else (text[0] if text else 0)
