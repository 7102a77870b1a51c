#!/usr/bin/env bash
# Installs everything (Debian 12, apt), builds berth (release with every
# backend; address+undefined sanitizers with the identity backend; thread
# sanitizer for the concurrent parts; clang + libFuzzer for the fuzz targets),
# and runs every test: unit tests (CTest), end-to-end tests (pytest against
# the real binary), each fuzz target for a bounded time on its corpus, smoke
# runs of the benchmark and soak scripts, and the clang-format check.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=/usr/bin/python3

echo "== install"
BERTH_BENCH_DEPS=1 scripts/install-deps.sh

echo "== format check"
files=$(git ls-files '*.cc' '*.h' 2>/dev/null || find include src backends tools -name '*.cc' -o -name '*.h')
clang-format --dry-run --Werror $files

echo "== release build"
scripts/build.sh build
echo "== unit tests"
ctest --test-dir build --output-on-failure -j 2
echo "== end-to-end tests"
BERTH_BIN=build/bin/berth $PY -m pytest tests/e2e -q -p no:cacheprovider

echo "== sanitizer build (address,undefined)"
scripts/build.sh build-asan -DBERTH_SANITIZE=address,undefined \
  -DBERTH_WITH_TORCH=OFF -DBERTH_WITH_XGBOOST=OFF -DBERTH_WITH_ONNX=OFF -DBERTH_WITH_IMAGE=OFF
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
echo "== unit tests (sanitizers)"
ctest --test-dir build-asan --output-on-failure -j 2
echo "== protocol end-to-end tests (sanitizers, identity backend)"
BERTH_BIN=build-asan/bin/berth $PY -m pytest tests/e2e -q -p no:cacheprovider -m "not torch and not xgboost and not onnx and not image_backend and not sentencepiece and not container and not rss"
unset ASAN_OPTIONS UBSAN_OPTIONS

echo "== thread sanitizer: scheduler, repository, server, HTTP server and client"
scripts/build.sh build-tsan -DBERTH_SANITIZE=thread -DBERTH_WITH_TORCH=OFF -DBERTH_WITH_XGBOOST=OFF \
  -DBERTH_WITH_ONNX=OFF --target berth_concurrency_tests
TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1 build-tsan/bin/berth_concurrency_tests

echo "== fuzz targets (clang libFuzzer, ASan+UBSan; ${FUZZ_SECONDS:-20} s each on the committed corpora)"
FUZZ_SECONDS=${FUZZ_SECONDS:-20} scripts/fuzz.sh

echo "== benchmark smoke (scripts must work; no timing is asserted)"
DURATION=1 bash bench/serve_mlp.sh --smoke
bash bench/serve_transformer.sh --smoke
bash bench/batch.sh --smoke
bash bench/soak.sh --smoke
bash bench/protocols.sh --smoke
bash bench/pipelines.sh --smoke
bash bench/remote_hop.sh --smoke
bash bench/usecases.sh --smoke
echo "== all tests passed"
