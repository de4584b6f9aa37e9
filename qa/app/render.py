"""Renderings of passages and answers for front ends: JSON for scripts, escaped HTML for the app.

Everything that comes from a document or a model is escaped here: a passage or an answer that
contains `<script>`, `<img onerror=…>`, a `javascript:` link or a Markdown image renders as text.
The only markup in the output is what this module writes itself.

>>> answer_html("Busan <script>x</script> ![i](http://e/x) [1].", 2)
'Busan &lt;script&gt;x&lt;/script&gt; &#33;&#91;i&#93;&#40;http:\\u200b//e/x&#41; <a class="cite" href="#a-src-1" data-answer="a" data-marker="1">[1]</a>.'
"""

from __future__ import annotations

import functools
import html
import re
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING

from qa.answer.prompts import NOT_SURE
from qa.text import MARKER, heading_path, inert_markdown, parse_markers, place
from qa.types import TENTATIVE, Answer, Chunk, Citation, Passage, Reading

if TYPE_CHECKING:
    from qa.answer.overview import Overview
    from qa.index.loaded import Index

_SPACES = re.compile(r"\s+")
# Markdown's syntax characters, and HTML's, as character references (`escape_text`).
_CHAT_ESCAPES = {ord(c): f"&#{ord(c)};" for c in "\\`*_{}[]()#+!|~-$"} | {ord("<"): "&lt;", ord(">"): "&gt;",
                                                                         ord("&"): "&amp;"}


def passage_json(p: Passage, index: Index) -> dict:
    c = p.chunk
    return {
        "rank": p.rank,
        "chunk_id": c.chunk_id,
        "doc_id": c.doc_id,
        "title": index.title(c),
        "file": index.path(c),  # "file", not "path": Gradio serves any {"path": …} its API returns as a file
        "place": index.place(c),
        "section": c.section,
        "start": c.start,
        "end": c.end,
        "page": c.page,
        "text": c.text,
        "score": round(p.score, 6),
        "dense_score": None if p.dense_score is None else round(p.dense_score, 6),
        "dense_rank": p.dense_rank,
        "bm25_score": None if p.bm25_score is None else round(p.bm25_score, 6),
        "bm25_rank": p.bm25_rank,
    }


def answer_json(answer: Answer, index: Index) -> dict:
    """The `qa ask --json` object; the app's `ask` endpoint returns the same."""
    passages = {p.chunk.chunk_id: p for p in answer.passages}
    short = answer.short_answer
    return {
        "question": answer.question,
        "query": answer.query,
        "answer": answer.text,
        "short_answer": None if short is None else {
            "text": short.short_text, "span": short.text, "verdict": short.verdict or None,
            "chunk_id": short.chunk_id, "start": short.start, "end": short.end,
            "probability": round(short.answerable, 4), "marker": short.marker, "sentence": short.sentence,
            "sentence_start": short.sentence_start, "sentence_end": short.sentence_end},
        "headline": answer.headline or None,  # a composed (two facts) or computed (a table's count, sum…) short answer
        "parts": [{"question": p.question, "short_answer": p.short_answer.short_text if p.short_answer else None,
                   "outcome": p.outcome} for p in answer.parts],
        "abstained": answer.abstained,
        "outcome": answer.outcome,
        "confidence": confidence(answer),
        "citations": [citation_json(c, passages[c.chunk_id].chunk, index) for c in answer.citations],
        "passages": [passage_json(p, index) for p in answer.passages],
        "timings": answer.timings,
        "mode": answer.mode,
        "model": answer.model,
        "raw_answer": answer.raw_text,
    }


def confidence(answer: Answer) -> float | None:
    """The reader's calibrated probability that its best reading answers the question (None
    when nothing was read, as for an overview)."""
    return round(answer.readings[0].answerable, 4) if answer.readings else None


def citation_json(c: Citation, chunk: Chunk, index: Index) -> dict:
    """One citation as data: its marker, chunk, document and file, the quote and its offsets, its
    page and its place as a person names it ("sheet Exports 2024, row 4", "slide 2", "page 3")."""
    return {"marker": c.marker, "chunk_id": c.chunk_id, "doc_id": chunk.doc_id, "title": index.title(chunk),
            "file": index.path(chunk), "place": index.place(chunk, c.start), "section": chunk.section,
            "start": c.start, "end": c.end, "page": c.page, "quote": c.quote}


def citations_json(answer: Answer, index: Index) -> list[dict]:
    """The citations of an answer as data (`citation_json`, the file as "path"): what the answers
    API and the MCP `ask` tool return."""
    chunks = {p.chunk.chunk_id: p.chunk for p in answer.passages}
    return [{("path" if key == "file" else key): value for key, value in citation_json(c, chunks[c.chunk_id], index).items()}
            for c in answer.citations]


