#!/bin/sh
# Rebuilds qa/reader_model/ as shipped (~90 minutes on 2 cores, each pass resumable): the 17-article
# reader of commit 7a9f39f, then two warm-started passes over the whole SQuAD 2.0 train set (+ more_qa)
# with different question draws; each pass ends with the calibration on TUNE and the report on REPORT.
#     sh scripts/reproduce_reader.sh [WORK_FOLDER] [OUT_FOLDER]
set -e
work=${1:-.reader-train}
out=${2:-qa/reader_model}
python=${PYTHON:-.venv/bin/python}
mkdir -p "$work/v1"
git show 7a9f39f:qa/reader_model/model.safetensors > "$work/v1/model.safetensors"
"$python" scripts/train_reader.py --more --init "$work/v1" --out "$work/pass1" --work "$work/work1"
"$python" scripts/train_reader.py --more --init "$work/pass1" --seed 14 --positives 36000 --unanswerable 17000 \
    --near-misses 13000 --swaps 5000 --out "$out" --work "$work/work2"
