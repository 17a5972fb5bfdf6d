package graph_test

import (
	"testing"

	"github.com/99designs/gqlgen/client"
)

type transferJSON struct {
	ID          string
	Status      string
	Origin      struct{ Code string }
	Destination struct{ Code string }
	Items       []struct {
		Product                                          struct{ Sku string }
		Quantity, Shipped, Received, Returned, InTransit int
	}
}

const transferFields = `id status origin { code } destination { code } items { product { sku } quantity shipped received returned inTransit }`

func TestTransferFlow(t *testing.T) {
	e := newEnv(t)
	p := e.createProduct(t, "TRANSFER-1", 10, 0)
	var loc struct{ CreateLocation struct{ ID string } }
	e.must(t, `mutation { createLocation(input: {code: "SHOP-1", name: "Shop"}) { id } }`, &loc)

	var created struct {
		CreateTransfer struct{ Transfer transferJSON }
	}
	e.must(t, `mutation($p: ID!, $to: ID!) {
		createTransfer(input: {originLocationId: 1, destinationLocationId: $to, items: [{productId: $p, quantity: 6}], reference: "T-1", idempotencyKey: "t-1"}) {
			transfer { `+transferFields+` } replayed }
	}`, &created, client.Var("p", p.ID), client.Var("to", loc.CreateLocation.ID))
	tr := created.CreateTransfer.Transfer
	if tr.Status != "DRAFT" || tr.Origin.Code != "DEFAULT" || tr.Destination.Code != "SHOP-1" || len(tr.Items) != 1 || tr.Items[0].Quantity != 6 {
		t.Fatalf("createTransfer: %+v", tr)
	}

	var shipped struct {
		ShipTransfer struct {
			Transfer transferJSON
			Replayed bool
		}
	}
	e.must(t, `mutation($id: ID!) { shipTransfer(id: $id, idempotencyKey: "s-1") { transfer { `+transferFields+` } replayed } }`, &shipped, client.Var("id", tr.ID))
	if s := shipped.ShipTransfer; s.Transfer.Status != "IN_TRANSIT" || s.Transfer.Items[0].InTransit != 6 || s.Replayed {
		t.Fatalf("shipTransfer: %+v", s)
	}

	var received struct {
		ReceiveTransfer struct{ Transfer transferJSON }
	}
	e.must(t, `mutation($id: ID!, $p: ID!) {
		receiveTransfer(input: {id: $id, items: [{productId: $p, quantity: 5}, {productId: $p, quantity: 1, state: DAMAGED}], idempotencyKey: "r-1"}) {
			transfer { `+transferFields+` } }
	}`, &received, client.Var("id", tr.ID), client.Var("p", p.ID))
	if r := received.ReceiveTransfer.Transfer; r.Status != "RECEIVED" || r.Items[0].Received != 6 || r.Items[0].InTransit != 0 {
		t.Fatalf("receiveTransfer: %+v", r)
	}

	var levels struct {
		Product struct {
			Stock, Available, Damaged int
			Levels                    []struct {
				Location                            struct{ Code string }
				Stock, Damaged, Incoming, Available int
			}
			Movements struct {
				Edges []struct {
					Node struct {
						Type               string
						Delta              int
						FromState, ToState *string
						Transfer           *struct{ ID string }
					}
				}
			}
		}
	}
	e.must(t, `query($p: ID!) { product(id: $p, consistency: STRONG) { stock available damaged
		levels { location { code } stock damaged incoming available }
		movements(first: 10) { edges { node { type delta fromState toState transfer { id } } } } } }`, &levels, client.Var("p", p.ID))
	got := levels.Product
	if got.Stock != 10 || got.Available != 9 || got.Damaged != 1 || len(got.Levels) != 2 ||
		got.Levels[0].Stock != 4 || got.Levels[1].Stock != 6 || got.Levels[1].Damaged != 1 || got.Levels[1].Incoming != 0 {
		t.Fatalf("levels after the transfer: %+v", got)
	}
	types := map[string]int{}
	for _, edge := range got.Movements.Edges {
		if n := edge.Node; n.Transfer != nil {
			if n.Transfer.ID != tr.ID {
				t.Fatalf("movement of another transfer: %+v", n)
			}
			types[n.Type]++
		}
	}
	if types["SHIP"] != 2 || types["RECEIVE"] != 2 {
		t.Fatalf("transfer movements: %v", types)
	}

	t.Run("Queries", func(t *testing.T) {
		var q struct {
			Transfer  transferJSON
			Transfers struct {
				Edges    []struct{ Node struct{ ID string } }
				PageInfo struct{ HasNextPage bool }
			}
		}
		e.must(t, `query($id: ID!) { transfer(id: $id) { `+transferFields+` } transfers(status: RECEIVED, first: 5) { edges { node { id } } pageInfo { hasNextPage } } }`,
			&q, client.Var("id", tr.ID))
		if q.Transfer.Status != "RECEIVED" || len(q.Transfers.Edges) != 1 || q.Transfers.Edges[0].Node.ID != tr.ID {
			t.Fatalf("queries: %+v", q)
		}
	})
	t.Run("ErrConflict", func(t *testing.T) {
		errs := e.do(t, `mutation($id: ID!) { cancelTransfer(id: $id) { replayed } }`, nil, client.Var("id", tr.ID))
		wantCode(t, errs, "CONFLICT")
	})
	t.Run("ErrNotFound", func(t *testing.T) {
		errs := e.do(t, `mutation { shipTransfer(id: "999") { replayed } }`, nil)
		wantCode(t, errs, "NOT_FOUND")
	})
	t.Run("Reconcile", func(t *testing.T) {
		var r struct {
			Reconcile struct {
				TransferItemsChecked int
				TransferDrifts       []any
			}
		}
		e.must(t, `{ reconcile { transferItemsChecked transferDrifts { inTransit ledgerInTransit ledgerImbalance } } }`, &r)
		if r.Reconcile.TransferItemsChecked != 1 || len(r.Reconcile.TransferDrifts) != 0 {
			t.Fatalf("reconcile: %+v", r)
		}
	})
}
