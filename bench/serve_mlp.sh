#!/usr/bin/env bash
# Side-by-side serving benchmark of the TorchScript MLP (examples/models/mlp):
#
#   1. berth          build/bin/berth serve (the thing under test)
#   2. Flask          gunicorn + Flask, 2 workers, same model, path and JSON
#   3. FastAPI        uvicorn + FastAPI, as many workers as gunicorn, same model code
#   4. nginx          the exact berth response body as a static file (HTTP ceiling)
#   5. compute        the model called in-process in a loop (compute ceiling): LibTorch from
#                     C++ (build/bin/berth_torch_ceiling), and from Python for reference
#
# All servers listen on 127.0.0.1 only, on free ports, and are stopped by the
# PIDs this script started (trap on EXIT). Each server is warmed up, then
# measured with wrk (throughput, errors; Lua script bench/infer.lua) and hey
# (latency percentiles). With SWEEP=1, a concurrency sweep follows: one wrk run
# per level and contender, levels interleaved. Writes
#   bench/results/YYYY-MM-DD-serve-mlp.md          (the tables)
#   bench/results/YYYY-MM-DD-serve-mlp-sweep.png   (p99 vs throughput; SWEEP=1 only)
#
# usage: bench/serve_mlp.sh [--smoke] [--out FILE]
#   --smoke      CI smoke: writes the table to a temp dir (not bench/results),
#                no sweep unless SWEEP=1, and exits non-zero if any contender
#                failed to start or run. Use with DURATION=1.
#   --out FILE   write the table to FILE instead (the plot goes beside it, -sweep.png).
# environment:
#   DURATION=10        seconds per measurement (wrk run, hey run, sweep point, compute loop)
#   WARMUP=2           seconds of wrk warm-up per server (1 with --smoke)
#   CONNECTIONS=16     connections (wrk -c, hey -c)
#   WRK_THREADS=2      wrk -t (sweep: min(level, WRK_THREADS))
#   SWEEP=1            run the concurrency sweep (0 by default with --smoke)
#   SWEEP_LEVELS="1 2 4 8 16 32 64"   SWEEP_CONTENDERS="berth flask fastapi"
#   GUNICORN_WORKERS=2 GUNICORN_WORKER_CLASS=sync GUNICORN_THREADS=1
#   UVICORN_WORKERS=$GUNICORN_WORKERS
#   FASTAPI_NODELAY=1  TCP_NODELAY work-around for uvicorn --workers (bench/fastapi_app.py); 0: stock
#   NGINX_WORKERS=2
#   BERTH_BIN=build/bin/berth  MODEL_REPO=examples/models  CEILING_BIN=build/bin/berth_torch_ceiling
#   BERTH_EXTRA_ARGS=""        extra arguments for berth serve (recorded)
#   KEEP_WORK=1                keep the temp dir with all raw logs
#   BENCH_SKIP_BERTH=1         development only: run without berth (nginx then
#                              serves Flask's body); the table says it is not a result.
# exit status: 0 when every contender ran without errors; 1 when a contender
# failed or saw errors (the table is still written, flagged as not a result);
# 2 on bad usage or missing tools.
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
    *) echo "serve_mlp.sh: unknown argument: $1" >&2; exit 2 ;;
  esac
  shift
done

