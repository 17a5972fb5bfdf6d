package graph_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/99designs/gqlgen/client"

	"github.com/shopstack/inventory/graph"
	"github.com/shopstack/inventory/graph/model"
	"github.com/shopstack/inventory/internal/app"
	"github.com/shopstack/inventory/internal/gormstore"
	"github.com/shopstack/inventory/internal/inventory"
	"github.com/shopstack/inventory/internal/testenv/gormstoretest"
	"github.com/shopstack/inventory/internal/testenv/inventorytest"
)

// run posts query with variables and returns the SQL statements it ran
// and its response (errors allowed).
func (e countingEnv) run(t *testing.T, query string, vars map[string]any) ([]string, nodeResponse) {
	t.Helper()
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	traceID := hex.EncodeToString(b)
	resp := e.postVars(t, traceID, query, vars)
	var out nodeResponse
	raw, _ := json.Marshal(resp)
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatal(err)
	}
	var stmts []string
	for _, s := range e.exp.GetSpans() {
		if s.SpanContext.TraceID().String() == traceID && s.InstrumentationScope.Name == sqlScope {
			stmts = append(stmts, s.Name)
		}
	}
	return stmts, out
}

type nodeResponse struct {
	Data   map[string]json.RawMessage
	Errors []gqlError
}

// data decodes the response's field into out, failing on any error.
func (r nodeResponse) data(t *testing.T, field string, out any) {
	t.Helper()
	if len(r.Errors) > 0 {
		t.Fatalf("errors: %+v", r.Errors)
	}
	if err := json.Unmarshal(r.Data[field], out); err != nil {
		t.Fatalf("decode %s %s: %v", field, r.Data[field], err)
	}
}

type nodeJSON struct {
	Typename   string `json:"__typename"`
	ID         string `json:"id"`
	DatabaseID int64  `json:"databaseId"`
	SKU        string `json:"sku"`
	Available  int    `json:"available"`
	Code       string `json:"code"`
	Sequence   int64  `json:"sequence"`
	Status     string `json:"status"`
}

const nodeFields = `__typename id
	... on Product { databaseId sku available }
	... on Location { databaseId code }
	... on StockMovement { databaseId sequence }
	... on Reservation { databaseId status }
	... on Transfer { databaseId reference }`

