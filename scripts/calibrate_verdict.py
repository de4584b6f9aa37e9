"""Choose the verdict branch's threshold on tune: how sure it must be that a window decides a
yes/no question before the product answers "Yes" or "No".

    .venv/bin/python scripts/calibrate_verdict.py --model READER_FOLDER [--work W] [--limit 600]

The tune yes/no questions (`scripts/eval_yesno.py --split tune`: BoolQ dev's even lines, and the
tune articles' answerable questions turned yes/no) are asked end to end; for each, the reading
whose window most surely decides it gives (decided, right). The threshold maximises
right − 3 × wrong over them — a bold "Yes"/"No" that is wrong misleads, where the closest
sentence shown instead (a tentative answer) lets the person judge: so a verdict is given where
it is right at least three times in four — and is written to the folder's `calibration.json`
as `yes_no_threshold`.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from qa.config import Settings
from qa.training.card import write_verdict_section
from qa.training.yesno import boolq_questions, pipeline_for, squad_yes_no

WRONG_COST = 3.0


def decided_and_right(pipeline, questions) -> list[tuple[float, bool]]:  # noqa: ANN001
    """Per question: how sure the best verdict is that its window decides it, and whether it is right."""
    out = []
    for q in questions:
        answer = pipeline.ask(q.question, mode="evidence")
        verdicts = [r for r in answer.readings if r.verdict]
        best = max(verdicts, key=lambda r: r.decided, default=None)
        out.append((best.decided, best.verdict == q.answers[0]) if best else (0.0, False))
    return out


def choose(rows: list[tuple[float, bool]]) -> tuple[float, float]:
    """(threshold, its right − WRONG_COST × wrong per question) over the candidate thresholds."""
    decided = np.array([d for d, _ in rows])
    right = np.array([r for _, r in rows])
    best = (1.01, 0.0)
    for t in np.unique(np.round(decided, 3)):
        on = decided >= t
        gain = (right[on].sum() - WRONG_COST * (~right[on]).sum()) / len(rows)
        if gain > best[1]:
            best = (float(t), float(gain))
    return best


def tradeoff(sets: dict[str, list[tuple[float, bool]]]) -> str:
    """Per threshold: each set's share answered and accuracy of the answered."""
    lines = ["threshold  " + "  ".join(f"{name[:28]:>28}" for name in sets)]
    for t in (0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.95, 0.97):
        cells = []
        for rows in sets.values():
            on = [r for d, r in rows if d >= t]
            cells.append(f"{len(on) / len(rows):.3f} answered, {sum(on) / max(1, len(on)):.3f} right")
        lines.append(f"{t:9.2f}  " + "  ".join(f"{c:>28}" for c in cells))
    return "\n".join(lines)


def summary(name: str, rows: list[tuple[float, bool]], t: float) -> str:
    on = [r for d, r in rows if d >= t]
    return (f"{name}: {len(rows)} questions, answered {len(on) / len(rows):.3f}, accuracy of answered "
            f"{sum(on) / max(1, len(on)):.3f}, right of all {sum(on) / len(rows):.3f}")


def measured(split: str, model: Path, work: Path, limit: int, settings: Settings) -> dict[str, list[tuple[float, bool]]]:
    """Per yes/no set of the split (BoolQ dev half, the split's SQuAD articles as yes/no): (decided, right) rows."""
    questions = boolq_questions(work / split / "boolq" / "corpus", split, limit)
    sets = {"BoolQ dev": decided_and_right(pipeline_for(work / split / "boolq", model, settings), questions)}
    questions, _, _ = squad_yes_no(work / split / "squad" / "corpus", split, limit)
    sets["SQuAD articles as yes/no"] = decided_and_right(pipeline_for(work / split / "squad", model, settings), questions)
    return sets


def figures(sets: dict[str, list[tuple[float, bool]]], threshold: float) -> dict[str, dict]:
    out = {}
    for name, rows in sets.items():
        on = [r for d, r in rows if d >= threshold]
        out[name] = {"questions": len(rows), "answered": round(len(on) / len(rows), 3),
                     "accuracy_of_answered": round(sum(on) / max(1, len(on)), 3), "right_of_all": round(sum(on) / len(rows), 3)}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--work", type=Path, default=Path(".reader-train/yesno"))
    parser.add_argument("--limit", type=int, default=600, help="questions per set")
    parser.add_argument("--report", action="store_true", help="then score the chosen threshold on the report split")
    args = parser.parse_args()
    settings = Settings.from_env()
    sets = measured("tune", args.model, args.work, args.limit, settings)
    threshold, gain = choose([row for found in sets.values() for row in found])
    print(tradeoff(sets))
    for name, found in sets.items():
        print(summary(name, found, threshold))
    print(f"yes_no_threshold {threshold:.3f} (right - {WRONG_COST:g} x wrong per question: {gain:.3f})")
    path = args.model / "calibration.json"
    calibration = json.loads(path.read_text(encoding="utf-8"))
    calibration["yes_no_threshold"] = round(threshold, 3)
    calibration["yes_no_rule"] = f"maximises right - {WRONG_COST:g} x wrong on the tune yes/no questions"
    path.write_text(json.dumps(calibration, indent=1) + "\n", encoding="utf-8")
    verdict = {"threshold": round(threshold, 3), "rule": calibration["yes_no_rule"], "tune_gain": round(gain, 3),
               "tune": figures(sets, threshold)}
    if args.report:  # nothing is chosen here
        report = measured("report", args.model, args.work, args.limit, settings)
        for name, found in report.items():
            print(summary(f"{name} (report)", found, threshold))
        verdict["report"] = figures(report, threshold)
    trained = args.model / "verdict_training.json"
    if trained.is_file():
        verdict["training"] = json.loads(trained.read_text(encoding="utf-8"))
    (args.model / "verdict.json").write_text(json.dumps(verdict, indent=1) + "\n", encoding="utf-8")
    write_verdict_section(args.model)


if __name__ == "__main__":
    main()
