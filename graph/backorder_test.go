package graph_test

import (
	"testing"

	"github.com/99designs/gqlgen/client"
)

func TestBackorders(t *testing.T) {
	e := newEnv(t)
	var created struct {
		CreateProduct struct{ Product struct{ ID string } }
	}
	e.must(t, `mutation { createProduct(input: {sku: "PRE-ORDER", name: "Pre-order", price: "5.00", initialStock: 1, backorderLimit: 3}) { product { id } } }`, &created)
	id := created.CreateProduct.Product.ID
	var sold struct {
		StockOut struct {
			Product struct{ Stock, Available, Backordered, BackorderLimit int }
			Level   struct{ Stock, Available, Backordered int }
		}
	}
	e.must(t, `mutation($id: ID!) { stockOut(input: {productId: $id, quantity: 3}) {
		product { stock available backordered backorderLimit } level { stock available backordered } } }`, &sold, client.Var("id", id))
	if s := sold.StockOut; s.Product.Stock != -2 || s.Product.Available != -2 || s.Product.Backordered != 2 || s.Product.BackorderLimit != 3 ||
		s.Level.Backordered != 2 {
		t.Fatalf("sold beyond the shelf: %+v", s)
	}
	errs := e.do(t, `mutation($id: ID!) { stockOut(input: {productId: $id, quantity: 2}) { replayed } }`, nil, client.Var("id", id))
	wantCode(t, errs, "INSUFFICIENT_STOCK")
	errs = e.do(t, `mutation($id: ID!) { updateProduct(input: {id: $id, backorderLimit: 1}) { product { id } } }`, nil, client.Var("id", id))
	wantCode(t, errs, "CONFLICT")
}
