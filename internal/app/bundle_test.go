package app_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/shopstack/inventory/internal/inventory"
	"github.com/shopstack/inventory/internal/lock/memlock"
	"github.com/shopstack/inventory/internal/testenv/gormstoretest"
)

func TestBundles(t *testing.T) {
	gormstoretest.ForEachDriver(t, func(t *testing.T, driver string) {
		e := mustService(t, driver)
		ctx := context.Background()
		// A gift box: 2 mugs and 1 tea.
		mug := mustProduct(t, e.svc, "MUG", 10, 0)
		tea := mustProduct(t, e.svc, "TEA", 4, 0)
		res, err := e.svc.CreateBundle(ctx, inventory.NewBundle{SKU: "gift-box", Name: "Gift box", Price: 25_000_000, Threshold: 2,
			Components: []inventory.BundleComponent{{ProductID: tea.ID, Quantity: 1}, {ProductID: mug.ID, Quantity: 2}}, IdempotencyKey: "box-1"})
		mustNoErr(t, err)
		box := res.Product
		if !box.Bundle || box.SKU != "GIFT-BOX" || len(box.Components) != 2 || box.Components[0].ProductID != mug.ID || box.Available() != 4 {
			t.Fatalf("created: %+v", box)
		}
		availableAt := func(t *testing.T, id int64) int64 {
			t.Helper()
			ps, err := e.svc.ProductStock(ctx, id)
			mustNoErr(t, err)
			for _, l := range ps.Levels {
				if l.LocationID == inventory.DefaultLocationID {
					if l.Available() != ps.Product.Available() {
						t.Fatalf("one location: level %d, product %d", l.Available(), ps.Product.Available())
					}
					return l.Available()
				}
			}
			return 0
		}

		t.Run("Replay", func(t *testing.T) {
			again, err := e.svc.CreateBundle(ctx, inventory.NewBundle{SKU: "GIFT-BOX", Name: "Gift box", Price: 25_000_000, Threshold: 2,
				Components: []inventory.BundleComponent{{ProductID: mug.ID, Quantity: 2}, {ProductID: tea.ID, Quantity: 1}}, IdempotencyKey: "box-1"})
			mustNoErr(t, err)
			if !again.Replayed || again.Product.ID != box.ID || again.Product.Available() != 4 {
				t.Fatalf("replay: %+v", again)
			}
		})
		t.Run("AvailableFollowsComponents", func(t *testing.T) {
			// 10 mugs make 5 boxes, 4 teas 4: the tea decides; then mugs do.
			if got := availableAt(t, box.ID); got != 4 {
				t.Fatalf("box available %d, want 4", got)
			}
			_, err := e.svc.StockOut(ctx, inventory.StockChange{ProductID: mug.ID, Quantity: 5})
			mustNoErr(t, err)
			if got := availableAt(t, box.ID); got != 2 { // floor(5/2)
				t.Fatalf("box available %d after 5 mugs sold, want 2", got)
			}
			if p, _ := e.svc.Product(ctx, box.ID); p.LowStock() {
				t.Fatalf("2 boxes is not below the threshold 2: %+v", p)
			}
		})
		t.Run("StockOutTakesComponents", func(t *testing.T) {
			out, err := e.svc.StockOut(ctx, inventory.StockChange{ProductID: box.ID, Quantity: 2, Reason: "order 7", IdempotencyKey: "sell-box-1"})
			mustNoErr(t, err)
			if out.Product.ID != box.ID || out.Level.Available() != 0 || out.Movement.BundleID != box.ID || out.Movement.ProductID != mug.ID {
				t.Fatalf("sale: %+v", out)
			}
			for _, c := range []struct {
				id, delta int64
			}{{mug.ID, -4}, {tea.ID, -2}} {
				rows := ledger(t, e.svc, c.id)
				last := rows[len(rows)-1]
				if last.Type != inventory.MovementOut || last.Delta != c.delta || last.BundleID != box.ID || last.Reason != "order 7" {
					t.Fatalf("component %d's row: %+v", c.id, last)
				}
			}
			again, err := e.svc.StockOut(ctx, inventory.StockChange{ProductID: box.ID, Quantity: 2, Reason: "order 7", IdempotencyKey: "sell-box-1"})
			mustNoErr(t, err)
			if !again.Replayed || again.Movement.Seq != out.Movement.Seq {
				t.Fatalf("retry: %+v", again)
			}
			_, err = e.svc.StockOut(ctx, inventory.StockChange{ProductID: box.ID, Quantity: 3, IdempotencyKey: "sell-box-1"})
			wantCode(t, err, inventory.CodeConflict)
		})
		t.Run("AllOrNothing", func(t *testing.T) {
			// 1 mug, 2 teas: no box can be made; nothing moves.
			before := ledger(t, e.svc, tea.ID)
			_, err := e.svc.StockOut(ctx, inventory.StockChange{ProductID: box.ID, Quantity: 1})
			wantCode(t, err, inventory.CodeInsufficientStock)
			if after := ledger(t, e.svc, tea.ID); len(after) != len(before) {
				t.Fatalf("tea moved for a refused box: %+v", after[len(before):])
			}
			checkLedgerExplainsStock(t, e.svc, mug.ID)
			checkLedgerExplainsStock(t, e.svc, tea.ID)
		})
		t.Run("ReserveCommitRelease", func(t *testing.T) {
			_, err := e.svc.StockIn(ctx, inventory.StockChange{ProductID: mug.ID, Quantity: 9}) // 10 mugs, 2 teas
			mustNoErr(t, err)
			r, err := e.svc.ReserveStock(ctx, inventory.NewReservation{Items: []inventory.ReservationItemInput{{ProductID: box.ID, Quantity: 1}}})
			mustNoErr(t, err)
			if len(r.Reservation.Items) != 2 || r.Reservation.Items[0].BundleID != box.ID || r.Reservation.Items[0].Quantity != 2 {
				t.Fatalf("reservation items: %+v", r.Reservation.Items)
			}
			if got := availableAt(t, box.ID); got != 1 {
				t.Fatalf("box available %d with one held, want 1", got)
			}
			_, err = e.svc.CommitReservation(ctx, r.Reservation.ID)
			mustNoErr(t, err)
			rows := ledger(t, e.svc, tea.ID)
			if last := rows[len(rows)-1]; last.Type != inventory.MovementCommit || last.BundleID != box.ID || last.Delta != -1 {
				t.Fatalf("commit row: %+v", last)
			}
			r2, err := e.svc.ReserveStock(ctx, inventory.NewReservation{Items: []inventory.ReservationItemInput{{ProductID: box.ID, Quantity: 1}}})
			mustNoErr(t, err)
			_, err = e.svc.ReleaseReservation(ctx, r2.Reservation.ID)
			mustNoErr(t, err)
			if got := availableAt(t, box.ID); got != 1 {
				t.Fatalf("box available %d after a release, want 1", got)
			}
			checkLedgerExplainsStock(t, e.svc, mug.ID)
			checkLedgerExplainsStock(t, e.svc, tea.ID)
		})
		t.Run("ExpiryNamesTheBundle", func(t *testing.T) {
			r, err := e.svc.ReserveStock(ctx, inventory.NewReservation{TTL: time.Second,
				Items: []inventory.ReservationItemInput{{ProductID: box.ID, Quantity: 1}, {ProductID: tea.ID, Quantity: 0}}})
			wantCode(t, err, inventory.CodeBadInput) // a zero line
			r, err = e.svc.ReserveStock(ctx, inventory.NewReservation{TTL: time.Second,
				Items: []inventory.ReservationItemInput{{ProductID: box.ID, Quantity: 1}}})
			mustNoErr(t, err)
			time.Sleep(1100 * time.Millisecond)
			got, err := e.svc.Reservation(ctx, r.Reservation.ID)
			mustNoErr(t, err)
			if got.Status != inventory.ReservationExpired {
				t.Fatalf("status %s", got.Status)
			}
			// The next transaction on the tea level releases the item.
			_, err = e.svc.StockIn(ctx, inventory.StockChange{ProductID: tea.ID, Quantity: 1})
			mustNoErr(t, err)
			rows := ledger(t, e.svc, tea.ID)
			found := false
			for _, m := range rows {
				found = found || m.Type == inventory.MovementExpire && m.ReservationID == r.Reservation.ID && m.BundleID == box.ID
			}
			if !found {
				t.Fatalf("no EXPIRE row naming the bundle: %+v", rows[len(rows)-2:])
			}
		})
		t.Run("ErrBadInput", func(t *testing.T) {
			for name, in := range map[string]inventory.StockChange{"in": {ProductID: box.ID, Quantity: 1}} {
				_, err := e.svc.StockIn(ctx, in)
				wantCode(t, err, inventory.CodeBadInput)
				_ = name
			}
			_, err := e.svc.AdjustStock(ctx, inventory.StockAdjustment{ProductID: box.ID, Quantity: 3})
			wantCode(t, err, inventory.CodeBadInput)
			// 2 mugs a box: a billion boxes would ask more than a billion mugs.
			_, err = e.svc.StockOut(ctx, inventory.StockChange{ProductID: box.ID, Quantity: inventory.MaxQuantity})
			wantCode(t, err, inventory.CodeBadInput)
			_, err = e.svc.ReserveStock(ctx, inventory.NewReservation{Items: []inventory.ReservationItemInput{{ProductID: box.ID, Quantity: inventory.MaxQuantity}}})
			wantCode(t, err, inventory.CodeBadInput)
			_, err = e.svc.CreateBundle(ctx, inventory.NewBundle{SKU: "NESTED", Name: "Nested", Components: []inventory.BundleComponent{{ProductID: box.ID, Quantity: 1}}})
			wantCode(t, err, inventory.CodeBadInput)
			_, err = e.svc.CreateBundle(ctx, inventory.NewBundle{SKU: "EMPTY", Name: "Empty"})
			wantCode(t, err, inventory.CodeBadInput)
			_, err = e.svc.CreateBundle(ctx, inventory.NewBundle{SKU: "ZERO", Name: "Zero", Components: []inventory.BundleComponent{{ProductID: mug.ID, Quantity: 0}}})
			wantCode(t, err, inventory.CodeBadInput)
			_, err = e.svc.CreateBundle(ctx, inventory.NewBundle{SKU: "GHOST", Name: "Ghost", Components: []inventory.BundleComponent{{ProductID: 99999, Quantity: 1}}})
			wantCode(t, err, inventory.CodeNotFound)
			shop, err := e.svc.CreateLocation(ctx, inventory.NewLocation{Code: "BOX-SHOP", Name: "Shop"})
			mustNoErr(t, err)
			_, err = e.svc.CreateTransfer(ctx, inventory.NewTransfer{OriginID: inventory.DefaultLocationID, DestinationID: shop.ID,
				Items: []inventory.TransferItemInput{{ProductID: box.ID, Quantity: 1}}})
			wantCode(t, err, inventory.CodeBadInput)
			limit := int64(3)
			_, err = e.svc.UpdateProduct(ctx, inventory.ProductUpdate{ID: box.ID, BackorderLimit: &limit})
			wantCode(t, err, inventory.CodeBadInput)
			name := "Gift box, large"
			upd, err := e.svc.UpdateProduct(ctx, inventory.ProductUpdate{ID: box.ID, Name: &name})
			mustNoErr(t, err)
			if upd.Product.Name != name || !upd.Product.Bundle || len(upd.Product.Components) != 2 {
				t.Fatalf("update: %+v", upd.Product)
			}
		})
		t.Run("AnotherReplicaLearns", func(t *testing.T) {
			// Replicas that never saw the bundle created sell and reserve it right.
			st := gormstoretest.Open(t, driver)
			locker := memlock.New(0)
			one, two, three := startService(t, st, locker), startService(t, st, locker), startService(t, st, locker)
			cup := mustProduct(t, one, "CUP", 4, 0)
			set, err := one.CreateBundle(ctx, inventory.NewBundle{SKU: "CUPS", Name: "Two cups",
				Components: []inventory.BundleComponent{{ProductID: cup.ID, Quantity: 2}}})
			mustNoErr(t, err)
			out, err := two.StockOut(ctx, inventory.StockChange{ProductID: set.Product.ID, Quantity: 1})
			mustNoErr(t, err)
			if out.Movement.BundleID != set.Product.ID || out.Movement.Delta != -2 || out.Product.Available() != 1 {
				t.Fatalf("sale on another replica: %+v", out)
			}
			r, err := three.ReserveStock(ctx, inventory.NewReservation{Items: []inventory.ReservationItemInput{{ProductID: set.Product.ID, Quantity: 1}}})
			mustNoErr(t, err)
			if r.Reservation.Items[0].BundleID != set.Product.ID || r.Reservation.Items[0].Quantity != 2 {
				t.Fatalf("reservation on another replica: %+v", r.Reservation)
			}
		})
	})
}

