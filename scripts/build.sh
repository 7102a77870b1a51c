#!/usr/bin/env bash
# Configures and builds berth.
# Usage: scripts/build.sh [BUILD_DIR] [extra cmake args...] [--target NAME]
#   --target NAME builds only NAME (and what it needs) instead of everything.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:-build}
shift || true
cmake_args=()
target=()
while (($#)); do
  if [[ $1 == --target ]]; then
    target=(--target "${2:?--target needs a name}")
    shift 2
  else
    cmake_args+=("$1")
    shift
  fi
done
generator=()
command -v ninja >/dev/null && generator=(-G Ninja)
if [[ ! -f "$dir/CMakeCache.txt" ]]; then
  cmake -S . -B "$dir" "${generator[@]}" -DCMAKE_BUILD_TYPE=RelWithDebInfo "${cmake_args[@]}"
else
  cmake -S . -B "$dir" "${cmake_args[@]}" >/dev/null
fi
cmake --build "$dir" -j "$(nproc)" "${target[@]}"
