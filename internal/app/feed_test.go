package app_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/shopstack/inventory/internal/app"
	"github.com/shopstack/inventory/internal/inventory"
	"github.com/shopstack/inventory/internal/lock/memlock"
	"github.com/shopstack/inventory/internal/testenv"
	"github.com/shopstack/inventory/internal/testenv/gormstoretest"
)

func recv(t *testing.T, ch <-chan inventory.Movement) inventory.Movement {
	t.Helper()
	select {
	case m, ok := <-ch:
		if !ok {
			t.Fatal("subscription closed")
		}
		return m
	case <-time.After(10 * time.Second):
		t.Fatal("no event within 10s")
	}
	return inventory.Movement{}
}

func TestSubscribe(t *testing.T) {
	gormstoretest.ForEachDriver(t, func(t *testing.T, driver string) {
		e := mustService(t, driver)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		a := mustProduct(t, e.svc, "SUB-A", 10, 5)
		b := mustProduct(t, e.svc, "SUB-B", 10, 0)

		all, err := e.svc.Subscribe(ctx, inventory.EventFilter{})
		mustNoErr(t, err)
		onlyB, err := e.svc.Subscribe(ctx, inventory.EventFilter{ProductIDs: []int64{b.ID}})
		mustNoErr(t, err)
		alerts, err := e.svc.Subscribe(ctx, inventory.EventFilter{AlertsOnly: true})
		mustNoErr(t, err)

		var made []inventory.Movement
		for _, step := range []struct {
			id  int64
			qty int64
		}{{a.ID, 2}, {b.ID, 1}, {a.ID, 4}, {b.ID, 3}} {
			res, err := e.svc.StockOut(ctx, inventory.StockChange{ProductID: step.id, Quantity: step.qty})
			mustNoErr(t, err)
			made = append(made, res.Movement)
		}
		for i, want := range made {
			if got := recv(t, all); got.Seq != want.Seq || got.Delta != want.Delta {
				t.Fatalf("event %d: seq %d delta %d, want seq %d delta %d", i, got.Seq, got.Delta, want.Seq, want.Delta)
			}
		}
		if got := recv(t, onlyB); got.Seq != made[1].Seq {
			t.Fatalf("product filter: got seq %d, want %d", got.Seq, made[1].Seq)
		}
		if got := recv(t, onlyB); got.Seq != made[3].Seq {
			t.Fatalf("product filter: got seq %d, want %d", got.Seq, made[3].Seq)
		}
		// A goes 10 -> 8 -> 4: one alert, on the second stock-out.
		if got := recv(t, alerts); got.Seq != made[2].Seq || !got.LowStockAlert || got.AvailableAfter != 4 {
			t.Fatalf("alert: %+v, want seq %d", got, made[2].Seq)
		}

		// Replay: a subscriber that saw made[0] gets the rest from the
		// ledger, then live events, each once and in order.
		after := made[0].Seq
		resumed, err := e.svc.Subscribe(ctx, inventory.EventFilter{AfterSeq: &after})
		mustNoErr(t, err)
		res, err := e.svc.StockIn(ctx, inventory.StockChange{ProductID: a.ID, Quantity: 1})
		mustNoErr(t, err)
		want := append(made[1:], res.Movement)
		for i, w := range want {
			if got := recv(t, resumed); got.Seq != w.Seq {
				t.Fatalf("resumed event %d: seq %d, want %d", i, got.Seq, w.Seq)
			}
		}

		_, err = e.svc.Subscribe(ctx, inventory.EventFilter{ProductIDs: []int64{98765}})
		wantCode(t, err, inventory.CodeNotFound)
		neg := int64(-1)
		_, err = e.svc.Subscribe(ctx, inventory.EventFilter{AfterSeq: &neg})
		wantCode(t, err, inventory.CodeBadInput)
	})
}

