"""Batch evaluation: run the whole pipeline over a JSON Lines file of questions and score it.

Input, one object per line: `id`, `question`, `answers` (acceptable strings; empty = the
documents do not answer it), optional `evidence` (verbatim source substrings that support the
answer), optional `must_include` (strings that must all appear for the answer to count as
correct: lists and multi-part answers), optional `type`. Other fields are kept in the results.
A malformed line is reported with its line number and skipped.

Metrics (each also broken down by `type`):
- retrieval: hit@1, hit@3, recall@k (a passage in the top 1/3/k contains an evidence string), MRR;
- answers: exact match and token F1 of the short answer (SQuAD normalisation, best over the gold
  answers), and contains-gold (a normalised gold answer, or all `must_include` strings, inside
  the answer as shown: the short answer and its quoted sentence);
- SQuAD 2.0 (official definitions, on the short answer, "" when declined): EM and F1 over all
  questions, HasAns F1, NoAns F1 (= unanswerable questions declined), and the F1 of always
  declining on the same questions;
- abstention: correct abstention on unanswerable questions, false abstention on answerable ones;
- citations: precision (cited passages holding an evidence string), support (the quote is in
  the cited passage and it supports the cited sentence), recall (answers whose evidence is cited);
- latency: retrieval, first token, total (p50/p95 ms).
"""

from __future__ import annotations

import json
import logging
import re
import resource
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from qa.errors import QAError
from qa.evaluation.squad import SquadArticle, squad_scores
from qa.pipeline import Pipeline
from qa.sentences import sentence_spans
from qa.tables.table import table_correct
from qa.text import answer_sentences
from qa.text import normalize_answer as normalize
from qa.text import strip_markers
from qa.types import DECLINED, TENTATIVE, Answer, Passage

log = logging.getLogger(__name__)

KNOWN_FIELDS = {"id", "question", "answers", "evidence", "must_include", "type"}


@dataclass(frozen=True, slots=True)
class Question:
    id: str
    question: str
    answers: tuple[str, ...]
    evidence: tuple[str, ...] = ()
    must_include: tuple[str, ...] = ()
    type: str = "untyped"
    extra: dict = field(default_factory=dict)

    @property
    def answerable(self) -> bool:
        return bool(self.answers)


def load_questions(path: Path) -> tuple[list[Question], list[str]]:
    """(questions, problems): each problem names its line; the bad line (not UTF-8, not JSON,
    a field of the wrong type) is skipped and the rest is read."""
    questions, problems = [], []
    with path.open("rb") as f:
        for number, data in enumerate(f, start=1):
            try:
                line = data.decode("utf-8-sig" if number == 1 else "utf-8")
                if not line.strip():
                    continue
                raw = json.loads(line)
                if not isinstance(raw, dict):
                    raise ValueError("not a JSON object")
                if not isinstance(raw.get("question"), str) or not isinstance(raw.get("answers", None), list):
                    raise ValueError('needs "question" (a string) and "answers" (a list)')
                questions.append(
                    Question(
                        id=str(raw.get("id", f"line{number}")),
                        question=raw["question"],
                        answers=_strings(raw, "answers"),
                        evidence=_strings(raw, "evidence"),
                        must_include=_strings(raw, "must_include"),
                        type=str(raw.get("type") or "untyped"),
                        extra={k: v for k, v in raw.items() if k not in KNOWN_FIELDS},
                    )
                )
            except UnicodeDecodeError:
                problems.append(f"{path}:{number}: skipped: not UTF-8 text")
            except ValueError as error:
                problems.append(f"{path}:{number}: skipped: {error}")
    return questions, problems


def first_record(path: Path) -> dict:
    """A JSON Lines question file's first record ({} when it has none or cannot be read): what
    kind of file it is."""
    try:
        with path.open(encoding="utf-8-sig") as f:
            first = json.loads(next((line for line in f if line.strip()), "{}"))
        return first if isinstance(first, dict) else {}
    except (OSError, UnicodeDecodeError, ValueError):
        return {}


