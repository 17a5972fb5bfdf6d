package broker_test

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"testing"

	"github.com/shopstack/inventory/internal/broker"
	"github.com/shopstack/inventory/internal/inventory"
)

// TestTransferCommands: a transfer created, shipped and received by
// commands, each command's ID its idempotency key; the SHIP and RECEIVE
// rows' events name the transfer; refusals are answered, not retried.
func TestTransferCommands(t *testing.T) {
	ctx := context.Background()
	svc, id := newService(t)
	shop, err := svc.CreateLocation(ctx, inventory.NewLocation{Code: "SHOP-1", Name: "Shop"})
	if err != nil {
		t.Fatal(err)
	}
	c := &broker.Consumer{Service: svc, Principal: inventory.Principal{Name: "replenishment", Role: inventory.RoleOperator}}
	handle := func(cmd broker.Command) broker.Outcome {
		t.Helper()
		data, err := json.Marshal(cmd)
		if err != nil {
			t.Fatal(err)
		}
		d := c.Handle(ctx, broker.Delivery{Attempt: 1, Data: data})
		var o broker.Outcome
		if err := json.Unmarshal(d.Outcome, &o); err != nil || d.Retry || d.Dead != nil {
			t.Fatalf("%s: outcome %s (%v), disposition %+v", data, d.Outcome, err, d)
		}
		return o
	}
	pid, origin, dest := broker.ID(id), broker.ID(inventory.DefaultLocationID), broker.ID(shop.ID)
	items := func(qs ...int64) []broker.CommandItem {
		var its []broker.CommandItem
		for _, q := range qs {
			its = append(its, broker.CommandItem{ProductID: pid, Quantity: q})
		}
		return its
	}

	create := broker.Command{ID: "tr-1", Type: broker.CommandCreateTransfer, OriginLocationID: origin, DestinationLocationID: dest,
		Items: items(4), Reference: "T-1"}
	o := handle(create)
	if !o.OK || o.Replayed || o.TransferID == "" || o.TransferStatus != "DRAFT" {
		t.Fatalf("createTransfer: %+v", o)
	}
	tid, _ := strconv.ParseInt(o.TransferID, 10, 64)
	if again := handle(create); !again.OK || !again.Replayed || again.TransferID != o.TransferID {
		t.Fatalf("createTransfer again: %+v, want the draft replayed", again)
	}
	other := create
	other.Items = items(5)
	if o := handle(other); o.OK || o.Code != "CONFLICT" {
		t.Fatalf("createTransfer with its ID and other items: %+v", o)
	}
	o = handle(broker.Command{ID: "tr-1-ship", Type: broker.CommandShipTransfer, TransferID: broker.ID(tid)})
	if !o.OK || o.TransferID != strconv.FormatInt(tid, 10) || o.TransferStatus != "IN_TRANSIT" {
		t.Fatalf("shipTransfer: %+v", o)
	}
	receive := broker.Command{ID: "tr-1-recv", Type: broker.CommandReceiveTransfer, TransferID: broker.ID(tid),
		Items: append(items(3), broker.CommandItem{ProductID: pid, Quantity: 1, State: inventory.StateDamaged})}
	if o := handle(receive); !o.OK || o.Replayed || o.TransferStatus != "RECEIVED" {
		t.Fatalf("receiveTransfer: %+v", o)
	}
	if o := handle(receive); !o.OK || !o.Replayed || o.TransferStatus != "RECEIVED" {
		t.Fatalf("receiveTransfer again: %+v, want a replay", o)
	}
	for _, tc := range []struct {
		cmd  broker.Command
		want string
	}{
		{broker.Command{ID: "tr-1-more", Type: broker.CommandReceiveTransfer, TransferID: broker.ID(tid), Items: items(1)}, "CONFLICT"},
		{broker.Command{ID: "tr-1-cancel", Type: broker.CommandCancelTransfer, TransferID: broker.ID(tid)}, "CONFLICT"},
		{broker.Command{ID: "tr-9-ship", Type: broker.CommandShipTransfer, TransferID: 999}, "NOT_FOUND"},
	} {
		if o := handle(tc.cmd); o.OK || o.Code != tc.want {
			t.Errorf("%+v: %+v, want %s", tc.cmd, o, tc.want)
		}
	}

	// A shipment short of stock changes nothing; the draft can be cancelled.
	o = handle(broker.Command{ID: "tr-2", Type: broker.CommandCreateTransfer, OriginLocationID: origin, DestinationLocationID: dest, Items: items(2)})
	short, _ := strconv.ParseInt(o.TransferID, 10, 64)
	if o := handle(broker.Command{ID: "tr-2-ship", Type: broker.CommandShipTransfer, TransferID: broker.ID(short)}); o.OK || o.Code != "INSUFFICIENT_STOCK" {
		t.Fatalf("shipTransfer short of stock: %+v", o)
	}
	if o := handle(broker.Command{ID: "tr-2-cancel", Type: broker.CommandCancelTransfer, TransferID: broker.ID(short)}); !o.OK || o.TransferStatus != "CANCELLED" {
		t.Fatalf("cancelTransfer of the draft: %+v", o)
	}

	atShop := items(1)
	atShop[0].LocationID = dest
	damaged, incoming := items(1), items(1)
	damaged[0].State, incoming[0].State = inventory.StateDamaged, inventory.StateIncoming
	for _, tc := range []struct {
		cmd   broker.Command
		field string
	}{
		{broker.Command{ID: "v1", Type: broker.CommandShipTransfer}, "transferId"},
		{broker.Command{ID: "v2", Type: broker.CommandCreateTransfer, DestinationLocationID: dest, Items: items(1)}, "originLocationId"},
		{broker.Command{ID: "v3", Type: broker.CommandCreateTransfer, OriginLocationID: origin, DestinationLocationID: dest, Items: atShop}, "items[0].locationId"},
		{broker.Command{ID: "v4", Type: broker.CommandCreateTransfer, OriginLocationID: origin, DestinationLocationID: dest, Items: damaged}, "items[0].state"},
		{broker.Command{ID: "v5", Type: broker.CommandReceiveTransfer, TransferID: broker.ID(tid), Items: incoming}, "items[0].state"},
	} {
		if o := handle(tc.cmd); o.OK || o.Code != "BAD_USER_INPUT" || o.Field != tc.field {
			t.Errorf("%+v: %+v, want BAD_USER_INPUT on %s", tc.cmd, o, tc.field)
		}
	}
	if o := handle(broker.Command{ID: "v6", Type: "teleport"}); o.Code != "BAD_USER_INPUT" || !strings.Contains(o.Message, "receiveTransfer") {
		t.Errorf("unknown type: %+v, want the transfer commands listed", o)
	}

	page, err := svc.Movements(ctx, inventory.MovementQuery{ProductID: id, Limit: 20})
	if err != nil {
		t.Fatal(err)
	}
	events := map[string][]map[string]any{} // by type
	for _, m := range page.Movements {
		var ev map[string]any
		if err := json.Unmarshal(broker.NewEvent(m).Data, &ev); err != nil {
			t.Fatal(err)
		}
		events[string(m.Type)] = append(events[string(m.Type)], ev)
	}
	if len(events["SHIP"]) != 2 || len(events["RECEIVE"]) != 2 {
		t.Fatalf("events %v, want two SHIP and two RECEIVE", events)
	}
	for _, ev := range append(events["SHIP"], events["RECEIVE"]...) {
		if ev["transferId"] != strconv.FormatInt(tid, 10) {
			t.Errorf("event %v, want transferId %q", ev, strconv.FormatInt(tid, 10))
		}
	}
	if ev := events["IN"][0]; ev["transferId"] != nil {
		t.Errorf("event of the IN row: %v, want no transferId", ev)
	}
}
