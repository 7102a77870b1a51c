#!/usr/bin/env bash
# The pipelines benchmark (bench/pipelines.py says what it measures): the
# MLP direct against a one-step pipeline around it, a chain of 4 and a
# fan-out of 4 identity steps. Writes bench/results/DATE-pipelines.md.
#
# usage: bench/pipelines.sh [--smoke] [--out FILE]
#   --smoke   CI: short runs, one round, the table in a temp dir; fails if any run failed
# environment: DURATION=5 WARMUP=1 ROUNDS=3 BERTH_BIN=build/bin/berth
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
OUT="bench/results/$(date +%F)-pipelines.md"
SMOKE=0
while (($#)); do
  case "$1" in
    --smoke) SMOKE=1 ;;
    --out) OUT=${2:?}; shift ;;
    *) echo "pipelines.sh: unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done
args=(--berth "${BERTH_BIN:-build/bin/berth}" --duration "${DURATION:-5}" --warmup "${WARMUP:-1}" --rounds "${ROUNDS:-3}")
if ((SMOKE)); then
  OUT=$(mktemp -d)/pipelines.md
  args=(--berth "${BERTH_BIN:-build/bin/berth}" --duration 0.5 --warmup 0.2 --rounds 1)
fi
exec /usr/bin/python3 bench/pipelines.py "${args[@]}" --out "$OUT"
