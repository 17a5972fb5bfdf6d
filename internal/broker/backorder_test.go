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

// TestBackorderCommands: a stockOut command beyond the shelf of a product
// with a backorder limit is answered, and published, with the negative
// levels the README promises; beyond the limit it is INSUFFICIENT_STOCK,
// answered at once, not retried.
func TestBackorderCommands(t *testing.T) {
	ctx := context.Background()
	svc, _ := inventorytest.Open(t, gormstore.SQLite, app.Config{})
	p, err := svc.CreateProduct(ctx, inventory.NewProduct{SKU: "PRE", Name: "Pre-order", Price: 1, InitialStock: 1, BackorderLimit: 3})
	if err != nil {
		t.Fatal(err)
	}
	id := p.Product.ID
	c := &broker.Consumer{Service: svc, Principal: inventory.Principal{Name: "orders", Role: inventory.RoleOperator}}
	handle := func(data string) broker.Outcome {
		t.Helper()
		d := c.Handle(ctx, broker.Delivery{Attempt: 1, Data: []byte(data)})
		var o broker.Outcome
		if err := json.Unmarshal(d.Outcome, &o); err != nil || d.Retry || d.Dead != nil {
			t.Fatalf("%s: outcome %s (%v), disposition %+v", data, d.Outcome, err, d)
		}
		return o
	}

	o := handle(`{"id":"pre-1","type":"stockOut","productId":"` + itoa(id) + `","quantity":3}`)
	if !o.OK || o.QuantityAfter != -2 || o.AvailableAfter != -2 {
		t.Fatalf("stockOut beyond the shelf: %+v", o)
	}
	page, err := svc.Movements(ctx, inventory.MovementQuery{ProductID: id, Limit: 1, Descending: true})
	if err != nil || len(page.Movements) != 1 {
		t.Fatalf("movements: %+v (%v)", page, err)
	}
	var ev map[string]any
	if err := json.Unmarshal(broker.NewEvent(page.Movements[0]).Data, &ev); err != nil {
		t.Fatal(err)
	}
	if ev["sequence"] != float64(o.Sequence) || ev["type"] != "OUT" || ev["quantityAfter"] != -2.0 || ev["availableAfter"] != -2.0 {
		t.Errorf("event of the OUT row: %v", ev)
	}

	if o := handle(`{"id":"pre-2","type":"stockOut","productId":"` + itoa(id) + `","quantity":2}`); o.OK || o.Code != "INSUFFICIENT_STOCK" {
		t.Fatalf("stockOut beyond the limit: %+v", o)
	}
}
