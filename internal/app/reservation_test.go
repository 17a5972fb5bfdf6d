package app_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shopstack/inventory/internal/app"
	"github.com/shopstack/inventory/internal/inventory"
	"github.com/shopstack/inventory/internal/lock/memlock"
	"github.com/shopstack/inventory/internal/testenv"
	"github.com/shopstack/inventory/internal/testenv/gormstoretest"
	"github.com/shopstack/inventory/internal/testenv/inventorytest"
)

// clock is a settable clock for expiry tests.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// clockService returns a started service whose clock the test moves.
func clockService(tb testing.TB, driver string) (*app.Service, *clock) {
	tb.Helper()
	c := &clock{now: time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)}
	svc, _ := inventorytest.Open(tb, driver, app.Config{Now: c.Now, MaxReservationTTL: time.Hour})
	return svc, c
}

func reserve(svc *app.Service, ttl time.Duration, items ...inventory.ReservationItemInput) (inventory.ReservationResult, error) {
	return svc.ReserveStock(context.Background(), inventory.NewReservation{Items: items, TTL: ttl})
}

func item(productID, quantity int64) inventory.ReservationItemInput {
	return inventory.ReservationItemInput{ProductID: productID, Quantity: quantity}
}

func wantAvailable(tb testing.TB, svc *app.Service, productID, stock, reserved int64) {
	tb.Helper()
	p, err := svc.Product(context.Background(), productID)
	mustNoErr(tb, err)
	if p.Stock != stock || p.Reserved != reserved {
		tb.Fatalf("product %d: stock %d reserved %d, want %d and %d", productID, p.Stock, p.Reserved, stock, reserved)
	}
}

func TestReservationLifecycle(t *testing.T) {
	gormstoretest.ForEachDriver(t, func(t *testing.T, driver string) {
		svc, _ := clockService(t, driver)
		ctx := context.Background()
		p := mustProduct(t, svc, "RES", 10, 0)

		res, err := reserve(svc, time.Minute, item(p.ID, 3))
		mustNoErr(t, err)
		r := res.Reservation
		if r.Status != inventory.ReservationActive || len(r.Items) != 1 || r.Items[0].Quantity != 3 || !r.Items[0].Active || res.Replayed {
			t.Fatalf("reserved: %+v", res)
		}
		wantAvailable(t, svc, p.ID, 10, 3)
		if _, err := svc.StockOut(ctx, inventory.StockChange{ProductID: p.ID, Quantity: 8}); inventory.ErrorCode(err) != inventory.CodeInsufficientStock {
			t.Fatalf("selling reserved units: %v, want INSUFFICIENT_STOCK", err)
		}

		res, err = svc.CommitReservation(ctx, r.ID)
		mustNoErr(t, err)
		if res.Reservation.Status != inventory.ReservationCommitted || res.Reservation.Items[0].Active || res.Replayed {
			t.Fatalf("committed: %+v", res)
		}
		wantAvailable(t, svc, p.ID, 7, 0)
		res, err = svc.CommitReservation(ctx, r.ID)
		mustNoErr(t, err)
		if !res.Replayed {
			t.Fatal("a second commit is a replay")
		}
		_, err = svc.ReleaseReservation(ctx, r.ID)
		wantCode(t, err, inventory.CodeConflict)

		res, err = reserve(svc, time.Minute, item(p.ID, 2))
		mustNoErr(t, err)
		wantAvailable(t, svc, p.ID, 7, 2)
		res, err = svc.ReleaseReservation(ctx, res.Reservation.ID)
		mustNoErr(t, err)
		if res.Reservation.Status != inventory.ReservationReleased {
			t.Fatalf("released: %+v", res.Reservation)
		}
		wantAvailable(t, svc, p.ID, 7, 0)
		if res, err := svc.ReleaseReservation(ctx, res.Reservation.ID); err != nil || !res.Replayed {
			t.Fatalf("a second release: %+v, %v; want a replay", res, err)
		}
		_, err = svc.CommitReservation(ctx, res.Reservation.ID)
		wantCode(t, err, inventory.CodeConflict)

		types := map[inventory.MovementType]int{}
		for _, m := range ledger(t, svc, p.ID) {
			types[m.Type]++
		}
		if types[inventory.MovementReserve] != 2 || types[inventory.MovementCommit] != 1 || types[inventory.MovementRelease] != 1 {
			t.Fatalf("ledger types %v", types)
		}
		checkLedgerExplainsStock(t, svc, p.ID)
		_, err = svc.CommitReservation(ctx, 9999)
		wantCode(t, err, inventory.CodeNotFound)
	})
}

