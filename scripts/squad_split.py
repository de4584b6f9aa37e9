"""Write one article split of the SQuAD 2.0 data (see scripts/train_reader.py) as a SQuAD-format
file for `qa eval`: whole articles (every paragraph stays, so the corpus is the whole article),
optionally only every Nth question of each article, for modes too slow to answer them all.

    python scripts/squad_split.py report --every 8 --out /tmp/report8.json
    python scripts/squad_split.py tune --kind why --out /tmp/tune-why.json
    qa eval /tmp/report8.json --mode generative --out /tmp/gen-report
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

from qa.evaluation.splits import DATA, DEV_FILE, DEV_TRAIN, REPORT, TUNE

SPLITS = {"tune": TUNE, "report": REPORT, "dev-train": DEV_TRAIN}
KINDS = {  # questions measured apart in README's reader section
    "list": re.compile(r"\b(?:which|what|name|list|give|identify)\s+(?:(?:are|were)\s+)?(?:the\s+)?"
                       r"(?:two|three|four|five|six|seven|eight|nine|ten|[2-9])\s+(?!of\b|percent\b)\w", re.IGNORECASE),
    "why": re.compile(r"^\W*(?:\w+\s+){0,3}?why\b", re.IGNORECASE),
}


def split_file(titles: tuple[str, ...], every: int, kind: str | None = None) -> dict:
    dev = {a["title"]: a for a in json.loads((DATA / DEV_FILE).read_text(encoding="utf-8"))["data"]}
    articles = []
    for title in titles:
        article, seen = dev[title], 0
        paragraphs = []
        for paragraph in article["paragraphs"]:
            kept = []
            for question in paragraph["qas"]:
                if kind and not KINDS[kind].search(question["question"]):
                    continue
                if seen % every == 0:
                    kept.append(question)
                seen += 1
            paragraphs.append({**paragraph, "qas": kept})
        articles.append({"title": title, "paragraphs": paragraphs})
    return {"version": "v2.0", "data": articles}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("split", choices=sorted(SPLITS))
    parser.add_argument("--every", type=int, default=1, help="keep every Nth question of each article (default: all)")
    parser.add_argument("--kind", choices=("list", "why"), help="only questions asking for a number of things, or why")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    data = split_file(SPLITS[args.split], max(1, args.every), args.kind)
    args.out.write_text(json.dumps(data), encoding="utf-8")
    count = sum(len(p["qas"]) for a in data["data"] for p in a["paragraphs"])
    print(f"wrote {args.out}: {len(data['data'])} articles, {count} questions from {DEV_FILE}")


if __name__ == "__main__":
    main()
