#!/usr/bin/env bash
# The README's main command: set up, then run the leaderboard of all eight models on the embedded
# synthetic set (generated into the cache on first use) and print its table and figure path.
# Extra arguments go to `soundaq leaderboard` (e.g. --models AD_CNN,SoundAQnet or --out results/other).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
out=results/embedded
for arg in "$@"; do [ "$arg" = "--out" ] && out=""; done
exec .venv/bin/soundaq leaderboard --data embedded ${out:+--out "$out"} "$@"