// TestBundleFirstSalesAtOnce sends a bundle's first sales and
// reservations, all at once, to replicas that did not create it: each
// meets the bundle's own level, and each must be run again on the
// components, whichever of them learned the bundle first.
func TestBundleFirstSalesAtOnce(t *testing.T) {
	gormstoretest.ForEachDriver(t, func(t *testing.T, driver string) {
		ctx := context.Background()
		st := gormstoretest.Open(t, driver)
		locker := memlock.New(0)
		one, two, three := startService(t, st, locker), startService(t, st, locker), startService(t, st, locker)
		cup := mustProduct(t, one, "CUP", 100, 0)
		set, err := one.CreateBundle(ctx, inventory.NewBundle{SKU: "CUPS", Name: "Two cups",
			Components: []inventory.BundleComponent{{ProductID: cup.ID, Quantity: 2}}})
		mustNoErr(t, err)
		var wg sync.WaitGroup
		sales, holds := make([]error, 8), make([]error, 8)
		for i := range sales {
			wg.Go(func() { _, sales[i] = two.StockOut(ctx, inventory.StockChange{ProductID: set.Product.ID, Quantity: 1}) })
			wg.Go(func() {
				_, holds[i] = three.ReserveStock(ctx, inventory.NewReservation{Items: []inventory.ReservationItemInput{{ProductID: set.Product.ID, Quantity: 1}}})
			})
		}
		wg.Wait()
		for i := range sales {
			if sales[i] != nil || holds[i] != nil {
				t.Errorf("request %d: sale %v, reservation %v", i, sales[i], holds[i])
			}
		}
		if p, err := one.Product(ctx, cup.ID); err != nil || p.Stock != 100-16 || p.Reserved != 16 {
			t.Fatalf("cups after 8 sales and 8 holds of two: %+v %v", p, err)
		}
	})
}