def answer_markdown(answer: Answer) -> str:
    """The answer as a person reads it, in Markdown: the short answer in bold and the quoted
    sentence that proves it, answer words in bold, with its marker; a tentative answer's closest
    sentence quoted; a generated answer or a refusal as written."""
    shown = proof_view(answer)
    if answer.outcome == TENTATIVE and answer.citations:
        c = answer.citations[0]
        return f"{NOT_SURE}\n\n> “{inert_markdown(_SPACES.sub(' ', c.quote))}” [{c.marker}]"
    if shown is None:
        return f"**{inert_markdown(answer.headline)}**\n\n{inert_markdown(answer.text)}" if answer.headline else inert_markdown(answer.text)
    headline, short = shown
    quote = f"> “{highlight(short, escape=inert_markdown)}” [{short.marker}]"
    return quote if headline is None else f"**{inert_markdown(headline)}**\n\n{quote}"


def proof_view(answer: Answer) -> tuple[str | None, Reading] | None:
    """How an evidence answer is shown, everywhere (chat, Markdown, terminal): the short answer
    (None when it is the whole sentence: `Reading.is_whole_sentence`), then its proof sentence
    quoted. None for a generated or declined answer, which is shown as written."""
    short = answer.short_answer
    if answer.abstained or short is None or answer.mode != "evidence":
        return None
    return (None if short.is_whole_sentence else short.short_text), short


def highlight(short: Reading, terminal: bool = False, escape: Callable[[str], str] = str) -> str:
    """The proof sentence with the answer words in bold (on a terminal) or between ** (elsewhere),
    each part passed through `escape`.

    >>> highlight(Reading(1, "c", "1965", 20, 24, "Signed in 1965.", 10, 25, 9.0, 4.0, 0.9))
    'Signed in **1965**.'
    """
    before, words, after = map(escape, proof_parts(short))
    on, off = ("\033[1m", "\033[0m") if terminal else ("**", "**")
    return f"{before}{on}{words}{off}{after}" if words else before + after


def escape_text(text: str) -> str:
    """`text` for the chat, which renders Markdown and HTML: `<`, `>`, `&` and every character
    Markdown reads as syntax written as an HTML character reference (`(` → `&#40;`), which
    Markdown leaves alone and the browser shows as the character, inside HTML tags or outside
    them alike (a backslash escape showed as a backslash inside `<mark>`: "Park Chung\\-hee");
    web addresses broken by a zero-width space so they are not turned into links.

    >>> escape_text("Park Chung-hee (1917) <b>*x*</b> & http://e")
    'Park Chung&#45;hee &#40;1917&#41; &lt;b&gt;&#42;x&#42;&lt;/b&gt; &amp; http:\u200b//e'
    """
    return text.replace("://", ":\u200b//").translate(_CHAT_ESCAPES)


def plain_text(markdown: str) -> str:
    """A message made with `escape_text` (and `**bold**`) as plain text, for logs and terminals.

    >>> plain_text("**Not ready:** " + escape_text("twice_0.md has changed <x>"))
    'Not ready: twice_0.md has changed <x>'
    """
    return html.unescape(markdown.replace("**", "")).replace(":\u200b//", "://")


def answer_html(text: str, passages_shown: int, answer_id: str = "a", previews: Mapping[int, str] | None = None) -> str:
    """Answer text, escaped, with each valid `[n]` made a link to passage n of this answer's
    sources (`#<answer_id>-src-<n>`); `previews` gives a marker's quoted text, shown on hover."""
    parts, pos = [], 0
    for match in MARKER.finditer(text):
        numbers = [n for n in parse_markers(match.group(0)) if 1 <= n <= passages_shown]
        if not numbers:
            continue
        parts.append(escape_text(text[pos : match.start()]))
        for n in numbers:
            title = f' title="{html.escape(previews[n])}"' if previews and n in previews else ""
            parts.append(f'<a class="cite" href="#{answer_id}-src-{n}" data-answer="{answer_id}" data-marker="{n}"{title}>[{n}]</a>')
        pos = match.end()
    parts.append(escape_text(text[pos:]))
    return "".join(parts)


def proof_parts(reading: Reading) -> tuple[str, str, str]:
    """The proof sentence split around the answer words: (before, answer, after); a yes/no
    verdict's sentence is its proof as a whole (no words of it are the answer).

    >>> proof_parts(Reading(1, "c", "1965", 20, 24, "Signed in 1965.", 10, 25, 9.0, 4.0, 0.9))
    ('Signed in ', '1965', '.')
    >>> proof_parts(Reading(1, "c", "1965", 20, 24, "Signed in 1965.", 10, 25, 9.0, 4.0, 0.9, "yes", 0.9))
    ('Signed in 1965.', '', '')
    """
    if reading.verdict:
        return reading.sentence, "", ""
    a, b = reading.start - reading.sentence_start, reading.end - reading.sentence_start
    return reading.sentence[:a], reading.sentence[a:b], reading.sentence[b:]


