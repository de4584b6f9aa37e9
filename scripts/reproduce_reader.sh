#!/bin/sh
# Rebuilds qa/reader_model/ as shipped (resumable: run it again after a stop): a warm start from the
# 17-article reader of commit 7a9f39f, then the kept legs of scripts/train_reader.py's LEGS in turn
# (today leg 1 only, ~50 minutes on 2 cores; legs 2 to 7 were not kept: lower on tune, see the
# model card), each ending with the calibration on TUNE and the report on REPORT (~5 minutes); then
# the verdict branch for yes/no questions beside the span reader (~10 minutes), its threshold chosen
# on tune and scored on report (~8 minutes); then the calibration for the e5 embedder with
# 256-token chunks, the option for long technical papers (~6 minutes).
#     sh scripts/reproduce_reader.sh [WORK_FOLDER] [OUT_FOLDER]
set -e
work=${1:-.reader-train}
out=${2:-qa/reader_model}
python=${PYTHON:-.venv/bin/python}
mkdir -p "$work/v1"
git show 7a9f39f:qa/reader_model/model.safetensors > "$work/v1/model.safetensors"
"$python" scripts/train_reader.py --leg 1 --more --init "$work/v1" --out "$out" --work "$work/train1"
"$python" scripts/train_reader.py --verdict --init "$out" --out "$out" --work "$work/verdict"
"$python" scripts/calibrate_verdict.py --model "$out" --work "$work/yesno" --report
QA_EMBED_MODEL=e5 QA_CHUNK_TOKENS=256 QA_CHUNK_OVERLAP_TOKENS=64 \
  "$python" scripts/calibrate_reader.py --embedder --model "$out" --work "$work/calibrate"
# The MPNet campaign's checkpoint, qa/reader_mpnet/ (not the product's reader yet; needs `make mpnet`):
# leg 8, stopped at step 1179 of 1567 (~100 minutes on 2 cores), then its calibration and report (~20 minutes);
# then leg 9 from it (its whole plan, ~80 minutes alone on 2 cores, then ~20 minutes of calibration and report);
# then leg 10 from leg 9, stopped at step 772 of 1176 (100 minutes beside other work), calibration and report.
#     .venv/bin/python scripts/train_reader.py --leg 8 --more --until-step 1179 --out "$work/leg8" --work "$work/train8"
#     .venv/bin/python scripts/train_reader.py --leg 9 --more --init "$work/leg8" --out "$work/leg9" --work "$work/train9"
#     .venv/bin/python scripts/train_reader.py --leg 10 --more --until-step 772 --init "$work/leg9" --out qa/reader_mpnet --work "$work/train10"
