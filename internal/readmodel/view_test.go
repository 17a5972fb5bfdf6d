package readmodel_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/shopstack/inventory/internal/app"
	"github.com/shopstack/inventory/internal/gormstore"
	"github.com/shopstack/inventory/internal/inventory"
	"github.com/shopstack/inventory/internal/lock"
	"github.com/shopstack/inventory/internal/lock/memlock"
	"github.com/shopstack/inventory/internal/readmodel"
	"github.com/shopstack/inventory/internal/testenv"
	"github.com/shopstack/inventory/internal/testenv/gormstoretest"
	"github.com/shopstack/inventory/internal/testenv/inventorytest"
)

// replica is a service with a read model, on a database it may share with
// other replicas.
type replica struct {
	svc   *app.Service
	view  *readmodel.View
	store *gormstore.Store
}

type replicaOptions struct {
	capacity int
	now      func() time.Time
	poll     time.Duration
}

// newReplica starts a replica on the database at dsn. Replicas of one test
// share locker, as they would share a lock backend.
func newReplica(t *testing.T, driver, dsn string, locker lock.Locker, o replicaOptions) replica {
	t.Helper()
	st, err := gormstore.Open(context.Background(), gormstore.Config{Driver: driver, DSN: dsn})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	view := readmodel.New(readmodel.Config{Source: st, Capacity: o.capacity})
	if err := view.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(view.Close)
	if o.poll == 0 {
		o.poll = 20 * time.Millisecond
	}
	svc := inventorytest.Start(t, st, app.Config{Locker: locker, ReadModel: view, PollInterval: o.poll,
		Now: o.now, ReapInterval: time.Hour})
	return replica{svc: svc, view: view, store: st}
}

func mustNoErr(tb testing.TB, err error) {
	tb.Helper()
	if err != nil {
		tb.Fatal(err)
	}
}

func create(t *testing.T, svc *app.Service, sku string, stock int64) inventory.Product {
	t.Helper()
	res, err := svc.CreateProduct(context.Background(), inventory.NewProduct{SKU: sku, Name: sku, Price: 1_000_000, Threshold: 2, InitialStock: stock})
	mustNoErr(t, err)
	return res.Product
}

// strong reads the database.
var strong = inventory.WithConsistency(context.Background(), inventory.ReadStrong)

// TestReadYourWrites: a change is in the replica's read model before the
// request that made it is answered.
func TestReadYourWrites(t *testing.T) {
	gormstoretest.ForEachDriver(t, func(t *testing.T, driver string) {
		r := newReplica(t, driver, gormstoretest.DSN(t, driver), memlock.New(0), replicaOptions{})
		ctx := context.Background()
		p := create(t, r.svc, "RYW", 10)
		loc, err := r.svc.CreateLocation(ctx, inventory.NewLocation{Code: "SHOP", Name: "Shop"})
		mustNoErr(t, err)
		if _, err := r.svc.Product(ctx, p.ID); err != nil { // now held
			t.Fatal(err)
		}
		for i := range 20 {
			if i == 5 { // a second level
				_, err := r.svc.StockIn(ctx, inventory.StockChange{ProductID: p.ID, LocationID: loc.ID, Quantity: 3})
				mustNoErr(t, err)
			}
			res, err := r.svc.StockOut(ctx, inventory.StockChange{ProductID: p.ID, Quantity: 1})
			if i < 10 {
				mustNoErr(t, err)
			}
			ps, err := r.svc.ProductStock(ctx, p.ID)
			mustNoErr(t, err)
			exact, err := r.svc.ProductStock(strong, p.ID)
			mustNoErr(t, err)
			if fmt.Sprint(ps) != fmt.Sprint(exact) {
				t.Fatalf("after sale %d: read model %+v, database %+v", i, ps, exact)
			}
			if i < 10 && ps.Product.Stock != res.Product.Stock {
				t.Fatalf("after sale %d: read %d, the sale left %d", i, ps.Product.Stock, res.Product.Stock)
			}
		}
		name := "Renamed"
		_, err = r.svc.UpdateProduct(ctx, inventory.ProductUpdate{ID: p.ID, Name: &name})
		mustNoErr(t, err)
		if got, _ := r.svc.Product(ctx, p.ID); got.Name != name || got.Version != 2 {
			t.Fatalf("after the edit: %+v", got)
		}
		if s := r.view.Stats(); s.Hits == 0 || s.Seq != s.LedgerSeq {
			t.Fatalf("stats %+v: no hits, or the view is behind its own commits", s)
		}
	})
}

