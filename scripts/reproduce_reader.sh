#!/bin/sh
# Rebuilds qa/reader_model/ as shipped (~55 minutes on 2 cores, resumable): a warm start from the
# 17-article reader of commit 7a9f39f, one pass over questions drawn from the whole SQuAD 2.0 train
# set (+ more_qa), then the calibration on TUNE and the report on REPORT.
#     sh scripts/reproduce_reader.sh [WORK_FOLDER] [OUT_FOLDER]
set -e
work=${1:-.reader-train}
out=${2:-qa/reader_model}
python=${PYTHON:-.venv/bin/python}
mkdir -p "$work/v1"
git show 7a9f39f:qa/reader_model/model.safetensors > "$work/v1/model.safetensors"
"$python" scripts/train_reader.py --more --init "$work/v1" --out "$out" --work "$work/train"
