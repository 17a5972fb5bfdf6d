package graph_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/shopstack/inventory/graph"
	"github.com/shopstack/inventory/graph/model"
	"github.com/shopstack/inventory/internal/app"
	"github.com/shopstack/inventory/internal/gormstore"
	"github.com/shopstack/inventory/internal/inventory"
	"github.com/shopstack/inventory/internal/testenv/federationtest"
	"github.com/shopstack/inventory/internal/testenv/gormstoretest"
	"github.com/shopstack/inventory/internal/testenv/inventorytest"
)

// postTo sends a GraphQL request to url and decodes the response.
func postTo(t *testing.T, url, query string, vars map[string]any) nodeResponse {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"query": query, "variables": vars})
	resp, err := http.Post(url, "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out nodeResponse
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatalf("decode: %v", err)
	}
	return out
}

const entitiesQuery = `query($r: [_Any!]!) { _entities(representations: $r) {
	__typename ... on Product { id sku available } ... on Location { id code } } }`

// TestEntities: the subgraph's _service gives its SDL with the keys, and
// _entities resolves Products by id or sku and Locations by id, in the
// order asked, null with NOT_FOUND for an unknown one, loading products
// in one batch whatever their number.
func TestEntities(t *testing.T) {
	gormstoretest.ForEachDriver(t, func(t *testing.T, driver string) {
		e := newCountingEnv(t, driver)
		ids := seedNodes(t, e.svc, 20)

		_, resp := e.run(t, `{ _service { sdl } }`, nil)
		var service struct{ SDL string }
		resp.data(t, "_service", &service)
		for _, want := range []string{`@key(fields: "id")`, `@key(fields: "sku")`, `type Location implements Node @key(fields: "id")`} {
			if !strings.Contains(service.SDL, want) {
				t.Errorf("_service.sdl lacks %s", want)
			}
		}

		reps := []map[string]any{
			{"__typename": "Product", "id": gid(model.ProductNode, ids[model.ProductNode][1])},
			{"__typename": "Product", "sku": "node-002"},
			{"__typename": "Location", "id": gid(model.LocationNode, ids[model.LocationNode][1])},
			{"__typename": "Product", "id": gid(model.ProductNode, 999999)},
		}
		_, resp = e.run(t, entitiesQuery, map[string]any{"r": reps})
		var got []*nodeJSON
		if err := json.Unmarshal(resp.Data["_entities"], &got); err != nil || len(got) != 4 {
			t.Fatalf("_entities %s: %v", resp.Data["_entities"], err)
		}
		if got[0] == nil || got[0].ID != reps[0]["id"] || got[1] == nil || got[1].SKU != "NODE-002" ||
			got[2] == nil || got[2].Code != "NODE-SHOP" || got[3] != nil {
			t.Errorf("_entities = %s", resp.Data["_entities"])
		}
		if len(resp.Errors) != 1 || resp.Errors[0].Extensions["code"] != "NOT_FOUND" {
			t.Errorf("errors %+v, want one NOT_FOUND", resp.Errors)
		}

		// Batches: the statements of 20 products are those of 2.
		var counts []int
		for _, n := range []int{2, 20} {
			var reps []map[string]any
			for _, id := range ids[model.ProductNode][:n] {
				reps = append(reps, map[string]any{"__typename": "Product", "id": gid(model.ProductNode, id)})
			}
			stmts, resp := e.run(t, entitiesQuery, map[string]any{"r": reps})
			var got []nodeJSON
			if resp.data(t, "_entities", &got); len(got) != n {
				t.Fatalf("%d entities for %d representations", len(got), n)
			}
			t.Logf("%d products: %d statements %v", n, len(stmts), stmts)
			counts = append(counts, len(stmts))
		}
		if counts[1] > counts[0] || counts[1] > 1 {
			t.Errorf("20 entities took %d statements, 2 took %d: want one batch", counts[1], counts[0])
		}

		// A malformed or wrong-type id is BAD_USER_INPUT.
		_, resp = e.run(t, entitiesQuery, map[string]any{"r": []map[string]any{{"__typename": "Product", "id": gid(model.TransferNode, 1)}}})
		if len(resp.Errors) != 1 || resp.Errors[0].Extensions["code"] != "BAD_USER_INPUT" || resp.Errors[0].Extensions["field"] != "representations" {
			t.Errorf("wrong-type representation: %+v", resp.Errors)
		}
	})
}

