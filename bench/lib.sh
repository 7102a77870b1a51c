# Helpers shared by bench/serve_mlp.sh and bench/serve_transformer.sh (sourced,
# not run). The sourcing script sets BENCH_NAME (the log prefix) and, before
# calling anything, WORK (its temp dir); bench_start sets up the rest: the
# command and status files, the EXIT/signal traps and the load snapshot.
# Servers the script starts go into PIDS; cleanup stops them.
# shellcheck shell=bash

PIDS=()     # servers, stopped in cleanup
FG_PID=""   # the load generator or compute loop running now
RUN_BOUNDED_MERGE=${RUN_BOUNDED_MERGE:-0}   # 1: run_bounded keeps stderr in OUTFILE too

# run_bounded LIMIT OUTFILE CMD...: run CMD under timeout(1) in the background
# and wait for it, so that a signal to this script is handled at once.
# stderr goes to OUTFILE.err (to OUTFILE with RUN_BOUNDED_MERGE=1).
run_bounded() {
  local limit=$1 out=$2 rc=0 err
  shift 2
  err="$out.err"
  ((RUN_BOUNDED_MERGE)) && err="$out"
  if [[ $err == "$out" ]]; then
    timeout -k 5 "$limit" "$@" >"$out" 2>&1 &
  else
    timeout -k 5 "$limit" "$@" >"$out" 2>"$err" &
  fi
  FG_PID=$!
  wait "$FG_PID" || rc=$?
  FG_PID=""
  return "$rc"
}

log() { printf '[%s %(%T)T] %s\n' "$BENCH_NAME" -1 "$*" >&2; }
log_tail() { if [[ -f $1 ]]; then tail -n 20 "$1" | sed 's/^/    /' >&2; fi; }

# shellcheck disable=SC2317  # stop_pid and cleanup run from the EXIT trap
stop_pid() {  # stop_pid PID: TERM, wait up to 10 s, then KILL
  local pid=$1 i
  kill -0 "$pid" 2>/dev/null || return 0
  kill -TERM "$pid" 2>/dev/null || return 0
  for ((i = 0; i < 100; i++)); do
    kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; return 0; }
    sleep 0.1
  done
  log "pid $pid did not stop after SIGTERM; sending SIGKILL"
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}

# shellcheck disable=SC2317
cleanup() {
  local rc=$? pid
  trap - EXIT
  trap '' INT TERM HUP PIPE   # finish stopping the children whatever happens
  [[ -n $FG_PID ]] && stop_pid "$FG_PID"
  for pid in "${PIDS[@]}"; do stop_pid "$pid"; done
  if [[ ${KEEP_WORK:-0} == 1 ]]; then
    log "raw logs kept in $WORK"
  else
    rm -rf "$WORK"
  fi
  exit "$rc"
}

# Other work on the machine depresses every number (and not evenly): say so.
snapshot_load() {  # snapshot_load SUFFIX
  cut -d' ' -f1-3 /proc/loadavg >"$WORK/loadavg.$1"
  ps -eo pcpu=,args= --sort=-pcpu 2>/dev/null | awk '$1 >= 20 && $2 != "ps"' | head -n 5 | cut -c1-120 >"$WORK/busy.$1" || true
}

record() {  # record LABEL ARGV...: the exact command line, shell-quoted
  local label=$1; shift
  printf '%s\t%s\n' "$label" "$(printf '%q ' "$@" | sed 's/ $//')" >>"$COMMANDS"
}

set_status() { printf '%s\t%s\t%s\n' "$1" "$2" "$3" >>"$STATUS"; }
status_of() { awk -F'\t' -v n="$1" '$1 == n { s = $2 } END { print s }' "$STATUS"; }
reason_of() { awk -F'\t' -v n="$1" '$1 == n { s = $3 } END { print s }' "$STATUS"; }

# run_json NAME LIMIT WHAT CMD...: logs WHAT, records and runs CMD (bounded),
# keeps its last line of output as $WORK/NAME.json, and sets NAME's status.
run_json() {
  local name=$1 limit=$2 what=$3
  shift 3
  record "$name" "$@"
  log "$what"
  if run_bounded "$limit" "$WORK/$name.out" "$@" && tail -n 1 "$WORK/$name.out" >"$WORK/$name.json"; then
    set_status "$name" ok ""
  else
    set_status "$name" failed "$what failed: $(tail -q -n 3 "$WORK/$name.out" "$WORK/$name.out.err" 2>/dev/null | tr '\n' ' ')"
  fi
}

# bench_start: after WORK is made.
bench_start() {
  COMMANDS="$WORK/commands.txt"
  : >"$COMMANDS"
  STATUS="$WORK/status.txt"   # NAME<TAB>ok|failed<TAB>reason
  : >"$STATUS"
  trap cleanup EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
  trap 'exit 129' HUP
  trap 'exit 141' PIPE
  snapshot_load start
  if awk -v l="$(cut -d' ' -f1 /proc/loadavg)" -v n="$(nproc)" 'BEGIN { exit !(l > n / 4) }'; then
    log "warning: load average $(cat "$WORK/loadavg.start") on $(nproc) CPUs before the run; the machine is not idle"
  fi
}
