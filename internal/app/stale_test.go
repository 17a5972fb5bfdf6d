package app_test

import (
	"context"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/shopstack/inventory/internal/inventory"
	"github.com/shopstack/inventory/internal/lock/redislock"
	"github.com/shopstack/inventory/internal/testenv/gormstoretest"
	"github.com/shopstack/inventory/internal/testenv/redistest"
)

// TestStaleLeaseIsFenced stages the hazard fencing exists for, on a real
// Redis: replica A holds the lock on a level when its key is lost (as after
// a failover or a restart that dropped it, or a pause past the TTL), so
// replica B acquires it with a newer token and sells. A, unaware, goes on to
// write: the database refuses it with STALE_LEASE and B's sale stands.
func TestStaleLeaseIsFenced(t *testing.T) {
	gormstoretest.ForEachDriver(t, func(t *testing.T, driver string) {
		r := redistest.Start(t)
		dsn := gormstoretest.DSN(t, driver)
		newLocker := func() *redislock.Locker {
			l, err := redislock.New(redislock.Config{Addrs: []string{r.Addr}})
			mustNoErr(t, err)
			t.Cleanup(func() { _ = l.Close() })
			return l
		}
		a, aHook := startHooked(t, mustOpen(t, driver, dsn), newLocker())
		b := startService(t, mustOpen(t, driver, dsn), newLocker())
		ctx := context.Background()
		p := mustProduct(t, a, "FENCE", 10, 0)

		rdb := redis.NewClient(&redis.Options{Addr: r.Addr})
		defer rdb.Close()
		var bRes inventory.StockResult
		var bErr error
		var aToken int64
		aHook.set(func(ctx context.Context, works []inventory.LevelWork) {
			aToken = works[0].Fence.Token
			if n, err := rdb.Del(ctx, "inventory:lock:{"+works[0].Key.LockName()+"}").Result(); n != 1 || err != nil {
				t.Errorf("drop A's lock key: %d, %v", n, err)
			}
			bRes, bErr = b.StockOut(ctx, inventory.StockChange{ProductID: p.ID, Quantity: 2})
		})
		_, err := a.StockOut(ctx, inventory.StockChange{ProductID: p.ID, Quantity: 3, IdempotencyKey: "order-a"})
		mustNoErr(t, bErr)
		wantCode(t, err, inventory.CodeStaleLease)
		if bRes.Movement.Fence.Token <= aToken {
			t.Fatalf("B's token %d is not above A's %d", bRes.Movement.Fence.Token, aToken)
		}
		got, _ := b.Product(ctx, p.ID)
		if got.Stock != 8 || len(ledger(t, b, p.ID)) != 2 {
			t.Fatalf("stock %d with %d ledger rows, want B's sale only (8, 2 rows)", got.Stock, len(ledger(t, b, p.ID)))
		}

		// A's client retries with the same key: a fresh lease, one sale.
		aHook.set(nil)
		res, err := a.StockOut(ctx, inventory.StockChange{ProductID: p.ID, Quantity: 3, IdempotencyKey: "order-a"})
		mustNoErr(t, err)
		if res.Replayed || res.Product.Stock != 5 {
			t.Fatalf("retry: %+v", res)
		}
		checkLedgerExplainsStock(t, b, p.ID)
	})
}
