#!/usr/bin/env bash
# `make up`: runs the whole product in the foreground on this machine.
#   Redis (AOF, ./data/redis) unless REDIS_URL answers; Temporal dev server (SQLite ./data/temporal.db, Web UI);
#   search attributes; namespace retention; one worker; the HTTP API. Ctrl-C stops everything it started.
# Running it again resumes: every workflow and task state is kept in ./data.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
# shellcheck disable=SC1091
source .tools/env

TEMPORAL_PORT=${TEMPORAL_PORT:-7233}
TEMPORAL_UI_PORT=${TEMPORAL_UI_PORT:-8233}
REDIS_PORT=${REDIS_PORT:-6379}
export PUBFLOW_API_PORT=${PUBFLOW_API_PORT:-3000}
export TEMPORAL_NAMESPACE=${TEMPORAL_NAMESPACE:-default}
RETENTION=${PUBFLOW_RETENTION:-168h}   # >= the 7-day status window
DATA="$ROOT/data"
mkdir -p "$DATA/redis" "$DATA/logs" "$DATA/published" "${PUBFLOW_MEDIA_ROOT:-$ROOT/media}"

pids=()
names=()
# Never dies on output: when stdout is a pipe whose reader is gone (`make up | tee log`, then Ctrl-C kills tee too),
# a failed write must not stop the cleanup below and orphan the servers.
say() { echo "[up] $*" 2>/dev/null || true; }
stop_all() {
  trap - INT TERM HUP EXIT
  trap '' PIPE
  say "stopping..."
  # Reverse order: API and worker first (the worker finishes in-flight uploads within its grace period), then
  # Temporal, then Redis (which writes its AOF on SIGTERM).
  for ((i=${#pids[@]}-1; i>=0; i--)); do
    pid=${pids[$i]}
    if kill -0 "$pid" 2>/dev/null; then
      kill -TERM "$pid" 2>/dev/null || true
      for _ in $(seq 1 400); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -0 "$pid" 2>/dev/null && { say "${names[$i]} did not stop in 40 s; killing it"; kill -KILL "$pid" 2>/dev/null || true; }
      say "${names[$i]} stopped"
    fi
  done
  exit 0
}
trap stop_all INT TERM HUP
trap 'stop_all' EXIT
start() { # name logfile cmd...
  local name=$1 log=$2; shift 2
  # setsid: Ctrl-C reaches only this script, which then stops the children in order.
  setsid "$@" >>"$log" 2>&1 &
  pids+=($!); names+=("$name")
  say "$name started (pid $!, log $log)"
}
wait_until() { # what seconds cmd...
  local what=$1 secs=$2; shift 2
  for _ in $(seq 1 $((secs * 10))); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    for i in "${!pids[@]}"; do
      kill -0 "${pids[$i]}" 2>/dev/null || { say "${names[$i]} exited; see its log in data/logs"; tail -n 20 "$DATA/logs/${names[$i]}.log" || true; exit 1; }
    done
    sleep 0.1
  done
  say "$what did not become ready in ${secs}s"; exit 1
}

# --- Redis -----------------------------------------------------------------------------------
redis_ping() { redis-cli -u "$1" ping | grep -q PONG; }
if [ -n "${REDIS_URL:-}" ] && redis_ping "$REDIS_URL"; then
  say "using the Redis at REDIS_URL"
else
  [ -n "${REDIS_URL:-}" ] && say "REDIS_URL=$REDIS_URL does not answer; starting our own Redis on :$REDIS_PORT"
  [ -n "$PUBFLOW_REDIS_SERVER" ] || { say "no redis-server; run scripts/provision.sh or set REDIS_URL"; exit 1; }
  export REDIS_URL="redis://127.0.0.1:$REDIS_PORT/0"
  start redis "$DATA/logs/redis.log" "$PUBFLOW_REDIS_SERVER" --port "$REDIS_PORT" --bind 127.0.0.1 --dir "$DATA/redis" \
    --appendonly yes --appendfsync everysec --save "" --daemonize no
  wait_until "Redis" 20 redis_ping "$REDIS_URL"
fi

# --- Temporal dev server ---------------------------------------------------------------------
[ -n "$PUBFLOW_TEMPORAL_CLI" ] || { say "no Temporal CLI; run scripts/provision.sh (see README)"; exit 1; }
T="$PUBFLOW_TEMPORAL_CLI"
sa_args=()
for sa in PubflowStatus PubflowType PubflowPlatform PubflowAccount PubflowParent; do sa_args+=(--search-attribute "$sa=Keyword"); done
export TEMPORAL_ADDRESS="127.0.0.1:$TEMPORAL_PORT"
# Priority: 10 levels, one partition (strict order; README "Queue semantics"). SQLite: write-ahead log synced at
# checkpoints, safe against a killed process and ~2.5x the throughput of the default (docs/benchmarks.md).
start temporal "$DATA/logs/temporal.log" "$T" server start-dev --ip 127.0.0.1 --port "$TEMPORAL_PORT" \
  --ui-port "$TEMPORAL_UI_PORT" --db-filename "$DATA/temporal.db" --namespace "$TEMPORAL_NAMESPACE" \
  --dynamic-config-value matching.priorityLevels=10 --dynamic-config-value matching.useNewMatcher=true \
  --dynamic-config-value matching.numTaskqueueReadPartitions=1 --dynamic-config-value matching.numTaskqueueWritePartitions=1 \
  --sqlite-pragma journal_mode=wal --sqlite-pragma synchronous=normal \
  --log-level warn "${sa_args[@]}"
wait_until "Temporal" 60 "$T" operator namespace describe --address "$TEMPORAL_ADDRESS" -n "$TEMPORAL_NAMESPACE"
"$T" operator namespace update --address "$TEMPORAL_ADDRESS" -n "$TEMPORAL_NAMESPACE" --retention "$RETENTION" >/dev/null
say "namespace $TEMPORAL_NAMESPACE retention: $RETENTION"

# --- worker and API --------------------------------------------------------------------------
start worker "$DATA/logs/worker.log" node lib/worker.js
start api "$DATA/logs/api.log" node lib/api.js
wait_until "API" 60 curl -fsS "http://127.0.0.1:$PUBFLOW_API_PORT/readyz"

cat <<MSG

  pubflow is up.
    API            http://localhost:$PUBFLOW_API_PORT   (health: /healthz, ready: /readyz, spec: /openapi.json)
    Temporal UI    http://localhost:$TEMPORAL_UI_PORT
    Temporal gRPC  $TEMPORAL_ADDRESS (namespace $TEMPORAL_NAMESPACE)
    Redis          $REDIS_URL
    Accounts       ${PUBFLOW_ACCOUNTS_FILE:-built-in demo account (id demo, platform local)}
    Media root     ${PUBFLOW_MEDIA_ROOT:-$ROOT/media}
    Logs           data/logs/
  More workers: npm run start:worker (same environment). Ctrl-C stops everything.

MSG
# Wait for any child to exit; if one dies, stop the rest.
while true; do
  for i in "${!pids[@]}"; do
    if ! kill -0 "${pids[$i]}" 2>/dev/null; then say "${names[$i]} exited unexpectedly (see data/logs/${names[$i]}.log)"; stop_all; fi
  done
  sleep 1
done
