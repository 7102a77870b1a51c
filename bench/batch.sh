#!/usr/bin/env bash
# Side-by-side benchmark of `berth batch` against the pandas pipeline and the
# model alone, on 1M and 10M rows x 4 features (XGBoost churn, TorchScript MLP).
# Writes bench/results/YYYY-MM-DD-batch.md. See bench/batch.py for the method.
#
# usage: bench/batch.sh [--smoke] [--rows N ...] [--out FILE]
#   --smoke   CI smoke: 20,000 rows, the table goes to a temp dir; must run, no timing asserted.
# environment: BERTH_BIN=build/bin/berth (berth_csv_bench is taken from the same directory)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
exec /usr/bin/python3 bench/batch.py "$@"
