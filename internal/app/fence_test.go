package app_test

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/shopstack/inventory/internal/gormstore"
	"github.com/shopstack/inventory/internal/inventory"
	"github.com/shopstack/inventory/internal/lock"
	"github.com/shopstack/inventory/internal/lock/memlock"
	"github.com/shopstack/inventory/internal/testenv/gormstoretest"
)

// TestLeaseLostBeforeCommit loses the lease between acquiring it and the
// commit: the change is rolled back and the caller gets a retryable
// UNAVAILABLE; the retry succeeds.
func TestLeaseLostBeforeCommit(t *testing.T) {
	gormstoretest.ForEachDriver(t, func(t *testing.T, driver string) {
		locker := &lapsingLocker{Locker: memlock.New(0)}
		svc := startService(t, gormstoretest.Open(t, driver), locker)
		p := mustProduct(t, svc, "LAPSE", 10, 0)
		locker.lapse.Store(true)
		in := inventory.StockChange{ProductID: p.ID, Quantity: 3, IdempotencyKey: "order-lapse"}
		_, err := svc.StockOut(context.Background(), in)
		wantCode(t, err, inventory.CodeUnavailable)
		if ie := err.(*inventory.Error); !ie.Retryable() {
			t.Fatal("a lapsed lease must be retryable")
		}
		got, _ := svc.Product(context.Background(), p.ID)
		if got.Stock != 10 || len(ledger(t, svc, p.ID)) != 1 {
			t.Fatalf("stock %d with %d ledger rows after a rolled-back change, want 10 and 1", got.Stock, len(ledger(t, svc, p.ID)))
		}
		locker.lapse.Store(false)
		res, err := svc.StockOut(context.Background(), in)
		mustNoErr(t, err)
		if res.Replayed || res.Product.Stock != 7 {
			t.Fatalf("retry: %+v", res)
		}
		checkLedgerExplainsStock(t, svc, p.ID)
	})
}

// lapsingLocker hands out, while lapse is set, leases that have lapsed
// already (their Done is closed), as a lease lost between its acquisition
// and the commit looks to the pipeline.
type lapsingLocker struct {
	*memlock.Locker
	lapse atomic.Bool
}

func (l *lapsingLocker) Lock(ctx context.Context, key string) (lock.Lease, error) {
	lease, err := l.Locker.Lock(ctx, key)
	if err == nil && l.lapse.Load() {
		_ = lease.Unlock(ctx) // Done fires, as when a lease lapses
	}
	return lease, err
}

func (l *lapsingLocker) TryLock(ctx context.Context, keys []string) []lock.Grant {
	grants := l.Locker.TryLock(ctx, keys)
	for _, g := range grants {
		if g.Err == nil && l.lapse.Load() {
			_ = g.Lease.Unlock(ctx)
		}
	}
	return grants
}

// otherDomain is an in-process lock that claims another fencing domain, as
// a replica configured with another backend would.
type otherDomain struct{ *memlock.Locker }

func (otherDomain) Domain() string { return "test/other" }

// TestBackendSwitchStartsEpoch switches the lock backend under a running
// replica: the new backend's first tokens are lower than those stored, yet
// its writes are accepted (a new epoch); the replica still on the old
// backend is fenced off the levels the new one wrote.
func TestBackendSwitchStartsEpoch(t *testing.T) {
	gormstoretest.ForEachDriver(t, func(t *testing.T, driver string) {
		dsn := gormstoretest.DSN(t, driver)
		stOld, stNew := mustOpen(t, driver, dsn), mustOpen(t, driver, dsn)
		old := startService(t, stOld, memlock.New(1000))
		ctx := context.Background()
		p := mustProduct(t, old, "SWITCH", 10, 0)
		before, err := old.StockOut(ctx, inventory.StockChange{ProductID: p.ID, Quantity: 1})
		mustNoErr(t, err)

		switched := startService(t, stNew, otherDomain{memlock.New(0)})
		if switched.LockEpoch() != old.LockEpoch()+1 {
			t.Fatalf("epoch %d after switching from %d", switched.LockEpoch(), old.LockEpoch())
		}
		after, err := switched.StockOut(ctx, inventory.StockChange{ProductID: p.ID, Quantity: 1})
		mustNoErr(t, err)
		if after.Movement.Fence.Token >= before.Movement.Fence.Token || !before.Movement.Fence.Before(after.Movement.Fence) {
			t.Fatalf("fences %+v then %+v: want a lower token in a newer epoch", before.Movement.Fence, after.Movement.Fence)
		}
		_, err = old.StockOut(ctx, inventory.StockChange{ProductID: p.ID, Quantity: 1})
		wantCode(t, err, inventory.CodeStaleLease)
		got, _ := switched.Product(ctx, p.ID)
		if got.Stock != 8 {
			t.Fatalf("stock %d, want 8: the fenced-off write must change nothing", got.Stock)
		}
		checkLedgerExplainsStock(t, switched, p.ID)
	})
}

func mustOpen(tb testing.TB, driver, dsn string) *gormstore.Store {
	tb.Helper()
	st, err := gormstore.Open(context.Background(), gormstore.Config{Driver: driver, DSN: dsn})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = st.Close() })
	return st
}
