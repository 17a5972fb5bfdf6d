package inventory_test

import (
	"context"
	"testing"
	"time"

	"github.com/shopstack/inventory/internal/gormstore/gormstoretest"
	"github.com/shopstack/inventory/internal/inventory"
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
