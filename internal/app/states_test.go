package app_test

import (
	"context"
	"testing"

	"github.com/shopstack/inventory/internal/inventory"
	"github.com/shopstack/inventory/internal/testenv/gormstoretest"
)

func TestStockStates(t *testing.T) {
	gormstoretest.ForEachDriver(t, func(t *testing.T, driver string) {
		e := mustService(t, driver)
		ctx := context.Background()
		p := mustProduct(t, e.svc, "states-1", 20, 12)
		move := func(q int64, from, to inventory.StockState) (inventory.StockResult, error) {
			return e.svc.MoveStock(ctx, inventory.StockMove{ProductID: p.ID, Quantity: q, From: from, To: to, Reason: "count"})
		}

		t.Run("OK", func(t *testing.T) {
			res, err := move(3, inventory.StateAvailable, inventory.StateDamaged)
			mustNoErr(t, err)
			m := res.Movement
			if res.Level.Stock != 20 || res.Level.Damaged != 3 || res.Level.Available() != 17 || res.Product.Available() != 17 ||
				m.Type != inventory.MovementMove || m.Delta != 0 || m.StatesDelta != (inventory.States{Damaged: 3}) ||
				m.FromState != inventory.StateAvailable || m.ToState != inventory.StateDamaged || m.AvailableAfter != 17 {
				t.Fatalf("available -> damaged: %+v", res)
			}
			res, err = move(2, inventory.StateDamaged, inventory.StateQualityControl)
			mustNoErr(t, err)
			if res.Level.Damaged != 1 || res.Level.QualityControl != 2 || res.Level.Available() != 17 {
				t.Fatalf("damaged -> qc: %+v", res.Level)
			}
			// Safety stock leaves the available units below the threshold:
			// the product's low-stock alert follows available.
			res, err = move(6, inventory.StateAvailable, inventory.StateSafetyStock)
			mustNoErr(t, err)
			if res.Product.Available() != 11 || !res.Product.LowStock() || !res.Movement.LowStockAlert {
				t.Fatalf("available -> safety stock: %+v", res)
			}
			// A stock-out sells only available units.
			_, err = e.svc.StockOut(ctx, inventory.StockChange{ProductID: p.ID, Quantity: 12})
			wantCode(t, err, inventory.CodeInsufficientStock)
			// Nor can on hand be set below what is held.
			_, err = e.svc.AdjustStock(ctx, inventory.StockAdjustment{ProductID: p.ID, Quantity: 8})
			wantCode(t, err, inventory.CodeInsufficientStock)
			res, err = move(2, inventory.StateQualityControl, inventory.StateAvailable)
			mustNoErr(t, err)
			if res.Level.QualityControl != 0 || res.Level.Available() != 13 || res.Product.LowStock() {
				t.Fatalf("qc -> available: %+v", res)
			}
			checkLedgerExplainsStock(t, e.svc, p.ID)
		})
		t.Run("Incoming", func(t *testing.T) {
			res, err := e.svc.ExpectStock(ctx, inventory.StockChange{ProductID: p.ID, Quantity: 10, Reference: "PO-7"})
			mustNoErr(t, err)
			if res.Level.Incoming != 10 || res.Level.Stock != 20 || res.Product.Incoming != 10 || res.Level.Available() != 13 ||
				res.Movement.Type != inventory.MovementExpect || res.Movement.ToState != inventory.StateIncoming {
				t.Fatalf("expect: %+v", res)
			}
			// Receiving: incoming units arrive on hand, into a state.
			res, err = move(7, inventory.StateIncoming, inventory.StateAvailable)
			mustNoErr(t, err)
			if res.Level.Incoming != 3 || res.Level.Stock != 27 || res.Level.Available() != 20 || res.Movement.Delta != 7 {
				t.Fatalf("receive: %+v", res)
			}
			res, err = move(3, inventory.StateIncoming, inventory.StateDamaged)
			mustNoErr(t, err)
			if res.Level.Incoming != 0 || res.Level.Stock != 30 || res.Level.Damaged != 4 || res.Level.Available() != 20 {
				t.Fatalf("receive damaged: %+v", res)
			}
			checkLedgerExplainsStock(t, e.svc, p.ID)
		})
		t.Run("ErrInsufficientStock", func(t *testing.T) {
			before := len(ledger(t, e.svc, p.ID))
			_, err := move(5, inventory.StateDamaged, inventory.StateAvailable)
			wantCode(t, err, inventory.CodeInsufficientStock)
			_, err = move(1, inventory.StateIncoming, inventory.StateAvailable)
			wantCode(t, err, inventory.CodeInsufficientStock)
			// Reserved units are not available to move.
			_, err = e.svc.ReserveStock(ctx, inventory.NewReservation{Items: []inventory.ReservationItemInput{{ProductID: p.ID, Quantity: 15}}})
			mustNoErr(t, err)
			_, err = move(6, inventory.StateAvailable, inventory.StateDamaged)
			wantCode(t, err, inventory.CodeInsufficientStock)
			if n := len(ledger(t, e.svc, p.ID)); n != before+1 {
				t.Fatalf("refused moves wrote %d ledger rows", n-before-1)
			}
		})
		t.Run("ErrConflict", func(t *testing.T) {
			stale, fresh := int64(3), int64(4)
			_, err := e.svc.MoveStock(ctx, inventory.StockMove{ProductID: p.ID, Quantity: 1, From: inventory.StateDamaged, To: inventory.StateAvailable, ChangeFromQuantity: &stale})
			wantCode(t, err, inventory.CodeConflict)
			res, err := e.svc.MoveStock(ctx, inventory.StockMove{ProductID: p.ID, Quantity: 1, From: inventory.StateDamaged, To: inventory.StateAvailable, ChangeFromQuantity: &fresh})
			mustNoErr(t, err)
			if res.Level.Damaged != 3 {
				t.Fatalf("compare-and-set move: %+v", res.Level)
			}
		})
		t.Run("Idempotency", func(t *testing.T) {
			in := inventory.StockMove{ProductID: p.ID, Quantity: 1, From: inventory.StateAvailable, To: inventory.StateQualityControl, IdempotencyKey: "move-1"}
			first, err := e.svc.MoveStock(ctx, in)
			mustNoErr(t, err)
			again, err := e.svc.MoveStock(ctx, in)
			mustNoErr(t, err)
			if !again.Replayed || again.Movement.Seq != first.Movement.Seq || again.Level.QualityControl != 1 {
				t.Fatalf("replay: %+v", again)
			}
			in.To = inventory.StateDamaged
			_, err = e.svc.MoveStock(ctx, in)
			wantCode(t, err, inventory.CodeConflict)
		})
		t.Run("ErrBadInput", func(t *testing.T) {
			for _, in := range []inventory.StockMove{
				{ProductID: p.ID, Quantity: 1, From: inventory.StateDamaged, To: inventory.StateDamaged},
				{ProductID: p.ID, Quantity: 1, From: inventory.StateAvailable, To: inventory.StateIncoming},
				{ProductID: p.ID, Quantity: 1, From: "LOST", To: inventory.StateAvailable},
				{ProductID: p.ID, Quantity: 0, From: inventory.StateDamaged, To: inventory.StateAvailable},
			} {
				_, err := e.svc.MoveStock(ctx, in)
				wantCode(t, err, inventory.CodeBadInput)
			}
		})
		t.Run("Reconcile", func(t *testing.T) {
			report, err := e.svc.Reconcile(ctx, []int64{p.ID}, nil)
			mustNoErr(t, err)
			if len(report.Drifts) != 0 || report.Levels != 1 {
				t.Fatalf("reconcile: %+v", report)
			}
		})
	})
}
