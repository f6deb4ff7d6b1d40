#!/usr/bin/env bash
# `npm start`: installs the npm packages on first run, builds, and runs the mesh.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -d node_modules ] || npm ci --no-audit --no-fund
npm run build --silent
exec node dist/scripts/dev-mesh.js "$@"
