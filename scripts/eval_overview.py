"""Measure the extractive overviews against a reference summary each document comes with.

    .venv/bin/python scripts/eval_overview.py --work /tmp/overview [--papers 8] [--key N]

Documents (the report set): the seed article (reference: its lead section, before the first heading), the REPORT
SQuAD articles (reference: their first paragraph, the article's opening) and the first `--papers`
COVID-QA papers (the body after "Text:" indexed; reference: the paper's abstract, not indexed);
with --tune, five SQuAD tune articles and the next `--papers` papers, to choose constants on.
Per document: the share of its top-level sections with prose that the overview quotes from,
(and of all its sections with prose, top-level or not), the share of its fifths (by sentence order) it quotes from, and ROUGE-1/2 F1 (lower-cased word
uni/bigrams, no stemming) of the overview's sentences outside the reference (the opening the
overview quotes is the reference itself) against the reference. Prints a table and the means.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import re
import shutil
from collections import Counter
from pathlib import Path

from qa.answer.overview import document_overview, is_prose
from qa.config import Settings
from qa.index.build import build_index
from qa.index.store import load_index
from qa.models.embedders import get_embedder
from qa.training.splits import dev_splits

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
SEED = Path(__file__).resolve().parents[1].parent / "shared" / "corpus" / "japan_south_korea_relations.txt"
_WORD = re.compile(r"\w+")


def rouge(candidate: str, reference: str, n: int) -> float:
    """ROUGE-n F1 of lower-cased word n-grams.

    >>> round(rouge("the cat sat", "the cat ran", 1), 3), rouge("the cat sat", "the cat ran", 2)
    (0.667, 0.5)
    """
    def grams(text: str) -> Counter:
        words = _WORD.findall(text.casefold())
        return Counter(tuple(words[i:i + n]) for i in range(len(words) - n + 1))
    c, r = grams(candidate), grams(reference)
    overlap = sum((c & r).values())
    if not overlap:
        return 0.0
    precision, recall = overlap / sum(c.values()), overlap / sum(r.values())
    return 2 * precision * recall / (precision + recall)


def write_corpus(folder: Path, papers: int, tune: bool) -> dict[str, str]:
    """The documents, written into `folder`; {file name: reference summary}."""
    folder.mkdir(parents=True, exist_ok=True)
    references = {}
    if not tune:
        seed = SEED.read_text(encoding="utf-8")
        shutil.copy(SEED, folder / SEED.name)
        references[SEED.name] = seed[seed.index("\n\n", seed.index("Infobox")):seed.index("\n==")].strip()
    for number, article in enumerate(dev_splits(DATA / "squad2")["tune" if tune else "report"][:5], start=1):
        name = f"squad_{number}.txt"
        body = "\n\n".join(p.strip() for p in article.paragraphs)
        (folder / name).write_text(f"= {article.title} =\n\n{body}\n", encoding="utf-8")
        references[name] = article.paragraphs[0].strip()
    covid = json.loads((DATA / "covidqa" / "covidqa_dev_half.json").read_text(encoding="utf-8"))["data"]
    for number, paper in enumerate(covid[papers:2 * papers] if tune else covid[:papers], start=1):
        text = paper["paragraphs"][0]["context"]
        title = text.split("\n", 1)[0].strip()
        abstract = re.search(r"Abstract:(.*?)\n\s*\nText:", text, re.DOTALL)
        body = text.split("Text:", 1)[-1].strip()
        if not abstract or len(body) < 2000:
            continue
        name = f"covid_{number}.txt"
        (folder / name).write_text(f"= {title} =\n\n{body}\n", encoding="utf-8")
        references[name] = abstract.group(1).strip()
    return references


def measure(index, doc_id: str, reference: str, key: int) -> dict:  # noqa: ANN001
    overview = document_overview(index, doc_id, key) if key else document_overview(index, doc_id)
    first, end = index.rows_of(doc_id)
    chunks = index.chunks[first:end]
    text = "".join(c.text for c in chunks)
    units = range(index.sentences_of(chunks[0]).units.start, index.sentences_of(chunks[-1]).units.stop)
    prose_sections = {c.section.split(" > ")[0] for c in chunks if c.section and any(
        is_prose(index.sentence_text(u)) for u in index.sentences_of(c).units)}
    chosen = [*overview.lead, *overview.sentences]
    quoted_sections = {s.chunk.section.split(" > ")[0] for s in chosen if s.chunk.section}
    leaves = {c.section for c in chunks if c.section and any(is_prose(index.sentence_text(u)) for u in index.sentences_of(c).units)}
    starts = sorted(index._units[u][1] for u in units)  # noqa: SLF001
    fifths = {min(4, 5 * sum(1 for s in starts if s < k.start) // max(1, len(starts))) for k in chosen}
    outside = " ".join(s.text for s in chosen if s.text not in reference)
    return {"sentences": len(chosen), "words": sum(len(s.text.split()) for s in chosen),
            "sections": len(quoted_sections & prose_sections) / len(prose_sections) if prose_sections else None,
            "subsections": len({s.chunk.section for s in chosen} & leaves) / len(leaves) if leaves else None,
            "fifths": len(fifths) / 5, "rouge1": rouge(outside, reference, 1), "rouge2": rouge(outside, reference, 2),
            "chars": len(text)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--papers", type=int, default=8)
    parser.add_argument("--tune", action="store_true", help="the tune documents: 5 SQuAD tune articles and the "
                        "next --papers papers (choose constants on these; report on the others)")
    parser.add_argument("--key", type=int, default=0, help="key sentences per document (0: as the product chooses)")
    args = parser.parse_args()
    settings = Settings(corpus_dir=args.work / "corpus", index_dir=args.work / "index")
    references = write_corpus(settings.corpus_dir, args.papers, args.tune)
    embedder = get_embedder(settings.embed_model, settings.threads, cache_dir=settings.cache_dir,
                            precision=settings.encoder_precision)
    if not (settings.index_dir / "manifest.json").is_file():
        build_index(settings, embedder, progress=False)
    index = load_index(settings)
    rows = {}
    for doc in sorted(index.documents.values(), key=lambda d: d.path):
        rows[doc.path] = measure(index, doc.doc_id, references[doc.path.rsplit("/", 1)[-1]], args.key)
        r = rows[doc.path]
        sections = "  —  " if r["sections"] is None else f"{r['sections']:.2f} (all {r['subsections']:.2f})"
        print(f"{doc.path:28} {r['sentences']:3d} sent {r['words']:4d} words  sections {sections}  "
              f"fifths {r['fifths']:.2f}  R1 {r['rouge1']:.3f}  R2 {r['rouge2']:.3f}")
    for group in ("japan", "squad", "covid"):
        picked = [r for path, r in rows.items() if path.startswith(group)]
        if not picked:
            continue
        sectioned = [r["sections"] for r in picked if r["sections"] is not None]
        mean = {k: sum(r[k] for r in picked) / len(picked) for k in ("sentences", "fifths", "rouge1", "rouge2")}
        print(f"{group:6} ({len(picked)} docs): sentences {mean['sentences']:.1f}  sections "
              f"{sum(sectioned) / len(sectioned) if sectioned else float('nan'):.2f}  fifths {mean['fifths']:.2f}  "
              f"ROUGE-1 {mean['rouge1']:.3f}  ROUGE-2 {mean['rouge2']:.3f}")


if __name__ == "__main__":
    main()
