package app_test

import (
	"context"
	"testing"

	"github.com/shopstack/inventory/internal/inventory"
	"github.com/shopstack/inventory/internal/testenv/gormstoretest"
)

func TestStockInOut(t *testing.T) {
	gormstoretest.ForEachDriver(t, func(t *testing.T, driver string) {
		e := mustService(t, driver)
		ctx := inventory.WithActor(context.Background(), "clerk")
		p := mustProduct(t, e.svc, "sku-1", 0, 0)

		t.Run("OK", func(t *testing.T) {
			res, err := e.svc.StockIn(ctx, inventory.StockChange{ProductID: p.ID, Quantity: 10, Reason: "delivery", Reference: "PO-1"})
			mustNoErr(t, err)
			m := res.Movement
			if res.Replayed || res.Product.Stock != 10 || res.Level.Stock != 10 || res.Level.LocationID != inventory.DefaultLocationID {
				t.Fatalf("stock in: %+v", res)
			}
			if m.Seq == 0 || m.Type != inventory.MovementIn || m.Delta != 10 || m.QuantityAfter != 10 || m.AvailableAfter != 10 ||
				m.Reason != "delivery" || m.Reference != "PO-1" || m.Actor != "clerk" || m.TraceID != "trace-test" || m.Fence.Token == 0 || m.Fence.Epoch != e.svc.LockEpoch() {
				t.Fatalf("movement: %+v", m)
			}
			res, err = e.svc.StockOut(ctx, inventory.StockChange{ProductID: p.ID, Quantity: 4})
			mustNoErr(t, err)
			if res.Product.Stock != 6 || res.Movement.Delta != -4 || res.Movement.Type != inventory.MovementOut || res.Movement.Seq <= m.Seq {
				t.Fatalf("stock out: %+v", res)
			}
			// A level's fences never go back. (They may repeat: a worker
			// whose queue stays busy keeps its lease for the next batch.)
			if res.Movement.Fence.Before(m.Fence) {
				t.Fatalf("fence %+v after %+v: must not go back", res.Movement.Fence, m.Fence)
			}
		})
		t.Run("ErrInsufficientStock", func(t *testing.T) {
			before := len(ledger(t, e.svc, p.ID))
			_, err := e.svc.StockOut(ctx, inventory.StockChange{ProductID: p.ID, Quantity: 7})
			wantCode(t, err, inventory.CodeInsufficientStock)
			got, _ := e.svc.Product(ctx, p.ID)
			if got.Stock != 6 || len(ledger(t, e.svc, p.ID)) != before {
				t.Fatalf("a rejected stock-out changed something: stock %d", got.Stock)
			}
		})
		t.Run("ErrNotFound", func(t *testing.T) {
			_, err := e.svc.StockIn(ctx, inventory.StockChange{ProductID: 999999, Quantity: 1})
			wantCode(t, err, inventory.CodeNotFound)
			_, err = e.svc.StockIn(ctx, inventory.StockChange{ProductID: p.ID, LocationID: 4242, Quantity: 1})
			wantCode(t, err, inventory.CodeNotFound)
		})
		t.Run("ErrBadInput", func(t *testing.T) {
			for _, q := range []int64{0, -1, inventory.MaxQuantity + 1} {
				_, err := e.svc.StockIn(ctx, inventory.StockChange{ProductID: p.ID, Quantity: q})
				wantCode(t, err, inventory.CodeBadInput)
			}
			_, err := e.svc.StockIn(ctx, inventory.StockChange{ProductID: p.ID, Quantity: 1, Reason: "bad\x00reason"})
			wantCode(t, err, inventory.CodeBadInput)
			_, err = e.svc.StockIn(ctx, inventory.StockChange{ProductID: p.ID, Quantity: 1, IdempotencyKey: "has space"})
			wantCode(t, err, inventory.CodeBadInput)
		})
		t.Run("Locations", func(t *testing.T) {
			wh, err := e.svc.CreateLocation(ctx, inventory.NewLocation{Code: "wh-2", Name: "Warehouse 2"})
			mustNoErr(t, err)
			if wh.Code != "WH-2" || wh.ID == inventory.DefaultLocationID {
				t.Fatalf("location: %+v", wh)
			}
			_, err = e.svc.CreateLocation(ctx, inventory.NewLocation{Code: "WH-2", Name: "again"})
			wantCode(t, err, inventory.CodeConflict)
			res, err := e.svc.StockIn(ctx, inventory.StockChange{ProductID: p.ID, LocationID: wh.ID, Quantity: 5})
			mustNoErr(t, err)
			if res.Level.Stock != 5 || res.Product.Stock != 11 || res.Movement.AvailableAfter != 11 {
				t.Fatalf("second location: %+v", res)
			}
			// Each location sells only its own stock.
			_, err = e.svc.StockOut(ctx, inventory.StockChange{ProductID: p.ID, LocationID: wh.ID, Quantity: 6})
			wantCode(t, err, inventory.CodeInsufficientStock)
			levels, err := e.svc.Levels(ctx, p.ID)
			mustNoErr(t, err)
			if len(levels) != 2 || levels[0].Stock != 6 || levels[1].Stock != 5 {
				t.Fatalf("levels: %+v", levels)
			}
			locs, err := e.svc.Locations(ctx)
			mustNoErr(t, err)
			if len(locs) != 2 || !locs[0].IsDefault() {
				t.Fatalf("locations: %+v", locs)
			}
		})
		checkLedgerExplainsStock(t, e.svc, p.ID)
	})
}

