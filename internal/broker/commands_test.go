package broker_test

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/shopstack/inventory/internal/app"
	"github.com/shopstack/inventory/internal/broker"
	"github.com/shopstack/inventory/internal/gormstore"
	"github.com/shopstack/inventory/internal/inventory"
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

func itoa(n int64) string { b, _ := json.Marshal(n); return string(b) }
