package app_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/shopstack/inventory/internal/gormstore"
	"github.com/shopstack/inventory/internal/inventory"
	"github.com/shopstack/inventory/internal/lock"
	"github.com/shopstack/inventory/internal/lock/etcdlock"
	"github.com/shopstack/inventory/internal/lock/memlock"
	"github.com/shopstack/inventory/internal/lock/redislock"
	"github.com/shopstack/inventory/internal/testenv/etcdtest"
	"github.com/shopstack/inventory/internal/testenv/gormstoretest"
	"github.com/shopstack/inventory/internal/testenv/redistest"
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

// BenchmarkStockOutByBackend measures a stock-out on one hot SKU with each
// lock backend, on PostgreSQL, 16 goroutines per CPU: the lock-per-request
// cost that request combining is measured against.
//
//	go test -run '^$' -bench StockOutByBackend -benchtime 3000x ./internal/inventory/
func BenchmarkStockOutByBackend(b *testing.B) {
	backends := []struct {
		name   string
		locker func(b *testing.B) lock.Locker
	}{
		{"local", func(*testing.B) lock.Locker { return memlock.New(0) }},
		{"redsync", func(b *testing.B) lock.Locker {
			l, err := redislock.New(redislock.Config{Addrs: []string{redistest.Start(b).Addr}})
			mustNoErr(b, err)
			b.Cleanup(func() { _ = l.Close() })
			return l
		}},
		{"etcd", func(b *testing.B) lock.Locker {
			l, err := etcdlock.New(context.Background(), etcdlock.Config{Endpoints: etcdtest.Start(b, 1).Endpoints()})
			mustNoErr(b, err)
			b.Cleanup(func() { _ = l.Close() })
			return l
		}},
	}
	for _, be := range backends {
		b.Run(be.name, func(b *testing.B) {
			svc := startService(b, gormstoretest.Open(b, gormstore.Postgres), be.locker(b))
			p := mustProduct(b, svc, "BENCH", inventory.MaxQuantity, 0)
			in := inventory.StockChange{ProductID: p.ID, Quantity: 1}
			b.SetParallelism(16)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := svc.StockOut(context.Background(), in); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "ops/s")
		})
	}
}
