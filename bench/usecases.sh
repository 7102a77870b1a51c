#!/usr/bin/env bash
# The use-case benchmark (bench/usecases.py says what it measures): the spam
# and fashion pipelines end to end against gunicorn + Flask doing the same
# steps in Python, and each model alone in-process. Writes
# bench/results/DATE-usecases.md.
#
# usage: bench/usecases.sh [--smoke] [--out FILE] [--old-berth BERTH]  (another build, side by side)
#   --smoke   CI: short runs, one round, the table in a temp dir; fails if any run failed
# environment: DURATION=10 WARMUP=2 ROUNDS=3 BERTH_BIN=build/bin/berth
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
OUT="bench/results/$(date +%F)-usecases.md"
SMOKE=0
OLD=()
while (($#)); do
  case "$1" in
    --smoke) SMOKE=1 ;;
    --out) OUT=${2:?}; shift ;;
    --old-berth) OLD=(--old-berth "${2:?}"); shift ;;
    *) echo "usecases.sh: unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done
args=(--berth "${BERTH_BIN:-build/bin/berth}" --duration "${DURATION:-10}" --warmup "${WARMUP:-2}" --rounds "${ROUNDS:-3}")
if ((SMOKE)); then
  OUT=$(mktemp -d)/usecases.md
  args=(--berth "${BERTH_BIN:-build/bin/berth}" --duration 1 --warmup 1 --rounds 1 --files 20)
fi
exec /usr/bin/python3 bench/usecases.py "${args[@]}" "${OLD[@]}" --out "$OUT"
