"""What a word is, one meaning for the whole product, and the `[n]` citation markers.

Words: lower-cased, stemmed (Snowball English) word tokens, as bm25s tokenises them. BM25 drops
its short English stop-word list (`BM25_STOPWORDS`, part of the index's fingerprint);
everywhere else (ranking and verifying answer sentences, follow-up questions, evaluation) a
*content word* is a word not in the longer `STOPWORDS` list. Markers: the `[n]` that ties a
sentence of an answer to the n-th shown passage: parsed out of model text, removed, and made
inert in a document's own text so a "[7]" there is never taken for ours.
"""

from __future__ import annotations

import functools
import logging
import re
import string

from qa.sentences import sentence_spans

BM25_STOPWORDS = "en"
# Control characters, except those that are whitespace (tab, line ends, form feed): dropped from
# questions and from PDF text; a file with many is taken for a binary.
CONTROL = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f]")
STOPWORDS = "en_plus"
STEMMER = "english"

def bm25s_module():  # noqa: ANN202 - the bm25s module, imported lazily
    import bm25s

    # bm25s sets its own logger to DEBUG at import; keep its chatter out of our stderr.
    logging.getLogger("bm25s").setLevel(logging.WARNING)
    return bm25s


@functools.lru_cache(maxsize=1)
def _stemmer():  # noqa: ANN202 - a Stemmer.Stemmer; built once, it is called for every sentence
    import Stemmer

    return Stemmer.Stemmer(STEMMER)


def bm25_tokenizer():  # noqa: ANN201 - a bm25s Tokenizer whose vocabulary grows as it reads
    return bm25s_module().tokenization.Tokenizer(stopwords=BM25_STOPWORDS, stemmer=_stemmer())


def word_tokens(text: str, stopwords: str = STOPWORDS) -> list[str]:
    """Lower-cased, stemmed word tokens of `text` without `stopwords` (BM25's own list for queries).

    >>> word_tokens("When did the treaties get signed?")
    ['treati', 'get', 'sign']
    """
    return list(_word_tokens(text, stopwords))


@functools.lru_cache(maxsize=16384)  # the sentences of the passages shown are tokenised again for each question
def _word_tokens(text: str, stopwords: str) -> tuple[str, ...]:
    tokens = bm25s_module().tokenize([text], stopwords=stopwords, stemmer=_stemmer(), return_ids=False, show_progress=False)
    return tuple(tokens[0])


def terms(text: str) -> set[str]:
    """Content words, lower-cased and stemmed.

    >>> sorted(terms("When did the treaties get signed?"))
    ['get', 'sign', 'treati']
    """
    return set(word_tokens(text))


WORD_NUMBERS = {w: n for n, w in enumerate("zero one two three four five six seven eight nine ten eleven twelve thirteen "
                                            "fourteen fifteen sixteen seventeen eighteen nineteen twenty".split())}
WORD_NUMBERS |= {w: 10 * n for n, w in enumerate("thirty forty fifty sixty seventy eighty ninety".split(), start=3)}
WORD_NUMBERS["hundred"] = 100


# Words that frame a question rather than name its subject ("Which happened first?"): a passage
# sharing only these with a question is not about it.
QUESTION_FRAME = frozenset({"also", "both", "call", "differ", "earlier", "earliest", "first", "happen", "kind", "last",
                            "later", "latest", "mani", "much", "name", "number", "same", "time", "type", "year"})  # stems


# Letters a stem needs before it may cover a longer one. On the tune articles
# (`scripts/tune_constants.py qa.text.STEM_PREFIX 4 3 5 99`), SQuAD2 F1 / HasAns F1: 3: 0.661 /
# 0.467, 4: 0.662 / 0.467, 5: 0.662 / 0.466, exact stems only (99): 0.661 / 0.461.
STEM_PREFIX = 4


def covered(term: str, pool: set[str]) -> bool:
    """A term is covered by an equal term, or when one of them (STEM_PREFIX+ letters) starts the
    other (Japan/Japanese)."""
    if term in pool:
        return True
    n = STEM_PREFIX
    return len(term) >= n and any(len(p) >= n and (p.startswith(term) or term.startswith(p)) for p in pool)


def overlap(question_terms: set[str], sentence_terms: set[str]) -> float:
    """The share of `question_terms` that `sentence_terms` cover."""
    if not question_terms:
        return 0.0
    return sum(covered(t, sentence_terms) for t in question_terms) / len(question_terms)


@functools.lru_cache(maxsize=1)
def _stopword_set() -> frozenset[str]:
    from bm25s.stopwords import STOPWORDS_EN_PLUS

    return frozenset(STOPWORDS_EN_PLUS)


def content_words(text: str, skip_first: bool = False) -> list[str]:
    """The words of `text` as written (not stemmed) that are content words, in order.

    >>> content_words("When did Japan sign GSOMIA?", skip_first=True)
    ['Japan', 'sign', 'GSOMIA']
    """
    words = re.findall(r"[\w'’-]+", text)[1 if skip_first else 0 :]
    return [w for w in words if w.lower() not in _stopword_set()]


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


def normalize_answer(text: str) -> str:
    """SQuAD's answer normalisation (lower case, no punctuation or articles): how the official
    metric compares answers, and how answers are compared everywhere else."""
    text = "".join(ch for ch in text.lower() if ch not in set(string.punctuation))
    text = re.sub(r"\b(a|an|the)\b", " ", text)
    return " ".join(text.split())


def heading_path(title: str, section: str = "") -> str:
    """Where a passage is, as a person reads it: the document's title, then its section path
    (stored as "A > B"), joined by " › ".

    >>> heading_path("Japan", "History > 1965"), heading_path("", "Lead")
    ('Japan › History › 1965', 'Lead')
    """
    return " › ".join(part for part in (title, *section.split(" > ")) if part)