func TestAdjustStock(t *testing.T) {
	gormstoretest.ForEachDriver(t, func(t *testing.T, driver string) {
		e := mustService(t, driver)
		ctx := context.Background()
		p := mustProduct(t, e.svc, "ADJ", 10, 0)
		res, err := e.svc.AdjustStock(ctx, inventory.StockAdjustment{ProductID: p.ID, Quantity: 7, Reason: "count"})
		mustNoErr(t, err)
		if res.Movement.Type != inventory.MovementAdjust || res.Movement.Delta != -3 || res.Product.Stock != 7 {
			t.Fatalf("adjust: %+v", res)
		}
		from := int64(7)
		res, err = e.svc.AdjustStock(ctx, inventory.StockAdjustment{ProductID: p.ID, Quantity: 12, ChangeFromQuantity: &from})
		mustNoErr(t, err)
		if res.Movement.Delta != 5 || res.Product.Stock != 12 {
			t.Fatalf("adjust with changeFrom: %+v", res)
		}
		_, err = e.svc.AdjustStock(ctx, inventory.StockAdjustment{ProductID: p.ID, Quantity: 1, ChangeFromQuantity: &from})
		wantCode(t, err, inventory.CodeConflict)
		res, err = e.svc.AdjustStock(ctx, inventory.StockAdjustment{ProductID: p.ID, Quantity: 0})
		mustNoErr(t, err)
		if res.Product.Stock != 0 || res.Movement.QuantityAfter != 0 {
			t.Fatalf("adjust to zero: %+v", res)
		}
		_, err = e.svc.AdjustStock(ctx, inventory.StockAdjustment{ProductID: p.ID, Quantity: -1})
		wantCode(t, err, inventory.CodeBadInput)
		checkLedgerExplainsStock(t, e.svc, p.ID)
	})
}

func TestStockCap(t *testing.T) {
	e := mustService(t, "sqlite")
	ctx := context.Background()
	p := mustProduct(t, e.svc, "BIG", inventory.MaxQuantity, 0)
	_, err := e.svc.StockIn(ctx, inventory.StockChange{ProductID: p.ID, Quantity: inventory.MaxQuantity})
	mustNoErr(t, err)
	_, err = e.svc.StockIn(ctx, inventory.StockChange{ProductID: p.ID, Quantity: inventory.MaxQuantity})
	wantCode(t, err, inventory.CodeBadInput)
}

func TestLowStockAlertIsEdgeTriggered(t *testing.T) {
	gormstoretest.ForEachDriver(t, func(t *testing.T, driver string) {
		e := mustService(t, driver)
		ctx := context.Background()
		p := mustProduct(t, e.svc, "LOW", 10, 5)
		steps := []struct {
			out, in   int64
			wantAlert bool
		}{
			{out: 3},                  // 7: above
			{out: 3, wantAlert: true}, // 4: crosses below
			{out: 1},                  // 3: still below, already alerted
			{in: 1},                   // 4: still below
			{in: 10},                  // 14: back above, re-armed
			{out: 9, wantAlert: true}, // 5: at threshold, not below
		}
		steps[5].wantAlert = false
		steps = append(steps, struct {
			out, in   int64
			wantAlert bool
		}{out: 1, wantAlert: true}) // 4: below again
		for i, s := range steps {
			var res inventory.StockResult
			var err error
			if s.out > 0 {
				res, err = e.svc.StockOut(ctx, inventory.StockChange{ProductID: p.ID, Quantity: s.out})
			} else {
				res, err = e.svc.StockIn(ctx, inventory.StockChange{ProductID: p.ID, Quantity: s.in})
			}
			mustNoErr(t, err)
			if res.Movement.LowStockAlert != s.wantAlert {
				t.Errorf("step %d (available %d): alert = %v, want %v", i, res.Movement.AvailableAfter, res.Movement.LowStockAlert, s.wantAlert)
			}
			if got := res.Product.LowStock(); got != (res.Product.Available() < 5) {
				t.Errorf("step %d: LowStock() = %v with available %d", i, got, res.Product.Available())
			}
		}
		low, err := e.svc.LowStockProducts(ctx, 10)
		mustNoErr(t, err)
		if len(low) != 1 || low[0].Product.ID != p.ID {
			t.Fatalf("lowStockProducts = %+v", low)
		}
	})
}