func TestSubscriptionEndsWithContext(t *testing.T) {
	e := mustService(t, "sqlite")
	ctx, cancel := context.WithCancel(context.Background())
	ch, err := e.svc.Subscribe(ctx, inventory.EventFilter{})
	mustNoErr(t, err)
	cancel()
	select {
	case _, ok := <-ch:
		if ok {
			t.Fatal("event after cancel")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("subscription not closed after its context was cancelled")
	}
}

// TestSlowSubscriberIsDropped checks that a subscriber that stops reading
// never holds up writers: it is closed once its backlog is full.
func TestSlowSubscriberIsDropped(t *testing.T) {
	e := mustService(t, "sqlite")
	ctx := context.Background()
	p := mustProduct(t, e.svc, "SLOW", 0, 0)
	ch, err := e.svc.Subscribe(ctx, inventory.EventFilter{})
	mustNoErr(t, err)
	const writes = 1100 // more than the subscriber backlog
	for range writes {
		_, err := e.svc.StockIn(ctx, inventory.StockChange{ProductID: p.ID, Quantity: 1})
		mustNoErr(t, err)
	}
	got := 0
	deadline := time.After(20 * time.Second)
	for {
		select {
		case _, ok := <-ch:
			if !ok {
				if got >= writes {
					t.Fatalf("received all %d events; the subscriber was not dropped", got)
				}
				t.Logf("subscriber dropped after %d of %d events", got, writes)
				return
			}
			got++
		case <-deadline:
			t.Fatalf("subscription neither completed nor closed (got %d events)", got)
		}
	}
}

// TestFeedMissesNothingAcrossReplicas runs two services on one database,
// both writing to the same products at once, so that their transactions
// take ledger sequences in one order and commit in another. A subscriber on
// one of them, and the read model following the other's commits, must see
// every movement exactly once, in sequence order.
func TestFeedMissesNothingAcrossReplicas(t *testing.T) {
	gormstoretest.ForEachDriver(t, func(t *testing.T, driver string) {
		dsn := gormstoretest.DSN(t, driver)
		locker := memlock.New(0) // one lock service for both replicas
		st := mustOpen(t, driver, dsn)
		a := startService(t, st, locker)
		b := startService(t, mustOpen(t, driver, dsn), locker)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		var ids []int64
		for i := range 6 {
			ids = append(ids, mustProduct(t, a, fmt.Sprintf("TWO-%d", i), 0, 0).ID)
		}
		start, err := st.LastSeq(ctx)
		mustNoErr(t, err)
		events, err := a.Subscribe(ctx, inventory.EventFilter{AfterSeq: &start})
		mustNoErr(t, err)

		const perWriter = 40
		var wg sync.WaitGroup
		for w := range 8 {
			svc := []*app.Service{a, b}[w%2]
			wg.Go(func() {
				for i := range perWriter {
					if _, err := svc.StockIn(ctx, inventory.StockChange{ProductID: ids[(w+i)%len(ids)], Quantity: 1}); err != nil {
						t.Error(err)
					}
				}
			})
		}
		wg.Wait()
		seen := map[int64]bool{}
		last := start
		for range 8 * perWriter {
			m := recv(t, events)
			if m.Seq <= last || seen[m.Seq] {
				t.Fatalf("event seq %d after %d: out of order or twice", m.Seq, last)
			}
			seen[m.Seq], last = true, m.Seq
		}
		for after, more := start, true; more; {
			page, err := a.Movements(ctx, inventory.MovementQuery{After: after, HasAfter: true, Limit: inventory.MaxPageSize})
			mustNoErr(t, err)
			for _, m := range page.Movements {
				if !seen[m.Seq] {
					t.Errorf("movement %d is in the ledger but was never delivered", m.Seq)
				}
				after = m.Seq
			}
			more = page.HasNext
		}
		// Each replica's reads, through its read model, end where the
		// ledger does.
		for _, svc := range []*app.Service{a, b} {
			testenv.Eventually(t, "the read model to catch up", func() bool {
				total := int64(0)
				for _, id := range ids {
					p, err := svc.Product(ctx, id)
					mustNoErr(t, err)
					total += p.Stock
				}
				return total == 8*perWriter
			})
		}
	})
}
