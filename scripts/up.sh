#!/usr/bin/env bash
# `make up`: runs the whole product in the foreground on this machine.
#   Redis (AOF, ./data/redis) unless REDIS_URL answers; Temporal dev server (SQLite ./data/temporal.db, Web UI);
#   search attributes; namespace retention; one worker; the HTTP API; Prometheus (./data/prometheus, when installed)
#   scraping both with deploy/prometheus/alerts.yml loaded. Ctrl-C (or SIGTERM) stops everything it started.
# Once everything is up, a process that dies is started again, with backoff: the stack stops only when asked to.
# Running it again resumes: every workflow and task state is kept in the data dir.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
# shellcheck disable=SC1091
source .tools/env

TEMPORAL_PORT=${TEMPORAL_PORT:-7233}
TEMPORAL_UI_PORT=${TEMPORAL_UI_PORT:-8233}
REDIS_PORT=${REDIS_PORT:-6379}
export PUBFLOW_API_PORT=${PUBFLOW_API_PORT:-3000}
export PUBFLOW_WORKER_METRICS_PORT=${PUBFLOW_WORKER_METRICS_PORT:-9464}
PROMETHEUS_PORT=${PROMETHEUS_PORT:-9090}
export TEMPORAL_NAMESPACE=${TEMPORAL_NAMESPACE:-default}
RETENTION=${PUBFLOW_RETENTION:-168h}   # >= the 7-day status window
DATA=$(mkdir -p "${PUBFLOW_DATA_DIR:-$ROOT/data}" && cd "${PUBFLOW_DATA_DIR:-$ROOT/data}" && pwd)
export PUBFLOW_PUBLISHED_DIR=${PUBFLOW_PUBLISHED_DIR:-$DATA/published}
mkdir -p "$DATA/redis" "$DATA/logs" "$DATA/run" "$PUBFLOW_PUBLISHED_DIR" "${PUBFLOW_MEDIA_ROOT:-$ROOT/media}"

# Restart backoff: 1 s, doubling, at most 30 s; back to 1 s once a process has stayed up for a minute.
BACKOFF_FIRST=1
BACKOFF_MAX=30
BACKOFF_RESET_AFTER=60