// seedNodes makes an object of every node type: products, a location, a
// reservation and a transfer (and their movements).
func seedNodes(t *testing.T, svc *app.Service, products int) (ids map[model.NodeType][]int64) {
	t.Helper()
	ctx := context.Background()
	ids = map[model.NodeType][]int64{}
	loc, err := svc.CreateLocation(ctx, inventory.NewLocation{Code: "NODE-SHOP", Name: "Shop"})
	if err != nil {
		t.Fatal(err)
	}
	ids[model.LocationNode] = []int64{inventory.DefaultLocationID, loc.ID}
	for i := range products {
		res, err := svc.CreateProduct(ctx, inventory.NewProduct{SKU: fmt.Sprintf("NODE-%03d", i), Name: "Item", InitialStock: 10})
		if err != nil {
			t.Fatal(err)
		}
		ids[model.ProductNode] = append(ids[model.ProductNode], res.Product.ID)
		ids[model.MovementNode] = append(ids[model.MovementNode], res.Movement.Seq)
	}
	p := ids[model.ProductNode][0]
	r, err := svc.ReserveStock(ctx, inventory.NewReservation{Items: []inventory.ReservationItemInput{{ProductID: p, Quantity: 1}}, TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	ids[model.ReservationNode] = []int64{r.Reservation.ID}
	tr, err := svc.CreateTransfer(ctx, inventory.NewTransfer{OriginID: inventory.DefaultLocationID, DestinationID: loc.ID,
		Items: []inventory.TransferItemInput{{ProductID: p, Quantity: 2}}})
	if err != nil {
		t.Fatal(err)
	}
	ids[model.TransferNode] = []int64{tr.Transfer.ID}
	return ids
}

func gid(t model.NodeType, n int64) string { return model.GlobalID(t, n).String() }

// TestNodeRoundTrips: every type's objects have global IDs, unique across
// types, that node and nodes resolve back to them; databaseId gives the
// number, which every ID input still takes.
func TestNodeRoundTrips(t *testing.T) {
	gormstoretest.ForEachDriver(t, func(t *testing.T, driver string) {
		e := newCountingEnv(t, driver)
		ids := seedNodes(t, e.svc, 2)
		p, loc := ids[model.ProductNode][0], ids[model.LocationNode][1]

		// The IDs each type's own fields give.
		var own struct {
			Product struct {
				ID         string `json:"id"`
				DatabaseID int64
				Movements  struct{ Edges []struct{ Node nodeJSON } }
			}
			Locations   []nodeJSON
			Reservation nodeJSON
			Transfer    nodeJSON
		}
		_, resp := e.run(t, `query($p: ID!, $r: ID!, $t: ID!) {
			product(id: $p) { id databaseId movements(order: ASC) { edges { node { id databaseId sequence } } } }
			locations { id databaseId code } reservation(id: $r) { id databaseId } transfer(id: $t) { id databaseId } }`,
			map[string]any{"p": p, "r": fmt.Sprint(ids[model.ReservationNode][0]), "t": gid(model.TransferNode, ids[model.TransferNode][0])})
		if len(resp.Errors) > 0 {
			t.Fatalf("own queries (bare and global IDs): %+v", resp.Errors)
		}
		for k, v := range resp.Data {
			b, _ := json.Marshal(map[string]json.RawMessage{k: v})
			_ = json.Unmarshal(b, &own)
		}
		seen := map[string]bool{}
		check := func(what, id string, typ model.NodeType, n int64, databaseID int64) {
			t.Helper()
			if id != gid(typ, n) || databaseID != n || seen[id] {
				t.Errorf("%s: id %q databaseId %d, want %q and %d, unique", what, id, databaseID, gid(typ, n), n)
			}
			seen[id] = true
		}
		check("product", own.Product.ID, model.ProductNode, p, own.Product.DatabaseID)
		for _, l := range own.Locations {
			check("location", l.ID, model.LocationNode, l.DatabaseID, l.DatabaseID)
		}
		for _, m := range own.Product.Movements.Edges {
			check("movement", m.Node.ID, model.MovementNode, m.Node.Sequence, m.Node.DatabaseID)
		}
		check("reservation", own.Reservation.ID, model.ReservationNode, ids[model.ReservationNode][0], own.Reservation.DatabaseID)
		check("transfer", own.Transfer.ID, model.TransferNode, ids[model.TransferNode][0], own.Transfer.DatabaseID)
		if len(seen) < 7 {
			t.Fatalf("only %d objects seen", len(seen))
		}

		// node resolves each ID back to its object.
		for typ, list := range ids {
			for _, n := range list {
				var got nodeJSON
				_, resp := e.run(t, `query($id: ID!) { node(id: $id) { `+nodeFields+` } }`, map[string]any{"id": gid(typ, n)})
				resp.data(t, "node", &got)
				if got.Typename != string(typ) || got.ID != gid(typ, n) || got.DatabaseID != n {
					t.Errorf("node(%s %d) = %+v", typ, n, got)
				}
			}
		}
		var got nodeJSON
		_, resp = e.run(t, `query($id: ID!) { node(id: $id) { `+nodeFields+` } }`, map[string]any{"id": gid(model.LocationNode, loc)})
		if resp.data(t, "node", &got); got.Code != "NODE-SHOP" {
			t.Errorf("node(location) = %+v", got)
		}
	})
}

// TestNodesBatch: nodes loads the objects of one type in one batch (its
// statements do not grow with the number of IDs), keeps the order asked,
// and answers an unknown ID with null in place and a NOT_FOUND error at
// its index.
func TestNodesBatch(t *testing.T) {
	gormstoretest.ForEachDriver(t, func(t *testing.T, driver string) {
		e := newCountingEnv(t, driver)
		ids := seedNodes(t, e.svc, 20)
		query := `query($ids: [ID!]!) { nodes(ids: $ids) { ` + nodeFields + ` } }`
		for _, typ := range []model.NodeType{model.ProductNode, model.MovementNode} {
			var counts []int
			for _, n := range []int{2, 20} {
				var want []string
				for _, id := range ids[typ][:n] {
					want = append(want, gid(typ, id))
				}
				stmts, resp := e.run(t, query, map[string]any{"ids": want})
				var got []nodeJSON
				resp.data(t, "nodes", &got)
				if len(got) != n {
					t.Fatalf("%s: %d nodes for %d IDs", typ, len(got), n)
				}
				for i := range got {
					if got[i].ID != want[i] {
						t.Fatalf("%s: node %d is %q, want %q", typ, i, got[i].ID, want[i])
					}
				}
				t.Logf("%s: %d nodes in %d statements %v", typ, n, len(stmts), stmts)
				counts = append(counts, len(stmts))
			}
			if counts[1] > counts[0] || counts[1] > 2 {
				t.Errorf("%s: 20 nodes took %d statements, 2 took %d: want one batch", typ, counts[1], counts[0])
			}
		}

		// Every type in one request, and unknown IDs among them.
		all := []string{gid(model.ProductNode, ids[model.ProductNode][3]), gid(model.ProductNode, 999999),
			gid(model.LocationNode, ids[model.LocationNode][1]), gid(model.MovementNode, ids[model.MovementNode][5]),
			gid(model.ReservationNode, ids[model.ReservationNode][0]), gid(model.TransferNode, 888888),
			gid(model.TransferNode, ids[model.TransferNode][0])}
		stmts, resp := e.run(t, query, map[string]any{"ids": all})
		t.Logf("7 nodes of 5 types: %d statements %v", len(stmts), stmts)
		// One batch per type: products, movements, reservations and
		// transfers (each of the last two with its items: two
		// statements); locations are in memory.
		if len(stmts) > 6 {
			t.Errorf("7 nodes of 5 types took %d statements: %v", len(stmts), stmts)
		}
		var got []*nodeJSON
		if err := json.Unmarshal(resp.Data["nodes"], &got); err != nil || len(got) != len(all) {
			t.Fatalf("nodes %s: %v", resp.Data["nodes"], err)
		}
		for i, n := range got {
			if unknown := i == 1 || i == 5; (n == nil) != unknown || n != nil && n.ID != all[i] {
				t.Errorf("nodes[%d] = %+v, want %s", i, n, map[bool]string{true: "null", false: all[i]}[unknown])
			}
		}
		var paths []string
		for _, err := range resp.Errors {
			if err.Extensions["code"] != "NOT_FOUND" {
				t.Errorf("error %+v, want NOT_FOUND", err)
			}
			paths = append(paths, fmt.Sprint(err.Path))
		}
		if slices.Sort(paths); !slices.Equal(paths, []string{"[nodes 1]", "[nodes 5]"}) {
			t.Errorf("errors at %v, want [nodes 1] and [nodes 5]", paths)
		}

		// node of an unknown ID: null, NOT_FOUND at node.
		_, resp = e.run(t, `{ node(id: "`+gid(model.ReservationNode, 777777)+`") { id } }`, nil)
		if string(resp.Data["node"]) != "null" || len(resp.Errors) != 1 || resp.Errors[0].Extensions["code"] != "NOT_FOUND" ||
			fmt.Sprint(resp.Errors[0].Path) != "[node]" {
			t.Errorf("unknown node: data %s errors %+v", resp.Data["node"], resp.Errors)
		}
	})
}

// TestIDInputs: every ID input takes a global ID of its type or, for now,
// the bare database ID; a malformed ID, or one of another type, is
// BAD_USER_INPUT naming the argument or input field.
func TestIDInputs(t *testing.T) {
	gormstoretest.ForEachDriver(t, func(t *testing.T, driver string) {
		e := newCountingEnv(t, driver)
		ids := seedNodes(t, e.svc, 2)
		p, loc := ids[model.ProductNode][0], ids[model.LocationNode][1]
		res := ids[model.ReservationNode][0]

		// The old forms: a string of digits, and a JSON integer.
		for _, form := range []any{fmt.Sprint(p), p, gid(model.ProductNode, p)} {
			_, resp := e.run(t, `mutation($p: ID!, $l: ID) { stockIn(input: {productId: $p, locationId: $l, quantity: 1}) { product { databaseId } level { location { databaseId } } } }`,
				map[string]any{"p": form, "l": loc})
			var got struct {
				Product struct{ DatabaseID int64 }
				Level   struct{ Location struct{ DatabaseID int64 } }
			}
			if resp.data(t, "stockIn", &got); got.Product.DatabaseID != p || got.Level.Location.DatabaseID != loc {
				t.Errorf("stockIn with productId %#v: %+v", form, got)
			}
		}
		var r struct{ Reservation struct{ Status string } }
		_, resp := e.run(t, fmt.Sprintf(`mutation { releaseReservation(id: %d) { reservation { status } } }`, res), nil)
		if resp.data(t, "releaseReservation", &r); r.Reservation.Status != "RELEASED" {
			t.Errorf("releaseReservation by a bare ID: %+v", r)
		}

		for _, c := range []struct {
			name, query, field string
			vars               map[string]any
		}{
			{"malformed argument", `{ product(id: "nope") { id } }`, "id", nil},
			{"malformed variable", `query($id: ID!) { product(id: $id) { id } }`, "id", map[string]any{"id": "UHJvZHVjdDp4"}},
			{"unknown type", `{ stockMovements(productId: "Zm9vOjE=") { edges { cursor } } }`, "productId", nil},
			{"zero", `{ reservation(id: "0") { id } }`, "id", nil},
			{"wrong type argument", `query($id: ID!) { product(id: $id) { id } }`, "id", map[string]any{"id": gid(model.LocationNode, loc)}},
			{"wrong type input field", `mutation($id: ID!) { stockOut(input: {productId: $id, quantity: 1}) { replayed } }`, "productId",
				map[string]any{"id": gid(model.ReservationNode, res)}},
			{"wrong type in a list item", `mutation($p: ID!, $l: ID!) { reserveStock(input: {items: [{productId: $p, locationId: $l, quantity: 1}]}) { replayed } }`,
				"items[0].locationId", map[string]any{"p": gid(model.ProductNode, p), "l": gid(model.ProductNode, p)}},
			{"malformed in a list item", `mutation($p: ID!) { reserveStock(input: {items: [{productId: $p, locationId: "x", quantity: 1}]}) { replayed } }`,
				"items[0].locationId", map[string]any{"p": gid(model.ProductNode, p)}},
			{"malformed in a list", `{ reconcile(productIds: ["1", "x"]) { levelsChecked } }`, "productIds[1]", nil},
			{"wrong type in a list", `query($ids: [ID!]) { reconcile(locationIds: $ids) { levelsChecked } }`, "locationIds[1]",
				map[string]any{"ids": []string{gid(model.LocationNode, loc), gid(model.TransferNode, 1)}}},
			{"wrong type of transfer", `mutation($id: ID!) { shipTransfer(id: $id) { replayed } }`, "id", map[string]any{"id": gid(model.ProductNode, p)}},
			{"node of a bare ID", `{ node(id: "1") { id } }`, "id", nil},
			{"nodes malformed", `{ nodes(ids: ["` + gid(model.ProductNode, p) + `", "%%"]) { id } }`, "ids[1]", nil},
			{"nodes of a bare ID", `{ nodes(ids: ["7"]) { id } }`, "ids[0]", nil},
		} {
			_, resp := e.run(t, c.query, c.vars)
			if len(resp.Errors) != 1 || resp.Errors[0].Extensions["code"] != "BAD_USER_INPUT" || resp.Errors[0].Extensions["field"] != c.field {
				t.Errorf("%s: errors %+v, want one BAD_USER_INPUT with field %s", c.name, resp.Errors, c.field)
			} else if msg := resp.Errors[0].Message; strings.Contains(msg, "strconv") || strings.Contains(msg, "base64") {
				t.Errorf("%s: message %q", c.name, msg)
			}
		}
	})
}

// TestNodeAdmission: node and nodes are admitted as themselves and as the
// queries of the types they read, so a limit on product holds for a
// product read through node.
func TestNodeAdmission(t *testing.T) {
	st := gormstoretest.Open(t, gormstore.SQLite)
	svc := inventorytest.Start(t, st, app.Config{})
	ids := seedNodes(t, svc, 1)
	rec := &recorder{ids: map[string][]int64{}, refuse: map[string]bool{"product": true}}
	e := env{c: client.New(newHandler(svc, graph.Options{Gate: inventory.NewGate(rec)}))}

	var out struct{ Node *nodeJSON }
	errs := e.do(t, `{ node(id: "`+gid(model.ProductNode, ids[model.ProductNode][0])+`") { id } }`, &out)
	if len(errs) != 1 || errs[0].Extensions["code"] != "RATE_LIMITED" || out.Node != nil {
		t.Errorf("node of a product while product is refused: %+v %+v", out, errs)
	}
	if errs := e.do(t, fmt.Sprintf(`{ nodes(ids: [%q, %q, %q]) { id } }`, gid(model.LocationNode, 1),
		gid(model.TransferNode, ids[model.TransferNode][0]), gid(model.LocationNode, 2)), nil); len(errs) > 0 {
		t.Fatal(errs)
	}
	want := []string{"node", "product", "nodes", "locations", "transfer"}
	if !slices.Equal(rec.asked, want) {
		t.Errorf("admitted %v, want %v", rec.asked, want)
	}
}
