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
log=$(mktemp)
trap 'rm -f "$log"' EXIT
set +e
npx mocha 'dist/test/**/*.test.js' "$@" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e
# A plain closing line any CI can read.
count() { sed 's/\x1b\[[0-9;]*m//g' "$log" | grep -Eo "^ +[0-9]+ $1" | grep -Eo '[0-9]+' | tail -1 || true; }
passed=$(count passing)
failed=$(count failing)
echo "${passed:-0} passed, ${failed:-0} failed"
[ "$status" -ne 0 ] || [ "${failed:-0}" -eq 0 ] || status=1
exit "$status"
