package gormstore_test

import (
	"context"
	"database/sql"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/shopstack/inventory/internal/gormstore"
	"github.com/shopstack/inventory/internal/inventory"
	"github.com/shopstack/inventory/internal/testenv/gormstoretest"
)

// levelsOf reads a product's levels from the database.
func levelsOf(s *gormstore.Store, productID int64) ([]inventory.Level, error) {
	stocks, err := s.ProductStocks(context.Background(), []int64{productID})
	if err != nil || len(stocks) == 0 {
		return nil, err
	}
	return stocks[0].Levels, nil
}

// sqlDB opens a plain connection to the store's database, with the
// settings the store uses (SQLite enforces foreign keys per connection).
func sqlDB(t *testing.T, driver, dsn string) *sql.DB {
	t.Helper()
	name := "pgx"
	if driver == gormstore.SQLite {
		name, dsn = "sqlite", "file:"+dsn+"?_pragma=foreign_keys(1)&_pragma=busy_timeout(5000)"
	}
	db, err := sql.Open(name, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}

func open(t *testing.T, driver, dsn string) *gormstore.Store {
	t.Helper()
	s, err := gormstore.Open(context.Background(), gormstore.Config{Driver: driver, DSN: dsn})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// product inserts a product with stock 10 at the default location.
func product(t *testing.T, s *gormstore.Store) inventory.Product {
	t.Helper()
	now := time.Now().UTC().Truncate(time.Microsecond)
	p := inventory.Product{SKU: "P", Name: "p", Version: 1, CreatedAt: now, UpdatedAt: now}
	tx := &inventory.StockTx{Product: &p, Level: inventory.Level{LocationID: inventory.DefaultLocationID}}
	m := inventory.Movement{Type: inventory.MovementIn, Delta: 10, CreatedAt: now}
	if err := tx.Apply(&m); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateProduct(context.Background(), &p, tx, inventory.IdempotencyRecord{}); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestMigrationsApplyOnce(t *testing.T) {
	gormstoretest.ForEachDriver(t, func(t *testing.T, driver string) {
		dsn := gormstoretest.DSN(t, driver)
		s := open(t, driver, dsn)
		product(t, s)
		_ = s.Close()
		s2 := open(t, driver, dsn) // reopening must not re-run 0001 (it would fail on existing tables)
		if _, err := s2.Product(context.Background(), 1); err != nil {
			t.Fatalf("data lost across reopen: %v", err)
		}
		var n, versions int
		err := sqlDB(t, driver, dsn).QueryRow("SELECT count(*), count(DISTINCT version) FROM schema_migrations").Scan(&n, &versions)
		if err != nil || n < 2 || n != versions {
			t.Fatalf("schema_migrations has %d rows for %d versions (%v), want each migration recorded once", n, versions, err)
		}
	})
}

// TestSchemaRejectsInvalidRows writes directly with SQL, bypassing the
// service: the schema itself must refuse every invalid state.
func TestSchemaRejectsInvalidRows(t *testing.T) {
	gormstoretest.ForEachDriver(t, func(t *testing.T, driver string) {
		dsn := gormstoretest.DSN(t, driver)
		s := open(t, driver, dsn)
		p := product(t, s)
		db := sqlDB(t, driver, dsn)
		for name, stmt := range map[string]string{
			"negative stock":       "UPDATE stock_levels SET stock = -1",
			"reserved above stock": "UPDATE stock_levels SET reserved = 11",
			"negative product":     "UPDATE products SET stock = -5",
			"duplicate sku":        "INSERT INTO products (sku, name, price_micros, created_at, updated_at) VALUES ('P', 'x', 0, '2026-01-01', '2026-01-01')",
			"negative price":       "UPDATE products SET price_micros = -1",
			"unknown movement":     "INSERT INTO stock_movements (seq, product_id, location_id, type, delta, quantity_after, available_after, created_at) VALUES (99, 1, 1, 'STEAL', 1, 1, 1, '2026-01-01')",
			"movement of nothing":  "INSERT INTO stock_movements (seq, product_id, location_id, type, delta, quantity_after, available_after, created_at) VALUES (99, 42, 1, 'IN', 1, 1, 1, '2026-01-01')",
			"key without hash":     "INSERT INTO stock_movements (seq, product_id, location_id, type, delta, quantity_after, available_after, idempotency_key, created_at) VALUES (99, 1, 1, 'IN', 1, 1, 1, 'k', '2026-01-01')",
			"level elsewhere":      "INSERT INTO stock_levels (product_id, location_id, version, updated_at) VALUES (1, 42, 1, '2026-01-01')",
		} {
			if _, err := db.Exec(stmt); err == nil {
				t.Errorf("%s: accepted by the schema", name)
			}
		}
		levels, err := levelsOf(s, p.ID)
		if err != nil || len(levels) != 1 || levels[0].Stock != 10 {
			t.Fatalf("levels after refused writes: %+v %v", levels, err)
		}
	})
}

// TestConcurrentWriterIsDetected changes a level behind the transaction's
// back (possible on PostgreSQL, where only the product row is locked): the
// compare-and-set on the version refuses to overwrite it.
func TestConcurrentWriterIsDetected(t *testing.T) {
	dsn := gormstoretest.DSN(t, gormstore.Postgres)
	s := open(t, gormstore.Postgres, dsn)
	p := product(t, s)
	db := sqlDB(t, gormstore.Postgres, dsn)
	key := inventory.LevelKey{ProductID: p.ID, LocationID: inventory.DefaultLocationID}
	err := updateOne(s, key, inventory.Fence{Epoch: 1, Token: 7}, func(tx *inventory.StockTx) error {
		if _, err := db.Exec("UPDATE stock_levels SET stock = 3, version = version + 1"); err != nil {
			return err
		}
		m := inventory.Movement{Type: inventory.MovementOut, Delta: -5, CreatedAt: time.Now()}
		return tx.Apply(&m)
	})
	if !errors.Is(err, inventory.ErrVersionConflict) {
		t.Fatalf("err = %v, want ErrVersionConflict", err)
	}
	levels, _ := levelsOf(s, p.ID)
	if levels[0].Stock != 3 {
		t.Fatalf("stock %d: the concurrent write was overwritten", levels[0].Stock)
	}
	if page, err := s.Movements(context.Background(), inventory.MovementQuery{After: 1, HasAfter: true, Limit: 10}); err != nil || len(page.Movements) > 0 {
		t.Fatalf("ledger rows of a rolled-back transaction: %+v (%v)", page.Movements, err)
	}
}

func TestUnavailableDatabase(t *testing.T) {
	_, err := gormstore.Open(context.Background(), gormstore.Config{Driver: gormstore.Postgres, DSN: "postgres://nobody@127.0.0.1:1/none?connect_timeout=2"})
	if err == nil {
		t.Fatal("opened a database that does not exist")
	}
	_, err = gormstore.Open(context.Background(), gormstore.Config{Driver: "oracle", DSN: "x"})
	if err == nil {
		t.Fatal("opened an unknown driver")
	}
}

// TestReplicasMigrateTogether opens several stores on one fresh database at
// once, as replicas starting together do: every one of them starts.
func TestReplicasMigrateTogether(t *testing.T) {
	gormstoretest.ForEachDriver(t, func(t *testing.T, driver string) {
		dsn := gormstoretest.DSN(t, driver)
		const replicas = 6
		errs := make([]error, replicas)
		var wg sync.WaitGroup
		for i := range replicas {
			wg.Go(func() {
				s, err := gormstore.Open(context.Background(), gormstore.Config{Driver: driver, DSN: dsn})
				if err == nil {
					_ = s.Close()
				}
				errs[i] = err
			})
		}
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Errorf("replica %d: %v", i, err)
			}
		}
	})
}
