"""Write one article split of the SQuAD 2.0 data (see scripts/train_reader.py), or SQuAD v1.1's 13
dev articles (`squad11`, held out: all answerable), as a SQuAD-format file for `qa eval`: whole
articles (every paragraph stays, so the corpus is the whole article), optionally only every Nth
question of each article, for modes too slow to answer them all.

    python scripts/squad_split.py report --every 8 --out /tmp/report8.json
    python scripts/squad_split.py tune --kind why --out /tmp/tune-why.json
    python scripts/squad_split.py squad11 --every 3 --out /tmp/squad11_every3.json
    qa eval /tmp/report8.json --mode generative --out /tmp/gen-report
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

from qa.answer.yesno import is_yes_no
from qa.training.splits import DATA, DEV_FILE, DEV_TRAIN, REPORT, TUNE

SPLITS = {"tune": TUNE, "report": REPORT, "dev-train": DEV_TRAIN, "squad11": None}  # None: every article
SQUAD11 = DATA.parent / "more_qa" / "squad11_dev_13_articles.json"
KINDS = {  # questions measured apart in docs/reader.md: question → whether it is of the kind
    "list": re.compile(r"\b(?:which|what|name|list|give|identify)\s+(?:(?:are|were)\s+)?(?:the\s+)?"
                       r"(?:two|three|four|five|six|seven|eight|nine|ten|[2-9])\s+(?!of\b|percent\b)\w", re.IGNORECASE).search,
    "why": re.compile(r"^\W*(?:\w+\s+){0,3}?why\b", re.IGNORECASE).search,
    "yesno": is_yes_no,
}


def split_file(titles: tuple[str, ...] | None, every: int, kind: str | None = None) -> dict:
    source = SQUAD11 if titles is None else DATA / DEV_FILE
    dev = {a["title"]: a for a in json.loads(source.read_text(encoding="utf-8"))["data"]}
    articles = []
    for title in titles or list(dev):
        article, seen = dev[title], 0
        paragraphs = []
        for paragraph in article["paragraphs"]:
            kept = []
            for question in paragraph["qas"]:
                if kind and not KINDS[kind](question["question"]):
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
    parser.add_argument("--kind", choices=sorted(KINDS), help="only questions asking for a number of things, why, or yes/no")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    data = split_file(SPLITS[args.split], max(1, args.every), args.kind)
    args.out.write_text(json.dumps(data), encoding="utf-8")
    count = sum(len(p["qas"]) for a in data["data"] for p in a["paragraphs"])
    print(f"wrote {args.out}: {len(data['data'])} articles, {count} questions")


if __name__ == "__main__":
    main()
