#!/usr/bin/env bash
# Calls a real server's gRPC API the way an operator would, with grpcurl
# through server reflection: `make run`'s configuration (SQLite, in-process
# lock) on a free port. Run by scripts/test.sh; under CI a missing grpcurl is
# installed (go install, pinned).
set -euo pipefail
cd "$(dirname "$0")/.."

grpcurl=$(command -v grpcurl || true)
if [ -z "$grpcurl" ] && [ -x "$(go env GOPATH)/bin/grpcurl" ]; then
  grpcurl="$(go env GOPATH)/bin/grpcurl"
fi
if [ -z "$grpcurl" ]; then
  if [ "${INVENTORY_TEST_STRICT:-}" != "1" ]; then
    echo "grpcurl-check: no grpcurl; skipped (go install github.com/fullstorydev/grpcurl/cmd/grpcurl@v1.9.3)"
    exit 0
  fi
  echo "grpcurl-check: installing grpcurl"
  GOFLAGS=-mod=mod go install github.com/fullstorydev/grpcurl/cmd/grpcurl@v1.9.3
  grpcurl="$(go env GOPATH)/bin/grpcurl"
fi

dir=$(mktemp -d)
bin="$dir/inventoryd"
go build -o "$bin" ./cmd/inventoryd
free() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
port=$(free)
gport=$(free)
INVENTORY_ADDR="127.0.0.1:$port" INVENTORY_GRPC_ADDR="127.0.0.1:$gport" INVENTORY_DB_DSN="$dir/inventory.db" "$bin" >"$dir/log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null || true; wait $pid 2>/dev/null || true; rm -rf "$dir"' EXIT
for _ in $(seq 1 100); do curl -sf "127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.1; done
addr="127.0.0.1:$port"
fail() { echo "grpcurl-check: $*" >&2; cat "$dir/log" >&2; exit 1; }

# The main port (connect-go) and grpc-go's own port list the same services.
for a in "$addr" "127.0.0.1:$gport"; do
  services=$("$grpcurl" -plaintext "$a" list)
  for s in inventory.v1.InventoryService grpc.health.v1.Health grpc.reflection.v1.ServerReflection; do
    grep -qx "$s" <<<"$services" || fail "list on $a lacks $s: $services"
  done
done
"$grpcurl" -plaintext "$addr" describe inventory.v1.InventoryService.StockOut | grep -q "StockOutRequest" || fail "describe StockOut"
"$grpcurl" -plaintext "$addr" grpc.health.v1.Health/Check | grep -q SERVING || fail "health"

curl -sf "$addr/query" -H 'Content-Type: application/json' \
  -d '{"query":"mutation { createProduct(input: {sku: \"GRPCURL\", name: \"G\", price: \"1.00\", initialStock: 5}) { product { id } } }"}' >/dev/null
out=$("$grpcurl" -plaintext -d '{"product_id": 1, "quantity": 2, "idempotency_key": "grpcurl-1"}' "$addr" inventory.v1.InventoryService/StockOut)
grep -q '"type": "MOVEMENT_TYPE_OUT"' <<<"$out" || fail "StockOut: $out"
again=$("$grpcurl" -plaintext -d '{"product_id": 1, "quantity": 2, "idempotency_key": "grpcurl-1"}' "$addr" inventory.v1.InventoryService/StockOut)
grep -q '"replayed": true' <<<"$again" || fail "replay: $again"
if err=$("$grpcurl" -plaintext -d '{"product_id": 1, "quantity": 50}' "$addr" inventory.v1.InventoryService/StockOut 2>&1); then
  fail "an oversell succeeded: $err"
fi
grep -q "FailedPrecondition" <<<"$err" && grep -q '"reason": "INSUFFICIENT_STOCK"' <<<"$err" || fail "oversell: $err"
# The same refusal from grpc-go's server, details included.
if err=$("$grpcurl" -plaintext -d '{"product_id": 1, "quantity": 50}' "127.0.0.1:$gport" inventory.v1.InventoryService/StockOut 2>&1); then
  fail "an oversell succeeded on the gRPC port: $err"
fi
grep -q "FailedPrecondition" <<<"$err" && grep -q '"reason": "INSUFFICIENT_STOCK"' <<<"$err" || fail "oversell on the gRPC port: $err"
echo "grpcurl-check: list on both ports, describe, health, StockOut, replay and refusals through reflection: ok"
