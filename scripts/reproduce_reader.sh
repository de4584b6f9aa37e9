#!/bin/sh
# Rebuilds qa/reader_model/ as shipped, leg by leg (resumable: run it again after a stop): a warm
# start from the 17-article reader of commit 7a9f39f; leg 1 (~50 minutes on 2 cores) and leg 2
# (~60 minutes) of scripts/train_reader.py's LEGS, each calibrated on TUNE and reported on REPORT.
#     sh scripts/reproduce_reader.sh [WORK_FOLDER] [OUT_FOLDER]
set -e
work=${1:-.reader-train}
out=${2:-qa/reader_model}
python=${PYTHON:-.venv/bin/python}
mkdir -p "$work/v1"
git show 7a9f39f:qa/reader_model/model.safetensors > "$work/v1/model.safetensors"
test -f "$work/leg1/calibration.json" ||
  "$python" scripts/train_reader.py --leg 1 --more --init "$work/v1" --out "$work/leg1" --work "$work/train1"
"$python" scripts/train_reader.py --leg 2 --more --init "$work/leg1" --out "$out" --work "$work/train2"
