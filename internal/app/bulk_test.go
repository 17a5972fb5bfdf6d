package app_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shopstack/inventory/internal/inventory"
	"github.com/shopstack/inventory/internal/testenv/gormstoretest"
)

func ptr(v int64) *int64 { return &v }

// bulkFixture is six levels and the stock-take items that touch them: two
// good ones and four that fail, each its own way.
type bulkFixture struct {
	e     env
	ids   map[string]int64
	items []inventory.BulkItem
	seq   int64 // ledger end before the call
}

func newBulkFixture(t *testing.T, driver string) bulkFixture {
	t.Helper()
	e := mustService(t, driver)
	ids := map[string]int64{}
	for sku, stock := range map[string]int64{"A": 10, "B": 5, "C": 7, "D": 3, "E": 2} {
		ids[sku] = mustProduct(t, e.svc, sku, stock, 0).ID
	}
	ctx := context.Background()
	_, err := e.svc.ReserveStock(ctx, inventory.NewReservation{Items: []inventory.ReservationItemInput{{ProductID: ids["B"], Quantity: 2}}})
	mustNoErr(t, err)
	seq, err := e.store.LastSeq(ctx)
	mustNoErr(t, err)
	return bulkFixture{e: e, ids: ids, seq: seq, items: []inventory.BulkItem{
		{ProductID: ids["A"], Delta: ptr(5)},                                // 0: good, 10 -> 15
		{ProductID: 999_999, Quantity: ptr(3)},                              // 1: unknown product
		{ProductID: ids["B"], Quantity: ptr(1)},                             // 2: below the 2 reserved
		{ProductID: ids["C"], Quantity: ptr(4), ChangeFromQuantity: ptr(6)}, // 3: stale count: stock is 7
		{ProductID: ids["D"], Delta: ptr(-1)},                               // 4: good, 3 -> 2
		{ProductID: ids["E"], Delta: ptr(-10)},                              // 5: would go negative
	}}
}

var failingRows = map[int]inventory.Code{1: inventory.CodeNotFound, 2: inventory.CodeInsufficientStock, 3: inventory.CodeConflict, 5: inventory.CodeInsufficientStock}

func (f bulkFixture) stock(t *testing.T, sku string) int64 {
	t.Helper()
	p, err := f.e.svc.Product(context.Background(), f.ids[sku])
	mustNoErr(t, err)
	return p.Stock
}

func (f bulkFixture) newRows(t *testing.T) int64 {
	t.Helper()
	seq, err := f.e.store.LastSeq(context.Background())
	mustNoErr(t, err)
	return seq - f.seq
}

func TestBulkAdjustPolicies(t *testing.T) {
	gormstoretest.ForEachDriver(t, func(t *testing.T, driver string) {
		t.Run("RejectEverything", func(t *testing.T) {
			f := newBulkFixture(t, driver)
			res, err := f.e.svc.BulkAdjustStock(context.Background(), inventory.BulkAdjustment{Items: f.items, Reason: "stock-take"})
			mustNoErr(t, err)
			if !res.Rejected || res.Applied != 0 || res.Failed != 4 {
				t.Errorf("rejected %v, applied %d, failed %d; want rejected, 0, 4", res.Rejected, res.Applied, res.Failed)
			}
			for i, row := range res.Rows {
				want := inventory.BulkNotApplied
				if _, bad := failingRows[i]; bad {
					want = inventory.BulkFailed
				}
				if row.Status != want || row.Index != i {
					t.Errorf("row %d: %s, want %s", i, row.Status, want)
				}
				if code, bad := failingRows[i]; bad && (row.Err == nil || row.Err.Code != code) {
					t.Errorf("row %d: error %v, want %s", i, row.Err, code)
				}
			}
			if a, d := f.stock(t, "A"), f.stock(t, "D"); a != 10 || d != 3 || f.newRows(t) != 0 {
				t.Errorf("A %d, D %d, %d ledger rows: the rejected call changed something", a, d, f.newRows(t))
			}
		})
		for _, policy := range []inventory.BulkErrorPolicy{inventory.BulkRejectFailedRows, inventory.BulkIgnoreFailed} {
			t.Run(string(policy), func(t *testing.T) {
				f := newBulkFixture(t, driver)
				res, err := f.e.svc.BulkAdjustStock(context.Background(), inventory.BulkAdjustment{Items: f.items, Policy: policy, Reason: "stock-take", Reference: "count-7"})
				mustNoErr(t, err)
				failed := inventory.BulkFailed
				if policy == inventory.BulkIgnoreFailed {
					failed = inventory.BulkSkipped
				}
				if res.Rejected || res.Applied != 2 || res.Failed != 4 {
					t.Errorf("rejected %v, applied %d, failed %d; want 2 applied, 4 failed", res.Rejected, res.Applied, res.Failed)
				}
				for i, row := range res.Rows {
					code, bad := failingRows[i]
					switch {
					case bad && (row.Status != failed || row.Err == nil || row.Err.Code != code):
						t.Errorf("row %d: %s %v, want %s %s", i, row.Status, row.Err, failed, code)
					case !bad && (row.Status != inventory.BulkApplied || row.Result.Movement.Type != inventory.MovementAdjust || row.Result.Movement.Reference != "count-7"):
						t.Errorf("row %d: %s %+v, want an applied ADJUST", i, row.Status, row.Result.Movement)
					}
				}
				if a, d := f.stock(t, "A"), f.stock(t, "D"); a != 15 || d != 2 {
					t.Errorf("A %d, D %d; want 15 and 2", a, d)
				}
				if n := f.newRows(t); n != 2 {
					t.Errorf("%d ledger rows, want one per applied item (2)", n)
				}
				s0, s4 := res.Rows[0].Result.Movement.Seq, res.Rows[4].Result.Movement.Seq
				if s4 != s0+1 {
					t.Errorf("sequences %d and %d: want one transaction", s0, s4)
				}
				for _, id := range f.ids {
					checkLedgerExplainsStock(t, f.e.svc, id)
				}
			})
		}
	})
}

