package graph_test

import (
	"testing"

	"github.com/99designs/gqlgen/client"
)

func TestStockStates(t *testing.T) {
	e := newEnv(t)
	p := e.createProduct(t, "STATES-1", 10, 5)
	type states struct{ Damaged, QualityControl, SafetyStock, Incoming int }
	var out struct {
		ExpectStock struct {
			Level    struct{ Incoming, Stock int }
			Movement struct {
				Type    string
				ToState *string
			}
		}
		MoveStock struct {
			Product struct {
				Stock, Damaged, Incoming, Available int
				LowStock                            bool
			}
			Level struct {
				Stock, Damaged, QualityControl, SafetyStock, Incoming, Available int
			}
			Movement struct {
				Type               string
				Delta              int
				StatesDelta        states
				FromState, ToState *string
				AvailableAfter     int
				LowStockAlert      bool
			}
			Replayed bool
		}
	}
	e.must(t, `mutation($id: ID!) {
		expectStock(input: {productId: $id, quantity: 8, reference: "PO-1", idempotencyKey: "exp-1"}) {
			level { incoming stock } movement { type toState }
		}
		moveStock(input: {productId: $id, quantity: 6, from: INCOMING, to: DAMAGED, reason: "crushed on arrival", idempotencyKey: "mv-1"}) {
			product { stock damaged incoming available lowStock }
			level { stock damaged qualityControl safetyStock incoming available }
			movement { type delta statesDelta { damaged qualityControl safetyStock incoming } fromState toState availableAfter lowStockAlert }
			replayed
		}
	}`, &out, client.Var("id", p.ID))
	if x := out.ExpectStock; x.Level.Incoming != 8 || x.Level.Stock != 10 || x.Movement.Type != "EXPECT" || x.Movement.ToState == nil || *x.Movement.ToState != "INCOMING" {
		t.Fatalf("expectStock: %+v", x)
	}
	m := out.MoveStock
	if m.Level.Stock != 16 || m.Level.Damaged != 6 || m.Level.Incoming != 2 || m.Level.Available != 10 || m.Product.Damaged != 6 || m.Product.Available != 10 ||
		m.Movement.Type != "MOVE" || m.Movement.Delta != 6 || m.Movement.StatesDelta != (states{Damaged: 6, Incoming: -6}) ||
		*m.Movement.FromState != "INCOMING" || *m.Movement.ToState != "DAMAGED" || m.Movement.AvailableAfter != 10 {
		t.Fatalf("moveStock: %+v", m)
	}

	t.Run("ErrInsufficientStock", func(t *testing.T) {
		errs := e.do(t, `mutation($id: ID!) { moveStock(input: {productId: $id, quantity: 7, from: DAMAGED, to: AVAILABLE}) { replayed } }`, nil, client.Var("id", p.ID))
		wantCode(t, errs, "INSUFFICIENT_STOCK")
	})
	t.Run("ErrConflict", func(t *testing.T) {
		errs := e.do(t, `mutation($id: ID!) { moveStock(input: {productId: $id, quantity: 1, from: DAMAGED, to: AVAILABLE, changeFromQuantity: 5}) { replayed } }`, nil, client.Var("id", p.ID))
		wantCode(t, errs, "CONFLICT")
	})
	t.Run("ErrBadUserInput", func(t *testing.T) {
		errs := e.do(t, `mutation($id: ID!) { moveStock(input: {productId: $id, quantity: 1, from: AVAILABLE, to: INCOMING}) { replayed } }`, nil, client.Var("id", p.ID))
		wantCode(t, errs, "BAD_USER_INPUT")
	})
	t.Run("Reconcile", func(t *testing.T) {
		var r struct {
			Reconcile struct {
				LevelsChecked int
				Drifts        []any
			}
		}
		e.must(t, `{ reconcile { levelsChecked drifts { states { damaged } ledgerStates { damaged } } } }`, &r)
		if r.Reconcile.LevelsChecked != 1 || len(r.Reconcile.Drifts) != 0 {
			t.Fatalf("reconcile: %+v", r)
		}
	})
}
