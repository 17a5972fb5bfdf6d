package gormstore_test

import (
	"context"
	"errors"
	"regexp"
	"slices"
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

// TestBackorderSchema: migration 0013 lets a level's stock go below zero
// down to its backorder limit (no limit when NULL), and no further. On
// SQLite, whose tables it rebuilds, running it again over a database with
// products, reservations, transfers and their ledger keeps every row and
// every reference, and the service goes on writing.
func TestBackorderSchema(t *testing.T) {
	gormstoretest.ForEachDriver(t, func(t *testing.T, driver string) {
		ctx := context.Background()
		st := gormstoretest.Open(t, driver)
		svc := inventorytest.Start(t, st, app.Config{})
		p, err := svc.CreateProduct(ctx, inventory.NewProduct{SKU: "REBUILT", Name: "Rebuilt", InitialStock: 10})
		if err != nil {
			t.Fatal(err)
		}
		id := p.Product.ID
		shop, err := svc.CreateLocation(ctx, inventory.NewLocation{Code: "SHOP", Name: "Shop"})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := svc.ReserveStock(ctx, inventory.NewReservation{Items: []inventory.ReservationItemInput{{ProductID: id, Quantity: 2}}}); err != nil {
			t.Fatal(err)
		}
		tr, err := svc.CreateTransfer(ctx, inventory.NewTransfer{OriginID: inventory.DefaultLocationID, DestinationID: shop.ID,
			Items: []inventory.TransferItemInput{{ProductID: id, Quantity: 3}}})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := svc.ShipTransfer(ctx, tr.Transfer.ID, "ship-1"); err != nil {
			t.Fatal(err)
		}
		before := ledgerOf(t, svc, id)

		if driver == gormstore.SQLite {
			sql, err := gormstore.Migration(st, 13)
			if err != nil {
				t.Fatal(err)
			}
			if err := gormstore.Rebuild(ctx, st, sql); err != nil {
				t.Fatal(err)
			}
			// 0013 made products and stock_movements without 0014's columns.
			if sql, err = gormstore.Migration(st, 14); err != nil {
				t.Fatal(err)
			}
			if err := gormstore.Rebuild(ctx, st, sql); err != nil {
				t.Fatal(err)
			}
			var bad []struct{ Table string }
			if err := gormstore.Raw(ctx, st, &bad, "PRAGMA foreign_key_check"); err != nil || len(bad) > 0 {
				t.Fatalf("references after the rebuild: %+v %v", bad, err)
			}
			var renamed int
			if err := gormstore.Raw(ctx, st, &renamed, "SELECT count(*) FROM sqlite_master WHERE sql LIKE '%_0013%'"); err != nil || renamed > 0 {
				t.Fatalf("%d schema objects still name a table of the rebuild (%v)", renamed, err)
			}
			if after := ledgerOf(t, svc, id); len(after) != len(before) || after[len(after)-1] != before[len(before)-1] {
				t.Fatalf("ledger after the rebuild: %d rows, was %d", len(after), len(before))
			}
			next, err := svc.CreateProduct(ctx, inventory.NewProduct{SKU: "AFTER", Name: "After"})
			if err != nil || next.Product.ID <= id {
				t.Fatalf("a product after the rebuild: %+v %v", next.Product, err)
			}
		}
		if _, err := svc.StockOut(ctx, inventory.StockChange{ProductID: id, Quantity: 5, IdempotencyKey: "after"}); err != nil {
			t.Fatal(err)
		}
		level := func(set string) error {
			return gormstore.Exec(ctx, st, "UPDATE stock_levels SET "+set+" WHERE product_id = ? AND location_id = 1", id)
		}
		// On hand 0, reserved 2: with a limit of 5, on hand may go to -3.
		if err := level("backorder_limit = 5, stock = -3"); err != nil {
			t.Fatalf("within the backorder limit: %v", err)
		}
		if err := level("stock = -4"); err == nil {
			t.Fatal("a level went beyond its backorder limit")
		}
		if err := level("backorder_limit = NULL, stock = -100"); err != nil {
			t.Fatalf("an untracked level: %v", err)
		}
		if err := level("backorder_limit = 0, stock = 1"); err == nil {
			t.Fatal("a level holds more reserved than on hand without a backorder limit")
		}
	})
}

func ledgerOf(t *testing.T, svc *app.Service, id int64) []inventory.Movement {
	t.Helper()
	page, err := svc.Movements(context.Background(), inventory.MovementQuery{ProductID: id, Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	return page.Movements
}

// TestRejectionFieldMigration: a refusal remembered before migration 0015
// (no field column) stays readable after it: a retry is refused with the
// same code and message, naming no field; one remembered after it names
// its field.
func TestRejectionFieldMigration(t *testing.T) {
	gormstoretest.ForEachDriver(t, func(t *testing.T, driver string) {
		ctx := context.Background()
		st := gormstoretest.Open(t, driver)
		svc := inventorytest.Start(t, st, app.Config{})
		res, err := svc.CreateProduct(ctx, inventory.NewProduct{SKU: "FULL", Name: "Full", InitialStock: inventory.MaxQuantity})
		if err != nil {
			t.Fatal(err)
		}
		id := res.Product.ID
		for _, q := range []int64{inventory.MaxQuantity, inventory.MaxStock - 2*inventory.MaxQuantity} {
			if _, err := svc.StockIn(ctx, inventory.StockChange{ProductID: id, Quantity: q}); err != nil {
				t.Fatal(err)
			}
		}
		over := func(key string) *inventory.Error {
			_, err := svc.StockIn(ctx, inventory.StockChange{ProductID: id, Quantity: 1, IdempotencyKey: key})
			e, ok := errors.AsType[*inventory.Error](err)
			if !ok || e.Code != inventory.CodeBadInput {
				t.Fatalf("stock-in over the limit with key %s: %v, want BAD_USER_INPUT", key, err)
			}
			return e
		}
		before := over("old")
		if err := gormstore.Exec(ctx, st, "ALTER TABLE stock_rejections DROP COLUMN field"); err != nil {
			t.Fatal(err)
		}
		sql, err := gormstore.Migration(st, 15)
		if err != nil {
			t.Fatal(err)
		}
		if err := gormstore.Exec(ctx, st, sql); err != nil {
			t.Fatal(err)
		}
		if _, err := svc.StockOut(ctx, inventory.StockChange{ProductID: id, Quantity: 10}); err != nil {
			t.Fatal(err)
		}
		if again := over("old"); again.Message != before.Message || again.Field != "" {
			t.Errorf("retry of a refusal remembered without its field: %+v, want %q and no field", again, before.Message)
		}
		if _, err := svc.StockIn(ctx, inventory.StockChange{ProductID: id, Quantity: 10}); err != nil {
			t.Fatal(err)
		}
		first := over("new")
		if _, err := svc.StockOut(ctx, inventory.StockChange{ProductID: id, Quantity: 10}); err != nil {
			t.Fatal(err)
		}
		if again := over("new"); again.Field != "quantity" || first.Field != "quantity" || again.Message != first.Message {
			t.Errorf("refusal %+v, its retry %+v: want both naming quantity", first, again)
		}
	})
}

// TestMovementTypesAgree checks that the two databases accept the same
// movement types: SQLite's ledger refers to the movement_types table,
// PostgreSQL's lists them in a CHECK (migration 0016).
func TestMovementTypesAgree(t *testing.T) {
	ctx := context.Background()
	types := map[string][]string{}
	for _, driver := range gormstoretest.Drivers {
		st := gormstoretest.Open(t, driver)
		if driver == gormstore.SQLite {
			var codes []string
			if err := gormstore.Raw(ctx, st, &codes, "SELECT code FROM movement_types ORDER BY code"); err != nil {
				t.Fatal(err)
			}
			types[driver] = codes
			continue
		}
		var def string
		if err := gormstore.Raw(ctx, st, &def, `SELECT pg_get_constraintdef(oid) FROM pg_constraint
			WHERE conname = 'stock_movements_type_check' AND conrelid = 'stock_movements'::regclass`); err != nil {
			t.Fatal(err)
		}
		var codes []string
		for _, m := range regexp.MustCompile(`'([A-Z_]+)'`).FindAllStringSubmatch(def, -1) {
			codes = append(codes, m[1])
		}
		slices.Sort(codes)
		types[driver] = codes
	}
	if len(types[gormstore.SQLite]) < 13 {
		t.Fatalf("SQLite's movement types: %v", types[gormstore.SQLite])
	}
	if pg, ok := types[gormstore.Postgres]; ok && !slices.Equal(pg, types[gormstore.SQLite]) {
		t.Fatalf("PostgreSQL accepts %v, SQLite %v", pg, types[gormstore.SQLite])
	}
}
