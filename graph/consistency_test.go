package graph_test

import (
	"context"
	"testing"
	"time"

	"github.com/99designs/gqlgen/client"

	"github.com/shopstack/inventory/graph"
	"github.com/shopstack/inventory/internal/inventory"
	"github.com/shopstack/inventory/internal/lock/memlock"
	"github.com/shopstack/inventory/internal/testenv/gormstoretest"
)

// TestConsistency serves GraphQL from a replica whose read model another
// replica's sale has not reached: a CACHED read (the default) is stale, a
// STRONG one reads the database, nested fields included, and the replica's
// own sale is read at once.
func TestConsistency(t *testing.T) {
	gormstoretest.ForEachDriver(t, func(t *testing.T, driver string) {
		dsn, locker := gormstoretest.DSN(t, driver), memlock.New(0)
		// Neither replica polls during the test.
		here := startReplica(t, replica{driver: driver, dsn: dsn, locker: locker, poll: time.Hour})
		there := startReplica(t, replica{driver: driver, dsn: dsn, locker: locker, poll: time.Hour})
		c := client.New(newHandler(here, graph.Options{}))
		res, err := here.CreateProduct(context.Background(), inventory.NewProduct{SKU: "CONS", Name: "c", InitialStock: 10})
		if err != nil {
			t.Fatal(err)
		}
		id := res.Product.ID

		type levels struct{ Stock int }
		type product struct {
			Stock  int
			Levels []levels
		}
		read := func(consistency string) product {
			var out struct{ Product, BySku product }
			c.MustPost(`query($id: ID!, $c: ReadConsistency) {
				product(id: $id, consistency: $c) { stock levels { stock } }
				bySku: productBySku(sku: "CONS", consistency: $c) { stock levels { stock } } }`,
				&out, client.Var("id", id), client.Var("c", consistency))
			if out.Product.Stock != out.BySku.Stock || out.Product.Levels[0].Stock != out.Product.Stock {
				t.Fatalf("%s: one read disagrees with itself: %+v", consistency, out)
			}
			return out.Product
		}
		if got := read("CACHED"); got.Stock != 10 {
			t.Fatalf("first read: %+v", got)
		}
		if _, err := there.StockOut(context.Background(), inventory.StockChange{ProductID: id, Quantity: 3}); err != nil {
			t.Fatal(err)
		}
		if got := read("CACHED"); got.Stock != 10 {
			t.Fatalf("CACHED read %+v: want the stale 10 (the read model has not been told yet)", got)
		}
		if got := read("STRONG"); got.Stock != 7 {
			t.Fatalf("STRONG read %+v: want 7", got)
		}
		var sold struct {
			StockOut struct{ Product product }
		}
		c.MustPost(`mutation($id: ID!) { stockOut(input: {productId: $id, quantity: 1}) { product { stock levels { stock } } } }`,
			&sold, client.Var("id", id))
		if got := sold.StockOut.Product; got.Stock != 6 || got.Levels[0].Stock != 6 {
			t.Fatalf("the sale's own answer: %+v", got)
		}
		if got := read("CACHED"); got.Stock != 6 {
			t.Fatalf("CACHED read after this replica's sale: %+v, want 6", got)
		}
	})
}
