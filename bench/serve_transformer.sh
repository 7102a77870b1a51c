#!/usr/bin/env bash
# Side-by-side serving benchmark of a TorchScript 2-layer transformer encoder
# (bench/models, written by bench/make_transformer.py), binary tensors:
#
#   1. encoder          berth, dynamic batching off (each request runs alone)
#   2. encoder_batched  berth, dynamic batching on (max_queue_delay_us 2000,
#                       preferred batch sizes 8, 16, 32)
#   3. compute ceiling  the model called in-process in a loop at batch sizes
#                       1, 8, 16, 32: LibTorch from C++ (build/bin/berth_torch_ceiling,
#                       1 thread), and the same loop from Python for reference
#
# One berth process serves both models (127.0.0.1, free ports, metrics on a
# free loopback port so that the batch sizes berth formed can be read back).
# For each model: `berth bench --binary` at CONNECTIONS (32) connections, one
# wrk run (throughput) and one hey run (latency percentiles) with the same
# binary body as an independent check, then a concurrency sweep (berth bench
# --format csv; levels interleaved between the two models). The servers are
# stopped before the compute ceiling runs. Writes
#   bench/results/YYYY-MM-DD-serve-transformer.md          (the tables)
#   bench/results/YYYY-MM-DD-serve-transformer-sweep.png   (p99 vs throughput)
#
# usage: bench/serve_transformer.sh [--smoke] [--out FILE]
#   --smoke      CI smoke: DURATION=1, sweep 1 8 32, writes to a temp dir (not
#                bench/results); exits non-zero if any contender failed or saw errors.
#   --out FILE   write the table to FILE (the plot goes beside it, -sweep.png).
# environment:
#   DURATION=10           seconds per measurement point (1 with --smoke)
#   WARMUP=2              seconds of load before each point (1 with --smoke)
#   CONNECTIONS=32        connections of the headline point (berth bench, wrk, hey)
#   SWEEP="1 2 4 8 16 32 64"   concurrency levels ("1 8 32" with --smoke)
#   CEILING_BATCHES="1 8 16 32"
#   WRK_THREADS=2
#   BERTH_BIN=build/bin/berth  MODEL_REPO=bench/models  CEILING_BIN=build/bin/berth_torch_ceiling
#   BERTH_EXTRA_ARGS=""   extra arguments for berth serve (recorded)
#   KEEP_WORK=1           keep the temp dir with all raw logs
# exit status: 0 when every contender ran without errors; 1 when one failed or
# saw errors (the table is still written, flagged as not a result); 2 on bad
# usage or missing tools.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

SMOKE=0
OUT=""
while (($#)); do
  case "$1" in
    --smoke) SMOKE=1 ;;
    --out) OUT=${2:?--out needs a file}; shift ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "serve_transformer.sh: unknown argument: $1" >&2; exit 2 ;;
  esac
  shift
done

if ((SMOKE)); then
  DURATION=${DURATION:-1}; WARMUP=${WARMUP:-1}; SWEEP=${SWEEP:-"1 8 32"}
else
  DURATION=${DURATION:-10}; WARMUP=${WARMUP:-2}; SWEEP=${SWEEP:-"1 2 4 8 16 32 64"}
fi
CONNECTIONS=${CONNECTIONS:-32}
CEILING_BATCHES=${CEILING_BATCHES:-"1 8 16 32"}
WRK_THREADS=${WRK_THREADS:-2}
BERTH_BIN=${BERTH_BIN:-build/bin/berth}
CEILING_BIN=${CEILING_BIN:-build/bin/berth_torch_ceiling}
MODEL_REPO=${MODEL_REPO:-bench/models}
BERTH_EXTRA_ARGS=${BERTH_EXTRA_ARGS:-}
MODELS=(encoder encoder_batched)
MODEL_PT="$MODEL_REPO/encoder/1/model.pt"
PY=/usr/bin/python3
export PYTHONDONTWRITEBYTECODE=1   # no __pycache__ in bench/

for v in DURATION WARMUP CONNECTIONS WRK_THREADS; do
  [[ ${!v} =~ ^[1-9][0-9]*$ ]] || { echo "serve_transformer.sh: $v must be a positive integer, got '${!v}'" >&2; exit 2; }
done
for n in $SWEEP $CEILING_BATCHES; do
  [[ $n =~ ^[1-9][0-9]*$ ]] || { echo "serve_transformer.sh: SWEEP and CEILING_BATCHES take positive integers, got '$n'" >&2; exit 2; }