def _strings(raw: dict, key: str) -> tuple[str, ...]:
    """A list-of-strings field (numbers are taken as their text; missing or null: empty).

    >>> _strings({"answers": ["1965", 1965]}, "answers"), _strings({}, "evidence")
    (('1965', '1965'), ())
    """
    value = raw.get(key)
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, (str, int, float)) and not isinstance(v, bool) for v in value):
        raise ValueError(f'"{key}" must be a list of strings')
    return tuple(map(str, value))


def squad_corpus(articles: Sequence[SquadArticle], folder: Path) -> list[Question]:
    """Writes each article into `folder` as a text document (its title as the heading, its
    paragraphs as paragraphs) and returns its questions; the evidence of an answerable question
    is the sentence of its paragraph that holds the first answer."""
    folder.mkdir(parents=True, exist_ok=True)
    questions = []
    for number, article in enumerate(articles, start=1):
        name = re.sub(r"[^\w.-]+", "_", article.title, flags=re.ASCII).strip("._")[:80] or "article"
        body = "\n\n".join(p.strip() for p in article.paragraphs)
        (folder / f"{number:03d}_{name}.txt").write_text(f"= {article.title} =\n\n{body}\n", encoding="utf-8")
        for q in article.questions:
            evidence = ()
            if q.answers:
                start = q.answer_starts[0]
                context = q.context.strip()
                start -= len(q.context) - len(q.context.lstrip())
                evidence = tuple(context[a:b] for a, b in sentence_spans(context) if a <= start < b)
            questions.append(Question(id=q.id, question=q.question, answers=q.answers, evidence=evidence,
                                      type="answerable" if q.answers else "unanswerable",
                                      extra={"title": article.title}))
    return questions


# ---------------------------------------------------------------- metric functions


def contains_gold(prediction: str, golds: Sequence[str], must_include: Sequence[str] = ()) -> float:
    text = normalize(prediction)
    if must_include:
        return float(all(normalize(m) in text for m in must_include))
    return float(any(normalize(g) and normalize(g) in text for g in golds))


def first_evidence_rank(passages: Sequence[Passage], evidence: Sequence[str]) -> int | None:
    """1-based rank of the first passage containing an evidence string, or None."""
    for rank, p in enumerate(passages, start=1):
        if any(e in p.chunk.text for e in evidence):
            return rank
    return None