// TestOtherReplicas: a change made on one replica reaches another's read
// model within the poll interval, and an exact read sees it at once.
func TestOtherReplicas(t *testing.T) {
	gormstoretest.ForEachDriver(t, func(t *testing.T, driver string) {
		dsn, locker := gormstoretest.DSN(t, driver), memlock.New(0)
		a := newReplica(t, driver, dsn, locker, replicaOptions{})
		b := newReplica(t, driver, dsn, locker, replicaOptions{})
		ctx := context.Background()
		p := create(t, a.svc, "SHARED", 10)
		page, err := b.svc.Products(ctx, inventory.ProductFilter{}, 10, 0)
		mustNoErr(t, err)
		if len(page.Products) != 1 {
			t.Fatalf("b's page: %+v", page)
		}

		_, err = a.svc.StockOut(ctx, inventory.StockChange{ProductID: p.ID, Quantity: 4})
		mustNoErr(t, err)
		if exact, _ := b.svc.Product(strong, p.ID); exact.Stock != 6 {
			t.Fatalf("an exact read on b: stock %d, want 6", exact.Stock)
		}
		start := time.Now()
		testenv.Eventually(t, "a's sale on b", func() bool { got, _ := b.svc.Product(ctx, p.ID); return got.Stock == 6 })
		t.Logf("a's sale reached b's read model in %v", time.Since(start))

		name := "Edited on A"
		_, err = a.svc.UpdateProduct(ctx, inventory.ProductUpdate{ID: p.ID, Name: &name})
		mustNoErr(t, err)
		testenv.Eventually(t, "a's edit on b", func() bool { got, _ := b.svc.Product(ctx, p.ID); return got.Name == name })
		q := create(t, a.svc, "NEW-ON-A", 1)
		testenv.Eventually(t, "a's new product in b's page", func() bool {
			page, err := b.svc.Products(ctx, inventory.ProductFilter{}, 10, 0)
			return err == nil && len(page.Products) == 2 && page.Products[1].Product.ID == q.ID
		})
		if n, _ := b.svc.CountProducts(ctx, inventory.ProductFilter{}); n != 2 {
			t.Fatalf("b counts %d products, want 2", n)
		}
		// A replica that wrote to a product b holds was behind: b's own
		// sale on it must not be applied onto b's stale state.
		_, err = a.svc.StockOut(ctx, inventory.StockChange{ProductID: p.ID, Quantity: 1})
		mustNoErr(t, err)
		_, err = b.svc.StockOut(ctx, inventory.StockChange{ProductID: p.ID, Quantity: 1})
		mustNoErr(t, err)
		if got, _ := b.svc.Product(ctx, p.ID); got.Stock != 4 {
			t.Fatalf("b reads stock %d after its own sale, want 4", got.Stock)
		}
	})
}

