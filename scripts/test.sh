#!/usr/bin/env bash
# Set up (idempotent) and run the whole test suite, slow end-to-end tests included.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export KERAS_BACKEND=${KERAS_BACKEND:-tensorflow} TF_CPP_MIN_LOG_LEVEL=2
# Two workers: serially the suite keeps one core busy and leaves the other idle. The tests that read one of the
# session's trained runs, or one file's module fixtures, stay on one worker (their xdist_group, tests/conftest.py);
# the groups that train a run are handed out first (collection order, not reordered by size). -n 0: serially.
exec .venv/bin/python -m pytest -n 2 --dist loadgroup --no-loadscope-reorder "$@"
