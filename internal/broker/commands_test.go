package broker_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"

	"github.com/shopstack/inventory/internal/app"
	"github.com/shopstack/inventory/internal/broker"
	"github.com/shopstack/inventory/internal/gormstore"
	"github.com/shopstack/inventory/internal/inventory"
	"github.com/shopstack/inventory/internal/testenv"
	"github.com/shopstack/inventory/internal/testenv/inventorytest"
)

func newService(t *testing.T) (*app.Service, int64) {
	t.Helper()
	svc, _ := inventorytest.Open(t, gormstore.SQLite, app.Config{})
	p, err := svc.CreateProduct(context.Background(), inventory.NewProduct{SKU: "C", Name: "C", Price: 1, InitialStock: 5})
	if err != nil {
		t.Fatal(err)
	}
	return svc, p.Product.ID
}

// TestHandle covers what the suite's brokers do not reach: IDs as numbers,
// a command redelivered past its attempts (its consumer died each time)
// dead-lettered without running, and a role too low answered, not retried.
func TestHandle(t *testing.T) {
	svc, id := newService(t)
	c := &broker.Consumer{Service: svc, Principal: inventory.Principal{Name: "orders", Role: inventory.RoleOperator}}
	outcome := func(d broker.Disposition) broker.Outcome {
		t.Helper()
		var o broker.Outcome
		if err := json.Unmarshal(d.Outcome, &o); err != nil {
			t.Fatalf("outcome %s: %v", d.Outcome, err)
		}
		return o
	}
	cmd := func(s string) []byte { return []byte(s) }

	d := c.Handle(context.Background(), broker.Delivery{Attempt: 1,
		Data: cmd(`{"schema":"inventory.command.v1","id":"n1","type":"stockOut","productId":` + itoa(id) + `,"quantity":2}`)})
	if o := outcome(d); !o.OK || o.QuantityAfter != 3 || d.Retry || d.Dead != nil {
		t.Fatalf("numeric productId: %+v %+v", o, d)
	}

	d = c.Handle(context.Background(), broker.Delivery{Attempt: 7,
		Data: cmd(`{"id":"n2","type":"stockOut","productId":"` + itoa(id) + `","quantity":1}`)})
	if o := outcome(d); o.OK || !o.DeadLettered || d.Dead == nil || d.Dead.Attempts != 7 {
		t.Fatalf("7th delivery with 5 attempts: %+v %+v", o, d)
	}
	ps, _ := svc.ProductStock(context.Background(), id)
	if ps.Levels[0].Stock != 3 {
		t.Fatalf("stock %d: the dead-lettered command ran", ps.Levels[0].Stock)
	}

	reader := &broker.Consumer{Service: svc, Principal: inventory.Principal{Name: "viewer", Role: inventory.RoleReader}}
	d = reader.Handle(context.Background(), broker.Delivery{Attempt: 1,
		Data: cmd(`{"id":"n3","type":"stockIn","productId":"` + itoa(id) + `","quantity":1}`)})
	if o := outcome(d); o.OK || o.Code != "FORBIDDEN" || d.Retry {
		t.Fatalf("reader's stockIn: %+v %+v", o, d)
	}

	d = c.Handle(context.Background(), broker.Delivery{Attempt: 1, Data: cmd(`{"id":"n4","type":"commit"}`)})
	if o := outcome(d); o.Code != "BAD_USER_INPUT" || o.Field != "reservationId" {
		t.Fatalf("commit without a reservation: %+v", o)
	}
}