func TestBulkAdjustIdempotent(t *testing.T) {
	f := newBulkFixture(t, "sqlite")
	ctx := context.Background()
	in := inventory.BulkAdjustment{Items: f.items, Policy: inventory.BulkRejectFailedRows, IdempotencyKey: "take-2026-11"}
	first, err := f.e.svc.BulkAdjustStock(ctx, in)
	mustNoErr(t, err)
	again, err := f.e.svc.BulkAdjustStock(ctx, in)
	mustNoErr(t, err)
	for _, i := range []int{0, 4} {
		if again.Rows[i].Status != inventory.BulkReplayed || again.Rows[i].Result.Movement.Seq != first.Rows[i].Result.Movement.Seq {
			t.Errorf("row %d on retry: %s seq %d, want REPLAYED seq %d", i, again.Rows[i].Status, again.Rows[i].Result.Movement.Seq, first.Rows[i].Result.Movement.Seq)
		}
	}
	if a := f.stock(t, "A"); a != 15 || f.newRows(t) != 2 {
		t.Errorf("after a retry: A %d, %d ledger rows; want 15 and 2", a, f.newRows(t))
	}
	// The same key with another input is a conflict, item by item.
	other := in
	other.Items = append([]inventory.BulkItem{}, in.Items...)
	other.Items[0].Delta = ptr(6)
	res, err := f.e.svc.BulkAdjustStock(ctx, other)
	mustNoErr(t, err)
	if res.Rows[0].Status != inventory.BulkFailed || res.Rows[0].Err.Code != inventory.CodeConflict {
		t.Errorf("row 0 with the key reused: %s %v, want FAILED CONFLICT", res.Rows[0].Status, res.Rows[0].Err)
	}
}

func TestBulkAdjustInput(t *testing.T) {
	e := mustService(t, "sqlite")
	ctx := context.Background()
	p := mustProduct(t, e.svc, "P", 5, 0)
	_, err := e.svc.BulkAdjustStock(ctx, inventory.BulkAdjustment{})
	wantCode(t, err, inventory.CodeBadInput)
	_, err = e.svc.BulkAdjustStock(ctx, inventory.BulkAdjustment{Items: make([]inventory.BulkItem, inventory.MaxBulkItems+1)})
	wantCode(t, err, inventory.CodeBadInput)
	_, err = e.svc.BulkAdjustStock(ctx, inventory.BulkAdjustment{Items: []inventory.BulkItem{{ProductID: p.ID, Delta: ptr(1)}}, Policy: "BEST_EFFORT"})
	wantCode(t, err, inventory.CodeBadInput)

	res, err := e.svc.BulkAdjustStock(ctx, inventory.BulkAdjustment{Policy: inventory.BulkRejectFailedRows, Items: []inventory.BulkItem{
		{ProductID: p.ID, Delta: ptr(1), Quantity: ptr(3)}, // both
		{ProductID: p.ID}, // neither
		{ProductID: p.ID, Delta: ptr(0)},
		{ProductID: p.ID, Quantity: ptr(-1)},
		{ProductID: p.ID, Quantity: ptr(8)}, // good
		{ProductID: p.ID, Quantity: ptr(9)}, // the same level again
	}})
	mustNoErr(t, err)
	for i, want := range []string{"items[0].delta", "items[1].delta", "items[2].delta", "items[3].quantity", "", "items[5]"} {
		row := res.Rows[i]
		if want == "" {
			if row.Status != inventory.BulkApplied {
				t.Errorf("row %d: %s %v, want APPLIED", i, row.Status, row.Err)
			}
			continue
		}
		if row.Status != inventory.BulkFailed || row.Err.Code != inventory.CodeBadInput || row.Err.Field != want {
			t.Errorf("row %d: %s %+v, want FAILED BAD_USER_INPUT on %s", i, row.Status, row.Err, want)
		}
	}
	if p, _ := e.svc.Product(ctx, p.ID); p.Stock != 8 {
		t.Errorf("stock %d, want 8", p.Stock)
	}
	// Under REJECT_EVERYTHING an invalid item stops the call before any lock.
	res, err = e.svc.BulkAdjustStock(ctx, inventory.BulkAdjustment{Items: []inventory.BulkItem{{ProductID: p.ID, Quantity: ptr(1)}, {ProductID: p.ID}}})
	mustNoErr(t, err)
	if !res.Rejected || res.Rows[0].Status != inventory.BulkNotApplied || res.Rows[1].Status != inventory.BulkFailed {
		t.Errorf("rejected %v, rows %s and %s; want NOT_APPLIED and FAILED", res.Rejected, res.Rows[0].Status, res.Rows[1].Status)
	}
}