DURATION=${DURATION:-10}
if ((SMOKE)); then WARMUP=${WARMUP:-1}; else WARMUP=${WARMUP:-2}; fi
CONNECTIONS=${CONNECTIONS:-16}
WRK_THREADS=${WRK_THREADS:-2}
GUNICORN_WORKERS=${GUNICORN_WORKERS:-2}
GUNICORN_WORKER_CLASS=${GUNICORN_WORKER_CLASS:-sync}
GUNICORN_THREADS=${GUNICORN_THREADS:-1}
UVICORN_WORKERS=${UVICORN_WORKERS:-$GUNICORN_WORKERS}
FASTAPI_NODELAY=${FASTAPI_NODELAY:-1}
if ((SMOKE)); then SWEEP=${SWEEP:-0}; else SWEEP=${SWEEP:-1}; fi
SWEEP_LEVELS=${SWEEP_LEVELS:-"1 2 4 8 16 32 64"}
SWEEP_CONTENDERS=${SWEEP_CONTENDERS:-"berth flask fastapi"}
NGINX_WORKERS=${NGINX_WORKERS:-2}
BERTH_BIN=${BERTH_BIN:-build/bin/berth}
CEILING_BIN=${CEILING_BIN:-build/bin/berth_torch_ceiling}
MODEL_REPO=${MODEL_REPO:-examples/models}
BERTH_EXTRA_ARGS=${BERTH_EXTRA_ARGS:-}
SKIP_BERTH=${BENCH_SKIP_BERTH:-0}
MODEL=mlp
MODEL_PT="$MODEL_REPO/$MODEL/1/model.pt"
INFER_PATH="/v2/models/$MODEL/infer"
PY=/usr/bin/python3
export PYTHONDONTWRITEBYTECODE=1   # no __pycache__ in bench/
NGINX=$(command -v nginx || echo /usr/sbin/nginx)

for v in DURATION WARMUP CONNECTIONS WRK_THREADS GUNICORN_WORKERS GUNICORN_THREADS UVICORN_WORKERS NGINX_WORKERS; do
  [[ ${!v} =~ ^[1-9][0-9]*$ ]] || { echo "serve_mlp.sh: $v must be a positive integer, got '${!v}'" >&2; exit 2; }
done
for v in SWEEP FASTAPI_NODELAY; do
  [[ ${!v} == [01] ]] || { echo "serve_mlp.sh: $v must be 0 or 1, got '${!v}'" >&2; exit 2; }
done
for n in $SWEEP_LEVELS; do
  [[ $n =~ ^[1-9][0-9]*$ ]] || { echo "serve_mlp.sh: SWEEP_LEVELS takes positive integers, got '$n'" >&2; exit 2; }
done
for n in $SWEEP_CONTENDERS; do
  [[ $n =~ ^(berth|flask|fastapi|nginx)$ ]] || { echo "serve_mlp.sh: SWEEP_CONTENDERS takes berth flask fastapi nginx, got '$n'" >&2; exit 2; }
done
missing=()
for t in wrk hey curl timeout "$PY" "$NGINX" "$CEILING_BIN"; do
  command -v "$t" >/dev/null 2>&1 || missing+=("$t")
done
"$PY" -c 'import torch, flask, gunicorn, fastapi, uvicorn' 2>/dev/null ||
  missing+=("python3-torch/python3-flask/gunicorn/python3-fastapi/python3-uvicorn for $PY")