// TestStateCommands: expectStock and moveStock commands apply through the
// service, and the MOVE row's event carries the states it changed; a move
// into INCOMING is answered BAD_USER_INPUT, not retried.
func TestStateCommands(t *testing.T) {
	ctx := context.Background()
	svc, id := newService(t)
	c := &broker.Consumer{Service: svc, Principal: inventory.Principal{Name: "receiving", Role: inventory.RoleOperator}}
	handle := func(data string) broker.Outcome {
		t.Helper()
		d := c.Handle(ctx, broker.Delivery{Attempt: 1, Data: []byte(data)})
		var o broker.Outcome
		if err := json.Unmarshal(d.Outcome, &o); err != nil || d.Retry || d.Dead != nil {
			t.Fatalf("%s: outcome %s (%v), disposition %+v", data, d.Outcome, err, d)
		}
		return o
	}

	if o := handle(`{"id":"po-1","type":"expectStock","productId":"` + itoa(id) + `","quantity":8,"reference":"PO-1"}`); !o.OK || o.QuantityAfter != 5 {
		t.Fatalf("expectStock: %+v", o)
	}
	o := handle(`{"id":"po-1-damaged","type":"moveStock","productId":"` + itoa(id) + `","quantity":3,"from":"INCOMING","to":"DAMAGED","changeFromQuantity":8,"reason":"crushed"}`)
	if !o.OK || o.QuantityAfter != 8 || o.AvailableAfter != 5 || o.Sequence == 0 {
		t.Fatalf("moveStock: %+v", o)
	}
	ps, err := svc.ProductStock(ctx, id)
	if err != nil || ps.Levels[0].Stock != 8 || ps.Levels[0].Damaged != 3 || ps.Levels[0].Incoming != 5 {
		t.Fatalf("level after the commands: %+v (%v)", ps.Levels, err)
	}

	page, err := svc.Movements(ctx, inventory.MovementQuery{ProductID: id, Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	events := map[string]map[string]any{} // by type
	for _, m := range page.Movements {
		var ev map[string]any
		if err := json.Unmarshal(broker.NewEvent(m).Data, &ev); err != nil {
			t.Fatal(err)
		}
		events[string(m.Type)] = ev
	}
	states := func(damaged, incoming float64) string {
		return fmt.Sprint(map[string]any{"damaged": damaged, "qualityControl": 0.0, "safetyStock": 0.0, "incoming": incoming})
	}
	if ev := events["MOVE"]; ev["sequence"] != float64(o.Sequence) || ev["delta"] != 3.0 || fmt.Sprint(ev["statesDelta"]) != states(3, -3) ||
		ev["fromState"] != "INCOMING" || ev["toState"] != "DAMAGED" {
		t.Errorf("event of the MOVE row: %v", ev)
	}
	if ev := events["EXPECT"]; fmt.Sprint(ev["statesDelta"]) != states(0, 8) || ev["toState"] != "INCOMING" || ev["fromState"] != nil {
		t.Errorf("event of the EXPECT row: %v", ev)
	}
	// A row that names no state has zero changes and no fromState or toState.
	if ev := events["IN"]; fmt.Sprint(ev["statesDelta"]) != states(0, 0) || ev["fromState"] != nil || ev["toState"] != nil {
		t.Errorf("event of the IN row: %v", ev)
	}

	if o := handle(`{"id":"mv-bad","type":"moveStock","productId":"` + itoa(id) + `","quantity":1,"from":"AVAILABLE","to":"INCOMING"}`); o.OK || o.Code != "BAD_USER_INPUT" || o.Field != "to" {
		t.Fatalf("move into INCOMING: %+v", o)
	}
	if o := handle(`{"id":"mv-stale","type":"moveStock","productId":"` + itoa(id) + `","quantity":1,"from":"DAMAGED","to":"AVAILABLE","changeFromQuantity":1}`); o.OK || o.Code != "CONFLICT" {
		t.Fatalf("stale changeFromQuantity: %+v", o)
	}
}

func itoa(n int64) string { b, _ := json.Marshal(n); return string(b) }

// TestBadCommandsNameTheirField sweeps the commands a consumer refuses as
// BAD_USER_INPUT: every outcome names the field at fault (body for what is
// not a command object at all), and no message carries a Go library's text.
func TestBadCommandsNameTheirField(t *testing.T) {
	svc, id := newService(t)
	c := &broker.Consumer{Service: svc, Principal: inventory.Principal{Name: "orders", Role: inventory.RoleOperator}}
	p := itoa(id)
	for i, tc := range []struct{ name, data, field string }{
		{"quantity not a number", `{"type":"stockIn","productId":` + p + `,"quantity":"two"}`, "quantity"},
		{"quantity fractional", `{"type":"stockIn","productId":` + p + `,"quantity":1.5}`, "quantity"},
		{"product not an ID", `{"type":"stockIn","productId":"abc","quantity":1}`, "productId"},
		// An item is named by its index, as GraphQL names it.
		{"item's product not an ID", `{"type":"reserve","items":[{"productId":"abc","quantity":1}]}`, "items[0].productId"},
		{"later item's quantity not a number", `{"type":"reserve","items":[{"productId":` + p + `,"quantity":1},{"productId":` + p + `,"quantity":"two"}]}`, "items[1].quantity"},
		{"item not an object", `{"type":"createTransfer","items":[{"productId":` + p + `,"quantity":1},7]}`, "items[1]"},
		{"item's state not a string", `{"type":"receiveTransfer","transferId":1,"items":[{"productId":` + p + `,"quantity":1,"state":5}]}`, "items[0].state"},
		{"items not an array", `{"type":"reserve","items":7}`, "items"},
		{"quantity out of range", `{"type":"stockIn","productId":` + p + `,"quantity":0}`, "quantity"},
		// A field this consumer does not know is dropped (a producer of a newer
		// schema may send one); the one missing is named.
		{"unknown field", `{"type":"stockIn","productId":` + p + `,"quantty":1}`, "quantity"},
		{"unknown type", `{"type":"teleport"}`, "type"},
		{"unknown schema", `{"schema":"v9","type":"stockIn"}`, "schema"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			data := fmt.Sprintf(`{"id":"bad-%d",`, i) + tc.data[1:]
			d := c.Handle(context.Background(), broker.Delivery{Attempt: 1, Data: []byte(data)})
			var o broker.Outcome
			if err := json.Unmarshal(d.Outcome, &o); err != nil {
				t.Fatalf("outcome %s: %v", d.Outcome, err)
			}
			if o.OK || o.Code != "BAD_USER_INPUT" || o.Field != tc.field || d.Retry {
				t.Errorf("outcome %+v, want BAD_USER_INPUT naming %q", o, tc.field)
			}
			if m := testenv.LibraryText(o.Message); m != "" {
				t.Errorf("message %q carries a library's text (%q)", o.Message, m)
			}
		})
	}
}
