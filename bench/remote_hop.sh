#!/usr/bin/env bash
# The remote-hop benchmark (bench/remote_hop.py says what it measures):
# (A) a scorer called directly against the same call through a gateway's
# remote step (HTTP and gRPC), 1 KiB and 1 MiB tensors; (B) the
# examples/microservices setup (three `berth serve`) against the same in
# gunicorn + Flask + requests (bench/flask_gateway.py).
# Writes bench/results/DATE-remote-hop.md.
#
# usage: bench/remote_hop.sh [--smoke] [--out FILE] [-- EXTRA remote_hop.py ARGS]
#   --smoke   CI: short runs, one round, the table in a temp dir; fails if any run failed (< 60 s)
# environment: DURATION=8 WARMUP=1 ROUNDS=3 BERTH_BIN=build/bin/berth
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
OUT="bench/results/$(date +%F)-remote-hop.md"
SMOKE=0
EXTRA=()
while (($#)); do
  case "$1" in
    --smoke) SMOKE=1 ;;
    --out) OUT=${2:?}; shift ;;
    --) shift; EXTRA=("$@"); break ;;
    *) echo "remote_hop.sh: unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done
args=(--berth "${BERTH_BIN:-build/bin/berth}" --duration "${DURATION:-8}" --warmup "${WARMUP:-1}" --rounds "${ROUNDS:-3}")
if ((SMOKE)); then
  OUT=$(mktemp -d)/remote-hop.md
  args=(--berth "${BERTH_BIN:-build/bin/berth}" --duration 0.5 --warmup 0.2 --rounds 1)
fi
exec timeout -k 10 900 /usr/bin/python3 bench/remote_hop.py "${args[@]}" "${EXTRA[@]}" --out "$OUT"