def percentile(values: Sequence[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def peak_rss_mb() -> int:
    """This process's peak resident memory in MB. VmHWM, not ru_maxrss: a child started from a
    big process inherits the parent's ru_maxrss across fork and exec, VmHWM starts afresh."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) // 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024


def _mean(values: Iterable[float]) -> float | None:
    values = list(values)
    return round(statistics.fmean(values), 4) if values else None


# ---------------------------------------------------------------- one question


def score(question: Question, passages: Sequence[Passage], answer: Answer | None) -> dict:
    """The per-question record written to results.jsonl."""
    rank = first_evidence_rank(passages, question.evidence) if question.evidence else None
    record: dict = {
        "id": question.id,
        "type": question.type,
        "question": question.question,
        "gold": list(question.answers),
        "answerable": question.answerable,
        "has_evidence": bool(question.evidence),
        "evidence_rank": rank,
        "passages": [
            {"rank": p.rank, "chunk_id": p.chunk.chunk_id, "section": p.chunk.section, "text": p.chunk.text}
            for p in passages
        ],
        **({"extra": question.extra} if question.extra else {}),
    }
    if answer is None:
        return record
    cited = [(c, passages[c.marker - 1]) for c in answer.citations]
    record.update(
        {
            "answer": answer.text,
            "abstained": answer.abstained,
            "outcome": answer.outcome,
            "citations": [
                {"marker": c.marker, "chunk_id": c.chunk_id, "start": c.start, "end": c.end, "quote": c.quote}
                for c in answer.citations
            ],
            "timings": answer.timings,
            "short_answer": answer.short_text or None,
            "best_reading": None if not answer.readings else {
                "text": answer.readings[0].text, "sentence": answer.readings[0].sentence,
                "margin": round(answer.readings[0].margin, 4), "answerable": round(answer.readings[0].answerable, 4),
                "marker": answer.readings[0].marker},
        }
    )
    # The official SQuAD 2.0 scores of the short answer ("" when declined); on answerable
    # questions they are also reported as exact_match and f1.
    record["squad_exact"], record["squad_f1"] = squad_scores(
        "" if answer.abstained else answer.short_text, question.answers)
    if question.answerable:
        record.update(answerable_scores(question, answer, record, [p for _, p in cited]))
    if cited:
        record["citation_support"] = _mean(map(float, citation_support(answer)))
    if question.extra.get("table"):  # a question about a table: its denotation, as WikiTableQuestions scores
        record["table_correct"] = float(table_correct("" if answer.abstained else answer.short_text, question.answers))
    return record


def answerable_scores(question: Question, answer: Answer, record: dict, cited: Sequence[Passage]) -> dict:
    """An answerable question's scores beyond SQuAD's: whether what the person reads holds a
    gold answer (in an answer; or also in a tentative answer's quoted sentence: `shown_gold`),
    and whether the cited passages hold the evidence."""
    shown = strip_markers(f"{answer.headline} {answer.text}")  # what the person reads: the short answer and its proof
    holds_gold = contains_gold(shown, question.answers, question.must_include)
    scores = {"exact_match": record["squad_exact"], "f1": record["squad_f1"],
              "contains_gold": 0.0 if answer.abstained else holds_gold,
              "shown_gold": 0.0 if answer.outcome == DECLINED else holds_gold}
    if question.evidence and not answer.abstained:
        holds = [any(e in p.chunk.text for e in question.evidence) for p in cited]
        scores["citation_precision"] = _mean(map(float, holds))
        scores["citation_recall"] = float(any(holds))
    return scores


_NAME_OR_NUMBER = re.compile(r"\d[\d,.:/]*\d|\d|\b[A-Z][\w'’-]*")


def names_and_numbers(claim: str) -> set[str]:
    """The numbers and capitalised words a sentence states, but for its first word.

    >>> sorted(names_and_numbers("The treaty was signed in Tokyo on 22 June 1965."))
    ['1965', '22', 'June', 'Tokyo']
    """
    words = claim.split(maxsplit=1)
    return {m.group(0).rstrip(".,") for m in _NAME_OR_NUMBER.finditer(words[1] if len(words) > 1 else "")}


def citation_support(answer: Answer) -> list[bool]:
    """For each citation: its quote is verbatim in the cited passage, and a sentence of the
    answer carrying its marker states no number or name that the quote lacks. A test apart
    from the verifier's own (a share of content words), so it can disagree with it: a sentence
    that swaps one year or name keeps most of its words but fails here."""
    sentences = answer_sentences(answer.text)
    checks = []
    for c in answer.citations:
        passage = answer.passages[c.marker - 1].chunk
        claims = [strip_markers(s).strip("“”\"' ") for s in sentences if f"[{c.marker}]" in s]
        checks.append(
            passage.text[c.start - passage.start : c.end - passage.start] == c.quote
            and any(all(w in c.quote for w in names_and_numbers(claim)) for claim in claims)
        )
    return checks


# ---------------------------------------------------------------- a whole run


def evaluate(
    pipeline: Pipeline,
    questions: Sequence[Question],
    k: int | None = None,
    mode: str | None = None,
    retrieval_only: bool = False,
    progress: bool = True,
) -> list[dict]:
    """One scored record per question; a question the pipeline refuses is recorded with its error."""
    from tqdm import tqdm

    records = []
    for question in tqdm(questions, desc="evaluating", unit="q", disable=not progress or None, leave=False):
        try:
            documents = question.extra.get("documents", ())  # a question scoped to its own documents (HotpotQA)
            if retrieval_only:
                _, passages = pipeline.search(question.question, k, documents=documents)
                records.append(score(question, passages, None))
            else:
                answer = pipeline.ask(question.question, k, mode, documents=documents)
                records.append(score(question, answer.passages, answer))
        except QAError as error:
            records.append({"id": question.id, "type": question.type, "question": question.question,
                            "answerable": question.answerable, "error": str(error)})
    return records


def summarize(records: Sequence[dict], k: int, skipped: int = 0) -> dict:
    """Overall metrics (with `skipped`: input lines or items left out as malformed) and the same per `type`."""
    summary = {"overall": {**_metrics(records, k), "skipped": skipped}}
    for kind in sorted({r["type"] for r in records}):
        summary[kind] = _metrics([r for r in records if r["type"] == kind], k)
    return summary


def _metrics(records: Sequence[dict], k: int) -> dict:
    answerable = [r for r in records if r["answerable"] and "error" not in r]
    unanswerable = [r for r in records if not r["answerable"] and "error" not in r]
    ranked = [r for r in answerable if r["has_evidence"]]
    answered = [r for r in records if "abstained" in r]
    m: dict = {"questions": len(records), "answerable": len(answerable), "unanswerable": len(unanswerable),
               "errors": sum("error" in r for r in records)}
    if ranked:
        ranks = [r["evidence_rank"] for r in ranked]
        m["hit@1"] = _mean(float(x == 1) for x in ranks)
        m["hit@3"] = _mean(float(x is not None and x <= 3) for x in ranks)
        m[f"recall@{k}"] = _mean(float(x is not None and x <= k) for x in ranks)
        m["mrr"] = _mean(1.0 / x if x else 0.0 for x in ranks)
    if answered:
        scored = [r for r in answerable if "contains_gold" in r]
        m["exact_match"] = _mean(r["exact_match"] for r in scored)
        m["f1"] = _mean(r["f1"] for r in scored)
        m["contains_gold"] = _mean(r["contains_gold"] for r in scored)
        m["correct_abstention"] = _mean(float(r["abstained"]) for r in unanswerable if "abstained" in r)
        # Tentative answers count as declined above; these say what they show.
        tentative = [r for r in scored if r.get("outcome") == TENTATIVE]
        m["tentative"] = _mean(float(r.get("outcome") == TENTATIVE) for r in answered)
        m["tentative_holds_gold"] = _mean(r["shown_gold"] for r in tentative)
        m["tentative_on_unanswerable"] = _mean(float(r.get("outcome") == TENTATIVE) for r in unanswerable
                                               if "abstained" in r)
        m["shown_gold"] = _mean(r.get("shown_gold", r["contains_gold"]) for r in scored)
        if any("table_correct" in r for r in answered):
            m["table_accuracy"] = _mean(r["table_correct"] for r in answered if "table_correct" in r)
        m["squad_exact"] = _mean(r["squad_exact"] for r in answered)
        m["squad_f1"] = _mean(r["squad_f1"] for r in answered)
        m["HasAns_f1"] = _mean(r["squad_f1"] for r in scored)
        m["NoAns_f1"] = _mean(r["squad_f1"] for r in unanswerable if "squad_f1" in r)
        m["abstain_f1"] = _mean(float(not r["answerable"]) for r in answered)  # the always-decline baseline
        shorts = [len(r["short_answer"].split()) for r in scored if r.get("short_answer")]
        m["short_answer_words"] = _mean(shorts)
        m["false_abstention"] = _mean(float(r["abstained"]) for r in scored)
        m["citation_precision"] = _mean(r["citation_precision"] for r in answerable if r.get("citation_precision") is not None)
        m["citation_support"] = _mean(r["citation_support"] for r in answered if "citation_support" in r)
        m["citation_recall"] = _mean(r["citation_recall"] for r in answerable if "citation_recall" in r)
        for name in ("retrieve_ms", "first_token_ms", "total_ms"):
            values = [r["timings"][name] for r in answered if name in r.get("timings", {})]
            m[f"{name}_p50"] = _round(percentile(values, 50))
            m[f"{name}_p95"] = _round(percentile(values, 95))
    return m


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)