// TestEntitiesAdmission: _entities is admitted as itself and as the
// queries its representations read: product, productBySku, locations.
func TestEntitiesAdmission(t *testing.T) {
	st := gormstoretest.Open(t, gormstore.SQLite)
	svc := inventorytest.Start(t, st, app.Config{})
	ids := seedNodes(t, svc, 1)
	rec := &recorder{ids: map[string][]int64{}, refuse: map[string]bool{"productBySku": true}}
	h := newHandler(svc, graph.Options{Gate: inventory.NewGate(rec)})
	srv := httptest.NewServer(h)
	defer srv.Close()
	resp := postTo(t, srv.URL+"/query", entitiesQuery, map[string]any{"r": []map[string]any{
		{"__typename": "Product", "id": gid(model.ProductNode, ids[model.ProductNode][0])}, {"__typename": "Location", "id": "1"}}})
	if len(resp.Errors) > 0 {
		t.Fatal(resp.Errors)
	}
	resp = postTo(t, srv.URL+"/query", entitiesQuery, map[string]any{"r": []map[string]any{{"__typename": "Product", "sku": "NODE-000"}}})
	if len(resp.Errors) != 1 || resp.Errors[0].Extensions["code"] != "RATE_LIMITED" {
		t.Errorf("_entities by sku while productBySku is refused: %+v", resp.Errors)
	}
	want := "[_entities product locations _entities productBySku]"
	if got := strings.Join(strings.Fields(strings.Trim(strings.Join(rec.asked, " "), " ")), " "); "["+got+"]" != want {
		t.Errorf("admitted %v, want %s", rec.asked, want)
	}
}

// TestFederationGateway: the subgraph composes (@apollo/composition) with
// a catalogue subgraph that extends Product by sku with description and
// brand, and a gateway (@apollo/gateway) over both answers queries joined
// from the two, starting from either side.
func TestFederationGateway(t *testing.T) {
	federationtest.Require(t)
	st := gormstoretest.Open(t, gormstore.SQLite)
	svc := inventorytest.Start(t, st, app.Config{})
	ctx := context.Background()
	shop, err := svc.CreateLocation(ctx, inventory.NewLocation{Code: "FED-SHOP", Name: "Shop"})
	if err != nil {
		t.Fatal(err)
	}
	for i, sku := range federationtest.CatalogueSKUs {
		res, err := svc.CreateProduct(ctx, inventory.NewProduct{SKU: sku, Name: sku, InitialStock: int64(10 * (i + 1))})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := svc.StockIn(ctx, inventory.StockChange{ProductID: res.Product.ID, LocationID: shop.ID, Quantity: 3}); err != nil {
			t.Fatal(err)
		}
	}
	inv := httptest.NewServer(newHandler(svc, graph.Options{}))
	defer inv.Close()
	var service struct{ SDL string }
	postTo(t, inv.URL+"/query", `{ _service { sdl } }`, nil).data(t, "_service", &service)

	catalogue := federationtest.StartCatalogue(t)
	supergraph, err := federationtest.Compose(t, service.SDL, inv.URL+"/query", catalogue)
	if err != nil {
		t.Fatal(err)
	}
	gateway := federationtest.StartGateway(t, supergraph)

	// From the catalogue's root field: inventory's _entities by sku.
	var featured []struct {
		SKU, Description, Brand string
		Available               int
		Levels                  []struct {
			Location  struct{ Code string }
			Available int
		}
	}
	postTo(t, gateway, `{ featured { sku description brand available levels { location { code } available } } }`, nil).data(t, "featured", &featured)
	if len(featured) != 2 || featured[0].SKU != "FED-MUG" || featured[0].Brand != "Potter & Sons" || featured[0].Available != 13 ||
		len(featured[0].Levels) != 2 || featured[0].Levels[1].Location.Code != "FED-SHOP" || featured[0].Levels[1].Available != 3 ||
		featured[1].Description != "Loose-leaf breakfast tea, 250 g." || featured[1].Available != 23 {
		t.Errorf("featured through the gateway: %+v", featured)
	}

	// From inventory's root field: the catalogue's fields by sku.
	var product struct {
		ID, Description, Brand string
		Available              int
	}
	postTo(t, gateway, `{ productBySku(sku: "fed-tea") { id available description brand } }`, nil).data(t, "productBySku", &product)
	if product.Available != 23 || product.Brand != "Leaf Co." || !strings.HasPrefix(product.ID, "UHJvZHVjdDo") {
		t.Errorf("productBySku through the gateway: %+v", product)
	}
}
