#!/usr/bin/env bash
# Old against new: two berth binaries (e.g. the commit before a change and the
# commit after, each built in its own tree) served side by side in one run,
# on the two serving benchmarks of bench/:
#   mlp          examples/models/mlp, one JSON row, wrk -c16 (bench/infer.lua)
#   transformer  bench/models/encoder_batched (dynamic batching), one binary
#                [1,32,128] row, wrk -c32 (bench/infer_binary.lua)
#   mlp_grpc     examples/models/mlp over KServe v2 gRPC, 16 streams, the NEW
#                binary's `berth bench --protocol grpc` as the client of both
# Rounds alternate old, new, old, new... so that drift of the machine hits
# both alike; the table gives every round, the medians and new/old ratios.
# Servers listen on 127.0.0.1 only and are stopped by their PIDs.
#
# usage: bench/compare_builds.sh OLD_BERTH NEW_BERTH [--out FILE] [--label-old L] [--label-new L]
# environment: DURATION=10 (s per round) WARMUP=3 ROUNDS=3 WRK_THREADS=2
#              BENCHES="mlp transformer" BERTH_EXTRA_ARGS="" (given to both servers)
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

OLD=${1:?usage: bench/compare_builds.sh OLD_BERTH NEW_BERTH [--out FILE]}
NEW=${2:?usage: bench/compare_builds.sh OLD_BERTH NEW_BERTH [--out FILE]}
shift 2
OUT="bench/results/$(date +%F)-compare-builds.md"
LABEL_OLD=old
LABEL_NEW=new
while (($#)); do
  case "$1" in
    --out) OUT=${2:?}; shift ;;
    --label-old) LABEL_OLD=${2:?}; shift ;;
    --label-new) LABEL_NEW=${2:?}; shift ;;
    *) echo "compare_builds.sh: unknown argument: $1" >&2; exit 2 ;;
  esac
  shift
done
DURATION=${DURATION:-10}
WARMUP=${WARMUP:-3}
ROUNDS=${ROUNDS:-3}
WRK_THREADS=${WRK_THREADS:-2}
BENCHES=${BENCHES:-"mlp transformer"}
PY=/usr/bin/python3
for b in "$OLD" "$NEW"; do [[ -x $b ]] || { echo "compare_builds.sh: $b is not an executable" >&2; exit 2; }; done
for t in wrk curl; do command -v "$t" >/dev/null || { echo "compare_builds.sh: missing $t" >&2; exit 2; }; done
if [[ " $BENCHES " == *" transformer "* && ! -f bench/models/encoder_batched/1/model.pt ]]; then
  echo "compare_builds.sh: no bench/models/encoder_batched (run $PY bench/make_transformer.py)" >&2
  exit 2
fi

WORK=$(mktemp -d /tmp/berth-compare.XXXXXX)
BENCH_NAME=compare_builds
# shellcheck source=bench/lib.sh
source bench/lib.sh
bench_start

"$PY" - "$WORK" <<'EOF'
import json, sys
import numpy as np
work = sys.argv[1]
row = [round((i - 7.5) / 8, 4) for i in range(16)]
with open(f"{work}/mlp.body", "w") as f:
    f.write(json.dumps({"inputs": [{"name": "x", "datatype": "FP32", "shape": [1, 16], "data": row}]},
                       separators=(",", ":")))
x = np.random.default_rng(0).standard_normal((1, 32, 128)).astype("<f4")
header = json.dumps({"inputs": [{"name": "x", "datatype": "FP32", "shape": [1, 32, 128],
                                 "parameters": {"binary_data_size": x.nbytes}}],
                     "outputs": [{"name": "logits", "parameters": {"binary_data": True}}]},
                    separators=(",", ":")).encode()
with open(f"{work}/transformer.body", "wb") as f:
    f.write(header + x.tobytes())
with open(f"{work}/transformer.hlen", "w") as f:
    f.write(str(len(header)))
EOF

# --grpc-port 0 for binaries that have gRPC (it would take port 8001), nothing for older ones.
grpc_off() { if timeout 10 "$1" serve --help 2>&1 | grep -q -- '--grpc-port'; then echo --grpc-port 0; fi; }

