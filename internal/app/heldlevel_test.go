package app_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/shopstack/inventory/internal/app"
	"github.com/shopstack/inventory/internal/inventory"
	"github.com/shopstack/inventory/internal/lock/redislock"
	"github.com/shopstack/inventory/internal/testenv/gormstoretest"
	"github.com/shopstack/inventory/internal/testenv/inventorytest"
	"github.com/shopstack/inventory/internal/testenv/redistest"
)

// TestLevelHeldElsewhereStallsNoOtherLevel holds one level's lease from
// another replica's Locker on the same Redis: stock-outs of thirty other
// levels, sent with it (their leases asked for in the same TryLock),
// complete while the held level's waits; that one fails with a retryable
// UNAVAILABLE at the lock timeout, having changed nothing.
func TestLevelHeldElsewhereStallsNoOtherLevel(t *testing.T) {
	r := redistest.Start(t)
	newLocker := func() *redislock.Locker {
		l, err := redislock.New(redislock.Config{Addrs: []string{r.Addr}})
		mustNoErr(t, err)
		t.Cleanup(func() { _ = l.Close() })
		return l
	}
	const lockTimeout = 2 * time.Second
	svc := inventorytest.Start(t, gormstoretest.Open(t, "sqlite"), app.Config{Locker: newLocker(), LockTimeout: lockTimeout})
	ctx := context.Background()
	held := mustProduct(t, svc, "HELD", 10, 0)
	others := make([]inventory.Product, 30)
	for i := range others {
		others[i] = mustProduct(t, svc, fmt.Sprintf("OTHER-%d", i), 10, 0)
	}
	level := inventory.LevelKey{ProductID: held.ID, LocationID: inventory.DefaultLocationID}
	lease, err := newLocker().Lock(ctx, level.LockName())
	mustNoErr(t, err)
	defer lease.Unlock(ctx)

	start := time.Now()
	heldDone := make(chan error, 1)
	go func() { heldDone <- stockOutErr(svc, held.ID) }()
	var wg sync.WaitGroup
	errs := make([]error, len(others))
	for i, p := range others {
		wg.Go(func() { errs[i] = stockOutErr(svc, p.ID) })
	}
	wg.Wait()
	took := time.Since(start)
	for i, err := range errs {
		mustNoErr(t, err)
		if got, _ := svc.Product(ctx, others[i].ID); got.Stock != 9 {
			t.Errorf("%s: stock %d, want 9", others[i].SKU, got.Stock)
		}
	}
	select {
	case err := <-heldDone:
		t.Fatalf("the held level's stock-out returned (%v) before the others were done", err)
	default:
	}
	if took >= lockTimeout {
		t.Fatalf("the other levels took %v, as long as the held level's lock timeout", took)
	}
	t.Logf("30 other levels done in %v while one level was held elsewhere", took.Round(time.Millisecond))
	wantCode(t, <-heldDone, inventory.CodeUnavailable)
	if got, _ := svc.Product(ctx, held.ID); got.Stock != 10 {
		t.Fatalf("held level: stock %d, want 10", got.Stock)
	}
}
