#!/usr/bin/env bash
# `make up-cluster`: pubflow on a multi-service Temporal cluster, all on loopback, in the foreground:
#   PostgreSQL 15 (private port, data in $CLUSTER_DIR/pg) with Temporal's schema (temporal-sql-tool, postgres12);
#   Temporal v1.32.0 services from one binary: history first (it writes the cluster metadata; starting all at once
#   raced on cluster_metadata_info), then a second history, 2 matching, 2 frontend (mTLS, a throwaway CA made here
#   with openssl) and the worker service; Redis master + replica + 3 sentinels; `pubflow setup` (over mTLS);
#   3 pubflow workers and 2 APIs (spread over the two frontends, Redis through Sentinel).
# Ctrl-C / SIGTERM stops it all in reverse order. No Temporal Web UI: github.com/temporalio/ui-server is not
# buildable from the Go module proxy alone (its assets are built with Node from the ui repository; see README).
# Env: CLUSTER_DIR (default a fresh temp dir; kept when set), CLUSTER_PORT_BASE (default a free range from 20000),
# CLUSTER_READY_FILE (written with the env to use once everything is up; for make test-cluster).
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$(pwd)
# Always: it takes a second when everything is cached, and it rewrites .tools/cluster-env, so a moved checkout or
# a deleted binary is provisioned again instead of failing later on a path that no longer exists.
scripts/cluster/provision.sh
# shellcheck disable=SC1091
source .tools/cluster-env
say() { echo "[cluster] $*" 2>/dev/null || true; }

CLUSTER_DIR=${CLUSTER_DIR:-$(mktemp -d /tmp/pubflow-cluster-XXXXXX)}
mkdir -p "$CLUSTER_DIR"/{logs,run,config,tls,published,redis}
CLUSTER_DIR=$(cd "$CLUSTER_DIR" && pwd)
port_taken() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
# 60 consecutive ports that nothing listens on.
if [ -z "${CLUSTER_PORT_BASE:-}" ]; then
  for base in $(seq 20000 100 40000); do
    ok=1; for p in $(seq "$base" $((base + 59))); do port_taken "$p" && { ok=0; break; }; done
    [ $ok = 1 ] && { CLUSTER_PORT_BASE=$base; break; }
  done
fi
P=$CLUSTER_PORT_BASE
PG_PORT=$P
FE1=$((P + 1)) FE2=$((P + 2))
REDIS_MASTER=$((P + 40)) REDIS_REPLICA=$((P + 41)) SENT1=$((P + 42)) SENT2=$((P + 43)) SENT3=$((P + 44))
API1=$((P + 50)) API2=$((P + 51))

