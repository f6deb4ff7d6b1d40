#!/usr/bin/env bash
# Regenerates gen/ (ts-proto, grpc-js services) and gen/descriptors.binpb (the
# descriptor set served by gRPC reflection) from proto/, with the buf binary that
# the @bufbuild/buf npm package ships. `--check` fails if the committed output drifted.
set -euo pipefail
cd "$(dirname "$0")/.."
out=gen
if [ "${1:-}" = "--check" ]; then
  out=$(mktemp -d)
  trap 'rm -rf "$out"' EXIT
fi
npx --no-install buf lint
rm -rf "$out/torpor" "$out/google"
npx --no-install buf generate --output "$out" --template buf.gen.yaml
# buf generate writes into <output>/<plugin out>; flatten to $out.
if [ -d "$out/gen" ]; then cp -r "$out/gen/." "$out/" && rm -rf "$out/gen"; fi
npx --no-install buf build --as-file-descriptor-set -o "$out/descriptors.binpb"
if [ "${1:-}" = "--check" ]; then
  if ! diff -r gen "$out" >/dev/null; then
    echo "generated code in gen/ is out of date: run 'npm run gen' and commit" >&2
    diff -r gen "$out" | head -20 >&2
    exit 1
  fi
  echo "gen/ is up to date"
fi
