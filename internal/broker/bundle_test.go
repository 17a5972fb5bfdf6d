package broker_test

import (
	"context"
	"encoding/json"
	"strconv"
	"testing"

	"github.com/shopstack/inventory/internal/app"
	"github.com/shopstack/inventory/internal/broker"
	"github.com/shopstack/inventory/internal/gormstore"
	"github.com/shopstack/inventory/internal/inventory"
	"github.com/shopstack/inventory/internal/testenv/inventorytest"
)

// TestBundleCommands: a stockOut command and a reserve command for a
// bundle take its components' units, with ledger rows (and their events)
// naming the bundle; a stockIn command for a bundle is answered
// BAD_USER_INPUT at once, not retried.
func TestBundleCommands(t *testing.T) {
	ctx := context.Background()
	svc, _ := inventorytest.Open(t, gormstore.SQLite, app.Config{})
	product := func(sku string, stock int64) int64 {
		t.Helper()
		p, err := svc.CreateProduct(ctx, inventory.NewProduct{SKU: sku, Name: sku, Price: 1, InitialStock: stock})
		if err != nil {
			t.Fatal(err)
		}
		return p.Product.ID
	}
	mug, tea := product("MUG", 10), product("TEA", 3)
	created, err := svc.CreateBundle(ctx, inventory.NewBundle{SKU: "GIFT-BOX", Name: "Gift box", Price: 5,
		Components: []inventory.BundleComponent{{ProductID: mug, Quantity: 2}, {ProductID: tea, Quantity: 1}}})
	if err != nil {
		t.Fatal(err)
	}
	box := created.Product.ID
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
	// last returns the newest ledger row of a product and its event.
	last := func(id int64) (inventory.Movement, map[string]any) {
		t.Helper()
		page, err := svc.Movements(ctx, inventory.MovementQuery{ProductID: id, Limit: 1, Descending: true})
		if err != nil || len(page.Movements) != 1 {
			t.Fatalf("movements: %+v (%v)", page, err)
		}
		var ev map[string]any
		if err := json.Unmarshal(broker.NewEvent(page.Movements[0]).Data, &ev); err != nil {
			t.Fatal(err)
		}
		return page.Movements[0], ev
	}

	o := handle(`{"id":"order-1","type":"stockOut","productId":"` + itoa(box) + `","quantity":2}`)
	if !o.OK || o.Sequence == 0 || o.QuantityAfter != 6 {
		t.Fatalf("stockOut of the bundle: %+v", o)
	}
	for _, want := range []struct{ product, delta int64 }{{mug, -4}, {tea, -2}} {
		m, ev := last(want.product)
		if m.Type != inventory.MovementOut || m.Delta != want.delta || m.BundleID != box {
			t.Errorf("row of product %d: %+v, want OUT %d naming the bundle", want.product, m, want.delta)
		}
		if ev["type"] != "OUT" || ev["productId"] != strconv.FormatInt(want.product, 10) || ev["bundleId"] != strconv.FormatInt(box, 10) {
			t.Errorf("event of product %d's row: %v", want.product, ev)
		}
	}

	o = handle(`{"id":"order-2","type":"reserve","items":[{"productId":` + itoa(box) + `,"quantity":1}],"ttlSeconds":60}`)
	if !o.OK || o.ReservationID == "" || o.ReservationStatus != "ACTIVE" {
		t.Fatalf("reserve of the bundle: %+v", o)
	}
	rid, _ := strconv.ParseInt(o.ReservationID, 10, 64)
	r, err := svc.Reservation(ctx, rid)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Items) != 2 || r.Items[0].ProductID != mug || r.Items[0].Quantity != 2 || r.Items[0].BundleID != box ||
		r.Items[1].ProductID != tea || r.Items[1].Quantity != 1 || r.Items[1].BundleID != box {
		t.Fatalf("the reservation's items: %+v", r.Items)
	}
	if m, ev := last(tea); m.Type != inventory.MovementReserve || m.BundleID != box || ev["bundleId"] != strconv.FormatInt(box, 10) ||
		ev["reservationId"] != o.ReservationID {
		t.Errorf("the RESERVE row's event: %v", ev)
	}

	o = handle(`{"id":"receipt-1","type":"stockIn","productId":"` + itoa(box) + `","quantity":1}`)
	if o.OK || o.Code != "BAD_USER_INPUT" {
		t.Fatalf("stockIn of the bundle: %+v", o)
	}
	// The refusal wrote nothing: the mug's newest row is the RESERVE.
	if m, _ := last(mug); m.Type != inventory.MovementReserve || m.BundleID != box {
		t.Errorf("the mug's newest row after the refusal: %+v", m)
	}
	// A row of no bundle's has no bundleId.
	handle(`{"id":"receipt-2","type":"stockIn","productId":"` + itoa(mug) + `","quantity":1}`)
	if _, ev := last(mug); ev["type"] != "IN" || ev["bundleId"] != nil {
		t.Errorf("a plain row's event: %v", ev)
	}
}