// TestPoisonedViewCannotOversell: a read model that is wrong (poisoned on
// purpose, or stale: another replica sold meanwhile) makes reads wrong,
// never a write: writes are judged by the database.
func TestPoisonedViewCannotOversell(t *testing.T) {
	gormstoretest.ForEachDriver(t, func(t *testing.T, driver string) {
		dsn, locker := gormstoretest.DSN(t, driver), memlock.New(0)
		a := newReplica(t, driver, dsn, locker, replicaOptions{})
		b := newReplica(t, driver, dsn, locker, replicaOptions{poll: time.Hour}) // b never catches up
		ctx := context.Background()
		p := create(t, a.svc, "POISON", 5)
		ps, err := a.svc.ProductStock(ctx, p.ID)
		mustNoErr(t, err)
		lie := ps
		lie.Product.Stock, lie.Levels = 1_000_000, []inventory.Level{{ProductID: p.ID, LocationID: inventory.DefaultLocationID, Stock: 1_000_000, Version: ps.Levels[0].Version}}
		a.view.Poison(lie)
		if got, _ := a.svc.Product(ctx, p.ID); got.Stock != 1_000_000 {
			t.Fatalf("the poison did not take: %+v", got)
		}
		if _, err := b.svc.Product(ctx, p.ID); err != nil { // b holds stock 5
			t.Fatal(err)
		}
		_, err = a.svc.StockOut(ctx, inventory.StockChange{ProductID: p.ID, Quantity: 4})
		mustNoErr(t, err)

		// Each replica believes in plenty; the database has 1 unit.
		var wg sync.WaitGroup
		var mu sync.Mutex
		sold := 0
		for _, r := range []replica{a, b, a, b} {
			wg.Go(func() {
				_, err := r.svc.StockOut(ctx, inventory.StockChange{ProductID: p.ID, Quantity: 1})
				if err == nil {
					mu.Lock()
					sold++
					mu.Unlock()
				} else if inventory.ErrorCode(err) != inventory.CodeInsufficientStock {
					t.Errorf("stock out: %v", err)
				}
			})
		}
		wg.Wait()
		_, rerr := b.svc.ReserveStock(ctx, inventory.NewReservation{Items: []inventory.ReservationItemInput{{ProductID: p.ID, Quantity: 1}}})
		if sold != 1 || inventory.ErrorCode(rerr) != inventory.CodeInsufficientStock {
			t.Fatalf("sold %d of the last unit, reservation %v: want 1 sale and INSUFFICIENT_STOCK", sold, rerr)
		}
		report, err := a.svc.Reconcile(ctx, nil, nil)
		mustNoErr(t, err)
		if exact, _ := a.svc.Product(strong, p.ID); exact.Stock != 0 || len(report.Drifts) != 0 {
			t.Fatalf("database stock %d, drifts %+v", exact.Stock, report.Drifts)
		}
	})
}

// TestNeverGoesBack applies transactions out of order and twice: the view
// never answers an older state than one it answered.
func TestNeverGoesBack(t *testing.T) {
	gormstoretest.ForEachDriver(t, func(t *testing.T, driver string) {
		st := gormstoretest.Open(t, driver)
		svc := inventorytest.Start(t, st, app.Config{})
		p := create(t, svc, "ORDER", 100)
		// Capture three committed transactions of the product.
		var txs [][]*inventory.StockTx
		for range 3 {
			var got []*inventory.StockTx
			err := st.UpdateStocks(context.Background(), []inventory.LevelWork{{Key: inventory.LevelKey{ProductID: p.ID, LocationID: 1}}},
				inventory.StockOptions{Now: time.Now().UTC()}, inventory.StockCallbacks{Apply: func(set *inventory.StockSet) error {
					got = set.Levels
					m := inventory.Movement{Type: inventory.MovementOut, Delta: -1, CreatedAt: time.Now().UTC()}
					return got[0].Apply(&m)
				}})
			mustNoErr(t, err)
			txs = append(txs, got)
		}
		for _, order := range [][]int{{0, 1, 2}, {2, 1, 0}, {1, 1, 0, 2, 2}, {0, 2, 1}} {
			view := readmodel.New(readmodel.Config{Source: st})
			mustNoErr(t, view.Start(context.Background()))
			// The view holds the product as before the three.
			before, err := st.ProductStocks(context.Background(), []int64{p.ID})
			mustNoErr(t, err)
			before[0].Product.Stock, before[0].Product.LastSeq = 100, txs[0][0].ReadSeq
			before[0].Levels[0].Stock, before[0].Levels[0].Version = 100, txs[0][0].Level.Version-1
			view.Poison(before[0])
			last := int64(101)
			for _, i := range order {
				view.Committed(txs[i])
				got, err := view.ProductStocks(context.Background(), []int64{p.ID})
				mustNoErr(t, err)
				if s := got[0].Product.Stock; s > last || got[0].Levels[0].Stock != s {
					t.Fatalf("order %v, after tx %d: stock %d (level %d), was %d: went back", order, i, s, got[0].Levels[0].Stock, last)
				}
				last = got[0].Product.Stock
			}
			if last != 97 {
				t.Fatalf("order %v: ends at stock %d, want 97", order, last)
			}
			view.Close()
		}
	})
}