def reply_html(answer: Answer, answer_id: str = "a") -> str:
    """The chat reply: the short answer in bold, then its proof sentence quoted with the answer
    words highlighted inside it and its `[n]` linked; a generated answer (which states the short
    answer) as text after it; a declined answer as text."""
    previews: dict[int, str] = {}
    for c in answer.citations:
        previews[c.marker] = f"{previews[c.marker]} … {c.quote}" if c.marker in previews else c.quote
    shown = proof_view(answer)
    if answer.outcome == TENTATIVE and answer.text.startswith(NOT_SURE):  # set apart from a sure answer, not bold
        rest = answer_html(answer.text[len(NOT_SURE):].strip(), len(answer.passages), answer_id, previews)
        return f'<div class="tentative"><span class="not-sure">{escape_text(NOT_SURE)}</span> {rest}</div>'
    if shown is None:
        text = answer_html(answer.text, len(answer.passages), answer_id, previews)
        headline = answer.short_text
        return f"<strong>{escape_text(headline)}</strong> — {text}" if headline else text
    headline, short = shown
    before, words, after = (_SPACES.sub(" ", part) for part in proof_parts(short))  # a PDF's line breaks read as spaces
    quote = escape_text(before) + (f"<mark>{escape_text(words)}</mark>" if words else "") + escape_text(after)
    link = answer_html(f"[{short.marker}]", len(answer.passages), answer_id, {short.marker: short.sentence})
    return f"“{quote}” {link}" if headline is None else f"<strong>{escape_text(headline)}</strong> — “{quote}” {link}"


def sources_html(answer: Answer, where: Callable[[Chunk, int | None], str], show_details: bool = False, answer_id: str = "a",
                 shown: bool = True, searched_in: Sequence[str] = ()) -> str:
    """One answer's block of the Sources panel: the question, cited passages with the quoted
    span highlighted, then the passages retrieved but not cited, collapsed. Passage n has the id
    `<answer_id>-src-<n>`; offsets and retrieval scores only with `show_details`; `searched_in`:
    the titles of the documents the search was restricted to."""
    quotes: dict[int, list[tuple[int, int]]] = {}
    for c in answer.citations:
        quotes.setdefault(c.marker, []).append((c.start, c.end))
    out = [f'<div class="answer-sources{" shown" if shown else ""}" data-answer="{answer_id}">',
           f'<p class="asked">Sources for <q>{html.escape(answer.question)}</q></p>']
    if answer.parts:  # a two-fact question: one search per part
        searched = " · ".join(f"<q>{html.escape(part.question)}</q>" for part in answer.parts)
        out.append(f'<p class="query">Searched for, part by part: {searched}</p>')
    elif answer.query and answer.query != answer.question:
        out.append(f'<p class="query">Searched for: <q>{html.escape(answer.query)}</q></p>')
    if searched_in:
        out.append(f'<p class="searched-in">Searched in: {html.escape(", ".join(searched_in))}</p>')
    cited = [(n, p) for n, p in enumerate(answer.passages, start=1) if n in quotes]
    others = [(n, p) for n, p in enumerate(answer.passages, start=1) if n not in quotes]
    shown_passage = functools.partial(_passage_html, where=where, show_details=show_details, answer_id=answer_id)
    if cited:
        out.append("<h3>Cited passages</h3>")
        out += [shown_passage(n, p, spans=quotes[n]) for n, p in cited]
    elif answer.passages:
        out.append("<p>No passage was cited.</p>")
    if others:
        label = "Other retrieved passages" if cited else "Retrieved passages"
        inner = "".join(shown_passage(n, p, spans=[]) for n, p in others)
        out.append(f"<details><summary>{label} ({len(others)})</summary>{inner}</details>")
    out.append("</div>")
    return "\n".join(out)


