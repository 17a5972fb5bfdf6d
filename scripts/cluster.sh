#!/usr/bin/env bash
# A local cluster for trying several replicas: a PostgreSQL server and an
# etcd member of its own, and two inventoryd replicas built from this tree,
# locking through etcd. Everything lives in .cluster/ (data, logs, pids) and
# listens on loopback only.
#
#   scripts/cluster.sh start    # make cluster
#   scripts/cluster.sh stop     # make cluster-stop: every process, by its pid
#   scripts/cluster.sh status
#
# Replicas: http://127.0.0.1:8081/ and http://127.0.0.1:8082/. PostgreSQL:
# postgres://postgres@127.0.0.1:55432/inventory. etcd: 127.0.0.1:23790 (its
# peers 23800). Other ports, for a machine where these are taken:
# INVENTORY_CLUSTER_PORTS="8081 8082 55432 23790 23800" (replica, replica,
# PostgreSQL, etcd, etcd's peers), given to start, stop and status alike.
# Needs PostgreSQL's server binaries (Debian: postgresql) and etcd
# (Debian: etcd-server).
set -euo pipefail
cd "$(dirname "$0")/.."
dir=.cluster
read -r r1 r2 pg_port etcd_port peer_port <<<"${INVENTORY_CLUSTER_PORTS:-8081 8082 55432 23790 23800}"
ports=("$r1" "$r2")
[ -n "$peer_port" ] || { echo "cluster: INVENTORY_CLUSTER_PORTS needs five ports: replica, replica, PostgreSQL, etcd, etcd's peers" >&2; exit 2; }
dsn="postgres://postgres@127.0.0.1:$pg_port/inventory?sslmode=disable"

running() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

wait_port() { # port name log
  for _ in $(seq 1 100); do
    (exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null && return 0
    sleep 0.1
  done
  echo "cluster: $2 did not start; see $3" >&2
  tail -5 "$3" >&2
  exit 1
}

pg_bin() {
  local d
  d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
  if [ -n "$d" ]; then echo "$d"; return; fi
  command -v initdb >/dev/null && dirname "$(command -v initdb)" && return
  echo "cluster: no PostgreSQL server binaries (apt-get install postgresql)" >&2
  exit 1
}

start() {
  command -v etcd >/dev/null || { echo "cluster: no etcd binary (apt-get install etcd-server)" >&2; exit 1; }
  mkdir -p "$dir"
  local bin
  bin=$(pg_bin)
  if ! running "$dir/postgres.pid"; then
    # PostgreSQL refuses to run as root: as root, it runs as postgres.
    local as=()
    if [ "$(id -u)" = 0 ]; then
      id postgres >/dev/null 2>&1 || { echo "cluster: PostgreSQL refuses to run as root, and there is no postgres user" >&2; exit 1; }
      as=(runuser -u postgres --)
    fi
    if [ ! -d "$dir/pg" ]; then
      mkdir -m 700 "$dir/pg"
      [ ${#as[@]} -eq 0 ] || chown postgres "$dir/pg"
      "${as[@]}" "$bin/initdb" -D "$dir/pg" -U postgres -A trust -E UTF8 --no-locale >"$dir/initdb.log" 2>&1
    fi
    "${as[@]}" "$bin/postgres" -D "$dir/pg" -h 127.0.0.1 -p "$pg_port" -k "$PWD/$dir/pg" >"$dir/postgres.log" 2>&1 &
    echo $! >"$dir/postgres.pid"
    wait_port "$pg_port" PostgreSQL "$dir/postgres.log"
    for _ in $(seq 1 50); do "$bin/psql" -h 127.0.0.1 -p "$pg_port" -U postgres -Atc 'SELECT 1' postgres >/dev/null 2>&1 && break; sleep 0.1; done
    "$bin/psql" -h 127.0.0.1 -p "$pg_port" -U postgres -Atc "SELECT 1 FROM pg_database WHERE datname = 'inventory'" postgres | grep -q 1 ||
      "$bin/psql" -h 127.0.0.1 -p "$pg_port" -U postgres -qc 'CREATE DATABASE inventory' postgres
  fi
  if ! running "$dir/etcd.pid"; then
    etcd --name cluster --data-dir "$dir/etcd" --listen-client-urls "http://127.0.0.1:$etcd_port" \
      --advertise-client-urls "http://127.0.0.1:$etcd_port" --listen-peer-urls "http://127.0.0.1:$peer_port" \
      --initial-advertise-peer-urls "http://127.0.0.1:$peer_port" --initial-cluster "cluster=http://127.0.0.1:$peer_port" >"$dir/etcd.log" 2>&1 &
    echo $! >"$dir/etcd.pid"
    wait_port "$etcd_port" etcd "$dir/etcd.log"
  fi
  echo "cluster: building inventoryd"
  go build -o "$dir/inventoryd" ./cmd/inventoryd
  local i=0
  for port in "${ports[@]}"; do
    i=$((i + 1))
    if running "$dir/replica-$i.pid"; then continue; fi
    INVENTORY_ADDR="127.0.0.1:$port" INVENTORY_DB_DRIVER=postgres INVENTORY_DB_DSN="$dsn" \
      INVENTORY_LOCK_BACKEND=etcd INVENTORY_ETCD_ENDPOINTS="127.0.0.1:$etcd_port" \
      "$dir/inventoryd" >"$dir/replica-$i.log" 2>&1 &
    echo $! >"$dir/replica-$i.pid"
    wait_port "$port" "replica $i" "$dir/replica-$i.log"
  done
  status
  echo "cluster: stop it with make cluster-stop"
}

stop() {
  local f
  for f in "$dir"/replica-*.pid "$dir/etcd.pid" "$dir/postgres.pid"; do
    [ -f "$f" ] || continue
    if running "$f"; then
      kill -TERM "$(cat "$f")"
      for _ in $(seq 1 100); do running "$f" || break; sleep 0.1; done
      running "$f" && kill -KILL "$(cat "$f")"
    fi
    rm -f "$f"
  done
  echo "cluster: stopped (data kept in $dir; rm -rf $dir for a fresh one)"
}

status() {
  local f name
  for f in "$dir/postgres.pid" "$dir/etcd.pid" "$dir"/replica-*.pid; do
    [ -f "$f" ] || continue
    name=$(basename "$f" .pid)
    if running "$f"; then echo "  $name: running (pid $(cat "$f"), log $dir/$name.log)"; else echo "  $name: not running"; fi
  done
  echo "  replicas: http://127.0.0.1:${ports[0]}/ http://127.0.0.1:${ports[1]}/   database: $dsn"
}

case "${1:-}" in
start) start ;;
stop) stop ;;
status) status ;;
*) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