// TestCapacity: the view holds at most its capacity, and answers reads of
// products it evicted from the database.
func TestCapacity(t *testing.T) {
	gormstoretest.ForEachDriver(t, func(t *testing.T, driver string) {
		r := newReplica(t, driver, gormstoretest.DSN(t, driver), memlock.New(0), replicaOptions{capacity: 10})
		ctx := context.Background()
		var ids []int64
		for i := range 50 {
			ids = append(ids, create(t, r.svc, fmt.Sprintf("CAP-%d", i), int64(i+1)).ID)
		}
		for round := range 3 {
			for i, id := range ids {
				p, err := r.svc.Product(ctx, id)
				if err != nil || p.Stock != int64(i+1) {
					t.Fatalf("round %d: product %d = %+v, %v", round, id, p, err)
				}
				if s := r.view.Stats(); s.Products > 10 {
					t.Fatalf("the view holds %d products, capacity 10", s.Products)
				}
			}
		}
		// A hot product stays held while others come and go.
		hot := ids[0]
		before := r.view.Stats()
		for _, id := range ids {
			for _, x := range []int64{hot, id} {
				if _, err := r.svc.Product(ctx, x); err != nil {
					t.Fatal(err)
				}
			}
		}
		after := r.view.Stats()
		if hits := after.Hits - before.Hits; hits < int64(len(ids)) {
			t.Fatalf("%d hits over %d reads of a hot product among 50: it was evicted", hits, len(ids))
		}
	})
}

// TestExpiryIsExact: an expired reservation stops counting in reads at
// once, before the reaper releases it.
func TestExpiryIsExact(t *testing.T) {
	gormstoretest.ForEachDriver(t, func(t *testing.T, driver string) {
		var mu sync.Mutex
		now := time.Now().UTC()
		clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
		r := newReplica(t, driver, gormstoretest.DSN(t, driver), memlock.New(0), replicaOptions{now: clock})
		ctx := context.Background()
		p := create(t, r.svc, "EXPIRY", 10)
		_, err := r.svc.ReserveStock(ctx, inventory.NewReservation{TTL: time.Minute, Items: []inventory.ReservationItemInput{{ProductID: p.ID, Quantity: 4}}})
		mustNoErr(t, err)
		if got, _ := r.svc.Product(ctx, p.ID); got.Available() != 6 {
			t.Fatalf("available %d while reserved, want 6", got.Available())
		}
		mu.Lock()
		now = now.Add(2 * time.Minute)
		mu.Unlock()
		got, err := r.svc.ProductStock(ctx, p.ID)
		mustNoErr(t, err)
		if got.Product.Available() != 10 || got.Levels[0].Reserved != 0 {
			t.Fatalf("after expiry: %+v, want all 10 available", got)
		}
	})
}

// TestOrderedByID: products come back ordered by ID, held or read.
func TestOrderedByID(t *testing.T) {
	gormstoretest.ForEachDriver(t, func(t *testing.T, driver string) {
		r := newReplica(t, driver, gormstoretest.DSN(t, driver), memlock.New(0), replicaOptions{})
		a, b, c := create(t, r.svc, "O-A", 1), create(t, r.svc, "O-B", 1), create(t, r.svc, "O-C", 1)
		for _, round := range []string{"read", "held"} {
			got, err := r.view.ProductStocks(context.Background(), []int64{c.ID, a.ID, b.ID})
			mustNoErr(t, err)
			if len(got) != 3 || got[0].Product.ID != a.ID || got[1].Product.ID != b.ID || got[2].Product.ID != c.ID {
				t.Fatalf("%s: %d products, not in ID order", round, len(got))
			}
		}
	})
}
