package brokertest

import (
	"context"
	"encoding/json"
	"strconv"
	"testing"

	"github.com/shopstack/inventory/internal/broker"
	"github.com/shopstack/inventory/internal/inventory"
)

// testTransferCommands: a transfer created, shipped and received by
// commands through the broker; the SHIP and RECEIVE events, published by
// the relay, name the transfer and say where the units went.
func testTransferCommands(t *testing.T, b Backend) {
	e := newEnv(t, b)
	outcomes := e.ns.Outcomes(t)
	id := e.product(t, "TRANSFER", 10, 0)
	shop, err := e.svc.CreateLocation(context.Background(), inventory.NewLocation{Code: "SHOP-1", Name: "Shop"})
	if err != nil {
		t.Fatal(err)
	}
	defer e.consumer(t, e.svc)()
	run := func(cmd broker.Command, status string) broker.Outcome {
		t.Helper()
		e.send(t, cmd, nil)
		o := collect(t, outcomes, 1)[cmd.ID]
		if !o.OK || o.TransferStatus != status {
			t.Fatalf("%s: %+v, want OK and %s", cmd.Type, o, status)
		}
		return o
	}
	o := run(broker.Command{ID: "tr-1", Type: broker.CommandCreateTransfer, OriginLocationID: broker.ID(inventory.DefaultLocationID),
		DestinationLocationID: broker.ID(shop.ID), Items: []broker.CommandItem{{ProductID: broker.ID(id), Quantity: 6}}}, "DRAFT")
	tid, err := strconv.ParseInt(o.TransferID, 10, 64)
	if err != nil {
		t.Fatalf("createTransfer's transferId %q", o.TransferID)
	}
	run(broker.Command{ID: "tr-1-ship", Type: broker.CommandShipTransfer, TransferID: broker.ID(tid)}, "IN_TRANSIT")
	run(broker.Command{ID: "tr-1-recv", Type: broker.CommandReceiveTransfer, TransferID: broker.ID(tid), Items: []broker.CommandItem{
		{ProductID: broker.ID(id), Quantity: 5}, {ProductID: broker.ID(id), Quantity: 1, State: inventory.StateDamaged}}}, "RECEIVED")

	defer e.relay(t)()
	type event struct {
		Sequence      int64
		Type          string
		LocationID    string
		TransferID    string
		Delta         int64
		StatesDelta   struct{ Damaged, Incoming int64 }
		ToState       string
		QuantityAfter int64
	}
	got := map[int64]event{} // by sequence: a repeat is the same event
	for _, r := range e.ns.Events(t, len(e.ledger(t))) {
		var ev event
		if err := json.Unmarshal(r.Data, &ev); err != nil {
			t.Fatalf("event %s: %v", r.Data, err)
		}
		if !r.Alert && ev.TransferID != "" {
			got[ev.Sequence] = ev
		}
	}
	origin, dest := strconv.FormatInt(inventory.DefaultLocationID, 10), strconv.FormatInt(shop.ID, 10)
	var ships, receipts int
	for _, ev := range got {
		if ev.TransferID != o.TransferID {
			t.Fatalf("event %+v of another transfer", ev)
		}
		switch {
		case ev.Type == "SHIP" && ev.LocationID == origin && ev.Delta == -6 && ev.QuantityAfter == 4:
			ships++
		case ev.Type == "SHIP" && ev.LocationID == dest && ev.Delta == 0 && ev.StatesDelta.Incoming == 6:
			ships++
		case ev.Type == "RECEIVE" && ev.LocationID == dest && ev.ToState == "AVAILABLE" && ev.Delta == 5 && ev.StatesDelta.Incoming == -5:
			receipts++
		case ev.Type == "RECEIVE" && ev.LocationID == dest && ev.ToState == "DAMAGED" && ev.Delta == 1 &&
			ev.StatesDelta.Incoming == -1 && ev.StatesDelta.Damaged == 1:
			receipts++
		default:
			t.Fatalf("event %+v is not one of the transfer's", ev)
		}
	}
	if ships != 2 || receipts != 2 {
		t.Fatalf("events of the transfer %+v, want a SHIP at each end and a RECEIVE per line", got)
	}
}
