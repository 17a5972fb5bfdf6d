package brokertest

import (
	"encoding/json"
	"testing"

	"github.com/shopstack/inventory/internal/broker"
)

// testStateCommands: expectStock and moveStock commands through the broker
// change the level's states, and the MOVE row's event, published by the
// relay, says which states and by how much.
func testStateCommands(t *testing.T, b Backend) {
	e := newEnv(t, b)
	outcomes := e.ns.Outcomes(t)
	id := e.product(t, "STATES", 10, 0)
	defer e.consumer(t, e.svc)()
	e.send(t, broker.Command{ID: "po-1", Type: broker.CommandExpectStock, ProductID: broker.ID(id), Quantity: 8, Reference: "PO-1"}, nil)
	if o := collect(t, outcomes, 1)["po-1"]; !o.OK {
		t.Fatalf("expectStock: %+v", o)
	}
	e.send(t, broker.Command{ID: "po-1-qc", Type: broker.CommandMoveStock, ProductID: broker.ID(id), Quantity: 8,
		From: "INCOMING", To: "QUALITY_CONTROL"}, nil)
	o := collect(t, outcomes, 1)["po-1-qc"]
	if !o.OK || o.QuantityAfter != 18 || o.AvailableAfter != 10 {
		t.Fatalf("moveStock: %+v", o)
	}

	defer e.relay(t)()
	type states struct{ Damaged, QualityControl, SafetyStock, Incoming int64 }
	var move *struct {
		Type               string
		Delta              int64
		StatesDelta        states
		FromState, ToState string
	}
	for _, r := range e.ns.Events(t, len(e.ledger(t))) {
		var ev struct{ Sequence int64 }
		if err := json.Unmarshal(r.Data, &ev); err != nil {
			t.Fatalf("event %s: %v", r.Data, err)
		}
		if ev.Sequence == o.Sequence && !r.Alert {
			if err := json.Unmarshal(r.Data, &move); err != nil {
				t.Fatalf("event %s: %v", r.Data, err)
			}
		}
	}
	if move == nil {
		t.Fatalf("no event of the MOVE row (sequence %d)", o.Sequence)
	}
	if move.Type != "MOVE" || move.Delta != 8 || move.StatesDelta != (states{QualityControl: 8, Incoming: -8}) ||
		move.FromState != "INCOMING" || move.ToState != "QUALITY_CONTROL" {
		t.Fatalf("event of the MOVE row: %+v", *move)
	}
}