done
missing=()
for t in wrk hey curl timeout "$PY" "$CEILING_BIN"; do
  command -v "$t" >/dev/null 2>&1 || missing+=("$t")
done
"$PY" -c 'import torch, numpy, matplotlib' 2>/dev/null || missing+=("python3-torch/python3-numpy/python3-matplotlib for $PY")
if ((${#missing[@]})); then
  echo "serve_transformer.sh: missing: ${missing[*]} (BERTH_BENCH_DEPS=1 scripts/install-deps.sh installs them)" >&2
  exit 2
fi
for m in "${MODELS[@]}"; do
  [[ -f $MODEL_REPO/$m/model.yaml && -f $MODEL_REPO/$m/1/model.pt ]] ||
    { echo "serve_transformer.sh: no model at $MODEL_REPO/$m (run $PY bench/make_transformer.py)" >&2; exit 2; }
done

DATE=$(date +%F)
if [[ -z $OUT ]]; then
  if ((SMOKE)); then
    OUT=$(mktemp -d /tmp/berth-bench-smoke.XXXXXX)/$DATE-serve-transformer.md
  else
    OUT="bench/results/$DATE-serve-transformer.md"
  fi
fi
mkdir -p "$(dirname "$OUT")"
PLOT="${OUT%.md}-sweep.png"

WORK=$(mktemp -d /tmp/berth-bench.XXXXXX)
BENCH_NAME=serve_transformer
# shellcheck source=bench/lib.sh
source bench/lib.sh   # run_bounded, log, stop_pid, cleanup, record, set_status, run_json
bench_start

# Two distinct free loopback ports: HTTP and metrics.
read -r P_BERTH P_METRICS < <("$PY" - <<'EOF'
import socket
socks = [socket.socket() for _ in range(2)]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(*[s.getsockname()[1] for s in socks])
EOF
)

# One request of batch 1 ([1, 32, 128] FP32, seeded) in the binary tensor
# extension, the body wrk and hey send; the expected logits from torch eager.
BODY="$WORK/body.bin"
HEADER_LENGTH=$("$PY" - "$BODY" "$MODEL_PT" "$WORK/expected.json" <<'EOF'
import json, sys
import numpy as np
import torch
body, model_pt, expected = sys.argv[1:4]
x = np.random.default_rng(0).standard_normal((1, 32, 128)).astype("<f4")
header = json.dumps({
    "inputs": [{"name": "x", "datatype": "FP32", "shape": [1, 32, 128],
                "parameters": {"binary_data_size": x.nbytes}}],
    "outputs": [{"name": "logits", "parameters": {"binary_data": True}}],
}, separators=(",", ":")).encode()
with open(body, "wb") as f:
    f.write(header + x.tobytes())
torch.set_num_threads(1)
with torch.inference_mode():
    y = torch.jit.load(model_pt).eval()(torch.from_numpy(x))
with open(expected, "w") as f:
    json.dump({"logits": y.reshape(-1).tolist(), "body_bytes": len(header) + x.nbytes,
               "header": header.decode()}, f)
print(len(header))
EOF
)
export BENCH_BODY_FILE="$BODY" BENCH_HEADER_LENGTH="$HEADER_LENGTH"



# check_infer MODEL: one binary request; 200, binary logits matching torch eager.
check_infer() {
  local m=$1 out="$WORK/$1.response.bin" hdr="$WORK/$1.response.headers" code
  code=$(curl -sS -o "$out" -D "$hdr" -w '%{http_code}' --max-time 10 \
    -H 'Content-Type: application/octet-stream' -H "Inference-Header-Content-Length: $HEADER_LENGTH" \
    --data-binary "@$BODY" "http://127.0.0.1:$P_BERTH/v2/models/$m/infer" 2>>"$WORK/$m.curl.err" || true)
  if [[ $code != 200 ]]; then
    set_status "$m" failed "check request answered HTTP ${code:-nothing}: $(head -c 300 "$out" 2>/dev/null)"
    return 1
  fi
  local why
  if ! why=$("$PY" - "$out" "$hdr" "$WORK/expected.json" "$WORK/$m.response.json" 2>&1 <<'EOF'
import json, re, struct, sys
body = open(sys.argv[1], "rb").read()
m = re.search(r"(?im)^inference-header-content-length:\s*(\d+)", open(sys.argv[2], errors="replace").read())
assert m, "no Inference-Header-Content-Length in the answer"
n = int(m.group(1))
header = json.loads(body[:n])
o = header["outputs"][0]
assert o["name"] == "logits" and o["datatype"] == "FP32" and o["shape"] == [1, 2], o
got = list(struct.unpack("<2f", body[n:n + 8]))
want = json.load(open(sys.argv[3]))["logits"]
diff = max(abs(a - b) for a, b in zip(got, want))
assert diff < 1e-4, f"logits {got} differ from torch eager {want} by {diff}"
json.dump({"header": header, "logits": got, "max_abs_diff": diff, "bytes": len(body)}, open(sys.argv[4], "w"))
EOF
  ); then
    set_status "$m" failed "check request answered 200 but: $(tail -n 1 <<<"$why")"
    return 1
  fi
  set_status "$m" ok ""
}

scrape() {  # scrape FILE: berth's Prometheus metrics (empty file if unreachable)
  curl -sS --max-time 5 "http://127.0.0.1:$P_METRICS/metrics" >"$1" 2>/dev/null || : >"$1"
}

# ---------------------------------------------------------------- 1. berth
BERTH_CMD=("$BERTH_BIN" serve --model-repository "$MODEL_REPO" --host 127.0.0.1
           --http-port "$P_BERTH" --metrics-port "$P_METRICS" --grpc-port 0 --log-level info)
# shellcheck disable=SC2206
[[ -n $BERTH_EXTRA_ARGS ]] && BERTH_CMD+=($BERTH_EXTRA_ARGS)
BERTH_PID=""
if [[ ! -x $BERTH_BIN ]]; then
  for m in "${MODELS[@]}"; do set_status "$m" failed "$BERTH_BIN does not exist or is not executable (build berth first)"; done
else
  log "starting berth on 127.0.0.1:$P_BERTH (metrics 127.0.0.1:$P_METRICS)"
  record berth "${BERTH_CMD[@]}"
  "${BERTH_CMD[@]}" >"$WORK/berth.log" 2>&1 &
  PIDS+=($!)
  BERTH_PID=$!
  deadline=$((SECONDS + 90))
  ready=0
  while ((SECONDS < deadline)); do
    kill -0 "$BERTH_PID" 2>/dev/null || break
    if curl -sf -o /dev/null --max-time 2 "http://127.0.0.1:$P_BERTH/v2/health/ready"; then ready=1; break; fi
    sleep 0.2
  done
  curl -sS --max-time 5 -X POST "http://127.0.0.1:$P_BERTH/v2/repository/index" >"$WORK/index.json" 2>/dev/null || true
  for m in "${MODELS[@]}"; do
    if ! kill -0 "$BERTH_PID" 2>/dev/null; then
      set_status "$m" failed "berth exited before it was ready (see its log)"
    elif ! curl -sf -o /dev/null --max-time 2 "http://127.0.0.1:$P_BERTH/v2/models/$m/ready"; then
      set_status "$m" failed "model not ready within 90 s (server ready: $ready): $(head -c 300 "$WORK/index.json")"
    else
      check_infer "$m" || true
    fi
    [[ $(status_of "$m") == ok ]] || log "$m failed: $(reason_of "$m")"
  done
  [[ $(status_of encoder) == ok && $(status_of encoder_batched) == ok ]] || log_tail "$WORK/berth.log"
fi

# ---------------------------------------------------------------- 2. load
LIMIT=$((DURATION + WARMUP + 60))   # hard bound on each load generator run
URL="http://127.0.0.1:$P_BERTH"
alive() { [[ -n $BERTH_PID ]] && kill -0 "$BERTH_PID" 2>/dev/null; }

# bench_point LABEL MODEL CONNECTIONS FORMAT: one berth bench run between two
# metrics scrapes; exit status recorded in LABEL.rc.
bench_point() {
  local label=$1 m=$2 c=$3 fmt=$4 rc=0
  local cmd=("$BERTH_BIN" bench "$URL" -m "$m" -c "$c" -d "$DURATION" --warmup "$WARMUP" --binary --format "$fmt")
  record "$label" "${cmd[@]}"
  scrape "$WORK/$label.metrics.before"
  run_bounded "$LIMIT" "$WORK/$label.$fmt" "${cmd[@]}" || rc=$?
  scrape "$WORK/$label.metrics.after"
  echo "$rc" >"$WORK/$label.rc"
  ((rc == 0)) || log "$label: berth bench exit status $rc: $(tail -n 2 "$WORK/$label.$fmt.err" 2>/dev/null)"
}

for m in "${MODELS[@]}"; do
  [[ $(status_of "$m") == ok ]] || continue
  alive || break
  log "$m: berth bench --binary -c $CONNECTIONS, ${WARMUP}s warm-up + ${DURATION}s"
  bench_point "$m.head" "$m" "$CONNECTIONS" json
  url="$URL/v2/models/$m/infer"
  wrk_cmd=(wrk -t"$WRK_THREADS" -c"$CONNECTIONS" -d"${DURATION}s" --latency -s bench/infer_binary.lua "$url")
  record "$m.wrk" "BENCH_BODY_FILE=body.bin" "BENCH_HEADER_LENGTH=$HEADER_LENGTH" "${wrk_cmd[@]}"
  log "$m: wrk ${DURATION}s"
  scrape "$WORK/$m.wrk.metrics.before"
  run_bounded "$LIMIT" "$WORK/$m.wrk.txt" "${wrk_cmd[@]}" || echo "wrk exit status $?" >>"$WORK/$m.wrk.txt"
  scrape "$WORK/$m.wrk.metrics.after"
  hey_cmd=(hey -z "${DURATION}s" -c "$CONNECTIONS" -m POST -T application/octet-stream
           -H "Inference-Header-Content-Length: $HEADER_LENGTH" -D "$BODY" "$url")
  record "$m.hey" "${hey_cmd[@]/#$BODY/body.bin}"
  log "$m: hey ${DURATION}s"
  scrape "$WORK/$m.hey.metrics.before"
  run_bounded "$LIMIT" "$WORK/$m.hey.txt" "${hey_cmd[@]}" || echo "hey exit status $?" >>"$WORK/$m.hey.txt"
  scrape "$WORK/$m.hey.metrics.after"
done

# Sweep, levels interleaved between the models so that drift in the
# machine's load hits both alike. One berth bench per level (its
# --concurrency-range is arithmetic, and the metrics are scraped per level).
for c in $SWEEP; do
  for m in "${MODELS[@]}"; do
    [[ $(status_of "$m") == ok ]] || continue
    alive || break 2
    log "$m: sweep -c $c"
    bench_point "$m.sweep.$c" "$m" "$c" csv
  done
done
snapshot_load end

if [[ -n $BERTH_PID ]]; then
  if ! alive; then
    log "berth exited during the load"; log_tail "$WORK/berth.log"
    for m in "${MODELS[@]}"; do
      [[ $(status_of "$m") == ok ]] && set_status "$m" failed "berth exited during the benchmark (see its log)"
    done
  fi
  scrape "$WORK/final.metrics"
  stop_pid "$BERTH_PID"   # the compute ceiling runs on a quiet server
  cp "$WORK/berth.log" "$WORK/berth.log.final" 2>/dev/null || true
fi

# ---------------------------------------------------------------- 3. compute ceiling
# The ceiling: LibTorch called from C++ in a loop (build/bin/berth_torch_ceiling), 1 intra-op thread and
# OPENBLAS_NUM_THREADS=1 as berth runs the model. The same loop from Python follows, for reference.
# shellcheck disable=SC2086  # CEILING_BATCHES is a list of integers, checked above
run_json compute $((5 * DURATION + 60)) "compute ceiling (in-process LibTorch from C++, 1 thread): ${DURATION}s per batch size" \
  env OPENBLAS_NUM_THREADS=1 "$CEILING_BIN" "$MODEL_PT" "$DURATION" 1 32x128 $CEILING_BATCHES
# shellcheck disable=SC2086
run_json compute_python $((5 * DURATION + 60)) "the same from Python (torch.jit, 1 thread): ${DURATION}s per batch size" \
  "$PY" bench/compute_ceiling_transformer.py "$MODEL_PT" "$DURATION" $CEILING_BATCHES

# ---------------------------------------------------------------- 4. report
BERTH_VERSION="(not run)"
if [[ -x $BERTH_BIN ]]; then
  BERTH_VERSION=$(timeout 10 "$BERTH_BIN" --version 2>&1 | head -n 3 || true)
fi
rc=0
"$PY" bench/serve_transformer_report.py \
  --work "$WORK" --out "$OUT" --plot "$PLOT" --smoke "$SMOKE" --duration "$DURATION" --warmup "$WARMUP" \
  --connections "$CONNECTIONS" --sweep "$SWEEP" --berth-version "$BERTH_VERSION" \
  --berth-bin "$BERTH_BIN" --model-repo "$MODEL_REPO" || rc=$?
log "table written to $OUT, plot to $PLOT"
if ((SMOKE)); then cat "$OUT"; fi
exit "$rc"
