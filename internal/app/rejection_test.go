package app_test

import (
	"context"
	"testing"

	"github.com/shopstack/inventory/internal/inventory"
	"github.com/shopstack/inventory/internal/testenv/gormstoretest"
)

// TestRefusalIsFinal: a request refused for a reason a retry cannot change
// is refused again when its key comes back, even once the stock is there:
// a late duplicate (a first attempt still queued when the client's retry
// was answered) must never be applied after the client was told no. The
// fault suite found this with client timeouts.
func TestRefusalIsFinal(t *testing.T) {
	gormstoretest.ForEachDriver(t, func(t *testing.T, driver string) {
		e := mustService(t, driver)
		ctx := context.Background()
		p := mustProduct(t, e.svc, "FINAL", 0, 0)
		sell := inventory.StockChange{ProductID: p.ID, Quantity: 1, IdempotencyKey: "order-7"}
		_, err := e.svc.StockOut(ctx, sell)
		wantCode(t, err, inventory.CodeInsufficientStock)
		_, err = e.svc.StockIn(ctx, inventory.StockChange{ProductID: p.ID, Quantity: 5})
		mustNoErr(t, err)

		_, err = e.svc.StockOut(ctx, sell)
		wantCode(t, err, inventory.CodeInsufficientStock)
		other := sell
		other.Quantity = 2
		_, err = e.svc.StockOut(ctx, other)
		wantCode(t, err, inventory.CodeConflict)
		if got, _ := e.svc.Product(ctx, p.ID); got.Stock != 5 {
			t.Errorf("stock %d, want 5: the refused sale was applied", got.Stock)
		}
		// A stale count is final too; a fresh key is judged anew.
		from := int64(4)
		adj := inventory.StockAdjustment{ProductID: p.ID, Quantity: 9, ChangeFromQuantity: &from, IdempotencyKey: "count-1"}
		_, err = e.svc.AdjustStock(ctx, adj)
		wantCode(t, err, inventory.CodeConflict)
		from = 5
		_, err = e.svc.AdjustStock(ctx, adj) // same key, other input
		wantCode(t, err, inventory.CodeConflict)
		sell.IdempotencyKey = "order-8"
		if _, err := e.svc.StockOut(ctx, sell); err != nil {
			t.Errorf("a fresh key: %v", err)
		}
		checkLedgerExplainsStock(t, e.svc, p.ID)
	})
}

// TestReservationRefusalIsFinal: the same for reservations.
func TestReservationRefusalIsFinal(t *testing.T) {
	gormstoretest.ForEachDriver(t, func(t *testing.T, driver string) {
		e := mustService(t, driver)
		ctx := context.Background()
		p := mustProduct(t, e.svc, "HOLD", 1, 0)
		hold := inventory.NewReservation{Items: []inventory.ReservationItemInput{{ProductID: p.ID, Quantity: 2}}, IdempotencyKey: "cart-9"}
		_, err := e.svc.ReserveStock(ctx, hold)
		wantCode(t, err, inventory.CodeInsufficientStock)
		_, err = e.svc.StockIn(ctx, inventory.StockChange{ProductID: p.ID, Quantity: 5})
		mustNoErr(t, err)
		_, err = e.svc.ReserveStock(ctx, hold)
		wantCode(t, err, inventory.CodeInsufficientStock)
		other := hold
		other.Items = []inventory.ReservationItemInput{{ProductID: p.ID, Quantity: 1}}
		_, err = e.svc.ReserveStock(ctx, other)
		wantCode(t, err, inventory.CodeConflict)
		if got, _ := e.svc.Product(ctx, p.ID); got.Reserved != 0 {
			t.Errorf("reserved %d, want 0: the refused reservation was made", got.Reserved)
		}
		hold.IdempotencyKey = "cart-10"
		if _, err := e.svc.ReserveStock(ctx, hold); err != nil {
			t.Errorf("a fresh key: %v", err)
		}
		// A stock movement's key and a reservation's do not collide.
		if _, err := e.svc.StockOut(ctx, inventory.StockChange{ProductID: p.ID, Quantity: 1, IdempotencyKey: "cart-9"}); err != nil {
			t.Errorf("a stock-out with a reservation's key: %v", err)
		}
		checkLedgerExplainsStock(t, e.svc, p.ID)
	})
}
