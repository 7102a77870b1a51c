#!/usr/bin/env bash
# Where berth's CPU goes while serving the MLP (examples/models/mlp, v2 JSON,
# wrk at CONNECTIONS connections): CPU time per thread from /proc (user and
# system), per request, and, when `perf` is installed, a perf profile of the
# server grouped into kernel, allocator, asio/Beast, JSON and model.
# Not a benchmark (see serve_mlp.sh for those): an account of the time.
#
# usage: bench/profile_serve.sh [BERTH_ARGS...]   (e.g. --inline-max-us 0)
# environment: DURATION=8 CONNECTIONS=16 BERTH_BIN=build/bin/berth
# Prints a Markdown summary on stdout.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
DURATION=${DURATION:-8}
CONNECTIONS=${CONNECTIONS:-16}
BERTH_BIN=${BERTH_BIN:-build/bin/berth}
for t in wrk curl "$BERTH_BIN"; do
  command -v "$t" >/dev/null || { echo "profile_serve.sh: missing $t" >&2; exit 2; }
done
WORK=$(mktemp -d /tmp/berth-profile.XXXXXX)
PID=""
cleanup() {
  if [[ -n $PID ]]; then kill "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT

PORT=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$BERTH_BIN" serve --model-repository examples/models --host 127.0.0.1 --http-port "$PORT" --metrics-port 0 --grpc-port 0 \
  --log-level warn "$@" >"$WORK/berth.log" 2>&1 &
PID=$!
for _ in $(seq 150); do curl -sf "http://127.0.0.1:$PORT/v2/health/ready" >/dev/null && break; sleep 0.2; done
curl -sf "http://127.0.0.1:$PORT/v2/health/ready" >/dev/null || { echo "berth did not become ready" >&2; cat "$WORK/berth.log" >&2; exit 1; }
/usr/bin/python3 -c 'import json; print(json.dumps({"inputs":[{"name":"x","datatype":"FP32","shape":[1,16],"data":[0.1*i for i in range(16)]}]}))' >"$WORK/body.json"
URL="http://127.0.0.1:$PORT/v2/models/mlp/infer"
export BENCH_BODY_FILE="$WORK/body.json"
wrk -t"$((CONNECTIONS < 2 ? 1 : 2))" -c"$CONNECTIONS" -d2s -s bench/infer.lua "$URL" >/dev/null   # warm-up

threads() {  # "tid comm utime stime" per thread, in clock ticks
  for t in /proc/"$PID"/task/*; do
    echo "${t##*/} $(cat "$t/comm") $(awk '{print $14, $15}' "$t/stat")"
  done
}
threads >"$WORK/before"
wrk -t"$((CONNECTIONS < 2 ? 1 : 2))" -c"$CONNECTIONS" -d"${DURATION}s" -s bench/infer.lua "$URL" >"$WORK/wrk.out" &
WRK=$!
HAVE_PERF=0
if command -v perf >/dev/null && perf record -F 1999 -g -p "$PID" -o "$WORK/perf.data" -- sleep $((DURATION - 2)) \
     >/dev/null 2>&1; then
  HAVE_PERF=1
fi
wait "$WRK"
threads >"$WORK/after"
REQUESTS=$(grep -o 'requests=[0-9]*' "$WORK/wrk.out" | cut -d= -f2)

echo "## berth serving the MLP: $CONNECTIONS connections, ${DURATION} s, $REQUESTS requests ($((REQUESTS / DURATION)) req/s), berth args: ${*:-(none)}"
echo
/usr/bin/python3 - "$WORK/before" "$WORK/after" "$REQUESTS" "$DURATION" <<'EOF'
import os, sys
hz = os.sysconf("SC_CLK_TCK")
def load(p):
    return {l.split()[0]: l.split() for l in open(p)}
a, b = load(sys.argv[1]), load(sys.argv[2])
n, secs = int(sys.argv[3]), float(sys.argv[4])
print("| thread | user s | system s | cores | µs CPU per request |")
print("|---|---:|---:|---:|---:|")
tot_u = tot_s = 0.0
for tid, row in b.items():
    if tid not in a:
        continue
    u = (int(row[2]) - int(a[tid][2])) / hz
    s = (int(row[3]) - int(a[tid][3])) / hz
    if u + s < 0.05:
        continue
    tot_u += u; tot_s += s
    print(f"| {row[1]} ({tid}) | {u:.2f} | {s:.2f} | {(u + s) / secs:.2f} | {(u + s) / n * 1e6:.1f} |")
print(f"| **all** | {tot_u:.2f} | {tot_s:.2f} | {(tot_u + tot_s) / secs:.2f} | **{(tot_u + tot_s) / n * 1e6:.1f}** |")
EOF
echo
if ((HAVE_PERF)); then
  perf report -i "$WORK/perf.data" --no-children --sort dso,sym --stdio -g none 2>/dev/null |
    /usr/bin/python3 -c '
import re, sys
groups = {"kernel (syscalls, scheduler, TCP)": 0.0, "allocator (malloc/free)": 0.0, "LibTorch + BLAS (the model)": 0.0,
          "asio / Beast (HTTP, event loop)": 0.0, "simdjson + JSON writing": 0.0, "shared_ptr / std::function": 0.0,
          "locks and wake-ups (pthread)": 0.0, "other": 0.0}
for line in sys.stdin:
    m = re.match(r"\s+([\d.]+)%\s+(\S+)\s+\[(.)\]\s+(.*)", line)
    if not m: continue
    pct, dso, kind, sym = float(m.group(1)), m.group(2), m.group(3), m.group(4)
    if kind == "k": g = "kernel (syscalls, scheduler, TCP)"
    elif re.search(r"malloc|free|_int_|operator new|operator delete|unlink_chunk|memalign", sym): g = "allocator (malloc/free)"
    elif re.search(r"torch|c10|at::|sgemm|openblas|blas", dso + sym, re.I): g = "LibTorch + BLAS (the model)"
    elif re.search(r"boost|asio|beast", sym): g = "asio / Beast (HTTP, event loop)"
    elif re.search(r"simdjson|JsonWriter|to_chars|Decode|Encode", sym): g = "simdjson + JSON writing"
    elif re.search(r"_Sp_counted|_Function_handler|shared_ptr", sym): g = "shared_ptr / std::function"
    elif re.search(r"pthread|futex|lll_", sym): g = "locks and wake-ups (pthread)"
    else: g = "other"
    groups[g] += pct
print("perf samples of the berth process, grouped:")
print()
print("| where | share of samples |")
print("|---|---:|")
for g, v in sorted(groups.items(), key=lambda x: -x[1]):
    print(f"| {g} | {v:.1f} % |")
'
else
  echo "(perf not installed or not permitted: no profile)"
fi
