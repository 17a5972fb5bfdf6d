package graph_test

import (
	"testing"

	"github.com/99designs/gqlgen/client"
)

// TestReservationsOverGraphQL runs a reservation's life through the API:
// reserve, see available drop, commit, read it back and list it; and the
// errors a client meets.
func TestReservationsOverGraphQL(t *testing.T) {
	e := newEnv(t)
	var created struct {
		CreateProduct struct{ Product struct{ ID string } }
	}
	if errs := e.do(t, `mutation { createProduct(input: {sku: "R-1", name: "r", price: "1.00", initialStock: 10}) { product { id } } }`, &created); len(errs) > 0 {
		t.Fatal(errs)
	}
	id := created.CreateProduct.Product.ID

	var reserved struct {
		ReserveStock struct {
			Reservation struct {
				ID     string
				Status string
				Items  []struct {
					Product  struct{ Available int }
					Quantity int
					Active   bool
				}
			}
			Replayed bool
		}
	}
	errs := e.do(t, `mutation($id: ID!) { reserveStock(input: {items: [{productId: $id, quantity: 4}], ttlSeconds: 60, idempotencyKey: "cart-1"}) {
		reservation { id status items { product { available } quantity active } } replayed } }`, &reserved, client.Var("id", id))
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	r := reserved.ReserveStock.Reservation
	if r.Status != "ACTIVE" || len(r.Items) != 1 || r.Items[0].Quantity != 4 || !r.Items[0].Active || r.Items[0].Product.Available != 6 {
		t.Fatalf("reserved: %+v", reserved)
	}

	var committed struct {
		CommitReservation struct {
			Reservation struct{ Status string }
			Replayed    bool
		}
	}
	if errs := e.do(t, `mutation($r: ID!) { commitReservation(id: $r) { reservation { status } replayed } }`, &committed, client.Var("r", r.ID)); len(errs) > 0 {
		t.Fatal(errs)
	}
	if committed.CommitReservation.Reservation.Status != "COMMITTED" || committed.CommitReservation.Replayed {
		t.Fatalf("committed: %+v", committed)
	}

	var read struct {
		Reservation  struct{ Status string }
		Reservations struct {
			Edges []struct{ Node struct{ ID string } }
		}
		StockMovements struct {
			Edges []struct {
				Node struct {
					Type          string
					Delta         int
					ReservedDelta int
					Reservation   *struct{ ID string }
				}
			}
		}
	}
	errs = e.do(t, `query($r: ID!, $p: ID!) { reservation(id: $r) { status } reservations(status: COMMITTED) { edges { node { id } } }
		stockMovements(productId: $p, order: ASC) { edges { node { type delta reservedDelta reservation { id } } } } }`,
		&read, client.Var("r", r.ID), client.Var("p", id))
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	moves := read.StockMovements.Edges
	if read.Reservation.Status != "COMMITTED" || len(read.Reservations.Edges) != 1 || len(moves) != 3 ||
		moves[1].Node.Type != "RESERVE" || moves[1].Node.ReservedDelta != 4 || moves[1].Node.Reservation == nil ||
		moves[2].Node.Type != "COMMIT" || moves[2].Node.Delta != -4 || moves[2].Node.ReservedDelta != -4 {
		t.Fatalf("read back: %+v", read)
	}

	for name, tc := range map[string]struct {
		query string
		vars  []client.Option
		code  string
	}{
		"short":        {`mutation($id: ID!) { reserveStock(input: {items: [{productId: $id, quantity: 7}]}) { replayed } }`, []client.Option{client.Var("id", id)}, "INSUFFICIENT_STOCK"},
		"release sold": {`mutation($r: ID!) { releaseReservation(id: $r) { replayed } }`, []client.Option{client.Var("r", r.ID)}, "CONFLICT"},
		"unknown":      {`mutation { commitReservation(id: "999") { replayed } }`, nil, "NOT_FOUND"},
		"ttl":          {`mutation($id: ID!) { reserveStock(input: {items: [{productId: $id, quantity: 1}], ttlSeconds: 0}) { replayed } }`, []client.Option{client.Var("id", id)}, "BAD_USER_INPUT"},
		"huge ttl":     {`mutation($id: ID!) { reserveStock(input: {items: [{productId: $id, quantity: 1}], ttlSeconds: 9223372036854775807}) { replayed } }`, []client.Option{client.Var("id", id)}, "BAD_USER_INPUT"},
		"no items":     {`mutation { reserveStock(input: {items: []}) { replayed } }`, nil, "BAD_USER_INPUT"},
		"key reused":   {`mutation($id: ID!) { reserveStock(input: {items: [{productId: $id, quantity: 1}], idempotencyKey: "cart-1"}) { replayed } }`, []client.Option{client.Var("id", id)}, "CONFLICT"},
	} {
		errs := e.do(t, tc.query, nil, tc.vars...)
		if len(errs) != 1 || errs[0].Extensions["code"] != tc.code {
			t.Errorf("%s: errors %+v, want %s", name, errs, tc.code)
		}
	}
}
