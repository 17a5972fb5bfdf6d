package app_test

import (
	"context"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/shopstack/inventory/internal/app"
	"github.com/shopstack/inventory/internal/inventory"
	"github.com/shopstack/inventory/internal/lock/redislock"
	"github.com/shopstack/inventory/internal/testenv"
	"github.com/shopstack/inventory/internal/testenv/gormstoretest"
	"github.com/shopstack/inventory/internal/testenv/inventorytest"
	"github.com/shopstack/inventory/internal/testenv/redistest"
)

// TestCounterWentBack puts a level's fencing counter back behind the
// locker's back, as a Redis failover that lost the counter's latest
// increments does: the next lease's token is below the one the database
// last saw on the level, so its write is refused with STALE_LEASE and
// changes nothing. With the locker as the service's Advancer, the service
// then moves the counter past the database's token and the client's retry
// (same key) is written once; without, every retry is refused until the
// counter has climbed back on its own.
func TestCounterWentBack(t *testing.T) {
	gormstoretest.ForEachDriver(t, func(t *testing.T, driver string) {
		for _, advance := range []bool{true, false} {
			name := map[bool]string{true: "Advanced", false: "NotAdvanced"}[advance]
			t.Run(name, func(t *testing.T) { testCounterWentBack(t, driver, advance) })
		}
	})
}

func testCounterWentBack(t *testing.T, driver string, advance bool) {
	r := redistest.Start(t)
	l, err := redislock.New(redislock.Config{Addrs: []string{r.Addr}})
	mustNoErr(t, err)
	t.Cleanup(func() { _ = l.Close() })
	cfg := app.Config{Locker: l}
	if advance {
		cfg.Advancer = l
	}
	svc := inventorytest.Start(t, gormstoretest.Open(t, driver), cfg)
	ctx := context.Background()
	p := mustProduct(t, svc, "BACK", 10, 0)
	first, err := svc.StockOut(ctx, inventory.StockChange{ProductID: p.ID, Quantity: 1, IdempotencyKey: "first"})
	mustNoErr(t, err)
	seen := first.Movement.Fence.Token

	rdb := redis.NewClient(&redis.Options{Addr: r.Addr})
	defer rdb.Close()
	level := inventory.LevelKey{ProductID: p.ID, LocationID: first.Movement.LocationID}
	// The failover comes after the level's lease was released: one kept
	// for the level's next requests would still be valid.
	if !testenv.Poll(testenv.Wait, func() bool {
		return rdb.Exists(ctx, "inventory:lock:{"+level.LockName()+"}").Val() == 0
	}) {
		t.Fatal("the level's lease was not released once idle")
	}
	if err := rdb.Set(ctx, "inventory:fence:{"+level.LockName()+"}", seen-100, 0).Err(); err != nil {
		t.Fatal(err)
	}
	in := inventory.StockChange{ProductID: p.ID, Quantity: 2, IdempotencyKey: "order"}
	_, err = svc.StockOut(ctx, in)
	wantCode(t, err, inventory.CodeStaleLease)
	if got, _ := svc.Product(ctx, p.ID); got.Stock != 9 || len(ledger(t, svc, p.ID)) != 2 {
		t.Fatalf("stock %d with %d ledger rows after a refused write, want 9 and 2", got.Stock, len(ledger(t, svc, p.ID)))
	}

	if !advance {
		for range 3 {
			_, err = svc.StockOut(ctx, in)
			wantCode(t, err, inventory.CodeStaleLease)
		}
		return
	}
	res, err := svc.StockOut(ctx, in)
	mustNoErr(t, err)
	if res.Replayed || res.Product.Stock != 7 || res.Movement.Fence.Token <= seen {
		t.Fatalf("retry after the refusal: stock %d, replayed %v, token %d (database's %d)",
			res.Product.Stock, res.Replayed, res.Movement.Fence.Token, seen)
	}
	checkLedgerExplainsStock(t, svc, p.ID)
}
