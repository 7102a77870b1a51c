#!/usr/bin/env bash
# The front door: installs everything (Debian 12, apt), builds berth, and
# serves examples/models on http://127.0.0.1:8000 until Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh build
exec build/bin/berth serve --model-repository examples/models --host 127.0.0.1 --http-port "${PORT:-8000}"
