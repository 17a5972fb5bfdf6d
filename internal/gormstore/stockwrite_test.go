package gormstore_test

import (
	"context"
	"testing"
	"time"

	"github.com/shopstack/inventory/internal/inventory"
	"github.com/shopstack/inventory/internal/testenv/gormstoretest"
)

// TestWriterWritesWhatTheDomainRecorded creates, extends and closes
// reservations through the writer and reads them back: the store writes
// each change as recorded (a closure deactivates only the items it names,
// and closes the reservation only while it is ACTIVE), and the times it
// writes compare with times bound as parameters, as the reaper's and the
// stock reads' queries compare them.
func TestWriterWritesWhatTheDomainRecorded(t *testing.T) {
	gormstoretest.ForEachDriver(t, func(t *testing.T, driver string) {
		s := gormstoretest.Open(t, driver)
		ctx := context.Background()
		p := newProduct(t, s, "R")
		a := inventory.LevelKey{ProductID: p.ID, LocationID: 1}
		now := time.Now().UTC().Truncate(time.Microsecond)
		exp := now.Add(time.Minute)
		update := func(opts inventory.StockOptions, apply func(set *inventory.StockSet) error) {
			t.Helper()
			opts.Now = now
			err := s.UpdateStocks(ctx, []inventory.LevelWork{{Key: a}}, opts, inventory.StockCallbacks{Apply: apply})
			if err != nil {
				t.Fatal(err)
			}
		}
		var ids []int64
		update(inventory.StockOptions{NewReservations: 2}, func(set *inventory.StockSet) error {
			tx := set.Levels[0]
			if err := receive(tx, 10); err != nil {
				return err
			}
			for _, id := range set.NewIDs {
				m := inventory.Movement{Type: inventory.MovementReserve, ReservedDelta: 2, ReservationID: id, CreatedAt: now}
				if err := tx.Apply(&m); err != nil {
					return err
				}
				set.Create(&inventory.Reservation{ID: id, Status: inventory.ReservationActive, ExpiresAt: exp, Version: 1,
					Items:     []inventory.ReservationItem{{ProductID: a.ProductID, LocationID: a.LocationID, Quantity: 2, Active: true}},
					CreatedAt: now, UpdatedAt: now})
			}
			tx.Level.NextExpiry = exp
			ids = set.NewIDs
			return nil
		})
		// The items' expiry compares equal to the same time bound as a
		// parameter, in the reaper's query.
		due, err := s.DueLevels(ctx, exp, 10)
		if err != nil || len(due) != 1 || due[0] != a {
			t.Fatalf("levels due at the expiry: %v, %v; want %v", due, err, a)
		}
		if due, _ := s.DueLevels(ctx, exp.Add(-time.Microsecond), 10); len(due) != 0 {
			t.Fatalf("levels due a microsecond before the expiry: %v", due)
		}

		// Extend the first, close the second (released), and record an
		// expiry of the second as a later transaction would: it finds the
		// reservation RELEASED, and leaves its status alone.
		later := exp.Add(time.Hour)
		update(inventory.StockOptions{Reservations: ids}, func(set *inventory.StockSet) error {
			set.Extend(ids[0], later)
			m := inventory.Movement{Type: inventory.MovementRelease, ReservedDelta: -2, ReservationID: ids[1], CreatedAt: now}
			if err := set.Levels[0].Apply(&m); err != nil {
				return err
			}
			set.Close(ids[1], inventory.ReservationReleased, now, a)
			return nil
		})
		update(inventory.StockOptions{}, func(set *inventory.StockSet) error {
			set.Close(ids[1], inventory.ReservationExpired, now, a)
			return nil
		})
		rs, err := s.ReservationsByIDs(ctx, ids)
		if err != nil || len(rs) != 2 {
			t.Fatalf("reservations: %+v, %v", rs, err)
		}
		if r := rs[0]; r.Status != inventory.ReservationActive || !r.ExpiresAt.Equal(later) || r.Version != 2 || !r.Items[0].Active {
			t.Errorf("extended: %+v", r)
		}
		if r := rs[1]; r.Status != inventory.ReservationReleased || r.Version != 2 || r.Items[0].Active {
			t.Errorf("released, then expired: %+v", r)
		}
		if due, _ := s.DueLevels(ctx, later, 10); len(due) != 1 {
			t.Errorf("the extended item is due at its new expiry: %v", due)
		}
	})
}
