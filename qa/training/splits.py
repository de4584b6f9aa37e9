"""The SQuAD 2.0 data in `../shared/data/squad2/` split by article: what the reader is trained on,
what is tuned on (calibration, thresholds, how the product reads), and what is only reported
(nothing is chosen on it). The reader scripts and `scripts/squad_split.py` read them from here.
"""

from __future__ import annotations

from pathlib import Path

from qa.evaluation.squad import load_squad

DATA = Path(__file__).resolve().parents[3] / "shared" / "data" / "squad2"
TRAIN_FILE, DEV_FILE = "train_first_10_articles.json", "dev_15_articles.json"
# Split by article. TUNE: calibration, thresholds, how the product reads; REPORT: nothing is
# chosen on it. DEV_TRAIN: dev articles the first training leg drew from as well; from the second
# leg on they are tune articles (so a difference of 0.01 on tune can be seen) and never drawn.
DEV_TRAIN = ("Oxygen", "Amazon_rainforest", "Ctenophora", "Fresno,_California", "Black_Death", "Geology", "Pharmacy")
TUNE = ("Civil_disobedience", "Construction", "Private_school") + DEV_TRAIN
REPORT = ("Jacksonville,_Florida", "Economic_inequality", "University_of_Chicago",
          "Intergovernmental_Panel_on_Climate_Change", "Prime_number")
COVID_FILE = DATA.parent / "covidqa" / "covidqa_dev_half.json"
MORE_FILES = ("tydiqa_goldp_en_train.json", "qed_nq_train_part0.json", "qed_nq_train_part1.json", "qed_nq_train_part2.json")


def dev_splits(data: Path) -> dict[str, list]:
    """The dev articles by use: "tune", "report" and "train" (DEV_TRAIN, drawn from by the first leg)."""
    dev = {a.title: a for a in load_squad(data / DEV_FILE)}
    return {"train": [dev[t] for t in DEV_TRAIN], "tune": [dev[t] for t in TUNE], "report": [dev[t] for t in REPORT]}


def train_articles(data: Path, more: bool = False) -> list:
    """The whole SQuAD 2.0 train set (442 articles) and the DEV_TRAIN articles, plus, with `more`,
    the answerable TyDi QA and Natural Questions (QED) sets. Always the same list, so a seed gives
    every training leg the same order of questions; a leg leaves out the articles it holds out."""
    train = load_squad(data / TRAIN_FILE)
    for part in sorted((data / "train_rebuilt").glob("part*.json")):
        train += load_squad(part)
    if more:
        for name in MORE_FILES:
            train += load_squad(data.parent / "more_qa" / name)
    return train + dev_splits(data)["train"]


def covid_splits(path: Path = COVID_FILE) -> dict[str, list]:
    """COVID-QA's dev half (49 papers, one paragraph each) split by paper, in the file's order: 3 of
    every 5 to "train" (the reader's domain leg), the 4th to "tune", the 5th to "report". The other
    half of COVID-QA is not here: it is kept to check the result."""
    papers = load_squad(path)
    return {"train": [a for i, a in enumerate(papers) if i % 5 < 3],
            "tune": [a for i, a in enumerate(papers) if i % 5 == 3],
            "report": [a for i, a in enumerate(papers) if i % 5 == 4]}