// TestBulkAgainstConcurrentSales sets 1,000 levels by count while eight
// clients sell from the same products: nothing is oversold, nothing
// deadlocks, and the ledger explains every level.
func TestBulkAgainstConcurrentSales(t *testing.T) {
	gormstoretest.ForEachDriver(t, func(t *testing.T, driver string) {
		e := mustService(t, driver)
		ctx := context.Background()
		ids := make([]int64, inventory.MaxBulkItems)
		for i := range ids {
			ids[i] = mustProduct(t, e.svc, fmt.Sprintf("BULK-%04d", i), 3, 0).ID
		}
		var sold, refused, unavailable atomic.Int64
		stop := make(chan struct{})
		var wg sync.WaitGroup
		for c := range 8 {
			wg.Go(func() {
				r := rand.New(rand.NewPCG(uint64(c), 1))
				for {
					select {
					case <-stop:
						return
					default:
					}
					_, err := e.svc.StockOut(ctx, inventory.StockChange{ProductID: ids[r.IntN(len(ids))], Quantity: 1})
					switch {
					case err == nil:
						sold.Add(1)
					case inventory.ErrorCode(err) == inventory.CodeInsufficientStock:
						refused.Add(1)
					case inventory.ErrorCode(err) == inventory.CodeUnavailable:
						// Waited longer than the lock timeout behind the
						// bulk's locks (SQLite under -race is slow):
						// retryable, and nothing changed.
						unavailable.Add(1)
					default:
						t.Errorf("stockOut: %v", err)
						return
					}
				}
			})
		}
		items := make([]inventory.BulkItem, len(ids))
		for i, id := range ids {
			items[i] = inventory.BulkItem{ProductID: id, Quantity: ptr(2)}
		}
		time.Sleep(50 * time.Millisecond)
		start := time.Now()
		res, err := e.svc.BulkAdjustStock(ctx, inventory.BulkAdjustment{Items: items, Reason: "stock-take"})
		took := time.Since(start)
		time.Sleep(50 * time.Millisecond)
		close(stop)
		wg.Wait()
		mustNoErr(t, err)
		if res.Applied != len(ids) || res.Rejected {
			t.Fatalf("applied %d of %d, rejected %v", res.Applied, len(ids), res.Rejected)
		}
		t.Logf("%s: 1,000 items in %v beside %d sales (%d refused, %d unavailable)", driver, took.Round(time.Millisecond),
			sold.Load(), refused.Load(), unavailable.Load())
		for _, id := range ids {
			p, err := e.svc.Product(ctx, id)
			mustNoErr(t, err)
			if p.Stock < 0 || p.Stock > 3 {
				t.Fatalf("product %d: stock %d", id, p.Stock)
			}
		}
		// Every unit is explained: the ledger holds each sale and each count.
		for _, id := range ids[:50] {
			checkLedgerExplainsStock(t, e.svc, id)
		}
	})
}

func TestBulkAdjustBySKU(t *testing.T) {
	e := mustService(t, "sqlite")
	p := mustProduct(t, e.svc, "MUG-1", 5, 0)
	res, err := e.svc.BulkAdjustStock(context.Background(), inventory.BulkAdjustment{Policy: inventory.BulkRejectFailedRows, Items: []inventory.BulkItem{
		{SKU: "mug-1", Quantity: ptr(12)},              // SKUs are case-insensitive
		{SKU: "NOPE-9", Quantity: ptr(1)},              // unknown
		{SKU: "MUG-1", ProductID: p.ID, Delta: ptr(1)}, // both
	}})
	mustNoErr(t, err)
	if r := res.Rows[0]; r.Status != inventory.BulkApplied || r.Result.Level.Stock != 12 {
		t.Errorf("row 0: %s %+v", r.Status, r.Err)
	}
	if r := res.Rows[1]; r.Status != inventory.BulkFailed || r.Err.Code != inventory.CodeNotFound || r.Err.Message != `no product has SKU "NOPE-9"` {
		t.Errorf("row 1: %s %+v", r.Status, r.Err)
	}
	if r := res.Rows[2]; r.Status != inventory.BulkFailed || r.Err.Field != "items[2].productId" {
		t.Errorf("row 2: %s %+v", r.Status, r.Err)
	}
}
