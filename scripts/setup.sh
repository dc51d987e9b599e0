#!/usr/bin/env bash
# Creates .venv (once) and installs soundaq with the pinned CPU torch. Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null 2>&1 || PY=python3
if [ ! -x .venv/bin/python ]; then "$PY" -m venv .venv; fi
stamp=.venv/.soundaq-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ] || [ constraints.txt -nt "$stamp" ]; then
  .venv/bin/python -m pip install -q --upgrade pip
  # PYTHONWARNINGS: setuptools' notice about editable installs of mapped folders is not for our users
  PYTHONWARNINGS=ignore::UserWarning PIP_CONSTRAINT="$PWD/constraints.txt" \
    .venv/bin/python -m pip install -q -c constraints.txt -e ".[test]"
  touch "$stamp"
fi