order=()
declare -A pid_of=() log_of=()
alive() { [ -n "${pid_of[$1]:-}" ] && kill -0 "${pid_of[$1]}" 2>/dev/null; }
stop_all() {
  local rc=${1:-0}
  trap - INT TERM HUP EXIT
  say "stopping..."
  for ((i=${#order[@]}-1; i>=0; i--)); do
    name=${order[$i]}
    if alive "$name"; then
      pid=${pid_of[$name]}
      kill -TERM "$pid" 2>/dev/null || true
      for _ in $(seq 1 300); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -0 "$pid" 2>/dev/null && { say "$name did not stop in 30 s; killing it"; kill -KILL "$pid" 2>/dev/null || true; }
      say "$name stopped"
    fi
    rm -f "$CLUSTER_DIR/run/$name.pid"
  done
  if [ -f "$CLUSTER_DIR/pg/PG_VERSION" ]; then
    runuser -u postgres -- "$PUBFLOW_PG_BIN/pg_ctl" -D "$CLUSTER_DIR/pg" -m fast -w stop >/dev/null 2>&1 || true
    say "postgres stopped"
  fi
  exit "$rc"
}
trap stop_all INT TERM HUP
trap 'stop_all $?' EXIT
start() { # name cmd... (env from the caller)
  local name=$1; shift
  log_of[$name]="$CLUSTER_DIR/logs/$name.log"
  setsid "$@" >>"${log_of[$name]}" 2>&1 &
  pid_of[$name]=$!
  order+=("$name")
  echo "$!" >"$CLUSTER_DIR/run/$name.pid"
  say "$name started (pid $!)"
}
wait_until() { # what seconds cmd...
  local what=$1 secs=$2; shift 2
  for _ in $(seq 1 $((secs * 5))); do
    "$@" >/dev/null 2>&1 && return 0
    for name in "${order[@]}"; do
      alive "$name" || { say "$name exited; its log:"; tail -n 30 "${log_of[$name]}" || true; exit 1; }
    done
    sleep 0.2
  done
  say "$what not ready in ${secs}s"; exit 1
}

# --- throwaway CA and certificates (mTLS between pubflow and the frontends) ----------------------
T=$CLUSTER_DIR/tls
if [ ! -f "$T/client.pem" ]; then
  openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=pubflow throwaway CA" \
    -keyout "$T/ca.key" -out "$T/ca.pem" 2>/dev/null
  for who in frontend client; do
    openssl req -newkey rsa:2048 -nodes -subj "/CN=$who" -keyout "$T/$who.key" -out "$T/$who.csr" 2>/dev/null
    printf 'subjectAltName=DNS:localhost,DNS:frontend,IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\n' >"$T/$who.ext"
    openssl x509 -req -in "$T/$who.csr" -CA "$T/ca.pem" -CAkey "$T/ca.key" -CAcreateserial -days 2 \
      -extfile "$T/$who.ext" -out "$T/$who.pem" 2>/dev/null
  done
  chmod 0644 "$T"/*.pem "$T"/*.key
  say "throwaway CA and certificates in $T"
fi

# --- PostgreSQL 15 -------------------------------------------------------------------------------
PG=$CLUSTER_DIR/pg
chown postgres "$CLUSTER_DIR"
if [ ! -f "$PG/PG_VERSION" ]; then
  install -d -o postgres -m 0700 "$PG"
  runuser -u postgres -- "$PUBFLOW_PG_BIN/initdb" -D "$PG" -A trust -U postgres >"$CLUSTER_DIR/logs/initdb.log" 2>&1
fi
install -d -o postgres "$CLUSTER_DIR/pgsock"
touch "$CLUSTER_DIR/logs/postgres.log"; chown postgres "$CLUSTER_DIR/logs/postgres.log"
runuser -u postgres -- "$PUBFLOW_PG_BIN/pg_ctl" -D "$PG" -l "$CLUSTER_DIR/logs/postgres.log" -w -t 60 \
  -o "-p $PG_PORT -k $CLUSTER_DIR/pgsock -c listen_addresses=127.0.0.1 -c max_connections=200 -c fsync=on" start >/dev/null
say "postgres on 127.0.0.1:$PG_PORT"
psql_() { "$PUBFLOW_PG_BIN/psql" -h 127.0.0.1 -p "$PG_PORT" -U postgres -tAq "$@"; }
[ "$(psql_ -c "SELECT 1 FROM pg_roles WHERE rolname='temporal'")" = 1 ] ||
  psql_ -c "CREATE USER temporal WITH PASSWORD 'temporal' CREATEDB"
sqltool() { "$PUBFLOW_TEMPORAL_SQL_TOOL" --plugin postgres12 --ep 127.0.0.1 -p "$PG_PORT" -u temporal --pw temporal "$@"; }
for db in temporal temporal_visibility; do
  dir=temporal; [ $db = temporal_visibility ] && dir=visibility
  if [ "$(psql_ -c "SELECT 1 FROM pg_database WHERE datname='$db'")" != 1 ]; then
    sqltool --db $db create-database >>"$CLUSTER_DIR/logs/schema.log" 2>&1
    sqltool --db $db setup-schema -v 0.0 >>"$CLUSTER_DIR/logs/schema.log" 2>&1
  fi
  sqltool --db $db update-schema -d "$PUBFLOW_TEMPORAL_SCHEMA/$dir/versioned" >>"$CLUSTER_DIR/logs/schema.log" 2>&1
done
say "schema: temporal and temporal_visibility up to date"

# --- Temporal services ---------------------------------------------------------------------------
C=$CLUSTER_DIR/config
# Priority as under make up: 10 levels, one partition (README "Queue semantics").
cat >"$C/dynamicconfig.yaml" <<YAML
matching.priorityLevels:
  - value: 10
matching.useNewMatcher:
  - value: true
matching.numTaskqueueReadPartitions:
  - value: 1
matching.numTaskqueueWritePartitions:
  - value: 1
system.forceSearchAttributesCacheRefreshOnRead:
  - value: true
YAML
# Every process's config lists all four services (the membership monitor tracks only the services it lists: without
# them history failed with "service not tracked by Monitor"); a process binds only its own --service's ports.
services_yaml() { # own-service grpc membership [http]
  local s g m h
  for s in frontend history matching worker; do
    case $s in frontend) g=$FE1 m=$((P + 24)) h=$((P + 30)) ;; history) g=$((P + 10)) m=$((P + 20)) h= ;;
      matching) g=$((P + 12)) m=$((P + 22)) h= ;; worker) g=$((P + 14)) m=$((P + 26)) h= ;; esac
    [ "$s" = "$1" ] && { g=$2 m=$3 h=${4:-}; }
    printf '  %s:\n    rpc:\n      grpcPort: %s\n      membershipPort: %s\n      bindOnIP: "127.0.0.1"\n' "$s" "$g" "$m"
    [ -n "$h" ] && printf '      httpPort: %s\n' "$h"
  done
}
# One config per process: the same persistence and cluster, its own service ports.
service_config() { # file service grpc membership [http]
  local file=$1 svc=$2 grpc=$3 member=$4 http=${5:-}
  cat >"$file" <<YAML
log:
  stdout: true
  level: warn
persistence:
  defaultStore: default
  visibilityStore: visibility
  numHistoryShards: 8
  datastores:
    default:
      sql: &sql
        pluginName: postgres12
        databaseName: temporal
        connectAddr: "127.0.0.1:$PG_PORT"
        connectProtocol: tcp
        user: temporal
        password: temporal
        maxConns: 10
        maxIdleConns: 10
        maxConnLifetime: 1h
    visibility:
      sql:
        <<: *sql
        databaseName: temporal_visibility
        maxConns: 4
        maxIdleConns: 4
global:
  membership:
    maxJoinDuration: 30s
    broadcastAddress: "127.0.0.1"
  tls:
    frontend:
      server:
        certFile: $T/frontend.pem
        keyFile: $T/frontend.key
        requireClientAuth: true
        clientCaFiles: [$T/ca.pem]
      client:
        serverName: localhost
        rootCaFiles: [$T/ca.pem]
    # The services' own calls to the frontend (operator API, system workflows) need a client certificate too:
    # without this block they failed "client auth required, but no certificate provided".
    systemWorker:
      certFile: $T/client.pem
      keyFile: $T/client.key
      client:
        serverName: localhost
        rootCaFiles: [$T/ca.pem]
services:
$(services_yaml "$svc" "$grpc" "$member" "$http")
clusterMetadata:
  enableGlobalNamespace: false
  failoverVersionIncrement: 10
  masterClusterName: active
  currentClusterName: active
  clusterInformation:
    active:
      enabled: true
      initialFailoverVersion: 1
      rpcName: frontend
      rpcAddress: "localhost:$FE1"
dcRedirectionPolicy:
  policy: noop
publicClient:
  hostPort: "localhost:$FE1"
dynamicConfigClient:
  filepath: $C/dynamicconfig.yaml
  pollInterval: 10s
YAML
}
tserver() { # name service config
  start "$1" "$PUBFLOW_TEMPORAL_SERVER" --config-file "$3" --allow-no-auth start --service "$2"
}
# name service grpc membership [http]
services=(
  "history1 history $((P + 10)) $((P + 20))"
  "history2 history $((P + 11)) $((P + 21))"
  "matching1 matching $((P + 12)) $((P + 22))"
  "matching2 matching $((P + 13)) $((P + 23))"
  "frontend1 frontend $FE1 $((P + 24)) $((P + 30))"
  "frontend2 frontend $FE2 $((P + 25)) $((P + 31))"
  "worker worker $((P + 14)) $((P + 26))"
)
grpc_up() { port_taken "$1"; }
first=1
for s in "${services[@]}"; do
  read -r name svc grpc member http <<<"$s"
  service_config "$C/$name.yaml" "$svc" "$grpc" "$member" "$http"
  tserver "temporal-$name" "$svc" "$C/$name.yaml"
  if [ $first = 1 ]; then
    wait_until "history1" 120 grpc_up "$grpc"; first=0
  fi
done
wait_until "frontend1" 120 grpc_up "$FE1"
wait_until "frontend2" 120 grpc_up "$FE2"

# --- Redis: master, replica, 3 sentinels ---------------------------------------------------------
RD=$CLUSTER_DIR/redis
rcommon=(--bind 127.0.0.1 --dir "$RD" --appendonly yes --appendfsync everysec --save "" --protected-mode no)
start redis-master redis-server --port "$REDIS_MASTER" --appendfilename master.aof "${rcommon[@]}"
start redis-replica redis-server --port "$REDIS_REPLICA" --appendfilename replica.aof --replicaof 127.0.0.1 "$REDIS_MASTER" "${rcommon[@]}"
for i in 1 2 3; do
  port_var=SENT$i; sp=${!port_var}
  [ -f "$RD/sentinel$i.conf" ] || printf 'port %s\nbind 127.0.0.1\ndir %s\nsentinel monitor pubflow 127.0.0.1 %s 2\nsentinel down-after-milliseconds pubflow 2000\nsentinel failover-timeout pubflow 10000\n' \
    "$sp" "$RD" "$REDIS_MASTER" >"$RD/sentinel$i.conf"
  start "redis-sentinel$i" redis-server "$RD/sentinel$i.conf" --sentinel
done
wait_until "redis sentinels" 30 bash -c "redis-cli -p $SENT1 sentinel get-master-addr-by-name pubflow | grep -q ."

# --- pubflow ---------------------------------------------------------------------------------------
export TEMPORAL_NAMESPACE=${TEMPORAL_NAMESPACE:-default}
export TEMPORAL_TLS_SERVER_CA_CERT_PATH=$T/ca.pem TEMPORAL_TLS_CLIENT_CERT_PATH=$T/client.pem
export TEMPORAL_TLS_CLIENT_KEY_PATH=$T/client.key TEMPORAL_TLS_SERVER_NAME=localhost
export REDIS_SENTINELS="127.0.0.1:$SENT1,127.0.0.1:$SENT2,127.0.0.1:$SENT3" REDIS_SENTINEL_NAME=pubflow
export REDIS_URL=redis://127.0.0.1/0
export PUBFLOW_PUBLISHED_DIR=$CLUSTER_DIR/published PUBFLOW_MEDIA_ROOT=${PUBFLOW_MEDIA_ROOT:-$ROOT/media}
export PUBFLOW_API_KEYS_FILE=$CLUSTER_DIR/api-keys.json
mkdir -p "$PUBFLOW_MEDIA_ROOT"
export TEMPORAL_ADDRESS=127.0.0.1:$FE1
# Retried until the frontends answer; the first successful run says what it created, the second that nothing changed.
setup_once() { node lib/setup/run.js --retention "${PUBFLOW_RETENTION:-7d}" >"$CLUSTER_DIR/logs/setup.log" 2>&1; }
wait_until "pubflow setup" 180 setup_once
sed 's/^/[cluster] setup: /' "$CLUSTER_DIR/logs/setup.log"
node lib/setup/run.js --retention "${PUBFLOW_RETENTION:-7d}" 2>&1 | sed 's/^/[cluster] setup (again): /'
node lib/tools/keys.js ensure-admin --dir "$CLUSTER_DIR" --file "$PUBFLOW_API_KEYS_FILE" 2>&1 | sed 's/^/[cluster] /'
for i in 1 2 3; do
  fe=$FE1; [ $i = 2 ] && fe=$FE2
  TEMPORAL_ADDRESS=127.0.0.1:$fe PUBFLOW_WORKER_METRICS_PORT=0 start "pubflow-worker$i" node lib/worker.js
done
for i in 1 2; do
  fe=$FE1 port=$API1; [ $i = 2 ] && { fe=$FE2; port=$API2; }
  TEMPORAL_ADDRESS=127.0.0.1:$fe PUBFLOW_API_PORT=$port start "pubflow-api$i" node lib/api.js
done
wait_until "API 1" 60 curl -fsS "http://127.0.0.1:$API1/readyz"
wait_until "API 2" 60 curl -fsS "http://127.0.0.1:$API2/readyz"

env_file=$CLUSTER_DIR/cluster.env
# For a person's shell: `source cluster.env`, then curl with $PUBFLOW_URL or `npx pubflow …` (the CLI reads
# PUBFLOW_URL and PUBFLOW_TOKEN from the environment, so every line is exported). It holds the admin token: 0600.
{
  for v in TEMPORAL_ADDRESS TEMPORAL_NAMESPACE TEMPORAL_TLS_SERVER_CA_CERT_PATH TEMPORAL_TLS_CLIENT_CERT_PATH \
    TEMPORAL_TLS_CLIENT_KEY_PATH TEMPORAL_TLS_SERVER_NAME REDIS_SENTINELS REDIS_SENTINEL_NAME REDIS_URL \
    PUBFLOW_PUBLISHED_DIR PUBFLOW_MEDIA_ROOT PUBFLOW_API_KEYS_FILE; do printf 'export %s=%q\n' "$v" "${!v}"; done
  echo "export CLUSTER_DIR=$CLUSTER_DIR"
  echo "export PUBFLOW_URL=http://127.0.0.1:$API1"
  echo "export PUBFLOW_URL2=http://127.0.0.1:$API2"
  printf 'export PUBFLOW_TOKEN=%q\n' "$(cat "$CLUSTER_DIR/admin.token")"
  echo "export TEMPORAL_ADDRESS2=127.0.0.1:$FE2"
  echo "export REDIS_MASTER_PORT=$REDIS_MASTER"
  echo "export REDIS_SENTINEL_PORT=$SENT1"
  echo "export PG_PORT=$PG_PORT"
} >"$env_file"
chmod 0600 "$env_file"
cat <<MSG

  pubflow is up on a Temporal cluster.
    API            http://localhost:$API1 and http://localhost:$API2   (/readyz, /openapi.json, /ui/)
    Admin token    $CLUSTER_DIR/admin.token
    Temporal       frontends 127.0.0.1:$FE1, 127.0.0.1:$FE2 (mTLS: CA $T/ca.pem, client $T/client.pem)
                   2 history, 2 matching, 1 worker service; PostgreSQL 127.0.0.1:$PG_PORT
    Temporal UI    not included (not buildable from the registries; README "Cluster")
    Redis          master :$REDIS_MASTER, replica :$REDIS_REPLICA, sentinels :$SENT1 :$SENT2 :$SENT3 (name pubflow)
    Workers        3 (logs in $CLUSTER_DIR/logs)
    Environment    source $env_file   (then: npx pubflow stats)
  Ctrl-C stops everything.

MSG
[ -n "${CLUSTER_READY_FILE:-}" ] && cp "$env_file" "$CLUSTER_READY_FILE"
while true; do sleep 1 & wait $! 2>/dev/null || true; done
