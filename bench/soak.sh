#!/usr/bin/env bash
# A bounded soak of berth serve: mixed traffic (infer JSON and binary,
# metadata, bad requests, model reloads, stalled clients; bench/soak.py says
# exactly what) for DURATION seconds after WARMUP, with RSS, descriptors and
# threads sampled every 5 s. Passes when there was no unexpected answer, RSS
# grew less than 5% after the warm-up, and descriptors and threads stayed
# flat (within 8 of where they started). Writes bench/results/DATE-soak.md.
#
# usage: bench/soak.sh [--smoke] [--out FILE]
# environment: DURATION=600 WARMUP=30 BERTH_BIN=build/bin/berth MLP=examples/models/mlp ("" = identity only)
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
OUT="bench/results/$(date +%F)-soak.md"
SMOKE=0
while (($#)); do
  case "$1" in
    --smoke) SMOKE=1 ;;
    --out) OUT=${2:?}; shift ;;
    *) echo "soak.sh: unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done
DURATION=${DURATION:-600}
WARMUP=${WARMUP:-30}
BERTH_BIN=${BERTH_BIN:-build/bin/berth}
MLP=${MLP-examples/models/mlp}
if ((SMOKE)); then
  DURATION=${DURATION_SMOKE:-5}
  WARMUP=2
  OUT=$(mktemp -d /tmp/berth-soak-smoke.XXXXXX)/soak.md
fi
[[ -n $MLP && ! -f $MLP/1/model.pt ]] && MLP=""
WORK=$(mktemp -d /tmp/berth-soak.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
echo "soak: ${DURATION}s after ${WARMUP}s of warm-up, $BERTH_BIN${MLP:+, with $MLP}" >&2
timeout -k 10 $((DURATION + WARMUP + 180)) /usr/bin/python3 bench/soak.py --berth "$BERTH_BIN" --work "$WORK" \
  --duration "$DURATION" --warmup "$WARMUP" ${MLP:+--mlp "$MLP"} >"$WORK/summary.out" 2>"$WORK/soak.err" || true
tail -n 1 "$WORK/summary.out" >"$WORK/summary.json" || true
/usr/bin/python3 - "$WORK/summary.json" "$OUT" "$DURATION" "$WARMUP" "$BERTH_BIN" "$SMOKE" <<'EOF'
import datetime, json, os, sys
path, out, duration, warmup, berth, smoke = sys.argv[1:7]
try:
    s = json.load(open(path))
except Exception as e:
    print(f"soak: no summary ({e})", file=sys.stderr)
    sys.exit(1)
if "error" in s:
    print("soak: " + s["error"], file=sys.stderr)
    sys.exit(1)
unexpected = sum(s["unexpected"].values())
ok = sum(s["ok"].values())
checks = {
    "no unexpected answer": unexpected == 0,
    "alive to the end, clean exit": s["alive_at_end"] and s["exit_status"] == 0,
    "RSS growth < 5% after warm-up": s["rss_growth"] < 0.05,
    "descriptors flat (±8)": abs(s["fds"][1] - s["fds"][0]) <= 8,
    "threads flat (±8)": abs(s["threads"][1] - s["threads"][0]) <= 8,
}
lines = [f"# berth soak, {datetime.date.today()}", "",
         f"`bench/soak.sh` (DURATION={duration} WARMUP={warmup}, `{berth}`), {os.cpu_count()} CPUs; "
         f"traffic and checks as `bench/soak.py` describes.", "",
         "| check | result |", "|---|---|"]
lines += [f"| {k} | {'pass' if v else '**FAIL**'} |" for k, v in checks.items()]
lines += ["", f"- answers as expected: {ok:,} ({', '.join(f'{k} {v:,}' for k, v in sorted(s['ok'].items()))})",
          f"- unexpected: {unexpected} {s['unexpected'] or ''}",
          f"- RSS after warm-up {s['rss_start'] / 2**20:.1f} MiB, at the end {s['rss_end'] / 2**20:.1f} MiB "
          f"(growth {100 * s['rss_growth']:+.2f}%), max {s['rss_max'] / 2**20:.1f} MiB",
          f"- descriptors start/end/max {s['fds']}, threads start/end/max {s['threads']}"]
if s["unexpected_examples"]:
    lines += ["", "examples:", ""] + [f"    {e}" for e in s["unexpected_examples"]]
lines += ["", "samples (s, RSS bytes, fds, threads):", "", "```"] + [" ".join(map(str, x)) for x in s["samples"]] + ["```", ""]
os.makedirs(os.path.dirname(out) or ".", exist_ok=True)
open(out, "w").write("\n".join(lines))
print("\n".join(lines[:12]))
failed = [k for k, v in checks.items() if not v]
if smoke == "1":
    failed = [k for k in failed if k in ("no unexpected answer", "alive to the end, clean exit")]
sys.exit(1 if failed else 0)
EOF
