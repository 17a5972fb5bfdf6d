package graph_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/99designs/gqlgen/client"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/shopstack/inventory/graph"
	"github.com/shopstack/inventory/internal/app"
	"github.com/shopstack/inventory/internal/gormstore"
	"github.com/shopstack/inventory/internal/lock/memlock"
	"github.com/shopstack/inventory/internal/telemetry"
	"github.com/shopstack/inventory/internal/testenv"
	"github.com/shopstack/inventory/internal/testenv/gormstoretest"
	"github.com/shopstack/inventory/internal/testenv/inventorytest"
	"github.com/shopstack/inventory/internal/testenv/telemetrytest"
)

// tracedEnv is an endpoint whose every part reports its spans to exp.
type tracedEnv struct {
	h   http.Handler
	exp *tracetest.InMemoryExporter
}

func newTracedEnv(t *testing.T, driver string) tracedEnv {
	t.Helper()
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	st, err := gormstore.Open(context.Background(), gormstore.Config{Driver: driver, DSN: gormstoretest.DSN(t, driver), TracerProvider: tp})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	svc := inventorytest.Start(t, st, app.Config{Locker: telemetry.Locker(memlock.New(0), "memory", tp, nil),
		TracerProvider: tp, PollInterval: 50 * time.Millisecond, ReapInterval: 50 * time.Millisecond})
	h := newHandler(svc, graph.Options{TracerProvider: tp, Propagator: propagation.TraceContext{}})
	return tracedEnv{h: h, exp: exp}
}

// post sends a GraphQL request as the caller's span 00f067aa0ba902b7 of
// trace id, and returns the response.
func (e tracedEnv) post(t *testing.T, traceID, query string) map[string]any {
	t.Helper()
	return e.postVars(t, traceID, query, nil)
}

// postVars is post with variables.
func (e tracedEnv) postVars(t *testing.T, traceID, query string, vars map[string]any) map[string]any {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"query": query, "variables": vars})
	req := httptest.NewRequest(http.MethodPost, "/query", strings.NewReader(string(body)))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("traceparent", "00-"+traceID+"-00f067aa0ba902b7-01")
	rec := httptest.NewRecorder()
	e.h.ServeHTTP(rec, req)
	var resp map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &resp); err != nil {
		t.Fatalf("decode %s: %v", rec.Body, err)
	}
	return resp
}

// TestSpanTree follows one stock-out from the GraphQL operation through the
// service, the combined batch and the lock to the SQL, as Jaeger shows it.
func TestSpanTree(t *testing.T) {
	gormstoretest.ForEachDriver(t, func(t *testing.T, driver string) {
		e := newTracedEnv(t, driver)
		const setup, sale = "4bf92f3577b34da6a3ce929d0e0e4736", "5bf92f3577b34da6a3ce929d0e0e4736"
		resp := e.post(t, setup, `mutation { createProduct(input: {sku: "T-1", name: "Tee", price: "9.99", initialStock: 10}) { product { id } } }`)
		if resp["errors"] != nil {
			t.Fatalf("createProduct: %v", resp["errors"])
		}
		resp = e.post(t, sale, `mutation Sell { stockOut(input: {productId: 1, quantity: 3, reason: "secret-reason-42"}) { movement { traceId } } }`)
		if resp["errors"] != nil {
			t.Fatalf("stockOut: %v", resp["errors"])
		}
		tr := telemetrytest.TraceOf(telemetrytest.FromStubs(e.exp.GetSpans()), sale)
		t.Logf("trace:\n%s", tr)

		if got := resp["data"].(map[string]any)["stockOut"].(map[string]any)["movement"].(map[string]any)["traceId"]; got != sale {
			t.Errorf("ledger row trace id %v, want the caller's %s", got, sale)
		}
		op := one(t, tr, "mutation Sell")
		if !op.Server || op.ParentID != "00f067aa0ba902b7" {
			t.Errorf("operation span: server %v, parent %q; want a server span continuing the caller's", op.Server, op.ParentID)
		}
		if op.Attrs["graphql.operation.type"] != "mutation" || op.Attrs["graphql.operation.name"] != "Sell" || op.Attrs["graphql.root_fields"] != "stockOut" {
			t.Errorf("operation attributes %v", op.Attrs)
		}
		field := under(t, tr, "Mutation.stockOut", op)
		svc := under(t, tr, "inventory.StockOut", field)
		batch := under(t, tr, "inventory.batch", svc)
		if len(batch.Links) != 0 {
			t.Errorf("batch links %v, want none: its one request is its parent", batch.Links)
		}
		lk := under(t, tr, "lock.acquire", batch)
		if lk.Attrs["lock.backend"] != "memory" || lk.Attrs["lock.key"] != "stock/1/1" || lk.Attrs["lock.outcome"] != "acquired" ||
			lk.Attrs["lock.fencing_token"] == "" || lk.Attrs["lock.wait_ms"] == "" {
			t.Errorf("lock span attributes %v", lk.Attrs)
		}
		txn := under(t, tr, "inventory.transaction", batch)
		if txn.Start.Before(lk.End) {
			t.Error("the transaction started before the lock was acquired")
		}
		var sql []telemetrytest.Span
		for _, s := range tr {
			if s.Attrs["db.query.text"] != "" {
				sql = append(sql, s)
				if !tr.Under(s, txn.SpanID) {
					t.Errorf("SQL span %q outside the transaction span", s.Name)
				}
			}
		}
		if len(sql) == 0 {
			t.Fatal("no SQL spans")
		}
		for _, s := range tr {
			for k, v := range s.Attrs {
				if strings.Contains(v, "secret-reason-42") {
					t.Errorf("span %q attribute %s records a request value: %q", s.Name, k, v)
				}
			}
		}
	})
}

