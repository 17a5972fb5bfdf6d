#!/usr/bin/env bash
# Demo data for a running server (make demo-data; default
# http://127.0.0.1:8080, or INVENTORY_URL; INVENTORY_TOKEN for a server with
# tokens, an admin's): a shop location, five products that show what the
# service does (one low on stock, one taking pre-orders, one nobody counts),
# a bundle of two of them, some stock received at the shop, a sale and a
# reservation. Every write has an idempotency key, so running it again
# changes nothing (each answer then says replayed).
set -euo pipefail
url=${INVENTORY_URL:-http://127.0.0.1:8080}
auth=()
[ -z "${INVENTORY_TOKEN:-}" ] || auth=(-H "Authorization: Bearer $INVENTORY_TOKEN")

# q posts a GraphQL document (its quotes escaped for JSON) and prints the
# answer; it stops the script on an error.
q() {
  local out
  out=$(curl -sS "$url/query" -H 'Content-Type: application/json' "${auth[@]}" -d "{\"query\":\"$1\"}")
  if [[ $out == *'"errors"'* ]]; then
    echo "demo-data: $out" >&2
    exit 1
  fi
  echo "$out"
}

# id prints the first "id" of an answer.
id() { sed -E 's/.*"id":"([^"]+)".*/\1/' <<<"$1"; }

curl -sSf -o /dev/null "$url/healthz" || { echo "demo-data: no server at $url (make run, or set INVENTORY_URL)" >&2; exit 1; }

locations=$(q '{ locations { id code } }')
if [[ $locations == *'"code":"SHOP-1"'* ]]; then
  shop=$(sed -E 's/.*"id":"([^"]+)","code":"SHOP-1".*/\1/' <<<"$locations")
else
  shop=$(id "$(q 'mutation { createLocation(input: {code: \"SHOP-1\", name: \"Shop on Main Street\"}) { id } }')")
fi
echo "location SHOP-1: $shop"

product() { # sku name price stock threshold extra
  id "$(q "mutation { createProduct(input: {sku: \\\"$1\\\", name: \\\"$2\\\", price: \\\"$3\\\", initialStock: $4, threshold: $5$6, idempotencyKey: \\\"demo-$1\\\"}) { product { id } } }")"
}
mug=$(product MUG 'Enamel mug' 8.50 40 5 '')
tee=$(product TEE 'T-shirt' 19.00 12 10 '')
cap=$(product CAP 'Cap' 15.00 3 5 '')
book=$(product BOOK 'Cookbook (pre-order)' 32.00 0 0 ', backorderLimit: 20')
card=$(product GIFTCARD 'Gift card' 25.00 0 0 ', tracked: false')
echo "products MUG $mug, TEE $tee, CAP $cap (low), BOOK $book (pre-orders up to 20), GIFTCARD $card (not counted)"

set_=$(id "$(q "mutation { createBundle(input: {sku: \\\"GIFTSET\\\", name: \\\"Mug and T-shirt\\\", price: \\\"24.00\\\", components: [{productId: \\\"$mug\\\", quantity: 1}, {productId: \\\"$tee\\\", quantity: 1}], idempotencyKey: \\\"demo-GIFTSET\\\"}) { product { id } } }")")
echo "bundle GIFTSET: $set_ (its stock is its components')"

q "mutation { stockIn(input: {productId: \\\"$mug\\\", locationId: \\\"$shop\\\", quantity: 10, reason: \\\"delivery\\\", idempotencyKey: \\\"demo-delivery-1\\\"}) { replayed level { stock } } }" >/dev/null
q "mutation { stockOut(input: {productId: \\\"$tee\\\", quantity: 3, reason: \\\"sale\\\", reference: \\\"order-1\\\", idempotencyKey: \\\"demo-order-1\\\"}) { replayed level { available } } }" >/dev/null
q "mutation { stockOut(input: {productId: \\\"$book\\\", quantity: 4, reason: \\\"pre-order\\\", reference: \\\"order-2\\\", idempotencyKey: \\\"demo-order-2\\\"}) { replayed level { available } } }" >/dev/null
q "mutation { reserveStock(input: {items: [{productId: \\\"$mug\\\", quantity: 2}], ttlSeconds: 3600, reference: \\\"cart-1\\\", idempotencyKey: \\\"demo-cart-1\\\"}) { replayed } }" >/dev/null
echo "received 10 MUG at SHOP-1, sold 3 TEE (now low), pre-sold 4 BOOK (backordered), held 2 MUG for an hour"
echo
q '{ products(first: 10) { edges { node { sku available backordered lowStock isBundle } } } }'