// TestReservationAllOrNothing: one item short fails the whole reservation.
func TestReservationAllOrNothing(t *testing.T) {
	gormstoretest.ForEachDriver(t, func(t *testing.T, driver string) {
		svc, _ := clockService(t, driver)
		a, b := mustProduct(t, svc, "A", 5, 0), mustProduct(t, svc, "B", 1, 0)
		_, err := reserve(svc, time.Minute, item(b.ID, 2), item(a.ID, 3))
		wantCode(t, err, inventory.CodeInsufficientStock)
		if want := "insufficient stock of B at location 1: 1 available, 2 requested"; !strings.Contains(err.Error(), want) {
			t.Fatalf("%v: the message should name the short item (%q)", err, want)
		}
		wantAvailable(t, svc, a.ID, 5, 0)
		_, err = reserve(svc, 2*time.Hour, item(a.ID, 1))
		wantCode(t, err, inventory.CodeBadInput)
		_, err = reserve(svc, time.Minute, item(4242, 1))
		wantCode(t, err, inventory.CodeNotFound)
		res, err := reserve(svc, time.Minute, item(b.ID, 1), item(a.ID, 5))
		mustNoErr(t, err)
		if len(res.Reservation.Items) != 2 {
			t.Fatalf("items %+v", res.Reservation.Items)
		}
		wantAvailable(t, svc, a.ID, 5, 5)
		wantAvailable(t, svc, b.ID, 1, 1)
	})
}

// TestReservationExpiry moves the clock past a reservation's expiry: it
// stops counting at once on reads and writes, before any reaper.
func TestReservationExpiry(t *testing.T) {
	gormstoretest.ForEachDriver(t, func(t *testing.T, driver string) {
		svc, clk := clockService(t, driver)
		ctx := context.Background()
		p := mustProduct(t, svc, "EXP", 10, 0)
		res, err := reserve(svc, 10*time.Second, item(p.ID, 4))
		mustNoErr(t, err)
		id := res.Reservation.ID
		wantAvailable(t, svc, p.ID, 10, 4)

		clk.Advance(11 * time.Second)
		wantAvailable(t, svc, p.ID, 10, 0) // read time
		r, err := svc.Reservation(ctx, id)
		mustNoErr(t, err)
		if r.Status != inventory.ReservationExpired {
			t.Fatalf("status %s after expiry", r.Status)
		}
		_, err = svc.CommitReservation(ctx, id)
		wantCode(t, err, inventory.CodeReservationExpired)
		_, err = svc.ExtendReservation(ctx, id, time.Minute)
		wantCode(t, err, inventory.CodeReservationExpired)

		// Write time: all ten units can be sold; the sale releases the
		// expired units first, with an EXPIRE row.
		_, err = svc.StockOut(ctx, inventory.StockChange{ProductID: p.ID, Quantity: 10})
		mustNoErr(t, err)
		var expired int
		for _, m := range ledger(t, svc, p.ID) {
			if m.Type == inventory.MovementExpire && m.ReservationID == id && m.ReservedDelta == -4 {
				expired++
			}
		}
		if expired != 1 {
			t.Fatalf("%d EXPIRE rows for the reservation, want 1", expired)
		}
		if res, err := svc.ReleaseReservation(ctx, id); err != nil || res.Reservation.Status != inventory.ReservationExpired {
			t.Fatalf("releasing an expired reservation: %+v, %v; want its expired state", res, err)
		}
		levels, err := svc.Levels(ctx, p.ID)
		mustNoErr(t, err)
		if levels[0].Reserved != 0 || !levels[0].NextExpiry.IsZero() {
			t.Fatalf("level after expiry: %+v", levels[0])
		}
		checkLedgerExplainsStock(t, svc, p.ID)
	})
}

