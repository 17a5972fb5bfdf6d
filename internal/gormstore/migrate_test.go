package gormstore_test

import (
	"context"
	"testing"

	"github.com/shopstack/inventory/internal/app"
	"github.com/shopstack/inventory/internal/gormstore"
	"github.com/shopstack/inventory/internal/inventory"
	"github.com/shopstack/inventory/internal/testenv/gormstoretest"
	"github.com/shopstack/inventory/internal/testenv/inventorytest"
)

// TestReservationKeysMigration makes a reservation look as one made before
// migration 0009 (no key on its RESERVE movement), runs the migration, and
// retries the reservation: it is replayed, not made again.
func TestReservationKeysMigration(t *testing.T) {
	gormstoretest.ForEachDriver(t, func(t *testing.T, driver string) {
		ctx := context.Background()
		st := gormstoretest.Open(t, driver)
		svc := inventorytest.Start(t, st, app.Config{})
		res, err := svc.CreateProduct(ctx, inventory.NewProduct{SKU: "OLD-CART", Name: "Old cart", InitialStock: 10})
		if err != nil {
			t.Fatal(err)
		}
		id := res.Product.ID
		other := inventory.NewLocation{Code: "EAST", Name: "East"}
		loc, err := svc.CreateLocation(ctx, other)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := svc.StockIn(ctx, inventory.StockChange{ProductID: id, LocationID: loc.ID, Quantity: 10}); err != nil {
			t.Fatal(err)
		}
		hold := inventory.NewReservation{IdempotencyKey: "cart-1", Items: []inventory.ReservationItemInput{
			{ProductID: id, Quantity: 2}, {ProductID: id, LocationID: loc.ID, Quantity: 3}}}
		first, err := svc.ReserveStock(ctx, hold)
		if err != nil {
			t.Fatal(err)
		}
		if err := gormstore.Exec(ctx, st, "UPDATE stock_movements SET idempotency_key = NULL, request_hash = NULL WHERE reservation_id = ?",
			first.Reservation.ID); err != nil {
			t.Fatal(err)
		}
		sql, err := gormstore.Migration(st, 9)
		if err != nil {
			t.Fatal(err)
		}
		if err := gormstore.Exec(ctx, st, sql); err != nil {
			t.Fatal(err)
		}
		again, err := svc.ReserveStock(ctx, hold)
		if err != nil {
			t.Fatal(err)
		}
		if !again.Replayed || again.Reservation.ID != first.Reservation.ID {
			t.Fatalf("retry after the migration: %+v, want a replay of reservation %d", again, first.Reservation.ID)
		}
		page, err := svc.Movements(ctx, inventory.MovementQuery{ProductID: id, Reservations: true, Limit: 10})
		if err != nil {
			t.Fatal(err)
		}
		keys := 0
		for _, m := range page.Movements {
			if m.IdempotencyKey != "" {
				keys++
				if m.IdempotencyKey != "reserve:cart-1" || m.RequestHash != first.Reservation.RequestHash {
					t.Errorf("movement %d has key %q hash %q", m.Seq, m.IdempotencyKey, m.RequestHash)
				}
			}
		}
		if len(page.Movements) != 2 || keys != 1 {
			t.Errorf("%d reservation movements, %d with a key: want 2 and 1", len(page.Movements), keys)
		}
	})
}
