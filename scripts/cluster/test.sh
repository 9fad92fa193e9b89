#!/usr/bin/env bash
# `make test-cluster`: faults on the multi-service cluster of scripts/cluster/up.sh, bounded (gives up after
# TEST_CLUSTER_TIMEOUT seconds, default 900) and self-stopping.
#   A 500-item webhook batch over 20 accounts, received by the demo receiver (which records every upload). While it
#   runs: kill -9 of one history service, one matching service, one pubflow worker, then of the Redis master
#   (Sentinel promotes the replica). Afterwards: every task settled, uploads lost / sent twice counted on the
#   receiver, and `reconcile` against Temporal (documents it had to write = where the mirror differed).
#   Before the faults, on the healthy cluster: jest suites with PUBFLOW_TEST_TEMPORAL=external (test/helpers/
#   servers.ts), each test file in a fresh namespace of the cluster over mTLS, its own redis-server:
#   TEST_CLUSTER_SUITES (default test/cluster/external-temporal.test.ts test/api/api.test.ts
#   test/integration/queue-processes.test.ts; empty: none; README "Cluster" says which others cannot run there).
# A task whose upload was in flight on the killed worker is expected in review (Unconfirmed), never retried.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$(pwd)
ITEMS=${TEST_CLUSTER_ITEMS:-500}
LIMIT=${TEST_CLUSTER_TIMEOUT:-900}
say() { echo "[test-cluster] $*"; }
W=$(mktemp -d /tmp/pubflow-test-cluster-XXXXXX)
chmod 0755 "$W"   # PostgreSQL runs as the postgres user, under it
started=$SECONDS
up_pid="" recv_pid=""
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  [ -n "$up_pid" ] && kill -TERM "$up_pid" 2>/dev/null && { for _ in $(seq 1 900); do kill -0 "$up_pid" 2>/dev/null || break; sleep 0.1; done; }
  [ -n "$recv_pid" ] && kill -TERM "$recv_pid" 2>/dev/null
  say "took $((SECONDS - started)) s; logs in $W"
  exit $rc
}
trap cleanup EXIT INT TERM
deadline=$((SECONDS + LIMIT))
left() { [ $SECONDS -lt $deadline ] || { say "time limit of $LIMIT s reached"; exit 1; }; }

# The receiving platform: the demo receiver records every upload (taskId, attempt, answer).
RECV_PORT=$(node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')
DEMO_RECEIVER_PORT=$RECV_PORT setsid node lib/tools/demo-receiver.js >"$W/receiver.log" 2>&1 &
recv_pid=$!
node -e '
  const n = 20, url = process.argv[1];
  console.log(JSON.stringify(Array.from({length: n}, (_, i) => ({id: `hook-${i}`, platform: "webhook",
    displayName: `hook ${i}`, settings: {url, timeoutMs: 60000}}))));' "http://127.0.0.1:$RECV_PORT/upload" >"$W/accounts.json"

# The cluster.
CLUSTER_DIR=$W/cluster CLUSTER_READY_FILE=$W/ready.env PUBFLOW_ACCOUNTS_FILE=$W/accounts.json \
  setsid scripts/cluster/up.sh >"$W/up.log" 2>&1 &
up_pid=$!
until [ -f "$W/ready.env" ]; do
  kill -0 $up_pid 2>/dev/null || { say "make up-cluster failed:"; tail -30 "$W/up.log"; exit 1; }
  left; sleep 1
done
say "cluster up in $((SECONDS - started)) s"

# The jest suites against the cluster: only its Temporal settings (mTLS to frontend 1), not its Redis or API.
SUITES=${TEST_CLUSTER_SUITES-test/cluster/external-temporal.test.ts test/api/api.test.ts test/integration/queue-processes.test.ts}
if [ -n "$SUITES" ]; then
  suites_started=$SECONDS
  # shellcheck disable=SC2046
  (set -a; source "$W/ready.env"; set +a
   unset REDIS_SENTINELS REDIS_SENTINEL_NAME REDIS_URL PUBFLOW_PUBLISHED_DIR PUBFLOW_MEDIA_ROOT PUBFLOW_API_KEYS_FILE
   PUBFLOW_TEST_TEMPORAL=external timeout -k 10 $((deadline - SECONDS)) npx jest --runInBand $SUITES) \
    >"$W/jest.log" 2>&1 && jest_rc=0 || jest_rc=$?
  grep -E '^(PASS|FAIL) |^Tests:' "$W/jest.log" | sed 's/^/[test-cluster] jest: /'
  say "jest suites against the cluster (exit $jest_rc) in $((SECONDS - suites_started)) s: $SUITES"
  [ "$jest_rc" = 0 ] || { say "FAILED: jest suites against the cluster (see $W/jest.log)"; grep -E '●' "$W/jest.log" | head -20; exit 1; }
fi

set -a; source "$W/ready.env"; set +a
AUTH="Authorization: Bearer $(cat "$CLUSTER_DIR/admin.token")"
pid() { cat "$CLUSTER_DIR/run/$1.pid"; }
api() { curl -fsS -H "$AUTH" "$@"; }

echo "fault test video" >"$PUBFLOW_MEDIA_ROOT/cluster-test.mp4"
node -e 'const n=+process.argv[1]; console.log(JSON.stringify({concurrency: 100,
  defaults: {platform: "webhook", video: {path: "cluster-test.mp4"}},
  items: Array.from({length: n}, (_, i) => ({accountId: `hook-${i % 20}`, title: `item ${i}`}))}))' "$ITEMS" >"$W/batch.json"
