package inventory_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/shopstack/inventory/internal/inventory"
)

// BenchmarkStockOut measures one stock-out on one hot SKU through the
// service: lock, transaction, ledger row. Parallel runs contend for the SKU.
//
//	go test -run '^$' -bench StockOut ./internal/inventory/
func BenchmarkStockOut(b *testing.B) {
	for _, driver := range []string{"sqlite", "postgres"} {
		for _, parallel := range []bool{false, true} {
			b.Run(fmt.Sprintf("%s/parallel=%v", driver, parallel), func(b *testing.B) {
				e := mustService(b, driver)
				p := mustProduct(b, e.svc, "BENCH", inventory.MaxQuantity, 0)
				in := inventory.StockChange{ProductID: p.ID, Quantity: 1}
				ctx := context.Background()
				b.ResetTimer()
				if !parallel {
					for b.Loop() {
						if _, err := e.svc.StockOut(ctx, in); err != nil {
							b.Fatal(err)
						}
					}
					return
				}
				b.SetParallelism(16)
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						if _, err := e.svc.StockOut(ctx, in); err != nil {
							b.Error(err)
							return
						}
					}
				})
			})
		}
	}
}