func TestExtendReservation(t *testing.T) {
	gormstoretest.ForEachDriver(t, func(t *testing.T, driver string) {
		svc, clk := clockService(t, driver)
		ctx := context.Background()
		p := mustProduct(t, svc, "EXT", 10, 0)
		res, err := reserve(svc, 10*time.Second, item(p.ID, 2))
		mustNoErr(t, err)
		id := res.Reservation.ID
		clk.Advance(5 * time.Second)
		res, err = svc.ExtendReservation(ctx, id, 20*time.Second)
		mustNoErr(t, err)
		if want := clk.Now().Add(20 * time.Second); !res.Reservation.ExpiresAt.Equal(want) {
			t.Fatalf("expires at %v, want %v", res.Reservation.ExpiresAt, want)
		}
		_, err = svc.ExtendReservation(ctx, id, 2*time.Hour)
		wantCode(t, err, inventory.CodeBadInput)
		clk.Advance(10 * time.Second) // past the first expiry, before the new one
		wantAvailable(t, svc, p.ID, 10, 2)
		// A sale at the level meets the stale next_expiry bound: it
		// releases nothing and keeps the reservation.
		_, err = svc.StockOut(ctx, inventory.StockChange{ProductID: p.ID, Quantity: 1})
		mustNoErr(t, err)
		res, err = svc.CommitReservation(ctx, id)
		mustNoErr(t, err)
		if res.Reservation.Status != inventory.ReservationCommitted {
			t.Fatalf("commit after extension: %+v", res.Reservation)
		}
		wantAvailable(t, svc, p.ID, 7, 0)
		checkLedgerExplainsStock(t, svc, p.ID)
	})
}

// TestConcurrentReservationsNeverOverReserve: 200 clients reserve one unit
// of a product with 50 available; exactly 50 succeed.
func TestConcurrentReservationsNeverOverReserve(t *testing.T) {
	gormstoretest.ForEachDriver(t, func(t *testing.T, driver string) {
		svc, _ := clockService(t, driver)
		p := mustProduct(t, svc, "HOTRES", 50, 0)
		var mu sync.Mutex
		ok, codes := 0, map[inventory.Code]int{}
		var wg sync.WaitGroup
		for range 200 {
			wg.Go(func() {
				_, err := reserve(svc, time.Minute, item(p.ID, 1))
				mu.Lock()
				defer mu.Unlock()
				if err == nil {
					ok++
				} else {
					codes[inventory.ErrorCode(err)]++
				}
			})
		}
		wg.Wait()
		t.Logf("%s: %d reserved, errors %v", driver, ok, codes)
		if ok != 50 || codes[inventory.CodeInsufficientStock] != 150 {
			t.Fatalf("%d reserved (%v), want exactly 50 and 150 INSUFFICIENT_STOCK", ok, codes)
		}
		wantAvailable(t, svc, p.ID, 50, 50)
		checkLedgerExplainsStock(t, svc, p.ID)
	})
}

func TestReservationIdempotency(t *testing.T) {
	gormstoretest.ForEachDriver(t, func(t *testing.T, driver string) {
		svc, _ := clockService(t, driver)
		ctx := context.Background()
		p := mustProduct(t, svc, "IDEM", 10, 0)
		in := inventory.NewReservation{Items: []inventory.ReservationItemInput{item(p.ID, 2)}, TTL: time.Minute, IdempotencyKey: "cart-7"}
		results := make([]inventory.ReservationResult, 20)
		errs := make([]error, 20)
		var wg sync.WaitGroup
		for i := range results {
			wg.Go(func() { results[i], errs[i] = svc.ReserveStock(ctx, in) })
		}
		wg.Wait()
		fresh := 0
		for i := range results {
			mustNoErr(t, errs[i])
			if results[i].Reservation.ID != results[0].Reservation.ID {
				t.Fatalf("two reservations for one key: %d and %d", results[i].Reservation.ID, results[0].Reservation.ID)
			}
			if !results[i].Replayed {
				fresh++
			}
		}
		if fresh != 1 {
			t.Fatalf("%d requests created the reservation, want 1", fresh)
		}
		wantAvailable(t, svc, p.ID, 10, 2)
		in.Items[0].Quantity = 3
		_, err := svc.ReserveStock(ctx, in)
		wantCode(t, err, inventory.CodeConflict)
	})
}

