#!/usr/bin/env bash
# The main job on a fresh machine: set up (idempotent), build the offline Plant Seedlings competition
# into the data cache from ../shared (no credentials, no network), then `kagglekit run seedlings`.
# Extra arguments go to `kagglekit run` (e.g. --submit, --config FILE).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export KERAS_BACKEND=${KERAS_BACKEND:-tensorflow} TF_CPP_MIN_LOG_LEVEL=${TF_CPP_MIN_LOG_LEVEL:-2}
.venv/bin/kagglekit prepare seedlings --source "${SEEDLINGS_SOURCE:-../shared/data/plant-seedlings}"
exec .venv/bin/kagglekit run seedlings "$@"
