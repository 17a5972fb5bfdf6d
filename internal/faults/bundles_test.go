//go:build faults

package faults

import (
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// The bundle side of every case's workload: a bundle of two products of
// its own (2 units of the first, 1 of the second; they start with 40 and
// 20 units, take no backorders, and no other client touches them). Some
// clients sell the bundle, 1-2 at a time; the others sell and restock its
// components directly, so that both run short in turn while the bundle
// sells. Every request carries an idempotency key and is retried as a
// client should; the bundle's sales and the components' changes are
// checked together (History.SetBundle).
const bundleClients = 4 // half sell the bundle, half its components

// bundles is a case's bundle and what its workload was told.
type bundles struct {
	id    int64
	comps []Component
	// initial are the components' units at the start, by product.
	initial map[int64]int64
	// acked holds the keys of the changes acknowledged.
	acked                  sync.Map
	sold, refused, unknown atomic.Int64 // the bundle's sales
	// checked is the check of the bundle's history with its components'.
	checked Result
}

// newBundles creates the components and the bundle, and records the
// bundle in h.
func newBundles(t *testing.T, admin *client, h *History) *bundles {
	b := &bundles{initial: map[int64]int64{}}
	for i, c := range []struct{ qty, stock int64 }{{2, 40}, {1, 20}} {
		id := createProducts(t, admin, fmt.Sprintf("K%d", i), 1, c.stock)[0]
		b.comps = append(b.comps, Component{Product: id, Qty: c.qty})
		b.initial[id] = c.stock
	}
	var out struct {
		CreateBundle struct{ Product struct{ DatabaseID int64 } }
	}
	code, err := admin.do(`mutation($a: ID!, $b: ID!) { createBundle(input: {sku: "KIT", name: "Kit", price: "1.00",
		components: [{productId: $a, quantity: 2}, {productId: $b, quantity: 1}]}) { product { databaseId } } }`,
		map[string]any{"a": b.comps[0].Product, "b": b.comps[1].Product}, &out)
	if code != "OK" || err != nil || out.CreateBundle.Product.DatabaseID == 0 {
		t.Fatalf("createBundle: %s %v", code, err)
	}
	b.id = out.CreateBundle.Product.DatabaseID
	h.SetBundle(b.id, b.comps...)
	return b
}

// run runs the bundle's clients until ctx is done: the even ones sell
// 1-2 bundles at a time; the odd ones pick a component and sell 1-2 units
// of it or (half the time) restock it with one to three bundles' worth.
func (b *bundles) run(ctx context.Context, t *testing.T, h *History, rs []*replica, timeout, retryFor time.Duration) {
	var wg sync.WaitGroup
	for i := range bundleClients {
		c := &client{t: t, id: clients + 3 + holders + i, replicas: rs, http: &http.Client{Timeout: timeout}, retryFor: retryFor}
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(c.id), 17))
			for n := 0; ctx.Err() == nil; n++ {
				key := fmt.Sprintf("b%d-%d", c.id, n)
				product, in := b.id, Input{Kind: OpOut, Qty: 1 + r.Int64N(2)}
				if i%2 == 1 {
					comp := b.comps[r.IntN(len(b.comps))]
					product = comp.Product
					if r.IntN(2) == 0 {
						in = Input{Kind: OpIn, Qty: comp.Qty * (1 + r.Int64N(3))}
					}
				}
				got := c.stock(h, product, in, key)
				if got == OK {
					b.acked.Store(key, true)
				}
				if product != b.id {
					continue
				}
				switch got {
				case OK:
					b.sold.Add(1)
				case Insufficient:
					b.refused.Add(1)
				default:
					b.unknown.Add(1)
				}
			}
		})
	}
	wg.Wait()
}

// sales sums up the bundle's sales.
func (b *bundles) sales() string {
	return fmt.Sprintf("%d ok/%d refused/%d unknown", b.sold.Load(), b.refused.Load(), b.unknown.Load())
}

// audit checks the ledger rows that name the bundle: each sale wrote one
// row per component, the first component's carrying its key, and took
// each component's units in proportion.
func (b *bundles) audit(t *testing.T, dsn string) {
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var sales, keyedElsewhere int64
	if err := db.QueryRow(`SELECT count(*) FILTER (WHERE product_id = $2), count(*) FILTER (WHERE product_id <> $2)
		FROM stock_movements WHERE bundle_id = $1 AND idempotency_key IS NOT NULL`, b.id, b.comps[0].Product).Scan(&sales, &keyedElsewhere); err != nil {
		t.Fatal(err)
	}
	if keyedElsewhere > 0 {
		t.Errorf("bundle %d: %d keyed rows on a component other than the first", b.id, keyedElsewhere)
	}
	var bundlesTaken int64 = -1
	for _, c := range b.comps {
		var rows, taken int64
		if err := db.QueryRow(`SELECT count(*), coalesce(-sum(delta), 0) FROM stock_movements WHERE bundle_id = $1 AND product_id = $2`,
			b.id, c.Product).Scan(&rows, &taken); err != nil {
			t.Fatal(err)
		}
		if rows != sales || taken%c.Qty != 0 || (bundlesTaken >= 0 && taken/c.Qty != bundlesTaken) {
			t.Errorf("bundle %d: %d sales, but component %d has %d rows naming it that took %d units (%d a bundle; %d bundles by the first)",
				b.id, sales, c.Product, rows, taken, c.Qty, bundlesTaken)
		}
		bundlesTaken = taken / c.Qty
	}
	t.Logf("bundle %d: %d sales in the ledger, %d bundles' units taken from each component", b.id, sales, bundlesTaken)
	if sales == 0 {
		t.Errorf("bundle %d never sold", b.id)
	}
}
