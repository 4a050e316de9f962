#!/usr/bin/env bash
# Set up (idempotent) and run the whole test suite, slow end-to-end tests included.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export KERAS_BACKEND=${KERAS_BACKEND:-tensorflow} TF_CPP_MIN_LOG_LEVEL=2
# Two workers: the suite waits on child processes and servers most of the time, so one core sits idle
# (88% of one CPU busy on average, serially). Tests that share a trained run or the Kaggle service's port
# stay on one worker (xdist_group, set in tests/conftest.py).
exec .venv/bin/python -m pytest -n 2 --dist loadgroup "$@"
