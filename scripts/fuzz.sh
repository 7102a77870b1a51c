#!/usr/bin/env bash
# Builds the libFuzzer targets of tests/fuzz (clang 14, ASan + UBSan) and runs
# each for FUZZ_SECONDS (default 30) from its committed seed corpus
# (tests/fuzz/corpus/TARGET; new inputs go to a scratch copy, never into the
# repository). A crash, leak, timeout or sanitizer report fails the run and
# leaves the input in the scratch directory, named in the output.
#
# usage: scripts/fuzz.sh [TARGET ...]   (default: every target)
# environment: FUZZ_SECONDS=30 FUZZ_BUILD=build-fuzz FUZZ_WORK=/tmp/berth-fuzz FUZZ_JOBS=1
#              FUZZ_RUNS=N (instead of a time: exactly N executions per target, for long offline runs)
#              FUZZ_ARGS='...' (more libFuzzer flags, e.g. '-fork=2 -entropic=0 -max_len=16384' for a long run
#              on 2 cores: one run, its executions counted over both workers)
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_EACH=${FUZZ_SECONDS:-30}
BUILD=${FUZZ_BUILD:-build-fuzz}
WORK=${FUZZ_WORK:-/tmp/berth-fuzz}
command -v clang++ >/dev/null || { echo "fuzz.sh: clang++ missing (apt-get install clang libclang-rt-14-dev)" >&2; exit 2; }
generator=()
command -v ninja >/dev/null && generator=(-G Ninja)
if [[ ! -f $BUILD/CMakeCache.txt ]]; then
  CC=clang CXX=clang++ cmake -S . -B "$BUILD" "${generator[@]}" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DBERTH_FUZZ=ON \
    -DBERTH_WITH_TORCH=OFF -DBERTH_WITH_ONNX=OFF -DBERTH_BUILD_TESTS=OFF -DBERTH_WITH_JEMALLOC=OFF >/dev/null
fi
cmake --build "$BUILD" -j "$(nproc)" --target berth_fuzzers
targets=("$@")
if ((${#targets[@]} == 0)); then
  for f in tests/fuzz/*_fuzzer.cc; do
    t=$(basename "$f" .cc)
    [[ -x $BUILD/bin/$t ]] && targets+=("$t")
  done
fi
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:allocator_may_return_null=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
failed=()
for t in "${targets[@]}"; do
  corpus="$WORK/$t/corpus"
  mkdir -p "$corpus" "$WORK/$t/artifacts"
  budget=(-max_total_time="$SECONDS_EACH")
  [[ -n ${FUZZ_RUNS:-} ]] && budget=(-runs="$FUZZ_RUNS")
  # -jobs (even -jobs=1) makes libFuzzer write fuzz-N.log into the current directory.
  ((${FUZZ_JOBS:-1} > 1)) && budget+=(-jobs="$FUZZ_JOBS" -workers="$FUZZ_JOBS")
  echo "== $t (${FUZZ_RUNS:-${SECONDS_EACH}s})"
  if ! "$BUILD/bin/$t" "${budget[@]}" -timeout=20 -rss_limit_mb=4096 -max_len=1048576 -print_final_stats=1 \
      -artifact_prefix="$WORK/$t/artifacts/" ${FUZZ_ARGS:-} "$corpus" "tests/fuzz/corpus/$t" \
      >"$WORK/$t/log" 2>&1; then
    failed+=("$t")
    tail -n 40 "$WORK/$t/log" >&2
    echo "fuzz.sh: $t FAILED; the input is in $WORK/$t/artifacts/" >&2
  else
    # (-fork=N runs print no final stats, only how many executions they made.)
    grep -E "stat::number_of_executed_units|stat::peak_rss_mb|^INFO: fuzzed for" "$WORK/$t/log" | tr '\n' ' ' || true
    echo
  fi
done
((${#failed[@]} == 0)) || { echo "fuzz.sh: failures: ${failed[*]}" >&2; exit 1; }
echo "fuzz.sh: ${#targets[@]} targets, no crash"
