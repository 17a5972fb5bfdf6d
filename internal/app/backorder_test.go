package app_test

import (
	"context"
	"testing"

	"github.com/shopstack/inventory/internal/inventory"
	"github.com/shopstack/inventory/internal/testenv/gormstoretest"
)

func TestBackorders(t *testing.T) {
	gormstoretest.ForEachDriver(t, func(t *testing.T, driver string) {
		e := mustService(t, driver)
		ctx := context.Background()
		res, err := e.svc.CreateProduct(ctx, inventory.NewProduct{SKU: "PRE-1", Name: "Pre-order", InitialStock: 2, BackorderLimit: 5, Threshold: 1})
		mustNoErr(t, err)
		p := res.Product
		if p.BackorderLimit != 5 {
			t.Fatalf("created: %+v", p)
		}

		t.Run("OK", func(t *testing.T) {
			// 2 on hand, 5 more may be sold: 4 sold, then a hold of 2, take it to -4 available.
			out, err := e.svc.StockOut(ctx, inventory.StockChange{ProductID: p.ID, Quantity: 4})
			mustNoErr(t, err)
			if out.Level.Stock != -2 || out.Level.Backordered() != 2 || out.Product.Backordered != 2 || !out.Product.LowStock() {
				t.Fatalf("sold beyond the shelf: %+v", out)
			}
			_, err = e.svc.ReserveStock(ctx, inventory.NewReservation{Items: []inventory.ReservationItemInput{{ProductID: p.ID, Quantity: 2}}})
			mustNoErr(t, err)
			got, err := e.svc.Product(ctx, p.ID)
			mustNoErr(t, err)
			if got.Available() != -4 || got.Backordered != 4 {
				t.Fatalf("after the hold: available %d, backordered %d", got.Available(), got.Backordered)
			}
			checkLedgerExplainsStock(t, e.svc, p.ID)
		})
		t.Run("ErrInsufficientStock", func(t *testing.T) {
			// One more may be sold or held, not two.
			_, err := e.svc.StockOut(ctx, inventory.StockChange{ProductID: p.ID, Quantity: 2})
			wantCode(t, err, inventory.CodeInsufficientStock)
			_, err = e.svc.ReserveStock(ctx, inventory.NewReservation{Items: []inventory.ReservationItemInput{{ProductID: p.ID, Quantity: 2}}})
			wantCode(t, err, inventory.CodeInsufficientStock)
			_, err = e.svc.StockOut(ctx, inventory.StockChange{ProductID: p.ID, Quantity: 1})
			mustNoErr(t, err)
		})
		t.Run("StockInFillsBackordersFirst", func(t *testing.T) {
			in, err := e.svc.StockIn(ctx, inventory.StockChange{ProductID: p.ID, Quantity: 4})
			mustNoErr(t, err)
			if in.Level.Stock != 1 || in.Level.Backordered() != 1 || in.Product.Backordered != 1 || in.Level.Available() != -1 {
				t.Fatalf("a receipt fills backorders first: %+v", in.Level)
			}
		})
		t.Run("LimitNotBelowBackorders", func(t *testing.T) {
			low := int64(0)
			_, err := e.svc.UpdateProduct(ctx, inventory.ProductUpdate{ID: p.ID, BackorderLimit: &low})
			wantCode(t, err, inventory.CodeConflict)
			one := int64(1)
			upd, err := e.svc.UpdateProduct(ctx, inventory.ProductUpdate{ID: p.ID, BackorderLimit: &one})
			mustNoErr(t, err)
			if upd.Product.BackorderLimit != 1 {
				t.Fatalf("update: %+v", upd.Product)
			}
			// At its new limit: nothing more is sold, a receipt still lands.
			_, err = e.svc.StockOut(ctx, inventory.StockChange{ProductID: p.ID, Quantity: 1})
			wantCode(t, err, inventory.CodeInsufficientStock)
			_, err = e.svc.StockIn(ctx, inventory.StockChange{ProductID: p.ID, Quantity: 2})
			mustNoErr(t, err)
		})
		t.Run("AdjustWithinTheLimit", func(t *testing.T) {
			// Counted 0 on hand while 2 are held: 2 backordered, within 1? No.
			_, err := e.svc.AdjustStock(ctx, inventory.StockAdjustment{ProductID: p.ID, Quantity: 0})
			wantCode(t, err, inventory.CodeInsufficientStock)
			_, err = e.svc.AdjustStock(ctx, inventory.StockAdjustment{ProductID: p.ID, Quantity: 1})
			mustNoErr(t, err)
		})
		t.Run("ErrBadInput", func(t *testing.T) {
			_, err := e.svc.CreateProduct(ctx, inventory.NewProduct{SKU: "PRE-2", Name: "x", BackorderLimit: -1})
			wantCode(t, err, inventory.CodeBadInput)
		})
		t.Run("Reconcile", func(t *testing.T) {
			report, err := e.svc.Reconcile(ctx, []int64{p.ID}, nil)
			mustNoErr(t, err)
			if len(report.Drifts) != 0 {
				t.Fatalf("reconcile: %+v", report)
			}
			checkLedgerExplainsStock(t, e.svc, p.ID)
		})
	})
}
