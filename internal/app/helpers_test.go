package app_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/shopstack/inventory/internal/app"
	"github.com/shopstack/inventory/internal/gormstore"
	"github.com/shopstack/inventory/internal/inventory"
	"github.com/shopstack/inventory/internal/lock"
	"github.com/shopstack/inventory/internal/lock/memlock"
	"github.com/shopstack/inventory/internal/testenv/gormstoretest"
	"github.com/shopstack/inventory/internal/testenv/inventorytest"
)

type env struct {
	svc   *app.Service
	store *gormstore.Store
	// hook runs before each of svc's stock transactions.
	hook *hookedWriter
}

// mustService returns a started service on a new database.
func mustService(tb testing.TB, driver string) env {
	tb.Helper()
	st := gormstoretest.Open(tb, driver)
	svc, hook := startHooked(tb, st, memlock.New(0))
	return env{svc: svc, store: st, hook: hook}
}

// startService starts a service on st with locker, like one replica.
func startService(tb testing.TB, st *gormstore.Store, locker lock.Locker) *app.Service {
	tb.Helper()
	svc, _ := startHooked(tb, st, locker)
	return svc
}

// startHooked is startService with a hook before each stock transaction.
func startHooked(tb testing.TB, st *gormstore.Store, locker lock.Locker) (*app.Service, *hookedWriter) {
	tb.Helper()
	hook := &hookedWriter{Writer: st}
	svc := inventorytest.Start(tb, st, app.Config{Writer: hook, Locker: locker, PollInterval: 50 * time.Millisecond,
		TraceID: func(context.Context) string { return "trace-test" }})
	return svc, hook
}

// hookedWriter runs a function before each stock transaction, with the
// levels it writes and the fences it writes them under: the batch it
// belongs to holds their leases. Tests use it to hold a batch, or to act
// between a lease and its write.
type hookedWriter struct {
	inventory.Writer
	mu     sync.Mutex
	before func(ctx context.Context, works []inventory.LevelWork)
}

func (w *hookedWriter) set(fn func(ctx context.Context, works []inventory.LevelWork)) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.before = fn
}

func (w *hookedWriter) UpdateStocks(ctx context.Context, works []inventory.LevelWork, opts inventory.StockOptions, cb inventory.StockCallbacks) error {
	w.mu.Lock()
	fn := w.before
	w.mu.Unlock()
	if fn != nil {
		fn(ctx, works)
	}
	return w.Writer.UpdateStocks(ctx, works, opts, cb)
}

func mustProduct(tb testing.TB, svc *app.Service, sku string, stock, threshold int64) inventory.Product {
	tb.Helper()
	res, err := svc.CreateProduct(context.Background(), inventory.NewProduct{
		SKU: sku, Name: "Product " + sku, Price: 1_990_000, Threshold: threshold, InitialStock: stock,
	})
	if err != nil {
		tb.Fatalf("create product %s: %v", sku, err)
	}
	return res.Product
}

func wantCode(tb testing.TB, err error, code inventory.Code) {
	tb.Helper()
	if err == nil {
		tb.Fatalf("err = nil, want %s", code)
	}
	var e *inventory.Error
	if !errors.As(err, &e) {
		tb.Fatalf("err = %v (%T), want an *inventory.Error with %s", err, err, code)
	}
	if e.Code != code {
		tb.Fatalf("code = %s (%v), want %s", e.Code, err, code)
	}
}

func mustNoErr(tb testing.TB, err error) {
	tb.Helper()
	if err != nil {
		tb.Fatal(err)
	}
}

// ledger returns all ledger rows in sequence order.
func ledger(tb testing.TB, svc *app.Service, productID int64) []inventory.Movement {
	tb.Helper()
	var out []inventory.Movement
	q := inventory.MovementQuery{ProductID: productID, Limit: inventory.MaxPageSize}
	for {
		page, err := svc.Movements(context.Background(), q)
		mustNoErr(tb, err)
		out = append(out, page.Movements...)
		if !page.HasNext {
			return out
		}
		q.After, q.HasAfter = page.Movements[len(page.Movements)-1].Seq, true
	}
}

// checkLedgerExplainsStock asserts the ledger invariant for one product:
// each level's stock is the sum of its deltas, and the product's totals are
// the sums of its levels.
func checkLedgerExplainsStock(tb testing.TB, svc *app.Service, productID int64) {
	tb.Helper()
	ctx := context.Background()
	sums, reserved, states := map[int64]int64{}, map[int64]int64{}, map[int64]inventory.States{}
	for _, m := range ledger(tb, svc, productID) {
		sums[m.LocationID] += m.Delta
		reserved[m.LocationID] += m.ReservedDelta
		states[m.LocationID] = states[m.LocationID].Plus(m.StatesDelta)
	}
	levels, err := svc.Levels(ctx, productID)
	mustNoErr(tb, err)
	var total int64
	var totalStates inventory.States
	for _, l := range levels {
		if sums[l.LocationID] != l.Stock {
			tb.Errorf("location %d: stock %d, ledger sum %d", l.LocationID, l.Stock, sums[l.LocationID])
		}
		if states[l.LocationID] != l.States {
			tb.Errorf("location %d: states %+v, ledger sums %+v", l.LocationID, l.States, states[l.LocationID])
		}
		totalStates = totalStates.Plus(l.States)
		if reserved[l.LocationID] < l.Reserved {
			// Reads leave out units of expired reservations not yet
			// released; the ledger still counts them until their EXPIRE.
			tb.Errorf("location %d: reserved %d, ledger sum %d", l.LocationID, l.Reserved, reserved[l.LocationID])
		}
		total += l.Stock
		delete(sums, l.LocationID)
	}
	for loc, sum := range sums {
		tb.Errorf("location %d has ledger sum %d but no level", loc, sum)
	}
	p, err := svc.Product(ctx, productID)
	mustNoErr(tb, err)
	if p.Stock != total || p.States != totalStates {
		tb.Errorf("product stock %d %+v, sum of levels %d %+v", p.Stock, p.States, total, totalStates)
	}
}

// storeLevels reads a product's levels from the database.
func storeLevels(st inventory.Catalog, productID int64) ([]inventory.Level, error) {
	stocks, err := st.ProductStocks(context.Background(), []int64{productID})
	if err != nil || len(stocks) == 0 {
		return nil, err
	}
	return stocks[0].Levels, nil
}
