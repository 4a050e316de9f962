#!/usr/bin/env bash
# The prepared GPU benchmark (one H200-class GPU, about 15 minutes of device time in all):
#   1. fine-tuning throughput of EfficientNet-Lite0 at 224 px, mixed precision vs float32 in the same
#      run, and whether kagglekit's input pipeline keeps the GPU fed (bench/gpu_throughput.py);
#   2. the `gpu` preset's Plant Seedlings CV (bench/train.py --preset gpu), with its epoch budget
#      trimmed so the whole script fits the device time.
# On the GPU machine (no network: its python3 must have keras + tensorflow; carry converted weights in
# $KAGGLEKIT_WEIGHTS_DIR):   bash bench/gpu.sh
# Here, on the CPU, the same code paths at tiny sizes:   bash bench/gpu.sh --tiny
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] && [ -z "${PYTHON:-}" ] && PY=.venv/bin/python
export KERAS_BACKEND=${KERAS_BACKEND:-tensorflow} TF_CPP_MIN_LOG_LEVEL=${TF_CPP_MIN_LOG_LEVEL:-2}
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
TINY=""; [ "${1:-}" = "--tiny" ] && TINY="--tiny"
timeout 300 "$PY" bench/gpu_throughput.py $TINY
CONFIG=$(mktemp --suffix=.yaml)
if [ -n "$TINY" ]; then
  printf 'image_size: 64\nfolds: 2\nfinetune: {epochs: 2, head_epochs: 1, top_epochs: 0, batch_size: 8, scored_folds: 2}\n' > "$CONFIG"
  timeout 900 "$PY" bench/train.py --preset gpu --config "$CONFIG" --per-class 6
else
  # 5 scored folds x 6 epochs at 320 px: sized to the ~8 minutes left after step 1
  printf 'finetune: {epochs: 6, head_epochs: 1, top_epochs: 1}\n' > "$CONFIG"
  timeout 540 "$PY" bench/train.py --preset gpu --config "$CONFIG"
fi
