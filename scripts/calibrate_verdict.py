"""Choose the verdict branch's threshold on tune: how sure it must be that a window decides a
yes/no question before the product answers "Yes" or "No".

    .venv/bin/python scripts/calibrate_verdict.py --model READER_FOLDER [--work W] [--limit 600]

The tune yes/no questions (`scripts/eval_yesno.py --split tune`: BoolQ dev's even lines, and the
tune articles' answerable questions turned yes/no) are asked end to end; for each, the reading
whose window most surely decides it gives (decided, right). The threshold maximises
right − 2 × wrong over them (a wrong "Yes"/"No" costs more than the closest sentence shown
instead), and is written to the folder's `calibration.json` as `yes_no_threshold`.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from qa.config import Settings

sys.path.insert(0, str(Path(__file__).resolve().parent))
from eval_yesno import boolq_questions, pipeline_for, squad_yes_no  # noqa: E402

WRONG_COST = 2.0


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
    """(threshold, its right − 2 × wrong per question) over the candidate thresholds."""
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--work", type=Path, default=Path(".reader-train/yesno"))
    parser.add_argument("--limit", type=int, default=600, help="questions per set")
    args = parser.parse_args()
    settings = Settings.from_env()
    sets = {}
    questions = boolq_questions(args.work / "tune" / "boolq" / "corpus", "tune", args.limit)
    sets["boolq dev (tune)"] = decided_and_right(pipeline_for(args.work / "tune" / "boolq", args.model, settings), questions)
    questions, _, _ = squad_yes_no(args.work / "tune" / "squad" / "corpus", "tune", args.limit)
    sets["SQuAD tune articles as yes/no"] = decided_and_right(
        pipeline_for(args.work / "tune" / "squad", args.model, settings), questions)
    rows = [row for found in sets.values() for row in found]
    threshold, gain = choose(rows)
    print(tradeoff(sets))
    for name, found in sets.items():
        print(summary(name, found, threshold))
    print(f"yes_no_threshold {threshold:.3f} (right - {WRONG_COST:g} x wrong per question: {gain:.3f})")
    path = args.model / "calibration.json"
    calibration = json.loads(path.read_text(encoding="utf-8"))
    calibration["yes_no_threshold"] = round(threshold, 3)
    calibration["yes_no_rule"] = f"maximises right - {WRONG_COST:g} x wrong on the tune yes/no questions"
    path.write_text(json.dumps(calibration, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
