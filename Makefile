# pubflow: the two commands a new user needs are `make up` and `make test`.
SHELL := /bin/bash
.DEFAULT_GOAL := help

help:
	@echo "make up         run pubflow (Redis, Temporal dev server + Web UI, worker, API) in the foreground"
	@echo "make test       install what is needed and run every test (unit, time-skipping, integration)"
	@echo "make check      typecheck, lint and format check only"
	@echo "make bench      run the benchmarks in bench/ (see docs/benchmarks.md)"
	@echo "make reconcile  rebuild the Redis projection from Temporal"
	@echo "make screenshots  refresh docs/desk/*.png from the desk's browser test (docs/desk.md)"
	@echo "make keys       create data/api-keys.json with an admin key (token in data/admin.token) if there is none"
	@echo "make up-cluster pubflow on a multi-service Temporal cluster (PostgreSQL, Redis Sentinel, 3 workers, 2 APIs)"
	@echo "make test-cluster  that cluster with kill -9 of history, matching, a worker and the Redis master during a batch"

node_modules/.package-lock.json: package.json package-lock.json
	npm ci --no-audit --no-fund
	@touch $@

install: node_modules/.package-lock.json

tools:
	scripts/provision.sh

build: install
	npm run build

check: install
	npm run typecheck
	npm run lint
	npm run format:check

# The 10,000-item batch runs alone, after the rest: it keeps both cores busy for about 20 minutes, and the other suites
# have timing-sensitive tests (scheduling lateness, heartbeat timeouts).
LOAD_TESTS := test/integration/batch-10k.test.ts

test: install tools check build
	npx jest --ci --testPathIgnorePatterns=/node_modules/ --testPathIgnorePatterns=$(LOAD_TESTS)
	npx jest --ci $(LOAD_TESTS)

screenshots: install tools build
	PUBFLOW_DESK_SCREENSHOTS=docs/desk npx jest --ci test/desk/desk.test.ts

up: install tools build
	scripts/up.sh

bench: install tools build
	scripts/bench.sh

reconcile: install build
	node lib/reconcile.js

# make up does this itself; docker compose needs it done first (docker-compose.yml mounts data/api-keys.json).
keys: install build
	node lib/tools/keys.js ensure-admin --dir data

# Cluster (README "Cluster"): Temporal v1.32.0 built from the Go module proxy into .tools/ (cached), PostgreSQL 15.
cluster-tools:
	scripts/cluster/provision.sh

up-cluster: install tools cluster-tools build
	scripts/cluster/up.sh

# Faults on that cluster during a 500-item batch; bounded (TEST_CLUSTER_TIMEOUT, default 900 s). Not in make test.
test-cluster: install tools cluster-tools build
	scripts/cluster/test.sh

.PHONY: help install tools build check test up bench reconcile keys screenshots cluster-tools up-cluster test-cluster
