package app_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/shopstack/inventory/internal/inventory"
	"github.com/shopstack/inventory/internal/testenv/gormstoretest"
)

// TestReservationsCombine queues reservation requests on one level behind a
// blocked batch: they are applied in one transaction under one lease, each
// with its own outcome, and two requests on one reservation are not judged
// in the same batch, so the second sees the first's outcome.
func TestReservationsCombine(t *testing.T) {
	gormstoretest.ForEachDriver(t, func(t *testing.T, driver string) {
		e := mustService(t, driver)
		ctx := context.Background()
		p := mustProduct(t, e.svc, "CART", 10, 0)
		r0, err := e.svc.ReserveStock(ctx, inventory.NewReservation{Items: []inventory.ReservationItemInput{item(p.ID, 1)}})
		mustNoErr(t, err)
		entered, release := blockFirstBatch(t, e.hook)
		first := make(chan error, 1)
		go func() {
			_, err := e.svc.StockIn(ctx, inventory.StockChange{ProductID: p.ID, Quantity: 1})
			first <- err
		}()
		<-entered

		hold := func(key string, q int64) func() (inventory.ReservationResult, error) {
			return func() (inventory.ReservationResult, error) {
				return e.svc.ReserveStock(ctx, inventory.NewReservation{Items: []inventory.ReservationItemInput{item(p.ID, q)}, IdempotencyKey: key})
			}
		}
		steps := []func() (inventory.ReservationResult, error){
			hold("a", 3),   // 11 available -> 8
			hold("a", 3),   // a retry of the first: the same reservation
			hold("b", 100), // refused, and remembered
			hold("", 2),    // 8 -> 6
			func() (inventory.ReservationResult, error) { return e.svc.CommitReservation(ctx, r0.Reservation.ID) },
			func() (inventory.ReservationResult, error) { return e.svc.ReleaseReservation(ctx, r0.Reservation.ID) },
			hold("a", 4), // the first key with another input
		}
		results := make([]inventory.ReservationResult, len(steps))
		errs := make([]error, len(steps))
		var wg sync.WaitGroup
		for i, step := range steps {
			wg.Go(func() { results[i], errs[i] = step() })
			waitWaiting(t, e.svc, int64(i+2))
		}
		release()
		wg.Wait()
		mustNoErr(t, <-first)

		for _, i := range []int{0, 1, 3, 4} {
			mustNoErr(t, errs[i])
		}
		if results[1].Reservation.ID != results[0].Reservation.ID || !results[1].Replayed || results[0].Replayed {
			t.Errorf("a retry in the same batch got %+v, first %+v", results[1], results[0])
		}
		wantCode(t, errs[2], inventory.CodeInsufficientStock)
		if results[4].Reservation.Status != inventory.ReservationCommitted {
			t.Errorf("commit: %+v", results[4].Reservation)
		}
		wantCode(t, errs[5], inventory.CodeConflict) // judged after the commit
		wantCode(t, errs[6], inventory.CodeConflict)

		var fences []inventory.Fence
		for _, m := range ledger(t, e.svc, p.ID) {
			if m.Type == inventory.MovementReserve && m.ReservationID != r0.Reservation.ID {
				fences = append(fences, m.Fence)
			}
		}
		if len(fences) != 2 || fences[0] != fences[1] {
			t.Errorf("the batch's RESERVE rows have fences %+v: want two under one lease", fences)
		}
		// 10 + 1 in, 1 sold; 3 + 2 held.
		wantAvailable(t, e.svc, p.ID, 10, 5)

		// The refusal stands once stock has come in.
		_, err = e.svc.StockIn(ctx, inventory.StockChange{ProductID: p.ID, Quantity: 200})
		mustNoErr(t, err)
		_, err = hold("b", 100)()
		wantCode(t, err, inventory.CodeInsufficientStock)
		checkLedgerExplainsStock(t, e.svc, p.ID)
	})
}

