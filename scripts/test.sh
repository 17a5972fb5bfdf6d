#!/usr/bin/env bash
# Runs the whole test suite against real components.
#
# PostgreSQL: unless INVENTORY_TEST_POSTGRES_DSN is set, a fresh database is
# created on the local server (INVENTORY_TEST_POSTGRES_ADMIN_DSN, default
# postgres://postgres@127.0.0.1:5432/postgres) and dropped afterwards; each
# test then works in a schema of its own.
#
# Under CI (CI=true) INVENTORY_TEST_STRICT=1 makes any skipped component a
# failure, a stopped local PostgreSQL is started first, and a missing
# redis-server, Chromium, Node.js or helm is installed, and kube-apiserver built.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "${CI:-}" = "true" ]; then
  export INVENTORY_TEST_STRICT=1
fi

# What to undo at exit (a database of our own, a NATS server of our own).
on_exit=()
cleanup() { for c in "${on_exit[@]}"; do eval "$c"; done; }
trap cleanup EXIT

# Lock backend tests start their own redis-server processes on free ports
# (and Redis Clusters of six, created with redis-cli)
# (etcd runs embedded in the tests). Under CI a missing server is installed.
# The GraphiQL test loads the page in headless Chromium; under CI it is
# installed too when missing.
missing=()
command -v redis-server >/dev/null || missing+=(redis-server)
command -v redis-cli >/dev/null || missing+=(redis-tools) # creates the Redis Cluster tests' clusters
command -v chromium >/dev/null || command -v chromium-browser >/dev/null || command -v google-chrome >/dev/null || missing+=(chromium)
command -v nats-server >/dev/null || missing+=(nats-server) # the broker-restart test runs one of its own
# The walkthroughs of the README and docs/ (cmd/inventoryd TestWalkthroughs) use
# curl, jq and kcat, as a reader would.
for tool in curl jq kcat; do command -v $tool >/dev/null || missing+=($tool); done
command -v etcd >/dev/null || missing+=(etcd-server) # make cluster's, in docs/DEVELOPMENT.md's walkthrough
# The database-restart fault case runs a PostgreSQL server of its own (pgtest).
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null || missing+=(postgresql)
# The authentication tests run a real OpenID provider, the npm package
# oidc-provider (internal/testenv/oidctest), on Node.js; the GraphQL-over-HTTP
# audit (internal/testenv/gqlaudit) runs on it too.
command -v node >/dev/null || missing+=(nodejs)
command -v npm >/dev/null || missing+=(npm)
if [ ${#missing[@]} -gt 0 ] && [ "${INVENTORY_TEST_STRICT:-}" = "1" ] && command -v apt-get >/dev/null; then
  echo "test: installing ${missing[*]}"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# The OpenID provider's, the federation tests' and the GraphQL-over-HTTP
# audit's npm packages, from their lockfiles (npm ci), unless installed;
# without npm their tests skip (and fail under CI).
if command -v npm >/dev/null; then
  make -s oidc-provider-deps
  # Apollo Federation's composition and gateway for graph's tests.
  make -s federation-deps
  make -s graphql-http-deps
fi

# The Helm chart's checks (deploy/helm/charttest) run helm, and apply the
# chart to a kube-apiserver (a server-side dry run); under CI a missing one
# is built (make helm: go install, a few minutes; make kube-apiserver: 10-25
# minutes; each once per machine).
if [ "${INVENTORY_TEST_STRICT:-}" = "1" ] && { [ -z "${GO_TEST_PKGS:-}" ] || [[ "${GO_TEST_PKGS}" == *deploy/helm* ]]; }; then
  make -s helm
  [ -n "${INVENTORY_TEST_KUBE_APISERVER:-}" ] || make -s kube-apiserver
fi

# NATS with JetStream for the broker tests: one of our own on a free port,
# so that the suite does not depend on the state the machine's server was
# left in (a JetStream that stopped answering failed every NATS test once).
# Without nats-server (installed above under CI) the tests use the
# machine's on 127.0.0.1:4222, with streams named per test.
if [ -z "${INVENTORY_TEST_NATS_URL:-}" ] && command -v nats-server >/dev/null; then
  nats_dir=$(mktemp -d)
  nats_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  nats-server -a 127.0.0.1 -p "$nats_port" -js -sd "$nats_dir" >"$nats_dir/log" 2>&1 &
  nats_pid=$!
  on_exit+=("kill $nats_pid 2>/dev/null; rm -rf '$nats_dir'")
  for _ in $(seq 1 50); do (exec 3<>/dev/tcp/127.0.0.1/"$nats_port") 2>/dev/null && break; sleep 0.1; done
  export INVENTORY_TEST_NATS_URL="nats://127.0.0.1:$nats_port"
  echo "test: NATS JetStream of our own at $INVENTORY_TEST_NATS_URL"
fi

# RabbitMQ for its broker's tests: the machine's own on 127.0.0.1:5672
# (queues named per test), or, if none answers, one started here (installed
# first under CI). It takes the default port: nothing else answers there.
if [ -z "${INVENTORY_TEST_RABBITMQ_URL:-}" ] && ! (exec 3<>/dev/tcp/127.0.0.1/5672) 2>/dev/null; then
  if ! command -v rabbitmq-server >/dev/null && [ "${INVENTORY_TEST_STRICT:-}" = "1" ] && command -v apt-get >/dev/null; then
    echo "test: installing rabbitmq-server"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq rabbitmq-server >/dev/null
  fi
  if command -v rabbitmq-server >/dev/null; then
    rabbit_log=$(mktemp)
    RABBITMQ_NODE_IP_ADDRESS=127.0.0.1 rabbitmq-server >"$rabbit_log" 2>&1 &
    on_exit+=("rabbitmqctl stop >/dev/null 2>&1 || kill $! 2>/dev/null; rm -f '$rabbit_log'")
    for _ in $(seq 1 120); do (exec 3<>/dev/tcp/127.0.0.1/5672) 2>/dev/null && break; sleep 0.5; done
    echo "test: RabbitMQ of our own at 127.0.0.1:5672"
  fi
fi

admin="${INVENTORY_TEST_POSTGRES_ADMIN_DSN:-postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable}"

postgres_up() { command -v psql >/dev/null && psql "$admin" -qtAc 'SELECT 1' >/dev/null 2>&1; }

if [ -z "${INVENTORY_TEST_POSTGRES_DSN:-}" ]; then
  if ! postgres_up && [ "${INVENTORY_TEST_STRICT:-}" = "1" ] && command -v pg_ctlcluster >/dev/null; then
    echo "test: starting the local PostgreSQL cluster"
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start || true
    for _ in $(seq 1 30); do postgres_up && break; sleep 1; done
  fi
  if postgres_up; then
    db="inventory_test_$(date +%s)_$$"
    psql "$admin" -qc "CREATE DATABASE $db" >/dev/null
    on_exit+=("psql '$admin' -qc 'DROP DATABASE IF EXISTS $db WITH (FORCE)' >/dev/null 2>&1 || true")
    base="${admin%%\?*}"         # URL without its query
    query="${admin#"$base"}"      # "?sslmode=disable" or ""
    export INVENTORY_TEST_POSTGRES_DSN="${base%/*}/$db$query"
    echo "test: PostgreSQL database $db"
  else
    echo "test: PostgreSQL is not reachable at $admin; its tests will skip (and fail under CI)"
  fi
fi

# TEST_TAGS and GO_TEST_PKGS let `make test-faults` reuse this set-up.
go test -race -count=1 -tags "${TEST_TAGS:-}" ${GO_TEST_FLAGS:-} ${GO_TEST_PKGS:-./...}

# The benchmark-only stock strategies exist only in a benchstrategies build
# (internal/app/strategy.go): their own tests run in one.
if [ -z "${GO_TEST_PKGS:-}" ]; then
  go test -race -count=1 -tags benchstrategies -run 'Strateg' ./internal/app/
fi

# The gRPC API through grpcurl and server reflection, as an operator calls it.
if [ -z "${GO_TEST_PKGS:-}" ]; then
  ./scripts/grpcurl-check.sh
fi