_ROW_LABEL = re.compile(r"^Row (\d+): ", re.MULTILINE)  # a table row's paragraph (`qa.ingest.office.table_lines`)


def place(path: str, section: str, page: int | None = None, text: str = "", offset: int = 0) -> str:
    """Where in its file a passage is, as a person names it (after the document's title): a
    sheet and its row, a slide, a CSV row, a PDF page, else the section path. `text` (the
    passage) and `offset` (a quote's start in it) give the row: the "Row N:" at or before it.

    >>> place("b.xlsx", "Exports 2024", 1, "Row 3: a\\n\\nRow 4: Country: Japan", 12)
    'sheet Exports 2024, row 4'
    >>> place("d.pptx", "Goals", 2), place("d.pptx", "Slide 3", 3), place("o.csv", "", None, "Row 7: x")
    ('Goals, slide 2', 'slide 3', 'row 7')
    >>> place("r.pdf", "", 3), place("a.txt", "A > B")
    ('page 3', 'A › B')
    """
    name = path.rsplit("/", 1)[-1].casefold()
    kind = name.rsplit(".", 1)[-1] if "." in name else ""
    labels = list(_ROW_LABEL.finditer(text))
    row = [m for m in labels if m.start() <= offset] or labels[:1]
    rows = [f"row {row[-1].group(1)}"] if row else []
    if kind in ("xlsx", "xlsm"):
        parts = [f"sheet {section}" if section else "", *rows]
    elif kind in ("csv", "tsv"):
        parts = rows
    elif kind == "pptx":
        parts = ["" if section.casefold() == f"slide {page}" else heading_path("", section), f"slide {page}" if page else ""]
    else:
        parts = [heading_path("", section), f"page {page}" if page else ""]
    return ", ".join(p for p in parts if p)


_INERT = {ord("<"): "&lt;", ord(">"): "&gt;"}
_LINK_DEFINITION = re.compile(r"^(\s*)\[(?=[^\]\n]*\]:)", re.MULTILINE)  # "[label]: url" defines a link


def inert_markdown(text: str) -> str:
    """Document (or model) text for Markdown that other programs render (the answers API's and
    MCP's content, exported conversations, `qa eval`'s report): HTML tags, images and links are
    made inert — `<`/`>` as `&lt;`/`&gt;`, `![` and `](` and a link definition's `[` broken by a
    character reference — while the text stays readable where it is shown raw.

    >>> inert_markdown('See ![x](http://e/i.png), [go](javascript:alert(1)) <script>1</script>')
    'See &#33;[x]&#40;http://e/i.png), [go]&#40;javascript:alert(1)) &lt;script&gt;1&lt;/script&gt;'
    >>> inert_markdown("[1]: http://e"), inert_markdown("[2] T")
    ('&#91;1]: http://e', '[2] T')
    """
    text = text.translate(_INERT).replace("![", "&#33;[").replace("](", "]&#40;")
    return _LINK_DEFINITION.sub(r"\1&#91;", text)


# C0 controls but tab and newline, DEL and the C1 controls (0x9b is a CSI on some terminals)
_CONTROLS = {c: f"\\x{c:02x}" for c in [*range(0x09), *range(0x0b, 0x20), *range(0x7f, 0xa0)]}
_JSON_CONTROLS = {c: f"\\u{c:04x}" for c in range(0x7f, 0xa0)}  # json.dumps escapes the C0 ones itself


def terminal_text(text: str) -> str:
    """Document text for a terminal: control characters (escape sequences that retitle the window,
    clear the screen or colour what follows, a carriage return that overwrites the line) shown as
    visible `\\xNN` instead of acted on; newlines and tabs kept.

    >>> terminal_text("Seoul\\x1b]0;pwned\\x07 \\x1b[2J\\r\\x9b31m\\tok\\n")
    'Seoul\\\\x1b]0;pwned\\\\x07 \\\\x1b[2J\\\\x0d\\\\x9b31m\\tok\\n'
    """
    return text.translate(_CONTROLS)


def terminal_json(text: str) -> str:
    """JSON from `json.dumps(..., ensure_ascii=False)` with DEL and the C1 controls escaped too
    (`\\u009b`: the same JSON, never acted on by a terminal it is printed to)."""
    return text.translate(_JSON_CONTROLS)


_MONTHS = {m: n for n, m in enumerate("january february march april may june july august september october november "
                                      "december".split(), start=1)}
_MONTHS |= {m[:3]: n for m, n in list(_MONTHS.items())}
_DATE_YEAR = re.compile(r"\b(?P<year>\d{3,4})(?:\s*(?P<era>BC|BCE|AD|CE))?\b")


def date_key(text: str) -> tuple[int, int, int] | None:
    """A date said in `text` as (year, month, day) for ordering (months and days 0 when not said;
    years BC negative), or None.

    >>> date_key("born 12 March 1921"), date_key("in July 2008"), date_key("c. 500 BC"), date_key("soon")
    ((1921, 3, 12), (2008, 7, 0), (-500, 0, 0), None)
    >>> date_key("March 5, 1991")
    (1991, 3, 5)
    """
    year = _DATE_YEAR.search(text)
    if not year:
        return None
    value = int(year["year"]) * (-1 if year["era"] in ("BC", "BCE") else 1)
    words = re.findall(r"[a-z]+|\b\d{1,2}\b", text.casefold())
    month = next((_MONTHS[w] for w in words if w in _MONTHS), 0)
    day = next((int(w) for w in words if w.isdigit() and 1 <= int(w) <= 31), 0) if month else 0
    return value, month, day