BATCH=$(api -XPOST "$PUBFLOW_URL/api/v1/publish/batch" -H 'content-type: application/json' -d @"$W/batch.json" |
  node -pe 'JSON.parse(require("fs").readFileSync(0)).taskId')
say "batch $BATCH: $ITEMS items"
counts() { api "$PUBFLOW_URL2/api/v1/tasks/$BATCH" | node -pe '
  const d = JSON.parse(require("fs").readFileSync(0)); const c = d.counts || {};
  [d.status, c.total, c.pending ?? 0, c.running ?? 0, c.success ?? 0, c.failed ?? 0, c.cancelled ?? 0].join(" ")'; }
done_count() { read -r _ _ _ _ s f c <<<"$(counts 2>/dev/null || echo "x 0 0 0 0 0 0")"; echo $((s + f + c)); }
wait_done() { # n
  until [ "$(done_count)" -ge "$1" ]; do left; sleep 1; done
}
fault() { # name what
  kill -KILL "$(pid "$1")"; say "kill -9 $1 ($2) at $(done_count)/$ITEMS settled"
}
wait_done $((ITEMS / 10)); fault temporal-history2 "one of 2 history services"
wait_done $((ITEMS * 2 / 10)); fault temporal-matching2 "one of 2 matching services"
wait_done $((ITEMS * 3 / 10)); fault pubflow-worker3 "one of 3 pubflow workers"
wait_done $((ITEMS * 4 / 10))
kill -KILL "$(pid redis-master)"; say "kill -9 redis-master at $(done_count)/$ITEMS settled: Sentinel fails over"
until redis-cli -p "$REDIS_SENTINEL_PORT" sentinel get-master-addr-by-name pubflow | grep -qv "^$REDIS_MASTER_PORT$" &&
  ! redis-cli -p "$REDIS_SENTINEL_PORT" sentinel get-master-addr-by-name pubflow | grep -q "^$REDIS_MASTER_PORT$"; do left; sleep 0.5; done
say "sentinel: new master $(redis-cli -p "$REDIS_SENTINEL_PORT" sentinel get-master-addr-by-name pubflow | tail -1)"

# Settled: the batch finished (its counts have nothing pending or running).
until read -r st total pe ru su fa ca <<<"$(counts 2>/dev/null || echo "x 0 1 1 0 0 0")" && [ "$pe" = 0 ] && [ "$ru" = 0 ] && [ "$total" = "$ITEMS" ] && [ "$st" != running ] && [ "$st" != pending ]; do
  left; sleep 2
done
say "batch $st: total $total, success $su, failed (in review) $fa, cancelled $ca"
api "http://127.0.0.1:$RECV_PORT/requests" >"$W/received.json" 2>/dev/null || curl -fsS "http://127.0.0.1:$RECV_PORT/requests" >"$W/received.json"
read -r received distinct dups <<<"$(node -pe '
  const r = JSON.parse(require("fs").readFileSync(process.argv[1])).items.filter((x) => /^200/.test(String(x.answered)) || x.answered === "ok");
  const by = new Map(); for (const x of r) by.set(x.taskId, (by.get(x.taskId) || 0) + 1);
  [r.length, by.size, [...by.values()].filter((v) => v > 1).length].join(" ")' "$W/received.json")"
lost=$((su > distinct ? su - distinct : 0))
say "receiver: $received uploads answered ok, $distinct tasks; sent twice: $dups; lost (success without an upload): $lost"
node lib/reconcile.js >"$W/reconcile.json" 2>"$W/reconcile.log" && rc=0 || rc=$?
read -r scanned written errors <<<"$(node -pe 'const r=JSON.parse(require("fs").readFileSync(process.argv[1])); [r.scanned, r.written, r.errors].join(" ")' "$W/reconcile.json")"
say "reconcile (exit $rc): $scanned executions, $written documents Redis did not have as Temporal does, $errors errors"
say "figures: items $ITEMS, settled $((su + fa + ca)), success $su, review $fa, lost $lost, sent twice $dups, mirror repaired $written"
[ $((su + fa + ca)) = "$ITEMS" ] && [ "$lost" = 0 ] && [ "$dups" = 0 ] && [ "$rc" = 0 ] || { say "FAILED"; exit 1; }
say "PASSED"