def _passage_html(n: int, p: Passage, where: Callable[[Chunk, int | None], str], spans: Sequence[tuple[int, int]],
                  show_details: bool, answer_id: str) -> str:
    c = p.chunk
    body, pos = [], 0
    for start, end in sorted(spans):
        a, b = max(start - c.start, pos), end - c.start
        if a >= b:
            continue
        body += [html.escape(c.text[pos:a]), f"<mark>{html.escape(c.text[a:b])}</mark>"]
        pos = b
    body.append(html.escape(c.text[pos:]))
    details = ""
    if show_details:
        dense = "–" if p.dense_score is None else f"{p.dense_score:.3f} (#{p.dense_rank})"
        bm25 = "–" if p.bm25_score is None else f"{p.bm25_score:.2f} (#{p.bm25_rank})"
        details = (f'<div class="details"><span class="offsets">characters {c.start}–{c.end}</span>'
                   f' · <span class="scores">fused {p.score:.4f} · dense {dense} · BM25 {bm25}</span></div>')
    start, end = min(spans) if spans else (c.start, c.end)
    opener = (f'<a class="open-doc" href="#" data-doc="{html.escape(c.doc_id)}" data-start="{start}" data-end="{end}">'
              "open the document</a>")
    return (
        f'<div class="source" id="{answer_id}-src-{n}" data-marker="{n}">'
        f'<div class="where"><b>[{n}]</b> {html.escape(where(c, start))} · {opener}</div>'
        f'{details}<blockquote>{headings_shown("".join(body)).replace(chr(10), "<br>")}</blockquote></div>'
    )


DOCUMENT_VIEW_CHARS = 100_000  # the document view shows at most this much text around the cited span


def overview_html(overview: Overview) -> str:
    """A document's overview: its opening sentences, its sections, then its key sentences
    quoted, each with its place as a link that opens the document there."""
    outline = " · ".join(html.escape(heading_path("", path)) for path in overview.outline)
    items = []
    for s in overview.sentences:
        where = place(overview.path, s.chunk.section, s.chunk.page, s.chunk.text, s.start - s.chunk.start) or "the beginning"
        items.append(f'<li>“{html.escape(s.text)}” — <a class="open-doc" href="#" data-doc="{html.escape(overview.doc_id)}"'
                     f' data-start="{s.start}" data-end="{s.end}">{html.escape(where)}</a></li>')
    sections = f'<p class="outline"><b>Sections:</b> {outline}</p>' if outline else ""
    lead = " ".join(html.escape(s.text) for s in overview.lead)
    opening = f'<p class="lead"><b>It begins:</b> “{lead}”</p>' if lead else ""
    return (f'<details class="overview" open><summary>Overview of {html.escape(overview.title)}</summary>{opening}{sections}'
            f'<p><b>Key sentences</b> (from each section, in document order):</p><ol>{"".join(items)}</ol></details>')


def document_html(title: str, text: str, start: int, end: int, where: str = "",
                  limit: int = DOCUMENT_VIEW_CHARS, overview: str = "") -> str:
    """A document, escaped, with [start, end) highlighted as `<mark id="cited">`; of a document
    longer than `limit` characters, the `limit` characters around the span, with a note.

    >>> document_html("T", "a <b> c", 2, 5)
    '<div class="document"><h3>T</h3><div class="doc-text">a <mark id="cited">&lt;b&gt;</mark> c</div></div>'
    >>> document_html("T", "0123456789", 4, 5, limit=4)
    '<div class="document"><h3>T</h3><p class="excerpt">Characters 3–7 of 10 are shown.</p><div class="doc-text">3<mark id="cited">4</mark>56</div></div>'
    """
    start, end = max(0, min(start, len(text))), max(0, min(end, len(text)))
    first, last = 0, len(text)
    note = ""
    if len(text) > limit:
        first = max(0, min(start - (limit - min(end - start, limit)) // 2, len(text) - limit))
        last = first + limit
        start, end = max(start, first), min(end, last)
        note = f'<p class="excerpt">Characters {first:,}–{last:,} of {len(text):,} are shown.</p>'
    body = (html.escape(text[first:start]) + f'<mark id="cited">{html.escape(text[start:end])}</mark>'
            + html.escape(text[end:last]))
    where = f'<p class="page">{html.escape(where)}</p>' if where else ""
    return (f'<div class="document"><h3>{html.escape(title)}</h3>{overview}{where}{note}'
            f'<div class="doc-text">{headings_shown(body).replace(chr(10), "<br>")}</div></div>')


_HEADING_LINE = re.compile(r"^(?:#{1,6}[ \t]+(?P<md>[^\n]+?)(?:[ \t]+#+)?|(?P<eq>={1,6})[ \t]*(?P<wiki>[^\n=][^\n]*?)[ \t]*(?P=eq))[ \t]*$",
                           re.MULTILINE)


def headings_shown(body: str) -> str:
    """Escaped document text with its heading lines ("## Exports", "== History ==") shown as
    headings, without their marks (the marks stay in the text: offsets are unchanged).

    >>> headings_shown("## Exports 2024\\nRow 1: a\\n==History==\\nx == y")
    '<b class="heading">Exports 2024</b>\\nRow 1: a\\n<b class="heading">History</b>\\nx == y'
    """
    return _HEADING_LINE.sub(lambda m: f'<b class="heading">{m["md"] or m["wiki"]}</b>', body)