// TestRefusedReservationLeavesItsLevels refuses a reservation over two
// locations of one product in a transaction that also releases an expired
// one there: the expiry is written, and the refused reservation changes
// neither level nor the product's totals.
func TestRefusedReservationLeavesItsLevels(t *testing.T) {
	gormstoretest.ForEachDriver(t, func(t *testing.T, driver string) {
		svc, clk := clockService(t, driver)
		ctx := context.Background()
		p := mustProduct(t, svc, "TWO-SITES", 5, 0)
		loc, err := svc.CreateLocation(ctx, inventory.NewLocation{Code: "NORTH", Name: "North"})
		mustNoErr(t, err)
		_, err = svc.StockIn(ctx, inventory.StockChange{ProductID: p.ID, LocationID: loc.ID, Quantity: 1})
		mustNoErr(t, err)
		both := func(q1, q2 int64) inventory.NewReservation {
			return inventory.NewReservation{TTL: time.Minute, Items: []inventory.ReservationItemInput{
				{ProductID: p.ID, Quantity: q1}, {ProductID: p.ID, LocationID: loc.ID, Quantity: q2}}}
		}
		_, err = svc.ReserveStock(ctx, both(1, 1))
		mustNoErr(t, err)
		clk.Advance(2 * time.Minute)

		_, err = svc.ReserveStock(ctx, both(2, 5))
		wantCode(t, err, inventory.CodeInsufficientStock)
		var expired int
		for _, m := range ledger(t, svc, p.ID) {
			if m.Type == inventory.MovementExpire {
				expired++
			}
		}
		if expired != 2 {
			t.Errorf("%d EXPIRE rows, want 2: the refused reservation's transaction releases what expired", expired)
		}
		wantAvailable(t, svc, p.ID, 6, 0)
		checkLedgerExplainsStock(t, svc, p.ID)
		report, err := svc.Reconcile(ctx, []int64{p.ID}, nil)
		mustNoErr(t, err)
		if report.Levels != 2 || len(report.Drifts) > 0 {
			t.Errorf("reconcile: %+v", report)
		}
	})
}

// TestReservationAnswersAreWhatWasWritten compares what each reservation
// mutation answers (built from the transaction, not read back) with the
// reservation read afterwards.
func TestReservationAnswersAreWhatWasWritten(t *testing.T) {
	gormstoretest.ForEachDriver(t, func(t *testing.T, driver string) {
		svc, clk := clockService(t, driver)
		ctx := context.Background()
		a, b := mustProduct(t, svc, "ANS-A", 5, 0), mustProduct(t, svc, "ANS-B", 5, 0)
		same := func(what string, got inventory.ReservationResult, err error) {
			t.Helper()
			mustNoErr(t, err)
			want, err := svc.Reservation(ctx, got.Reservation.ID)
			mustNoErr(t, err)
			g := got.Reservation
			for _, ts := range []*time.Time{&g.ExpiresAt, &g.CreatedAt, &g.UpdatedAt, &want.ExpiresAt, &want.CreatedAt, &want.UpdatedAt} {
				*ts = ts.UTC().Truncate(time.Microsecond)
			}
			if fmt.Sprint(g) != fmt.Sprint(want) {
				t.Errorf("%s answered\n%+v\nthen read\n%+v", what, g, want)
			}
		}
		for _, to := range []string{"commit", "release"} {
			res, err := svc.ReserveStock(ctx, inventory.NewReservation{TTL: time.Minute, IdempotencyKey: "ans-" + to,
				Items: []inventory.ReservationItemInput{item(a.ID, 1), item(b.ID, 2)}})
			same("reserve", res, err)
			id := res.Reservation.ID
			clk.Advance(time.Second)
			res, err = svc.ExtendReservation(ctx, id, 2*time.Minute)
			same("extend", res, err)
			clk.Advance(time.Second)
			if to == "commit" {
				res, err = svc.CommitReservation(ctx, id)
			} else {
				res, err = svc.ReleaseReservation(ctx, id)
			}
			same(to, res, err)
			if res.Reservation.Version != 3 || res.Reservation.Items[0].Active {
				t.Errorf("%s: %+v", to, res.Reservation)
			}
			res, err = svc.CommitReservation(ctx, id)
			if to == "commit" {
				same("commit again", res, err)
				if !res.Replayed {
					t.Errorf("commit again: %+v, want a replay", res)
				}
			} else {
				wantCode(t, err, inventory.CodeConflict)
			}
		}
	})
}