// TestBundleDemandIsSummed checks issue 27's shapes: a bundle and one of
// its components in one cart, and two bundles sharing a component, are
// judged on the summed demand per level.
func TestBundleDemandIsSummed(t *testing.T) {
	gormstoretest.ForEachDriver(t, func(t *testing.T, driver string) {
		e := mustService(t, driver)
		ctx := context.Background()
		shared := mustProduct(t, e.svc, "CABLE", 3, 0)
		a := mustProduct(t, e.svc, "PHONE", 5, 0)
		b := mustProduct(t, e.svc, "TABLET", 5, 0)
		mk := func(sku string, other int64) int64 {
			res, err := e.svc.CreateBundle(ctx, inventory.NewBundle{SKU: sku, Name: sku,
				Components: []inventory.BundleComponent{{ProductID: other, Quantity: 1}, {ProductID: shared.ID, Quantity: 2}}})
			mustNoErr(t, err)
			return res.Product.ID
		}
		phoneKit, tabletKit := mk("PHONE-KIT", a.ID), mk("TABLET-KIT", b.ID)
		reserve := func(items ...inventory.ReservationItemInput) (inventory.ReservationResult, error) {
			return e.svc.ReserveStock(ctx, inventory.NewReservation{Items: items})
		}
		// 3 cables: one kit (2) and 2 loose cables is 4: refused, nothing held.
		_, err := reserve(inventory.ReservationItemInput{ProductID: phoneKit, Quantity: 1}, inventory.ReservationItemInput{ProductID: shared.ID, Quantity: 2})
		wantCode(t, err, inventory.CodeInsufficientStock)
		if msg := inventory.ErrorMessage(err); msg != "insufficient stock of CABLE at location 1: 3 available, 4 requested" {
			t.Fatalf("message %q", msg)
		}
		// Two kits sharing the cable: 4 cables: refused.
		_, err = reserve(inventory.ReservationItemInput{ProductID: phoneKit, Quantity: 1}, inventory.ReservationItemInput{ProductID: tabletKit, Quantity: 1})
		wantCode(t, err, inventory.CodeInsufficientStock)
		if p, _ := e.svc.Product(ctx, shared.ID); p.Reserved != 0 {
			t.Fatalf("refused carts held %d cables", p.Reserved)
		}
		// One kit and one loose cable: 3, exactly what there is.
		r, err := reserve(inventory.ReservationItemInput{ProductID: phoneKit, Quantity: 1}, inventory.ReservationItemInput{ProductID: shared.ID, Quantity: 1})
		mustNoErr(t, err)
		if n := len(r.Reservation.Items); n != 3 { // phone (kit), cable (kit), cable (loose)
			t.Fatalf("items: %+v", r.Reservation.Items)
		}
		if p, _ := e.svc.Product(ctx, shared.ID); p.Reserved != 3 || p.Available() != 0 {
			t.Fatalf("cable after the cart: %+v", p)
		}
		_, err = e.svc.CommitReservation(ctx, r.Reservation.ID)
		mustNoErr(t, err)
		rows := ledger(t, e.svc, shared.ID)
		commits := map[int64]int64{}
		for _, m := range rows {
			if m.Type == inventory.MovementCommit {
				commits[m.BundleID] += m.Delta
			}
		}
		if commits[phoneKit] != -2 || commits[0] != -1 {
			t.Fatalf("commit rows by bundle: %v", commits)
		}
		checkLedgerExplainsStock(t, e.svc, shared.ID)
	})
}
