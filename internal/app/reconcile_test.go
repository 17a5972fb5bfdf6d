package app_test

import (
	"context"
	"database/sql"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	_ "github.com/glebarez/go-sqlite" // database/sql driver "sqlite", to inject drift
	_ "github.com/jackc/pgx/v5/stdlib"

	"github.com/shopstack/inventory/internal/app"
	"github.com/shopstack/inventory/internal/gormstore"
	"github.com/shopstack/inventory/internal/inventory"
	"github.com/shopstack/inventory/internal/lock/memlock"
	"github.com/shopstack/inventory/internal/testenv/gormstoretest"
	"github.com/shopstack/inventory/internal/testenv/inventorytest"
)

// rawDB opens the store's database behind its back, as a bug or an
// operator with a SQL console would.
func rawDB(t *testing.T, driver, dsn string) *sql.DB {
	t.Helper()
	name := "pgx"
	if driver == gormstore.SQLite {
		name, dsn = "sqlite", "file:"+dsn+"?_pragma=busy_timeout(10000)"
	}
	db, err := sql.Open(name, dsn)
	mustNoErr(t, err)
	t.Cleanup(func() { _ = db.Close() })
	return db
}

func exec(t *testing.T, db *sql.DB, query string, args ...any) {
	t.Helper()
	if _, err := db.Exec(query, args...); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
}

// TestDriftReportedAndRepaired changes two levels directly in the
// database: reconcile names exactly those, with the numbers, and
// repairDrift makes each agree with its history again.
func TestDriftReportedAndRepaired(t *testing.T) {
	gormstoretest.ForEachDriver(t, func(t *testing.T, driver string) {
		dsn := gormstoretest.DSN(t, driver)
		svc := startService(t, mustOpen(t, driver, dsn), memlock.New(0))
		ctx := context.Background()
		a, b := mustProduct(t, svc, "A", 10, 0), mustProduct(t, svc, "B", 8, 0)
		_, err := svc.ReserveStock(ctx, inventory.NewReservation{Items: []inventory.ReservationItemInput{{ProductID: b.ID, Quantity: 3}}})
		mustNoErr(t, err)
		report, err := svc.Reconcile(ctx, nil, nil)
		mustNoErr(t, err)
		if report.Levels != 2 || len(report.Drifts) != 0 {
			t.Fatalf("healthy: %d levels, drifts %+v", report.Levels, report.Drifts)
		}

		db := rawDB(t, driver, dsn)
		exec(t, db, "UPDATE stock_levels SET stock = stock + 5 WHERE product_id = $1", a.ID)
		exec(t, db, "UPDATE products SET stock = stock + 5 WHERE id = $1", a.ID)
		exec(t, db, "UPDATE stock_levels SET damaged = 2 WHERE product_id = $1", a.ID)
		exec(t, db, "UPDATE products SET damaged = 2 WHERE id = $1", a.ID)
		exec(t, db, "UPDATE stock_levels SET reserved = reserved - 2 WHERE product_id = $1", b.ID)
		exec(t, db, "UPDATE products SET reserved = reserved - 2 WHERE id = $1", b.ID)

		report, err = svc.Reconcile(ctx, nil, nil)
		mustNoErr(t, err)
		want := []inventory.LevelAudit{
			{Key: inventory.LevelKey{ProductID: a.ID, LocationID: 1}, Stock: 15, LedgerStock: 10, States: inventory.States{Damaged: 2}},
			{Key: inventory.LevelKey{ProductID: b.ID, LocationID: 1}, Stock: 8, LedgerStock: 8, Reserved: 1, HeldReserved: 3},
		}
		if len(report.Drifts) != 2 || report.Drifts[0] != want[0] || report.Drifts[1] != want[1] {
			t.Fatalf("drifts %+v, want %+v", report.Drifts, want)
		}
		if r, err := svc.Reconcile(ctx, []int64{b.ID}, []int64{1}); err != nil || len(r.Drifts) != 1 || r.Drifts[0] != want[1] {
			t.Errorf("reconcile of B: %+v, %v", r, err)
		}

		ra, err := svc.RepairDrift(ctx, want[0].Key, "5 units found unrecorded")
		mustNoErr(t, err)
		if m := ra.Movement; m == nil || m.Type != inventory.MovementCorrection || m.Delta != 5 || m.ReservedDelta != 0 || m.QuantityAfter != 15 || ra.Level.Stock != 15 ||
			m.StatesDelta != (inventory.States{Damaged: 2}) || ra.Level.Damaged != 2 {
			t.Errorf("repair of A: %+v", ra)
		}
		rb, err := svc.RepairDrift(ctx, want[1].Key, "reserved units lost")
		mustNoErr(t, err)
		if m := rb.Movement; m == nil || m.Delta != 0 || m.ReservedDelta != 2 || rb.Level.Reserved != 3 || rb.Before != want[1] {
			t.Errorf("repair of B: %+v", rb)
		}
		report, err = svc.Reconcile(ctx, nil, nil)
		mustNoErr(t, err)
		if len(report.Drifts) != 0 {
			t.Errorf("after the repairs: %+v", report.Drifts)
		}
		checkLedgerExplainsStock(t, svc, a.ID)
		checkLedgerExplainsStock(t, svc, b.ID)

		again, err := svc.RepairDrift(ctx, want[0].Key, "again")
		mustNoErr(t, err)
		if again.Movement != nil {
			t.Errorf("repairing a healthy level wrote %+v", again.Movement)
		}
		_, err = svc.RepairDrift(ctx, inventory.LevelKey{ProductID: a.ID, LocationID: 99}, "none")
		wantCode(t, err, inventory.CodeNotFound)
		_, err = svc.RepairDrift(ctx, want[0].Key, "")
		wantCode(t, err, inventory.CodeBadInput)
	})
}

