//go:build faults

package faults

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"
)

// The warehouse side of every case's workload: a mover damages and
// repairs units at the origin (moveStock), and a shipper transfers units
// of the products from the origin to a second location, receiving or
// cancelling each shipment, while the sales go on. Every step carries an
// idempotency key, is retried as a client should, and is recorded in the
// history (model.go), so each product's units must add up across the two
// locations and what is in transit.

// Idempotency key prefixes the service puts before a transfer step's key
// on its ledger row.
const (
	shipKeyPrefix    = "ship:"
	receiveKeyPrefix = "receive:"
	cancelKeyPrefix  = "cancel:"
)

// createDestination makes the second location and returns its ID.
func createDestination(t *testing.T, admin *client) string {
	var out struct{ CreateLocation struct{ ID string } }
	code, err := admin.do(`mutation { createLocation(input: {code: "SHOP", name: "Shop"}) { id } }`, nil, &out)
	if code != "OK" || err != nil {
		t.Fatalf("create the destination: %s %v", code, err)
	}
	return out.CreateLocation.ID
}

// step runs one keyed stock step of a warehouse op and records it: the
// outcome OK, INSUFFICIENT_STOCK, or unknown (settled later by the key on
// its ledger row). ledgerKey is that key; the acknowledged ones go in
// acked. It returns the outcome kind.
func (c *client) step(h *History, product int64, in Input, ledgerKey string, acked *sync.Map, query string, vars map[string]any) string {
	ret := h.Call(c.id, product, in, ledgerKey)
	var data map[string]any
	code, err := c.do(query, vars, &data)
	out := Output{Kind: Unknown}
	switch {
	case err != nil:
	case code == "OK":
		out = Output{Kind: OK}
		acked.Store(ledgerKey, true)
	case code == "INSUFFICIENT_STOCK" && refusable[in.Kind]:
		out = Output{Kind: Insufficient}
	default:
		c.t.Errorf("%s %d of product %d: unexpected %s", in.Kind, in.Qty, product, code)
	}
	ret(out)
	return out.Kind
}

// moveLoop damages one unit of a product and, a moment later, repairs it,
// until ctx is done.
func (c *client) moveLoop(ctx context.Context, h *History, products []int64, acked *sync.Map) {
	r := rand.New(rand.NewPCG(uint64(c.id), 11))
	const move = `mutation($id: ID!, $from: StockState!, $to: StockState!, $key: String) {
		moveStock(input: {productId: $id, quantity: 1, from: $from, to: $to, idempotencyKey: $key}) { replayed } }`
	for n := 0; ctx.Err() == nil; n++ {
		product := products[r.IntN(len(products))]
		key := fmt.Sprintf("m%d-%d", c.id, n)
		vars := map[string]any{"id": product, "from": "AVAILABLE", "to": "DAMAGED", "key": key + "-a"}
		if c.step(h, product, Input{Kind: OpDamage, Qty: 1}, key+"-a", acked, move, vars) != OK {
			continue
		}
		time.Sleep(time.Duration(r.IntN(50)) * time.Millisecond)
		vars = map[string]any{"id": product, "from": "DAMAGED", "to": "AVAILABLE", "key": key + "-b"}
		c.step(h, product, Input{Kind: OpRepair, Qty: 1}, key+"-b", acked, move, vars)
	}
}

// transferLoop drafts a transfer of 1-2 units of a product to dest, ships
// it, and receives it in full or (one in four) cancels it, until ctx is
// done. A shipment whose outcome stays unknown is left as it is: its
// units are in transit, or it is still a draft.
func (c *client) transferLoop(ctx context.Context, h *History, products []int64, dest string, acked *sync.Map) {
	r := rand.New(rand.NewPCG(uint64(c.id), 13))
	for n := 0; ctx.Err() == nil; n++ {
		product, q := products[r.IntN(len(products))], 1+r.Int64N(2)
		key := fmt.Sprintf("t%d-%d", c.id, n)
		var made struct {
			CreateTransfer struct{ Transfer struct{ ID string } }
		}
		code, err := c.do(`mutation($p: ID!, $q: Int!, $to: ID!, $key: String) {
			createTransfer(input: {originLocationId: 1, destinationLocationId: $to, items: [{productId: $p, quantity: $q}], idempotencyKey: $key}) { transfer { id } } }`,
			map[string]any{"p": product, "q": q, "to": dest, "key": key}, &made)
		if err != nil || code != "OK" {
			if err == nil {
				c.t.Errorf("create a transfer of product %d: unexpected %s", product, code)
			}
			continue
		}
		id := made.CreateTransfer.Transfer.ID
		ship := `mutation($id: ID!, $key: String) { shipTransfer(id: $id, idempotencyKey: $key) { replayed } }`
		if c.step(h, product, Input{Kind: OpShip, Qty: q}, shipKeyPrefix+key, acked, ship, map[string]any{"id": id, "key": key}) != OK {
			continue
		}
		time.Sleep(time.Duration(r.IntN(50)) * time.Millisecond)
		if r.IntN(4) == 0 {
			cancel := `mutation($id: ID!, $key: String) { cancelTransfer(id: $id, idempotencyKey: $key) { replayed } }`
			c.step(h, product, Input{Kind: OpReturn, Qty: q}, cancelKeyPrefix+key, acked, cancel, map[string]any{"id": id, "key": key})
			continue
		}
		receive := `mutation($id: ID!, $p: ID!, $q: Int!, $key: String) {
			receiveTransfer(input: {id: $id, items: [{productId: $p, quantity: $q}], idempotencyKey: $key}) { replayed } }`
		c.step(h, product, Input{Kind: OpReceive, Qty: q}, receiveKeyPrefix+key, acked, receive,
			map[string]any{"id": id, "p": product, "q": q, "key": key})
	}
}

// readUnits reads a product's units at the origin and at dest, from the
// database, as the model's read sees them.
func readUnits(t *testing.T, reader *client, product int64, dest string) Output {
	var out struct {
		Product struct {
			Levels []struct {
				Location struct {
					ID         string
					DatabaseID int64
				}
				Stock, Reserved, Damaged, Incoming int64
			}
		}
	}
	code, err := reader.do(`query($id: ID!) { product(id: $id, consistency: STRONG) { levels { location { id databaseId } stock reserved damaged incoming } } }`,
		map[string]any{"id": product}, &out)
	if code != "OK" || err != nil {
		t.Fatalf("read product %d: %s %v", product, code, err)
	}
	o := Output{Kind: OK}
	for _, l := range out.Product.Levels {
		switch {
		case l.Location.DatabaseID == 1: // the default location, the origin
			o.After, o.Reserved, o.Damaged = l.Stock, l.Reserved, l.Damaged
		case l.Location.ID == dest:
			o.Dest, o.Transit = l.Stock, l.Incoming
		}
	}
	return o
}
