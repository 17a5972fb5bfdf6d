package app_test

import (
	"context"
	"testing"

	"github.com/shopstack/inventory/internal/inventory"
	"github.com/shopstack/inventory/internal/testenv/gormstoretest"
)

func TestUntrackedProducts(t *testing.T) {
	gormstoretest.ForEachDriver(t, func(t *testing.T, driver string) {
		e := mustService(t, driver)
		ctx := inventory.WithActor(context.Background(), "clerk")
		res, err := e.svc.CreateProduct(ctx, inventory.NewProduct{SKU: "EBOOK-1", Name: "E-book", Untracked: true, Threshold: 10})
		mustNoErr(t, err)
		p := res.Product
		if p.Tracked() {
			t.Fatalf("created: %+v", p)
		}

		t.Run("NeverRefused", func(t *testing.T) {
			for i := range 3 {
				out, err := e.svc.StockOut(ctx, inventory.StockChange{ProductID: p.ID, Quantity: 4, Reason: "download", Reference: "order"})
				mustNoErr(t, err)
				// Written without a lease: no stock lock was taken.
				if m := out.Movement; m.Actor != "clerk" || m.Reason != "download" || m.QuantityAfter != int64(-4*(i+1)) || m.LowStockAlert ||
					m.Fence != (inventory.Fence{}) {
					t.Fatalf("sale %d: %+v", i, m)
				}
			}
			_, err := e.svc.ReserveStock(ctx, inventory.NewReservation{Items: []inventory.ReservationItemInput{{ProductID: p.ID, Quantity: 100}}})
			mustNoErr(t, err)
			got, err := e.svc.Product(ctx, p.ID)
			mustNoErr(t, err)
			if got.Stock != -12 || got.LowStock() || got.Backordered != 112 {
				t.Fatalf("after the sales: %+v", got)
			}
			low, err := e.svc.LowStockProducts(ctx, 100)
			mustNoErr(t, err)
			for _, l := range low {
				if l.Product.ID == p.ID {
					t.Fatal("an untracked product is listed as low on stock")
				}
			}
			checkLedgerExplainsStock(t, e.svc, p.ID)
		})
		t.Run("TrackingOnFromACount", func(t *testing.T) {
			on := true
			_, err := e.svc.UpdateProduct(ctx, inventory.ProductUpdate{ID: p.ID, Tracked: &on})
			wantCode(t, err, inventory.CodeConflict)
			// Counted: 150 on hand (100 of them held).
			_, err = e.svc.AdjustStock(ctx, inventory.StockAdjustment{ProductID: p.ID, Quantity: 150, Reason: "count"})
			mustNoErr(t, err)
			upd, err := e.svc.UpdateProduct(ctx, inventory.ProductUpdate{ID: p.ID, Tracked: &on})
			mustNoErr(t, err)
			if !upd.Product.Tracked() {
				t.Fatalf("update: %+v", upd.Product)
			}
			_, err = e.svc.StockOut(ctx, inventory.StockChange{ProductID: p.ID, Quantity: 51})
			wantCode(t, err, inventory.CodeInsufficientStock)
			_, err = e.svc.StockOut(ctx, inventory.StockChange{ProductID: p.ID, Quantity: 50})
			mustNoErr(t, err)
		})
		t.Run("Reconcile", func(t *testing.T) {
			report, err := e.svc.Reconcile(ctx, []int64{p.ID}, nil)
			mustNoErr(t, err)
			if len(report.Drifts) != 0 {
				t.Fatalf("reconcile: %+v", report)
			}
		})
	})
}
