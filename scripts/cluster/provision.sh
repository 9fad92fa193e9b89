#!/usr/bin/env bash
# Cluster tools for `make up-cluster` / `make test-cluster`, into .tools/ (cached: skipped when present).
#   - Temporal server v1.32.0, temporal-sql-tool and tdbg, built from the Go module proxy (no replace directives;
#     ~8 min cold on 2 cores, seconds with a warm ~/.cache/go-build). Schema files come from the module cache.
#   - PostgreSQL 15, redis-server and redis-sentinel from Debian (apt-get, as root) when missing.
# Not part of `make tools` / `make test`.
set -euo pipefail
cd "$(dirname "$0")/../.."
TEMPORAL_SERVER_VERSION=${TEMPORAL_SERVER_VERSION:-v1.32.0}
BIN=.tools/temporal-server/bin
say() { echo "[provision-cluster] $*"; }
mkdir -p "$BIN"
BIN=$(cd "$BIN" && pwd)
if [ -x "$BIN/server" ] && [ -x "$BIN/sql" ] && [ -x "$BIN/tdbg" ]; then
  say "temporal server $TEMPORAL_SERVER_VERSION: cached in $BIN"
else
  command -v go >/dev/null || { say "no Go toolchain: install Go >= 1.25 (the server's go.mod asks for it)"; exit 1; }
  say "building temporal server $TEMPORAL_SERVER_VERSION from the Go module proxy (~8 min cold on 2 cores)"
  GOTOOLCHAIN=local GOBIN="$BIN" go install "go.temporal.io/server/cmd/server@$TEMPORAL_SERVER_VERSION" \
    "go.temporal.io/server/cmd/tools/sql@$TEMPORAL_SERVER_VERSION" "go.temporal.io/server/cmd/tools/tdbg@$TEMPORAL_SERVER_VERSION"
fi
# The schema: from the module cache (go install put it there; `go mod download` if it was cleaned).
MOD=$(GOTOOLCHAIN=local go env GOMODCACHE 2>/dev/null || echo "$HOME/go/pkg/mod")/go.temporal.io/server@$TEMPORAL_SERVER_VERSION
if [ ! -d "$MOD/schema/postgresql/v12" ]; then
  (cd /tmp && GOTOOLCHAIN=local GOFLAGS=-mod=mod go mod download "go.temporal.io/server@$TEMPORAL_SERVER_VERSION")
fi
need_apt=()
[ -x /usr/lib/postgresql/15/bin/pg_ctl ] || need_apt+=(postgresql)
command -v redis-server >/dev/null || need_apt+=(redis-server)
# The sentinels run as `redis-server --sentinel` (scripts/cluster/up.sh); Debian's redis-sentinel package is the
# packaged form of the same binary, installed so `redis-sentinel` is there for people who run it by hand.
command -v redis-sentinel >/dev/null || need_apt+=(redis-sentinel)
if [ ${#need_apt[@]} -gt 0 ]; then
  [ "$(id -u)" = 0 ] || { say "missing ${need_apt[*]}: apt-get install them (as root)"; exit 1; }
  # A fresh machine has no package lists yet: update once if the first install cannot find the packages.
  apt-get install -y -qq --no-install-recommends "${need_apt[@]}" ||
    { apt-get update -qq && apt-get install -y -qq --no-install-recommends "${need_apt[@]}"; }
fi
command -v openssl >/dev/null || { say "no openssl (for the throwaway CA)"; exit 1; }
{
  echo "# written by scripts/cluster/provision.sh"
  echo "PUBFLOW_TEMPORAL_SERVER=$BIN/server"
  echo "PUBFLOW_TEMPORAL_SQL_TOOL=$BIN/sql"
  echo "PUBFLOW_TDBG=$BIN/tdbg"
  echo "PUBFLOW_TEMPORAL_SCHEMA=$MOD/schema/postgresql/v12"
  echo "PUBFLOW_PG_BIN=/usr/lib/postgresql/15/bin"
} >.tools/cluster-env
say "written .tools/cluster-env"
