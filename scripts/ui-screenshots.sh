#!/usr/bin/env bash
# Remakes docs/ui-repository.png and docs/ui-model.png (the README shows them): the browser test that
# drives the page over the mlp and fashion models saves them when BERTH_UI_SCREENSHOTS is set.
set -euo pipefail
cd "$(dirname "$0")/.."
BERTH_UI_SCREENSHOTS=docs BERTH_BIN=${BERTH_BIN:-build/bin/berth} /usr/bin/python3 -m pytest -q -p no:cacheprovider \
  tests/e2e/test_web_ui.py -k test_mlp_and_fashion_answers_equal_the_api
