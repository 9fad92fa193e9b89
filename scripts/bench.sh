#!/usr/bin/env bash
# Runs the benchmarks in bench/ (see docs/benchmarks.md). `make bench` builds lib/ first; the worker and API
# processes the benchmark starts run from lib/. The benchmark itself (bench/*.ts, outside tsconfig.build.json's
# rootDir) is compiled with tsc into a temp dir and run with node; NODE_PATH lets it find ./node_modules there.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"
[[ -f lib/worker.js && -f lib/api.js ]] || { echo "lib/ is missing: run 'npm run build' (or 'make bench')" >&2; exit 1; }
OUT="$(mktemp -d "${TMPDIR:-/tmp}/pubflow-bench-build-XXXXXX")"
trap 'rm -rf "$OUT"' EXIT
npx tsc bench/batch.ts bench/ceiling-worker.ts bench/ceiling-workflow.ts --outDir "$OUT" --rootDir . --target ES2022 --module commonjs --moduleResolution node \
  --lib ES2022,DOM --esModuleInterop --skipLibCheck --resolveJsonModule --strict --types node
rc=0
BENCH_ROOT="$ROOT" NODE_PATH="$ROOT/node_modules" node "$OUT/bench/batch.js" || rc=$?
# The benchmark appends a table row; re-align the table so `prettier --check` (make check) stays green.
[[ -f docs/benchmarks.md ]] && npx prettier --write docs/benchmarks.md >/dev/null || true
exit "$rc"
