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
# In the background with a trap, so a SIGTERM to this script reaches the benchmark, which stops the servers it started.
BENCH_ROOT="$ROOT" NODE_PATH="$ROOT/node_modules" node "$OUT/bench/batch.js" &
pid=$!
trap 'kill -TERM "$pid" 2>/dev/null' TERM INT
wait "$pid" || rc=$?
# A signal interrupts the first wait; the second collects the benchmark's own exit once it has cleaned up.
if kill -0 "$pid" 2>/dev/null; then wait "$pid" || rc=$?; fi
# The benchmark appends a table row; re-align the table so `prettier --check` (make check) stays green.
[[ -f docs/benchmarks.md ]] && npx prettier --write docs/benchmarks.md >/dev/null || true
exit "$rc"