// TestReconcileHealthyUnderLoad runs a mixed workload (sales, receipts,
// counts, bulk counts, reservations committed, released and left to
// expire) and reconciles while it runs and after: a healthy system never
// reports drift. The fault suite relies on this oracle.
func TestReconcileHealthyUnderLoad(t *testing.T) {
	gormstoretest.ForEachDriver(t, func(t *testing.T, driver string) {
		st := gormstoretest.Open(t, driver)
		svc := inventorytest.Start(t, st, app.Config{PollInterval: 50 * time.Millisecond, ReapInterval: 20 * time.Millisecond})
		ctx := context.Background()
		ids := make([]int64, 5)
		for i := range ids {
			ids[i] = mustProduct(t, svc, string(rune('P'+i)), 50, 5).ID
		}
		stop := make(chan struct{})
		var wg sync.WaitGroup
		for c := range 6 {
			wg.Go(func() {
				r := rand.New(rand.NewPCG(uint64(c), 7))
				for {
					select {
					case <-stop:
						return
					default:
					}
					id := ids[r.IntN(len(ids))]
					var err error
					switch r.IntN(6) {
					case 0:
						_, err = svc.StockIn(ctx, inventory.StockChange{ProductID: id, Quantity: 1 + r.Int64N(5)})
					case 1:
						_, err = svc.StockOut(ctx, inventory.StockChange{ProductID: id, Quantity: 1 + r.Int64N(5)})
					case 2:
						_, err = svc.AdjustStock(ctx, inventory.StockAdjustment{ProductID: id, Quantity: 20 + r.Int64N(30)})
					case 3:
						_, err = svc.BulkAdjustStock(ctx, inventory.BulkAdjustment{Policy: inventory.BulkIgnoreFailed,
							Items: []inventory.BulkItem{{ProductID: ids[0], Delta: ptr(1)}, {ProductID: ids[1], Delta: ptr(-2)}}})
					default:
						var res inventory.ReservationResult
						res, err = svc.ReserveStock(ctx, inventory.NewReservation{TTL: time.Second,
							Items: []inventory.ReservationItemInput{{ProductID: id, Quantity: 1 + r.Int64N(3)}}})
						if err == nil {
							switch r.IntN(3) {
							case 0:
								_, err = svc.CommitReservation(ctx, res.Reservation.ID)
							case 1:
								_, err = svc.ReleaseReservation(ctx, res.Reservation.ID)
							} // else it expires
						}
					}
					if c := inventory.ErrorCode(err); err != nil && c != inventory.CodeInsufficientStock && c != inventory.CodeReservationExpired {
						t.Errorf("workload: %v", err)
						return
					}
				}
			})
		}
		checks := 0
		for deadline := time.Now().Add(1500 * time.Millisecond); time.Now().Before(deadline); checks++ {
			report, err := svc.Reconcile(ctx, nil, nil)
			mustNoErr(t, err)
			if len(report.Drifts) != 0 {
				t.Fatalf("drift while running: %+v", report.Drifts)
			}
		}
		close(stop)
		wg.Wait()
		time.Sleep(1200 * time.Millisecond) // the last reservations expire, and the reaper releases them
		report, err := svc.Reconcile(ctx, nil, nil)
		mustNoErr(t, err)
		if report.Levels != len(ids) || len(report.Drifts) != 0 {
			t.Fatalf("after the workload: %d levels, drifts %+v", report.Levels, report.Drifts)
		}
		t.Logf("%s: %d reconciles during the workload, no drift", driver, checks)
	})
}
