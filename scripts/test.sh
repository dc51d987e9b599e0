#!/usr/bin/env bash
# The README's test command: set up, run the whole (fast) suite, then the habits CI enforces
# (ruff and mypy, configured in pyproject.toml). Arguments go to pytest; with arguments (a file,
# -k ...) only those tests run and the lint step is skipped.
set -uo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh || exit $?
.venv/bin/python -m pytest -m "not slow" --durations=10 "$@"
rc=$?
if [ "$#" -eq 0 ]; then
  echo "lint: ruff check . && python scripts/typecheck.py (mypy)"
  .venv/bin/python -m ruff check . && .venv/bin/python scripts/typecheck.py
  lint=$?
  if [ "$lint" -ne 0 ]; then echo "lint failed (exit $lint): fix the findings above"; { [ "$rc" -eq 0 ] || [ "$rc" -eq 5 ]; } && rc=1; fi
fi
exit "$rc"
