//go:build benchstrategies

package app_test

import (
	"context"
	"sync"
	"testing"

	"github.com/shopstack/inventory/internal/app"
	"github.com/shopstack/inventory/internal/inventory"
	"github.com/shopstack/inventory/internal/testenv/gormstoretest"
	"github.com/shopstack/inventory/internal/testenv/inventorytest"
)

// TestEveryStrategyIsSafe runs the flash sale with each strategy that is
// meant to be safe: exactly the stock is sold.
func TestEveryStrategyIsSafe(t *testing.T) {
	for _, strategy := range []app.Strategy{app.StrategyCombine, app.StrategyLockPerRequest, app.StrategyRowLock} {
		t.Run(string(strategy), func(t *testing.T) {
			gormstoretest.ForEachDriver(t, func(t *testing.T, driver string) {
				svc, _ := inventorytest.Open(t, driver, app.Config{Strategy: strategy})
				p := mustProduct(t, svc, "SAFE", 50, 0)
				var mu sync.Mutex
				sold := 0
				var wg sync.WaitGroup
				for range 200 {
					wg.Go(func() {
						err := stockOutErr(svc, p.ID)
						if err == nil {
							mu.Lock()
							sold++
							mu.Unlock()
						} else if inventory.ErrorCode(err) != inventory.CodeInsufficientStock {
							t.Errorf("stock-out: %v", err)
						}
					})
				}
				wg.Wait()
				got, _ := svc.Product(context.Background(), p.ID)
				if sold != 50 || got.Stock != 0 {
					t.Fatalf("sold %d, stock %d: want 50 and 0", sold, got.Stock)
				}
				checkLedgerExplainsStock(t, svc, p.ID)
			})
		})
	}
}
