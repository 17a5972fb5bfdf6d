package graph_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"testing"
	"time"

	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/shopstack/inventory/graph"
	"github.com/shopstack/inventory/internal/app"
	"github.com/shopstack/inventory/internal/inventory"
	"github.com/shopstack/inventory/internal/lock/memlock"
	"github.com/shopstack/inventory/internal/testenv/gormstoretest"
)

// sqlScope is the instrumentation scope of the store's statement spans.
const sqlScope = "github.com/shopstack/inventory/internal/gormstore"

// countingEnv is an endpoint that counts the SQL statements each request
// runs, through the store's tracing: every statement made for a request
// is a span of its trace.
type countingEnv struct {
	tracedEnv
	svc *app.Service
}

func newCountingEnv(t *testing.T, driver string) countingEnv {
	t.Helper()
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	svc := startReplica(t, replica{driver: driver, dsn: gormstoretest.DSN(t, driver), locker: memlock.New(0), tracer: tp})
	// A generous wait: the count must not depend on how fast a busy
	// machine starts the resolvers of one page.
	h := newHandler(svc, graph.Options{TracerProvider: tp, Propagator: propagation.TraceContext{}, LoaderWait: 250 * time.Millisecond})
	return countingEnv{tracedEnv: tracedEnv{h: h, exp: exp}, svc: svc}
}

// statements runs query and returns the SQL statements it ran, and its
// response's data.
func (e countingEnv) statements(t *testing.T, query string) ([]string, map[string]any) {
	t.Helper()
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	traceID := hex.EncodeToString(b)
	resp := e.post(t, traceID, query)
	if resp["errors"] != nil {
		t.Fatalf("query failed: %v", resp["errors"])
	}
	var stmts []string
	for _, s := range e.exp.GetSpans() {
		if s.SpanContext.TraceID().String() == traceID && s.InstrumentationScope.Name == sqlScope {
			stmts = append(stmts, s.Name)
		}
	}
	data, _ := resp["data"].(map[string]any)
	return stmts, data
}

// seedCatalog creates n products, each with two levels and three
// movements.
func seedCatalog(t *testing.T, svc *app.Service, n int) {
	t.Helper()
	ctx := context.Background()
	loc, err := svc.CreateLocation(ctx, inventory.NewLocation{Code: "SHOP", Name: "Shop"})
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		res, err := svc.CreateProduct(ctx, inventory.NewProduct{SKU: fmt.Sprintf("CAT-%03d", i), Name: "Item", InitialStock: 10})
		if err != nil {
			t.Fatal(err)
		}
		id := res.Product.ID
		if _, err := svc.StockIn(ctx, inventory.StockChange{ProductID: id, LocationID: loc.ID, Quantity: 5}); err != nil {
			t.Fatal(err)
		}
		if _, err := svc.StockOut(ctx, inventory.StockChange{ProductID: id, Quantity: 1}); err != nil {
			t.Fatal(err)
		}
	}
}

// storefrontPage is the deepest page a storefront asks for: products with
// their stock per location, their latest movements, and each movement's
// product and location.
const storefrontPage = `{ products(first: %d%s) { edges { node { id sku available lowStock
	levels { location { code } available }
	movements(first: 5) { edges { node { sequence type product { sku } location { code } } } } } } } }`

// TestStatementsPerPage checks that a page's SQL statements do not grow
// with its size: the nested fields of all its products load in batches,
// from the database (STRONG) or from the read model (the first read of a
// page fills it, the next takes only the movements from the database).
func TestStatementsPerPage(t *testing.T) {
	gormstoretest.ForEachDriver(t, func(t *testing.T, driver string) {
		e := newCountingEnv(t, driver)
		seedCatalog(t, e.svc, 100)
		for _, run := range []struct{ name, arg string }{
			{"STRONG", ", consistency: STRONG"}, {"CACHED, cold", ""}, {"CACHED, warm", ""},
		} {
			consistency := run.name
			var counts []int
			for _, n := range []int{10, 100} {
				stmts, data := e.statements(t, fmt.Sprintf(storefrontPage, n, run.arg))
				edges := data["products"].(map[string]any)["edges"].([]any)
				node := edges[n-1].(map[string]any)["node"].(map[string]any)
				if len(edges) != n || len(node["levels"].([]any)) != 2 || len(node["movements"].(map[string]any)["edges"].([]any)) != 3 {
					t.Fatalf("page of %d, %s: %d products, last %+v", n, consistency, len(edges), node)
				}
				t.Logf("page of %d, %s: %d statements %v", n, consistency, len(stmts), stmts)
				if len(stmts) > 6 {
					t.Errorf("page of %d, %s: %d statements, want at most 6: %v", n, consistency, len(stmts), stmts)
				}
				counts = append(counts, len(stmts))
			}
			if counts[1] > counts[0] {
				t.Errorf("%s: a page of 100 took %d statements, one of 10 took %d", consistency, counts[1], counts[0])
			}
			if consistency == "CACHED, warm" && (counts[0] > 1 || counts[1] > 1) {
				t.Errorf("warm pages took %v statements, want only the movements' one", counts)
			}
		}
	})
}
