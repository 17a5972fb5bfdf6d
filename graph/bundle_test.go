package graph_test

import (
	"testing"

	"github.com/99designs/gqlgen/client"
)

func TestBundles(t *testing.T) {
	e := newEnv(t)
	var mug, tea struct {
		CreateProduct struct {
			Product  struct{ ID string }
			Movement struct{ Sequence int64 }
		}
	}
	e.must(t, `mutation { createProduct(input: {sku: "MUG", name: "Mug", price: "8.00", initialStock: 10}) { product { id } movement { sequence } } }`, &mug)
	e.must(t, `mutation { createProduct(input: {sku: "TEA", name: "Tea", price: "4.00", initialStock: 3}) { product { id } movement { sequence } } }`, &tea)
	var created struct {
		CreateBundle struct {
			Product struct {
				ID         string
				IsBundle   bool
				Available  int
				Components []struct {
					Product  struct{ SKU string }
					Quantity int
				}
			}
		}
	}
	e.must(t, `mutation($mug: ID!, $tea: ID!) { createBundle(input: {sku: "GIFT-BOX", name: "Gift box", price: "18.00",
		components: [{productId: $mug, quantity: 2}, {productId: $tea, quantity: 1}], idempotencyKey: "box"}) {
		product { id isBundle available components { product { sku } quantity } } } }`, &created,
		client.Var("mug", mug.CreateProduct.Product.ID), client.Var("tea", tea.CreateProduct.Product.ID))
	box := created.CreateBundle.Product
	if !box.IsBundle || box.Available != 3 || len(box.Components) != 2 || box.Components[0].Product.SKU != "MUG" || box.Components[0].Quantity != 2 {
		t.Fatalf("created: %+v", box)
	}

	// A subscription to the bundle hears of its components' changes.
	sub := e.c.Websocket(`subscription($ids: [ID!], $after: Int64) { stockChanged(productIds: $ids, afterSequence: $after) {
		movement { delta product { sku } bundle { sku } } bundles { sku available } } }`,
		client.Var("ids", []string{box.ID}), client.Var("after", tea.CreateProduct.Movement.Sequence))
	defer sub.Close()

	var sold struct {
		StockOut struct {
			Product  struct{ Available int }
			Level    struct{ Available int }
			Movement struct {
				Product struct{ SKU string }
				Bundle  struct{ SKU string }
				Delta   int
			}
		}
	}
	e.must(t, `mutation($id: ID!) { stockOut(input: {productId: $id, quantity: 2}) {
		product { available } level { available } movement { product { sku } bundle { sku } delta } } }`, &sold, client.Var("id", box.ID))
	if s := sold.StockOut; s.Product.Available != 1 || s.Level.Available != 1 || s.Movement.Bundle.SKU != "GIFT-BOX" || s.Movement.Product.SKU != "MUG" || s.Movement.Delta != -4 {
		t.Fatalf("sold: %+v", s)
	}
	for _, want := range []struct {
		sku   string
		delta int
	}{{"MUG", -4}, {"TEA", -2}} {
		var ev bundleEvent
		if err := sub.Next(&ev); err != nil {
			t.Fatal(err)
		}
		sc := ev.StockChanged
		if sc.Movement.Product.SKU != want.sku || sc.Movement.Delta != want.delta || sc.Movement.Bundle == nil || len(sc.Bundles) != 1 || sc.Bundles[0].SKU != "GIFT-BOX" {
			t.Fatalf("event %+v, want %s %d", sc, want.sku, want.delta)
		}
	}
	// A direct sale of a component changes the bundle too.
	e.must(t, `mutation($id: ID!) { stockOut(input: {productId: $id, quantity: 1}) { replayed } }`, nil, client.Var("id", tea.CreateProduct.Product.ID))
	var ev bundleEvent
	if err := sub.Next(&ev); err != nil {
		t.Fatal(err)
	}
	if sc := ev.StockChanged; sc.Movement.Bundle != nil || len(sc.Bundles) != 1 || sc.Bundles[0].Available != 0 {
		t.Fatalf("direct sale's event: %+v", sc)
	}

	var reserved struct {
		ReserveStock struct {
			Reservation struct {
				Items []struct {
					Product  struct{ SKU string }
					Bundle   *struct{ SKU string }
					Quantity int
				}
			}
		}
	}
	errs := e.do(t, `mutation($id: ID!) { reserveStock(input: {items: [{productId: $id, quantity: 1}]}) { reservation { id } } }`, nil, client.Var("id", box.ID))
	wantCode(t, errs, "INSUFFICIENT_STOCK")
	e.must(t, `mutation($id: ID!) { stockIn(input: {productId: $id, quantity: 1}) { replayed } }`, nil, client.Var("id", tea.CreateProduct.Product.ID))
	e.must(t, `mutation($id: ID!) { reserveStock(input: {items: [{productId: $id, quantity: 1}]}) { reservation { items { product { sku } bundle { sku } quantity } } } }`,
		&reserved, client.Var("id", box.ID))
	items := reserved.ReserveStock.Reservation.Items
	if len(items) != 2 || items[0].Product.SKU != "MUG" || items[0].Bundle == nil || items[0].Bundle.SKU != "GIFT-BOX" || items[0].Quantity != 2 {
		t.Fatalf("reservation items: %+v", items)
	}

	errs = e.do(t, `mutation($id: ID!) { stockIn(input: {productId: $id, quantity: 1}) { replayed } }`, nil, client.Var("id", box.ID))
	wantCode(t, errs, "BAD_USER_INPUT")
	errs = e.do(t, `mutation($id: ID!) { createBundle(input: {sku: "NESTED", name: "Nested", price: "1.00", components: [{productId: $id, quantity: 1}]}) { product { id } } }`,
		nil, client.Var("id", box.ID))
	wantCode(t, errs, "BAD_USER_INPUT")
}

// bundleEvent is a stockChanged event as TestBundles asks for it.
type bundleEvent struct {
	StockChanged struct {
		Movement struct {
			Delta   int
			Product struct{ SKU string }
			Bundle  *struct{ SKU string }
		}
		Bundles []struct {
			SKU       string
			Available int
		}
	}
}
