#!/usr/bin/env bash
# `npm test`: the whole suite. Installs missing system packages (as root), builds,
# checks generated code for drift, builds the guest images, runs every mocha test.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
[ -d node_modules ] || npm ci --no-audit --no-fund
npm run gen:check --silent
npm run build --silent
export TORPOR_TEST_DATA="${TORPOR_TEST_DATA:-$PWD/data/test}"
bash scripts/build-images.sh "$TORPOR_TEST_DATA" >/dev/null
npx mocha 'dist/test/**/*.test.js' "$@"
