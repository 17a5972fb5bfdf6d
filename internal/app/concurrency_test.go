package app_test

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/shopstack/inventory/internal/inventory"
	"github.com/shopstack/inventory/internal/testenv/gormstoretest"
)

// TestConcurrentStockOutNeverOversells is the foundation's promise: 500
// concurrent stock-outs of one unit against 100 in stock sell exactly 100.
func TestConcurrentStockOutNeverOversells(t *testing.T) {
	gormstoretest.ForEachDriver(t, func(t *testing.T, driver string) {
		e := mustService(t, driver)
		p := mustProduct(t, e.svc, "FLASH", 100, 0)
		const clients = 500
		var wg sync.WaitGroup
		var mu sync.Mutex
		codes := map[inventory.Code]int{}
		ok := 0
		for range clients {
			wg.Go(func() {
				_, err := e.svc.StockOut(context.Background(), inventory.StockChange{ProductID: p.ID, Quantity: 1})
				mu.Lock()
				defer mu.Unlock()
				if err == nil {
					ok++
				} else {
					codes[inventory.ErrorCode(err)]++
				}
			})
		}
		wg.Wait()
		got, err := e.svc.Product(context.Background(), p.ID)
		mustNoErr(t, err)
		outs := 0
		for _, m := range ledger(t, e.svc, p.ID) {
			if m.Type == inventory.MovementOut {
				outs++
			}
		}
		t.Logf("%s: %d succeeded, errors %v, stock %d, OUT rows %d", driver, ok, codes, got.Stock, outs)
		if ok != 100 || codes[inventory.CodeInsufficientStock] != 400 || len(codes) != 1 || got.Stock != 0 || outs != 100 {
			t.Fatalf("want 100 sold, 400 INSUFFICIENT_STOCK, stock 0, 100 OUT rows")
		}
		checkLedgerExplainsStock(t, e.svc, p.ID)
	})
}

// TestConcurrentDuplicatesReplay sends the same idempotent request from many
// goroutines at once: exactly one changes stock, all see the same movement.
func TestConcurrentDuplicatesReplay(t *testing.T) {
	gormstoretest.ForEachDriver(t, func(t *testing.T, driver string) {
		e := mustService(t, driver)
		p := mustProduct(t, e.svc, "DUP", 10, 0)
		const clients = 50
		results := make([]inventory.StockResult, clients)
		errs := make([]error, clients)
		var wg sync.WaitGroup
		for i := range clients {
			wg.Go(func() {
				results[i], errs[i] = e.svc.StockOut(context.Background(), inventory.StockChange{ProductID: p.ID, Quantity: 3, IdempotencyKey: "order-77"})
			})
		}
		wg.Wait()
		fresh := 0
		for i, r := range results {
			mustNoErr(t, errs[i])
			if !r.Replayed {
				fresh++
			}
			if r.Movement.Seq != results[0].Movement.Seq || r.Movement.Delta != -3 {
				t.Fatalf("result %d has movement %+v, want seq %d", i, r.Movement, results[0].Movement.Seq)
			}
		}
		got, _ := e.svc.Product(context.Background(), p.ID)
		if fresh != 1 || got.Stock != 7 {
			t.Fatalf("%d requests changed stock (want 1); stock %d (want 7)", fresh, got.Stock)
		}
		_, err := e.svc.StockOut(context.Background(), inventory.StockChange{ProductID: p.ID, Quantity: 4, IdempotencyKey: "order-77"})
		wantCode(t, err, inventory.CodeConflict)
		_, err = e.svc.StockIn(context.Background(), inventory.StockChange{ProductID: p.ID, Quantity: 3, IdempotencyKey: "order-77"})
		wantCode(t, err, inventory.CodeConflict)
		// Replay works after a restart of the feed too: it is in the database.
		r, err := e.svc.StockOut(context.Background(), inventory.StockChange{ProductID: p.ID, Quantity: 3, IdempotencyKey: "order-77"})
		mustNoErr(t, err)
		if !r.Replayed || r.Product.Stock != 7 {
			t.Fatalf("late replay: %+v", r)
		}
	})
}

// TestSequencesFollowCommitOrder writes to many products at once. Reading
// the ledger forward from before finds every movement exactly once, and
// each product's movements, in sequence order, are in commit order: each
// stock-in of one unit leaves one more than the one before it.
func TestSequencesFollowCommitOrder(t *testing.T) {
	gormstoretest.ForEachDriver(t, func(t *testing.T, driver string) {
		e := mustService(t, driver)
		ctx := context.Background()
		var ids []int64
		for i := range 8 {
			ids = append(ids, mustProduct(t, e.svc, fmt.Sprintf("SEQ-%d", i), 0, 0).ID)
		}
		start, err := e.store.LastSeq(ctx)
		mustNoErr(t, err)
		var wg sync.WaitGroup
		for w := range 16 {
			wg.Go(func() {
				for i := range 20 {
					_, err := e.svc.StockIn(ctx, inventory.StockChange{ProductID: ids[(w+i)%len(ids)], Quantity: 1})
					if err != nil {
						t.Error(err)
					}
				}
			})
		}
		wg.Wait()
		page, err := e.svc.Movements(ctx, inventory.MovementQuery{After: start, HasAfter: true, Limit: inventory.MaxPageSize})
		mustNoErr(t, err)
		seqs := page.Movements
		for page.HasNext {
			page, err = e.svc.Movements(ctx, inventory.MovementQuery{After: seqs[len(seqs)-1].Seq, HasAfter: true, Limit: inventory.MaxPageSize})
			mustNoErr(t, err)
			seqs = append(seqs, page.Movements...)
		}
		if len(seqs) != 320 {
			t.Fatalf("%d movements, want 320", len(seqs))
		}
		after := map[int64]int64{}
		for i, m := range seqs {
			if i > 0 && m.Seq <= seqs[i-1].Seq {
				t.Fatalf("movement %d has seq %d after %d", i, m.Seq, seqs[i-1].Seq)
			}
			if m.QuantityAfter != after[m.ProductID]+1 {
				t.Fatalf("seq %d leaves product %d at %d, after %d", m.Seq, m.ProductID, m.QuantityAfter, after[m.ProductID])
			}
			after[m.ProductID] = m.QuantityAfter
		}
	})
}
