"""What `qa eval` writes: the printed table, `results.jsonl`, `summary.json`/`.csv` and
`report.md` (the table and the worst ten questions, each with its passages)."""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from pathlib import Path

from qa.text import inert_markdown

TABLE_METRICS = (  # the printed table; summary.json has every metric
    "questions", "errors", "skipped", "hit@1", "hit@3", "table_accuracy", "contains_gold", "f1", "squad_f1", "HasAns_f1",
    "abstain_f1", "correct_abstention", "false_abstention", "tentative", "tentative_holds_gold", "tentative_on_unanswerable",
    "shown_gold", "short_answer_words", "citation_precision", "citation_support",
    "first_token_ms_p50", "total_ms_p50", "total_ms_p95",
)


def _cell(value: object) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.3f}" if value <= 1.0 else f"{value:.0f}"
    return str(value)


def table(summary: dict, markdown: bool = False) -> str:
    """Groups as rows, metrics as columns (only those that any group has)."""
    columns = [m for m in TABLE_METRICS if any(m in g for g in summary.values())]
    rows = [[group] + [_cell(metrics.get(m)) for m in columns] for group, metrics in summary.items()]
    header = ["group", *columns]
    if markdown:  # group names come from the question file's `type`: inert, and one cell each
        rows = [[inert_markdown(" ".join(r[0].split())).replace("|", "\\|"), *r[1:]] for r in rows]
        lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in rows])
    widths = [max(len(str(x)) for x in column) for column in zip(header, *rows)]
    return "\n".join("  ".join(str(x).rjust(w) for x, w in zip(line, widths)) for line in [header, *rows])


def badness(record: dict) -> tuple:
    """Sort key, worst first: errors, wrong abstentions, wrong answers, retrieval misses, low F1."""
    if "error" in record:
        return (0,)
    if not record["answerable"]:
        return (1, 0.0) if not record.get("abstained", True) else (9, 1.0)
    wrong = record.get("contains_gold", 1.0) < 1.0
    return (2 if record.get("abstained") else 3 if wrong else 5, record.get("f1", 1.0), -(record.get("evidence_rank") or 99))


def write_outputs(records: Sequence[dict], summary: dict, out: Path, settings_line: str) -> None:
    out.mkdir(parents=True, exist_ok=True)
    with (out / "results.jsonl").open("w", encoding="utf-8") as f:
        for record in records:
            f.write(json.dumps(record, ensure_ascii=False) + "\n")
    (out / "summary.json").write_text(json.dumps(summary, indent=1, ensure_ascii=False), encoding="utf-8")
    metrics = sorted({m for g in summary.values() for m in g})
    with (out / "summary.csv").open("w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["group", *metrics])
        for group, values in summary.items():
            writer.writerow([group, *(values.get(m, "") for m in metrics)])
    (out / "report.md").write_text(report(records, summary, settings_line), encoding="utf-8")


def report(records: Sequence[dict], summary: dict, settings_line: str) -> str:
    lines = ["# Evaluation report", "", settings_line, "", table(summary, markdown=True), "", "## Worst 10 questions", ""]
    for record in sorted(records, key=badness)[:10]:  # document text made inert: Markdown viewers render links
        lines += [inert_markdown(f"### {record['id']} ({record['type']}): {record['question']}"), ""]
        if "error" in record:
            lines += [inert_markdown(f"Error: {record['error']}"), ""]
            continue
        lines.append(inert_markdown(f"- gold: {record['gold'] or '(not in the documents)'}"))
        if "answer" in record:
            lines.append(f"- answer{' (abstained)' if record['abstained'] else ''}: "
                         f"{inert_markdown(str(record['answer']))}")
        lines.append(f"- evidence rank: {record['evidence_rank']}")
        lines.append("- passages:")
        for p in record["passages"][:3]:
            text = p["text"].replace("\n", " ")
            lines.append(f"  - [{p['rank']}] {inert_markdown(p['section'] or '(lead)')}: "
                         f"{inert_markdown(text[:300])}{'…' if len(text) > 300 else ''}")
        lines.append("")
    return "\n".join(lines)