port() { "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# one_round BENCH BINARY LABEL ROUND: start BINARY, warm up, one measured wrk run, stop it.
one_round() {
  local bench=$1 bin=$2 label=$3 round=$4 p repo path conns lua pid out grpc
  p=$(port)
  grpc=$(grpc_off "$bin")
  if [[ $bench == mlp_grpc ]]; then
    repo=examples/models path=/v2/models/mlp/infer conns=16 lua=bench/infer.lua gp=$(port)
    grpc="--grpc-port $gp"
  elif [[ $bench == mlp ]]; then
    repo=examples/models path=/v2/models/mlp/infer conns=16 lua=bench/infer.lua
  else
    repo=bench/models path=/v2/models/encoder_batched/infer conns=32 lua=bench/infer_binary.lua
  fi
  # shellcheck disable=SC2086
  "$bin" serve --model-repository "$repo" --host 127.0.0.1 --http-port "$p" --metrics-port 0 $grpc --log-level warn \
    ${BERTH_EXTRA_ARGS:-} >"$WORK/$bench.$label.$round.log" 2>&1 &
  pid=$!
  PIDS+=("$pid")
  for _ in $(seq 1 450); do
    curl -sf -o /dev/null --max-time 1 "http://127.0.0.1:$p/v2/health/ready" && break
    sleep 0.2
  done
  export BENCH_BODY_FILE="$WORK/$bench.body"
  BENCH_HEADER_LENGTH=$(cat "$WORK/transformer.hlen")
  export BENCH_HEADER_LENGTH
  url="http://127.0.0.1:$p$path"
  out="$WORK/$bench.$label.$round.wrk"
  if [[ $bench == mlp_grpc ]]; then
    # berth bench's JSON report, as the BENCH_WRK line that the report below reads.
    record "$bench.$label.$round" "$NEW" bench --protocol grpc -m mlp -c "$conns" -d "$DURATION" --warmup "$WARMUP" \
      -f json "http://127.0.0.1:$gp"
    run_bounded $((WARMUP + DURATION + 30)) "$out.json" "$NEW" bench --protocol grpc -m mlp -c "$conns" \
      -d "$DURATION" --warmup "$WARMUP" -f json "http://127.0.0.1:$gp" || true
    "$PY" -c 'import json,sys; r=json.load(open(sys.argv[1]))[0]
print("BENCH_WRK requests=%(requests)d duration_us=%(us)d x status=%(errors)d timeout=%(timeouts)d lat_p50_us=%(p50_us)d "
      "lat_p90_us=%(p90_us)d lat_p99_us=%(p99_us)d" % dict(r, us=int(r["duration_s"] * 1e6)))' \
      "$out.json" >"$out" 2>&1 || echo "berth bench failed" >>"$out"
    stop_pid "$pid"
    log "$bench $label round $round: $(grep -o 'requests=[0-9]*' "$out" | head -1)"
    return
  fi
  record "$bench.$label.$round" wrk -t"$WRK_THREADS" -c"$conns" -d"${DURATION}s" --latency -s "$lua" "$url"
  run_bounded $((WARMUP + 30)) "$WORK/warm.txt" wrk -t"$WRK_THREADS" -c"$conns" -d"${WARMUP}s" -s "$lua" "$url" || true
  run_bounded $((DURATION + 30)) "$out" wrk -t"$WRK_THREADS" -c"$conns" -d"${DURATION}s" --latency -s "$lua" "$url" ||
    echo "wrk exit status $?" >>"$out"
  stop_pid "$pid"
  log "$bench $label round $round: $(grep -o 'requests=[0-9]*' "$out" | head -1)"
}

for bench in $BENCHES; do
  for ((r = 1; r <= ROUNDS; r++)); do
    one_round "$bench" "$OLD" old "$r"
    one_round "$bench" "$NEW" new "$r"
  done
done
snapshot_load end

"$PY" - "$WORK" "$OUT" "$LABEL_OLD" "$LABEL_NEW" "$OLD" "$NEW" "$DURATION" "$ROUNDS" "$BENCHES" <<'EOF'
import glob, os, re, statistics, subprocess, sys, datetime
work, out, lo, ln, old_bin, new_bin, duration, rounds, benches = sys.argv[1:10]
rows = {}
for path in glob.glob(f"{work}/*.wrk"):
    bench, label, rnd = os.path.basename(path)[:-4].split(".")
    text = open(path).read()
    m = re.search(r"BENCH_WRK requests=(\d+) duration_us=(\d+) .*?status=(\d+) timeout=(\d+) "
                  r"lat_p50_us=(\d+) lat_p90_us=(\d+) lat_p99_us=(\d+)", text)
    if not m:
        continue
    req, dur, st, to, p50, p90, p99 = map(int, m.groups())
    rows.setdefault(bench, {}).setdefault(label, []).append(
        (int(rnd), req / (dur / 1e6), p50, p99, st + to))
lines = [f"# berth old against new, {datetime.date.today()}", "",
         f"- old ({lo}): `{old_bin}`", f"- new ({ln}): `{new_bin}`",
         f"- {rounds} rounds per build, interleaved old/new; {duration} s of wrk per round after a warm-up; "
         f"one server start per round", f"- machine: {os.cpu_count()} CPUs, load {open(work + '/loadavg.start').read().strip()} "
         f"at start, {open(work + '/loadavg.end').read().strip()} at the end; wrk shares the CPUs with berth",
         f"- commands: `bench/compare_builds.sh` (exact wrk lines below)", ""]
for bench in benches.split():
    if bench not in rows:
        lines += [f"## {bench}", "", "no result (see the run's log)", ""]
        continue
    r = rows[bench]
    lines += [f"## {bench}", "", "| round | build | req/s | p50 ms | p99 ms | errors |", "|---:|---|---:|---:|---:|---:|"]
    for label in ("old", "new"):
        for rnd, rps, p50, p99, err in sorted(r.get(label, [])):
            lines.append(f"| {rnd} | {label} | {rps:,.0f} | {p50/1000:.2f} | {p99/1000:.2f} | {err} |")
    med = {label: (statistics.median(x[1] for x in r[label]), statistics.median(x[3] for x in r[label]))
           for label in ("old", "new") if r.get(label)}
    if len(med) == 2:
        lines += ["", f"median req/s: old {med['old'][0]:,.0f}, new {med['new'][0]:,.0f} "
                  f"(new/old **{med['new'][0]/med['old'][0]:.3f}**); median p99: old {med['old'][1]/1000:.2f} ms, "
                  f"new {med['new'][1]/1000:.2f} ms (new/old **{med['new'][1]/med['old'][1]:.3f}**)", ""]
lines += ["## commands", "", "```"] + [l.rstrip() for l in open(work + "/commands.txt")] + ["```", ""]
os.makedirs(os.path.dirname(out) or ".", exist_ok=True)
open(out, "w").write("\n".join(lines))
print("\n".join(lines))
EOF