// TestSpanErrors: a client's mistake is recorded on the operation span
// without marking it failed.
func TestSpanErrors(t *testing.T) {
	e := newTracedEnv(t, gormstore.SQLite)
	const id = "6bf92f3577b34da6a3ce929d0e0e4736"
	e.post(t, "7bf92f3577b34da6a3ce929d0e0e4736", `mutation { createProduct(input: {sku: "T-1", name: "Tee", price: "9.99", initialStock: 1}) { product { id } } }`)
	resp := e.post(t, id, `mutation { stockOut(input: {productId: 1, quantity: 5}) { movement { id } } }`)
	errs, _ := resp["errors"].([]any)
	if len(errs) != 1 {
		t.Fatalf("errors %v, want INSUFFICIENT_STOCK", resp["errors"])
	}
	if got := errs[0].(map[string]any)["extensions"].(map[string]any)["traceId"]; got != id {
		t.Errorf("extensions.traceId %v, want %s", got, id)
	}
	tr := telemetrytest.TraceOf(telemetrytest.FromStubs(e.exp.GetSpans()), id)
	op := one(t, tr, "mutation stockOut")
	if op.Attrs["error.type"] != "INSUFFICIENT_STOCK" || op.Error {
		t.Errorf("operation span: error.type %q, status error %v; want INSUFFICIENT_STOCK, not an error status", op.Attrs["error.type"], op.Error)
	}
	if s := one(t, tr, "inventory.StockOut"); s.Attrs["error.type"] != "INSUFFICIENT_STOCK" {
		t.Errorf("service span error.type %q", s.Attrs["error.type"])
	}
}

// TestSubscriptionTraceFromInit: a WebSocket's connection_init payload
// carries the trace its subscriptions join.
func TestSubscriptionTraceFromInit(t *testing.T) {
	e := newTracedEnv(t, gormstore.SQLite)
	const id = "8bf92f3577b34da6a3ce929d0e0e4736"
	c := client.New(e.h)
	sub := c.WebsocketWithPayload(`subscription { lowStockAlerts { product { sku } } }`,
		map[string]any{"traceparent": "00-" + id + "-00f067aa0ba902b7-01"})
	defer sub.Close()
	e.post(t, "9bf92f3577b34da6a3ce929d0e0e4736", `mutation { createProduct(input: {sku: "T-1", name: "Tee", price: "9.99", initialStock: 5, threshold: 3}) { product { id } } }`)
	e.post(t, "abf92f3577b34da6a3ce929d0e0e4736", `mutation { stockOut(input: {productId: 1, quantity: 4}) { movement { id } } }`)
	var out struct {
		LowStockAlerts struct{ Product struct{ SKU string } }
	}
	if err := sub.Next(&out); err != nil {
		t.Fatal(err)
	}
	// The operation span lasts as long as the subscription; its field
	// span has ended.
	tr := telemetrytest.TraceOf(telemetrytest.FromStubs(e.exp.GetSpans()), id)
	f := one(t, tr, "Subscription.lowStockAlerts")
	if f.ParentID == "" {
		t.Errorf("subscription field span has no parent:\n%s", tr)
	}
}

// TestExpiryTraced: the rows the reaper writes carry the trace of the
// transaction that wrote them, as every ledger row does.
func TestExpiryTraced(t *testing.T) {
	e := newTracedEnv(t, gormstore.SQLite)
	e.post(t, "cbf92f3577b34da6a3ce929d0e0e4736", `mutation { createProduct(input: {sku: "T-1", name: "Tee", price: "9.99", initialStock: 5}) { product { id } } }`)
	resp := e.post(t, "dbf92f3577b34da6a3ce929d0e0e4736", `mutation { reserveStock(input: {items: [{productId: 1, quantity: 2}], ttlSeconds: 1}) { reservation { id } } }`)
	if resp["errors"] != nil {
		t.Fatalf("reserveStock: %v", resp["errors"])
	}
	var node map[string]any
	if !testenv.Poll(testenv.Wait, func() bool {
		resp = e.post(t, "ebf92f3577b34da6a3ce929d0e0e4736", `{ stockMovements(productId: 1, first: 1) { edges { node { type traceId } } } }`)
		edges := resp["data"].(map[string]any)["stockMovements"].(map[string]any)["edges"].([]any)
		node = edges[0].(map[string]any)["node"].(map[string]any)
		return node["type"] == "EXPIRE"
	}) {
		t.Fatalf("no EXPIRE row within %v; newest is %v", testenv.Wait, node)
	}
	id, _ := node["traceId"].(string)
	if id == "" {
		t.Fatal("the EXPIRE row has no trace id")
	}
	tr := telemetrytest.TraceOf(telemetrytest.FromStubs(e.exp.GetSpans()), id)
	if len(tr.Find("inventory.ReleaseExpired")) != 1 || len(tr.Find("inventory.transaction")) != 1 {
		t.Errorf("the EXPIRE row's trace:\n%s", tr)
	}
}

func one(t *testing.T, tr telemetrytest.Trace, name string) telemetrytest.Span {
	t.Helper()
	found := tr.Find(name)
	if len(found) != 1 {
		t.Fatalf("%d spans named %q in trace:\n%s", len(found), name, tr)
	}
	return found[0]
}

func under(t *testing.T, tr telemetrytest.Trace, name string, parent telemetrytest.Span) telemetrytest.Span {
	t.Helper()
	s := one(t, tr, name)
	if !tr.Under(s, parent.SpanID) {
		t.Fatalf("span %q is not under %q in trace:\n%s", name, parent.Name, tr)
	}
	return s
}
