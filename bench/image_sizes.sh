#!/usr/bin/env bash
# Image sizes, build times and container start -> ready times of `berth build`
# images for three repositories: identity only, XGBoost only
# (examples/models/churn) and TorchScript (examples/models/mlp).
#
#   bash bench/image_sizes.sh            # -> bench/results/$(date +%F)-image-sizes.md
#   OUT=/tmp/x.md RUNS=1 bash bench/image_sizes.sh
#
# Podman runs with tests/e2e/containers.conf and a throw-away storage
# directory, so the host's images are neither used nor changed.
set -euo pipefail
cd "$(dirname "$0")/.."
BERTH_BIN=${BERTH_BIN:-build/bin/berth}
OUT=${OUT:-bench/results/$(date -u +%F)-image-sizes.md}
RUNS=${RUNS:-5}
work=$(mktemp -d /tmp/berth-image-bench.XXXXXX)
cleanup() {
  CONTAINERS_CONF=$PWD/tests/e2e/containers.conf CONTAINERS_STORAGE_CONF=$work/storage.conf \
    podman rmi --all --force >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
/usr/bin/python3 bench/image_sizes.py --berth "$BERTH_BIN" --work "$work" --out "$OUT" --runs "$RUNS"