order=()              # names, in start order (stopped in reverse)
declare -A pid_of=()  # name -> pid of the running process
declare -A cmd_of=()  # name -> its command line, quoted for eval
declare -A log_of=() started_at=() restarts=() delay=() due=()
# Never dies on output: when stdout is a pipe whose reader is gone (`make up | tee log`, then Ctrl-C kills tee too),
# a failed write must not stop the cleanup below and orphan the servers.
say() { echo "[up] $*" 2>/dev/null || true; }
alive() { [ -n "${pid_of[$1]:-}" ] && kill -0 "${pid_of[$1]}" 2>/dev/null; }
stop_all() { # [exit code]
  local rc=${1:-0}
  trap - INT TERM HUP EXIT
  trap '' PIPE
  say "stopping..."
  # Reverse order: API and worker first (the worker finishes in-flight uploads within its grace period), then
  # Temporal, then Redis (which writes its AOF on SIGTERM).
  for ((i=${#order[@]}-1; i>=0; i--)); do
    name=${order[$i]}
    if alive "$name"; then
      pid=${pid_of[$name]}
      kill -TERM "$pid" 2>/dev/null || true
      for _ in $(seq 1 400); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -0 "$pid" 2>/dev/null && { say "$name did not stop in 40 s; killing it"; kill -KILL "$pid" 2>/dev/null || true; }
      say "$name stopped"
    fi
    rm -f "$DATA/run/$name.pid"
  done
  exit "$rc"
}
trap stop_all INT TERM HUP
trap 'stop_all $?' EXIT   # a failed start-up still stops what did start, and exits non-zero

launch() { # name: (re)starts it from cmd_of
  local name=$1
  # setsid: Ctrl-C reaches only this script, which then stops the children in order.
  eval "exec setsid ${cmd_of[$name]}" >>"${log_of[$name]}" 2>&1 &
  pid_of[$name]=$!
  started_at[$name]=$SECONDS
  echo "$!" >"$DATA/run/$name.pid"
  say "$name started (pid $!, log ${log_of[$name]})"
}
start() { # name cmd...
  local name=$1; shift
  cmd_of[$name]=$(printf '%q ' "$@")
  log_of[$name]="$DATA/logs/$name.log"
  restarts[$name]=0
  delay[$name]=$BACKOFF_FIRST
  order+=("$name")
  launch "$name"
}
wait_until() { # what seconds cmd...
  local what=$1 secs=$2; shift 2
  for _ in $(seq 1 $((secs * 10))); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    for name in "${order[@]}"; do
      alive "$name" || { say "$name exited; see its log in ${log_of[$name]}"; tail -n 20 "${log_of[$name]}" || true; exit 1; }
    done
    sleep 0.1
  done
  say "$what did not become ready in ${secs}s"; exit 1
}
# One pass of the supervisor: notice deaths, schedule their restarts, carry out those that are due.
supervise() {
  local name pid status how
  for name in "${order[@]}"; do
    pid=${pid_of[$name]:-}
    if [ -n "$pid" ] && ! kill -0 "$pid" 2>/dev/null; then
      status=0; wait "$pid" 2>/dev/null || status=$?
      if ((status > 128)); then how="signal $(kill -l $((status - 128)) 2>/dev/null || echo $((status - 128)))"; else how="code $status"; fi
      ((SECONDS - started_at[$name] >= BACKOFF_RESET_AFTER)) && delay[$name]=$BACKOFF_FIRST
      restarts[$name]=$((restarts[$name] + 1))
      due[$name]=$((SECONDS + delay[$name]))
      say "$name exited ($how); restarting in ${delay[$name]} s (restart #${restarts[$name]})"
      pid_of[$name]=""
      rm -f "$DATA/run/$name.pid"
      delay[$name]=$((delay[$name] * 2 > BACKOFF_MAX ? BACKOFF_MAX : delay[$name] * 2))
    elif [ -z "$pid" ] && ((SECONDS >= due[$name])); then
      echo "[up] restart #${restarts[$name]} at $(date -u +%FT%TZ)" >>"${log_of[$name]}"
      launch "$name"
    fi
  done
}

# --- Redis -----------------------------------------------------------------------------------
redis_ping() { redis-cli -u "$1" ping | grep -q PONG; }
if [ -n "${REDIS_URL:-}" ] && redis_ping "$REDIS_URL"; then
  say "using the Redis at REDIS_URL"
else
  [ -n "${REDIS_URL:-}" ] && say "REDIS_URL=$REDIS_URL does not answer; starting our own Redis on :$REDIS_PORT"
  [ -n "$PUBFLOW_REDIS_SERVER" ] || { say "no redis-server; run scripts/provision.sh or set REDIS_URL"; exit 1; }
  export REDIS_URL="redis://127.0.0.1:$REDIS_PORT/0"
  start redis "$PUBFLOW_REDIS_SERVER" --port "$REDIS_PORT" --bind 127.0.0.1 --dir "$DATA/redis" \
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
start temporal "$T" server start-dev --ip 127.0.0.1 --port "$TEMPORAL_PORT" \
  --ui-port "$TEMPORAL_UI_PORT" --db-filename "$DATA/temporal.db" --namespace "$TEMPORAL_NAMESPACE" \
  --dynamic-config-value matching.priorityLevels=10 --dynamic-config-value matching.useNewMatcher=true \
  --dynamic-config-value matching.numTaskqueueReadPartitions=1 --dynamic-config-value matching.numTaskqueueWritePartitions=1 \
  --sqlite-pragma journal_mode=wal --sqlite-pragma synchronous=normal \
  --log-level warn "${sa_args[@]}"
wait_until "Temporal" 60 "$T" operator namespace describe --address "$TEMPORAL_ADDRESS" -n "$TEMPORAL_NAMESPACE"
# pubflow setup: namespace retention and search attributes, as against any Temporal (the --search-attribute flags
# above only save it the wait for them; it prints what it changed, nothing on a second run).
node lib/setup/run.js --namespace "$TEMPORAL_NAMESPACE" --retention "$RETENTION" 2>&1 | sed 's/^/[up] setup: /'
[ "${PIPESTATUS[0]}" = 0 ] || { say "pubflow setup failed (above)"; exit 1; }

# --- API keys (docs/security.md): closed by default ----------------------------------------------
# With no keys file, one is created with an admin key, whose token goes to $DATA/admin.token (mode 0600).
export PUBFLOW_API_KEYS_FILE="${PUBFLOW_API_KEYS_FILE:-$DATA/api-keys.json}"
node lib/tools/keys.js ensure-admin --dir "$DATA" --file "$PUBFLOW_API_KEYS_FILE" 2>&1 | sed 's/^/[up] /'
[ "${PIPESTATUS[0]}" = 0 ] || { say "the API keys file $PUBFLOW_API_KEYS_FILE is not usable (above)"; exit 1; }
if [ -f "$DATA/admin.token" ]; then
  KEYS_MSG="admin token in $DATA/admin.token (keys: $PUBFLOW_API_KEYS_FILE)
                   try: curl -H \"Authorization: Bearer \$(cat $DATA/admin.token)\" http://localhost:$PUBFLOW_API_PORT/api/v1/tasks/stats"
else
  KEYS_MSG="$PUBFLOW_API_KEYS_FILE (your own; no admin.token was made)"
fi

# --- worker and API --------------------------------------------------------------------------
start worker node lib/worker.js
start api node lib/api.js
wait_until "API" 60 curl -fsS "http://127.0.0.1:$PUBFLOW_API_PORT/readyz"

# --- Prometheus (optional: the stack runs without it) ----------------------------------------
# Its config is deploy/prometheus/prometheus.yml with this run's ports and token file; the rules are loaded as they
# are. A missing binary or a taken port is said and skipped: publishing does not depend on it.
prometheus_url=""
port_taken() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
if [ -z "${PUBFLOW_PROMETHEUS:-}" ]; then
  say "no prometheus (apt-get install prometheus, as root); running without it"
elif port_taken "$PROMETHEUS_PORT"; then
  say "port $PROMETHEUS_PORT is taken; running without Prometheus (set PROMETHEUS_PORT)"
else
  mkdir -p "$DATA/prometheus"
  cp deploy/prometheus/alerts.yml "$DATA/prometheus/alerts.yml"
  # The API's /metrics needs a viewer key: the admin token make up keeps in the data dir (when there is one).
  token_edit=(-e "s|credentials_file: .*|credentials_file: $DATA/admin.token|")
  [ -f "$DATA/admin.token" ] || token_edit=(-e '/authorization:/,/credentials_file:/d')
  sed -e "s|127.0.0.1:3000|127.0.0.1:$PUBFLOW_API_PORT|" -e "s|127.0.0.1:9464|127.0.0.1:$PUBFLOW_WORKER_METRICS_PORT|" \
    "${token_edit[@]}" deploy/prometheus/prometheus.yml >"$DATA/prometheus/prometheus.yml"
  start prometheus "$PUBFLOW_PROMETHEUS" --config.file="$DATA/prometheus/prometheus.yml" \
    --storage.tsdb.path="$DATA/prometheus/tsdb" --web.listen-address="127.0.0.1:$PROMETHEUS_PORT"
  wait_until "Prometheus" 30 curl -fsS "http://127.0.0.1:$PROMETHEUS_PORT/-/ready"
  prometheus_url="http://localhost:$PROMETHEUS_PORT   (targets: /targets, alerts: /alerts)"
fi

cat <<MSG

  pubflow is up.
    API            http://localhost:$PUBFLOW_API_PORT   (health: /healthz, ready: /readyz, spec: /openapi.json)
    Desk           http://localhost:$PUBFLOW_API_PORT/ui/   (sign in with the admin token, or any key)
    API keys       $KEYS_MSG
    Temporal UI    http://localhost:$TEMPORAL_UI_PORT
    Prometheus     ${prometheus_url:-not running}
    Metrics        http://localhost:$PUBFLOW_API_PORT/metrics (API), http://localhost:$PUBFLOW_WORKER_METRICS_PORT/metrics (worker)
    Temporal gRPC  $TEMPORAL_ADDRESS (namespace $TEMPORAL_NAMESPACE)
    Redis          $REDIS_URL
    Accounts       ${PUBFLOW_ACCOUNTS_FILE:-built-in demo account (id demo, platform local)}
    Media root     ${PUBFLOW_MEDIA_ROOT:-$ROOT/media}
    Data, logs     $DATA (logs/, run/*.pid)
  More workers: npm run start:worker (same environment). A process that dies is restarted. Ctrl-C stops everything.

MSG
# From here on a death is a restart, never a stop (before this point it stops everything: a bad config fails fast).
# `sleep & wait`: a signal interrupts the wait at once.
while true; do
  supervise
  sleep 0.5 & wait $! 2>/dev/null || true
done