if ((SWEEP)) && ! "$PY" -c "import matplotlib" 2>/dev/null; then missing+=("python3-matplotlib for $PY (SWEEP=1)"); fi
if ((${#missing[@]})); then
  echo "serve_mlp.sh: missing: ${missing[*]} (BERTH_BENCH_DEPS=1 scripts/install-deps.sh installs them)" >&2
  exit 2
fi
[[ -f $MODEL_PT ]] || { echo "serve_mlp.sh: no model at $MODEL_PT" >&2; exit 2; }
MODEL_PT_ABS=$(realpath "$MODEL_PT")

DATE=$(date +%F)
if [[ -z $OUT ]]; then
  if ((SMOKE)); then
    OUT=$(mktemp -d /tmp/berth-bench-smoke.XXXXXX)/$DATE-serve-mlp.md
  else
    OUT="bench/results/$DATE-serve-mlp.md"
  fi
fi
mkdir -p "$(dirname "$OUT")"
PLOT="${OUT%.md}-sweep.png"

WORK=$(mktemp -d /tmp/berth-bench.XXXXXX)
chmod 755 "$WORK"   # nginx workers may run as nobody and read www/ below
BENCH_NAME=serve_mlp
RUN_BOUNDED_MERGE=1   # wrk and hey output parsed with their error lines
# shellcheck source=bench/lib.sh
source bench/lib.sh   # run_bounded, log, stop_pid, cleanup, record, set_status, run_json
bench_start

# Four distinct free loopback ports (or BERTH_PORT / FLASK_PORT / FASTAPI_PORT / NGINX_PORT).
read -r FREE1 FREE2 FREE3 FREE4 < <("$PY" - <<'EOF'
import socket
socks = [socket.socket() for _ in range(4)]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(*[s.getsockname()[1] for s in socks])
EOF
)
declare -A PORT=([berth]=${BERTH_PORT:-$FREE1} [flask]=${FLASK_PORT:-$FREE2}
                 [fastapi]=${FASTAPI_PORT:-$FREE3} [nginx]=${NGINX_PORT:-$FREE4})
declare -A SPID=()   # NAME -> server PID

# One 16-float row, the same request for every contender.
BODY="$WORK/body.json"
"$PY" - "$BODY" <<'EOF'
import json, sys
row = [round((i - 7.5) / 8, 4) for i in range(16)]
body = {"inputs": [{"name": "x", "datatype": "FP32", "shape": [1, 16], "data": row}]}
with open(sys.argv[1], "w") as f:
    f.write(json.dumps(body, separators=(",", ":")))
EOF
export BENCH_BODY_FILE="$BODY"


# wait_until_ok NAME PID URL: poll (bounded, 90 s) until URL answers 200.
wait_until_ok() {
  local name=$1 pid=$2 url=$3 deadline=$((SECONDS + 90)) code
  while ((SECONDS < deadline)); do
    if ! kill -0 "$pid" 2>/dev/null; then
      set_status "$name" failed "process exited before it was ready (see its log)"
      return 1
    fi
    code=$(curl -sS -o /dev/null -w '%{http_code}' --max-time 2 "$url" 2>/dev/null || true)
    [[ $code == 200 ]] && return 0
    sleep 0.2
  done
  set_status "$name" failed "not ready within 90 s"
  return 1
}

# check_infer NAME PORT: one request; the answer must be 200 with probs [1,4].
check_infer() {
  local name=$1 port=$2 out="$WORK/$1.response.json" code
  code=$(curl -sS -o "$out" -w '%{http_code}' --max-time 10 -H 'Content-Type: application/json' \
    --data-binary "@$BODY" "http://127.0.0.1:$port$INFER_PATH" 2>>"$WORK/$name.curl.err" || true)
  if [[ $code != 200 ]]; then
    set_status "$name" failed "check request answered HTTP ${code:-nothing}: $(head -c 300 "$out" 2>/dev/null)"
    return 1
  fi
  if ! "$PY" - "$out" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))
o = {t["name"]: t for t in r["outputs"]}["probs"]
assert o["datatype"] == "FP32" and list(o["shape"]) == [1, 4] and len(o["data"]) == 4, o
EOF
  then
    set_status "$name" failed "check request answered 200 but not a probs FP32 [1,4] tensor: $(head -c 300 "$out")"
    return 1
  fi
  set_status "$name" ok ""
}


# start_server NAME READY_PATH CMD...: start CMD in the background (log in
# NAME.log), wait until READY_PATH answers 200 on PORT[NAME], then check_infer.
start_server() {
  local name=$1 ready=$2
  shift 2
  log "starting $name on 127.0.0.1:${PORT[$name]}"
  record "$name" "$@"
  "$@" >"$WORK/$name.log" 2>&1 &
  PIDS+=($!)
  SPID[$name]=$!
  if wait_until_ok "$name" "$!" "http://127.0.0.1:${PORT[$name]}$ready"; then
    check_infer "$name" "${PORT[$name]}" || true
  fi
  [[ $(status_of "$name") == ok ]] || { log "$name failed: $(reason_of "$name")"; log_tail "$WORK/$name.log"; }
}

# ---------------------------------------------------------------- 1. berth
BERTH_CMD=("$BERTH_BIN" serve --model-repository "$MODEL_REPO" --host 127.0.0.1
           --http-port "${PORT[berth]}" --log-level warn)
# Newer berth also opens a Prometheus port (default 8002, maybe not on loopback,
# maybe taken): turn it off where the binary has the option.
if [[ -x $BERTH_BIN ]] && timeout 10 "$BERTH_BIN" serve --help 2>&1 | grep -q -- '--metrics-port'; then
  BERTH_CMD+=(--metrics-port 0)
fi
if [[ -x $BERTH_BIN ]] && timeout 10 "$BERTH_BIN" serve --help 2>&1 | grep -q -- '--grpc-port'; then
  BERTH_CMD+=(--grpc-port 0)  # gRPC is measured by bench/serve_grpc.sh
fi
# shellcheck disable=SC2206
[[ -n $BERTH_EXTRA_ARGS ]] && BERTH_CMD+=($BERTH_EXTRA_ARGS)
if ((SKIP_BERTH)); then
  set_status berth failed "skipped (BENCH_SKIP_BERTH=1)"
elif [[ ! -x $BERTH_BIN ]]; then
  set_status berth failed "$BERTH_BIN does not exist or is not executable (build berth first)"
else
  start_server berth "/v2/models/$MODEL/ready" "${BERTH_CMD[@]}"
fi

# ---------------------------------------------------------------- 2. gunicorn + Flask, 3. uvicorn + FastAPI
# Both load the model through bench/mlp_model.py in each worker (no preload).
PY_ENV=(env "BENCH_MODEL_PATH=$MODEL_PT_ABS" "BENCH_MODEL_NAME=$MODEL")
start_server flask /v2/health/ready "${PY_ENV[@]}" "$PY" -m gunicorn --workers "$GUNICORN_WORKERS" \
  --worker-class "$GUNICORN_WORKER_CLASS" --threads "$GUNICORN_THREADS" --bind "127.0.0.1:${PORT[flask]}" \
  --backlog 2048 --log-level warning --pythonpath "$ROOT/bench" flask_app:app
start_server fastapi /v2/health/ready "${PY_ENV[@]}" "BENCH_TCP_NODELAY=$FASTAPI_NODELAY" "$PY" -m uvicorn \
  --workers "$UVICORN_WORKERS" --host 127.0.0.1 --port "${PORT[fastapi]}" --backlog 2048 \
  --log-level warning --no-access-log --app-dir "$ROOT/bench" fastapi_app:app

# ---------------------------------------------------------------- 4. nginx
NGX="$WORK/nginx"
mkdir -p "$NGX/www$(dirname "$INFER_PATH")"
STATIC_FROM=berth
if [[ $(status_of berth) == ok ]]; then
  cp "$WORK/berth.response.json" "$NGX/www$INFER_PATH"
elif ((SKIP_BERTH)) && [[ $(status_of flask) == ok ]]; then
  STATIC_FROM=flask
  cp "$WORK/flask.response.json" "$NGX/www$INFER_PATH"
fi
if [[ -f $NGX/www$INFER_PATH ]]; then
  chmod -R a+rX "$NGX"
  sed -e "s|@PREFIX@|$NGX|g" -e "s|@PORT@|${PORT[nginx]}|g" -e "s|@PATH@|$INFER_PATH|g" \
      -e "s|@WORKERS@|$NGINX_WORKERS|g" bench/nginx.conf.in >"$NGX/nginx.conf"
  start_server nginx /v2/health/ready "$NGINX" -p "$NGX/" -c "$NGX/nginx.conf" -e "$NGX/error.log" -g 'daemon off;'
  [[ $(status_of nginx) == ok ]] || log_tail "$NGX/error.log"
else
  set_status nginx failed "no berth response body to serve (berth did not answer)"
fi

# ---------------------------------------------------------------- load
LIMIT=$((DURATION + WARMUP + 60))   # hard bound on each load generator run
for name in berth flask fastapi nginx; do
  [[ $(status_of "$name") == ok ]] || continue
  url="http://127.0.0.1:${PORT[$name]}$INFER_PATH"
  log "$name: warm-up ${WARMUP}s"
  run_bounded "$LIMIT" "$WORK/$name.warmup.txt" \
    wrk -t"$WRK_THREADS" -c"$CONNECTIONS" -d"${WARMUP}s" -s bench/infer.lua "$url" || true
  wrk_cmd=(wrk -t"$WRK_THREADS" -c"$CONNECTIONS" -d"${DURATION}s" --latency -s bench/infer.lua "$url")
  record "$name.wrk" "BENCH_BODY_FILE=body.json" "${wrk_cmd[@]}"
  log "$name: wrk ${DURATION}s"
  run_bounded "$LIMIT" "$WORK/$name.wrk.txt" "${wrk_cmd[@]}" || echo "wrk exit status $?" >>"$WORK/$name.wrk.txt"
  hey_cmd=(hey -z "${DURATION}s" -c "$CONNECTIONS" -m POST -T application/json -D "$BODY" "$url")
  record "$name.hey" "${hey_cmd[@]/#$BODY/body.json}"
  log "$name: hey ${DURATION}s"
  run_bounded "$LIMIT" "$WORK/$name.hey.txt" "${hey_cmd[@]}" || echo "hey exit status $?" >>"$WORK/$name.hey.txt"
  kill -0 "${SPID[$name]}" 2>/dev/null || { log "$name exited during the load"; log_tail "$WORK/$name.log"; }
done

# Concurrency sweep: one wrk run per level and contender, levels interleaved
# so that drift in the machine's load hits every contender alike. The servers
# are warm from the runs above.
SWEPT=""
if ((SWEEP)); then
  SWEPT=$SWEEP_LEVELS
  for name in $SWEEP_CONTENDERS; do
    record "$name.sweep (N in $SWEEP_LEVELS, T = min(N, $WRK_THREADS))" "BENCH_BODY_FILE=body.json" \
      wrk -tT -cN -d"${DURATION}s" --latency -s bench/infer.lua "http://127.0.0.1:${PORT[$name]}$INFER_PATH"
  done
  for c in $SWEEP_LEVELS; do
    for name in $SWEEP_CONTENDERS; do
      [[ $(status_of "$name") == ok ]] || continue
      kill -0 "${SPID[$name]}" 2>/dev/null || continue
      log "$name: sweep -c $c, ${DURATION}s"
      out="$WORK/$name.sweep.$c.wrk.txt"
      run_bounded "$LIMIT" "$out" wrk -t$((c < WRK_THREADS ? c : WRK_THREADS)) -c"$c" -d"${DURATION}s" \
        --latency -s bench/infer.lua "http://127.0.0.1:${PORT[$name]}$INFER_PATH" || echo "wrk exit status $?" >>"$out"
    done
  done
fi
snapshot_load end

# A server that died under load is a failure even if the tools reported something.
for name in "${!SPID[@]}"; do
  if [[ $(status_of "$name") == ok ]] && ! kill -0 "${SPID[$name]}" 2>/dev/null; then
    set_status "$name" failed "process exited during the benchmark (see its log)"
  fi
done

# ---------------------------------------------------------------- compute ceiling
run_json compute $((2 * DURATION + 60)) "compute ceiling (Python in-process): ${DURATION}s per batch size" \
  "$PY" bench/compute_ceiling.py "$MODEL_PT_ABS" "$BODY" "$DURATION" 1 64
run_json compute_cpp $((2 * DURATION + 60)) "compute ceiling (LibTorch from C++): ${DURATION}s per batch size" \
  env OPENBLAS_NUM_THREADS=1 "$CEILING_BIN" "$MODEL_PT" "$DURATION" 1 16 1 64

# ---------------------------------------------------------------- table
BERTH_VERSION="(not run)"
if [[ -x $BERTH_BIN ]]; then
  BERTH_VERSION=$(timeout 10 "$BERTH_BIN" --version 2>&1 | head -n 3 || true)
fi
rc=0
"$PY" bench/serve_mlp_report.py \
  --work "$WORK" --out "$OUT" --plot "$PLOT" --smoke "$SMOKE" --duration "$DURATION" --warmup "$WARMUP" \
  --connections "$CONNECTIONS" --sweep "$SWEPT" --sweep-contenders "$SWEEP_CONTENDERS" \
  --berth-version "$BERTH_VERSION" --static-from "$STATIC_FROM" \
  --flask-config "gunicorn ${GUNICORN_WORKERS} workers, ${GUNICORN_WORKER_CLASS} worker class, ${GUNICORN_THREADS} thread(s) each" \
  --fastapi-config "uvicorn ${UVICORN_WORKERS} workers, TCP_NODELAY work-around $( ((FASTAPI_NODELAY)) && echo on || echo off)" \
  --model "$MODEL_PT" || rc=$?
log "table written to $OUT${SWEPT:+, plot to $PLOT}"
if ((SMOKE)); then cat "$OUT"; fi
exit "$rc"