func TestReservationsList(t *testing.T) {
	gormstoretest.ForEachDriver(t, func(t *testing.T, driver string) {
		svc, clk := clockService(t, driver)
		ctx := context.Background()
		p := mustProduct(t, svc, "LIST", 10, 0)
		var ids []int64
		for i := range 3 {
			res, err := reserve(svc, time.Duration(10*(i+1))*time.Second, item(p.ID, 1))
			mustNoErr(t, err)
			ids = append(ids, res.Reservation.ID)
		}
		_, err := svc.CommitReservation(ctx, ids[2])
		mustNoErr(t, err)
		clk.Advance(15 * time.Second) // the first has expired
		count := func(status inventory.ReservationStatus) string {
			page, err := svc.Reservations(ctx, inventory.ReservationFilter{Status: status}, 10, 0)
			mustNoErr(t, err)
			var out []int64
			for _, r := range page.Reservations {
				if status != "" && r.Status != status {
					t.Errorf("listed as %s: %+v", status, r)
				}
				out = append(out, r.ID)
			}
			return fmt.Sprint(out)
		}
		if got := count(inventory.ReservationActive); got != fmt.Sprint(ids[1:2]) {
			t.Errorf("ACTIVE: %s", got)
		}
		if got := count(inventory.ReservationExpired); got != fmt.Sprint(ids[:1]) {
			t.Errorf("EXPIRED: %s", got)
		}
		if got := count(inventory.ReservationCommitted); got != fmt.Sprint(ids[2:]) {
			t.Errorf("COMMITTED: %s", got)
		}
		if got := count(""); got != fmt.Sprint(ids) {
			t.Errorf("all: %s", got)
		}
	})
}

// TestReaperReleasesExpired: with nothing writing to the level, the elected
// reaper releases an expired reservation (an EXPIRE row, reserved back to
// zero in the store itself).
func TestReaperReleasesExpired(t *testing.T) {
	gormstoretest.ForEachDriver(t, func(t *testing.T, driver string) {
		c := &clock{now: time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)}
		st := gormstoretest.Open(t, driver)
		svc := inventorytest.Start(t, st, app.Config{Now: c.Now, ReapInterval: 10 * time.Millisecond})
		p := mustProduct(t, svc, "REAP", 10, 0)
		res, err := reserve(svc, 10*time.Second, item(p.ID, 3))
		mustNoErr(t, err)
		c.Advance(11 * time.Second)
		testenv.Eventually(t, "the reaper's EXPIRE row", func() bool {
			for _, m := range ledger(t, svc, p.ID) {
				if m.Type == inventory.MovementExpire && m.ReservationID == res.Reservation.ID {
					return true
				}
			}
			return false
		})
		levels, err := storeLevels(st, p.ID)
		mustNoErr(t, err)
		if levels[0].Reserved != 0 {
			t.Fatalf("stored reserved %d after the reaper ran", levels[0].Reserved)
		}
		r, err := st.Reservation(context.Background(), res.Reservation.ID)
		mustNoErr(t, err)
		if r.Status != inventory.ReservationExpired || r.Items[0].Active {
			t.Fatalf("stored reservation after the reaper ran: %+v", r)
		}
		checkLedgerExplainsStock(t, svc, p.ID)
	})
}

// TestOneReaperAmongReplicas runs two replicas electing through one
// locker: exactly one leads; when it stops, the other takes over.
func TestOneReaperAmongReplicas(t *testing.T) {
	dsn := gormstoretest.DSN(t, "sqlite")
	shared := memlock.New(0)
	start := func() *app.Service {
		svc := app.New(inventorytest.Config(mustOpen(t, "sqlite", dsn), app.Config{Locker: shared, ReapInterval: 10 * time.Millisecond}))
		mustNoErr(t, svc.Start(context.Background()))
		return svc
	}
	a, b := start(), start()
	defer b.Close()
	testenv.Eventually(t, "a leader", func() bool { return a.Leading() != b.Leading() })
	leader, other := a, b
	if b.Leading() {
		leader, other = b, a
	}
	for range 20 {
		if a.Leading() && b.Leading() {
			t.Fatal("two replicas lead")
		}
		time.Sleep(5 * time.Millisecond)
	}
	leader.Close()
	testenv.Eventually(t, "the other replica to lead", other.Leading)
	if other == a {
		a.Close()
	}
}
