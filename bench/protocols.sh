#!/usr/bin/env bash
# The protocols benchmark (bench/protocols.py says what it measures): the MLP
# over v2 HTTP (JSON, binary), v2 gRPC, TF Serving REST, and HTTPS/gRPC over
# TLS, with berth bench and independent clients (wrk, Python grpcio), in one
# run. Writes bench/results/DATE-protocols.md.
#
# usage: bench/protocols.sh [--smoke] [--out FILE]
#   --smoke   CI: 1 s runs, one round, the table in a temp dir; fails if any run failed
# environment: DURATION=10 WARMUP=2 CONNECTIONS=16 ROUNDS=3 BERTH_BIN=build/bin/berth
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
OUT="bench/results/$(date +%F)-protocols.md"
SMOKE=0
while (($#)); do
  case "$1" in
    --smoke) SMOKE=1 ;;
    --out) OUT=${2:?}; shift ;;
    *) echo "protocols.sh: unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done
args=(--berth "${BERTH_BIN:-build/bin/berth}" --duration "${DURATION:-10}" --warmup "${WARMUP:-2}"
      --connections "${CONNECTIONS:-16}" --rounds "${ROUNDS:-3}")
if ((SMOKE)); then
  OUT=$(mktemp -d)/protocols.md
  args=(--berth "${BERTH_BIN:-build/bin/berth}" --duration 1 --warmup 0.5 --connections 4 --rounds 1)
fi
exec /usr/bin/python3 bench/protocols.py "${args[@]}" --out "$OUT"
