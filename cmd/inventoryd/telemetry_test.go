package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/shopstack/inventory/internal/gormstore"
	"github.com/shopstack/inventory/internal/testenv/etcdtest"
	"github.com/shopstack/inventory/internal/testenv/gormstoretest"
	"github.com/shopstack/inventory/internal/testenv/redistest"
	"github.com/shopstack/inventory/internal/testenv/telemetrytest"
)

// TestTracesReachCollector runs a server with INVENTORY_OTLP_ENDPOINT set
// to a real OTLP receiver and follows one stock-out, as an SRE would in
// Jaeger: operation → service → batch → lock (with the backend's own
// calls) → transaction → SQL.
func TestTracesReachCollector(t *testing.T) {
	for name, backend := range map[string]func(t *testing.T, dsn string) (env map[string]string, isBackendCall func(telemetrytest.Span) bool){
		"redsync": func(t *testing.T, dsn string) (map[string]string, func(telemetrytest.Span) bool) {
			return redsyncEnv(dsn, redistest.Start(t).Addr), func(s telemetrytest.Span) bool { return s.Attrs["db.system"] == "redis" }
		},
		"etcd": func(t *testing.T, dsn string) (map[string]string, func(telemetrytest.Span) bool) {
			return etcdEnv(dsn, etcdtest.Start(t, 1).Endpoints()), func(s telemetrytest.Span) bool { return strings.HasPrefix(s.Name, "etcdserverpb.") }
		},
	} {
		t.Run(name, func(t *testing.T) {
			rcv := telemetrytest.NewReceiver(t)
			env, isBackendCall := backend(t, gormstoretest.DSN(t, gormstore.Postgres))
			env = maps.Clone(env)
			env["INVENTORY_OTLP_ENDPOINT"] = rcv.Addr()
			s := startServer(t, env)
			if !s.logged("tracing") {
				t.Error("start-up did not log whether tracing is on")
			}
			id := s.createProduct(t, "TRACED", 10)
			const traceID = "0af7651916cd43dd8448eb211c80319c"
			status := s.postTraced(t, traceID, fmt.Sprintf(`mutation { stockOut(input: {productId: %q, quantity: 1}) { movement { traceId } } }`, id))
			if status != http.StatusOK {
				t.Fatalf("stockOut: HTTP %d", status)
			}
			s.shutdown(t) // flushes the spans still queued

			tr := telemetrytest.TraceOf(rcv.Spans(), traceID)
			t.Logf("trace:\n%s", tr)
			path := []string{"mutation stockOut", "Mutation.stockOut", "inventory.StockOut", "inventory.batch", "lock.acquire"}
			var parent telemetrytest.Span
			for i, name := range path {
				found := tr.Find(name)
				if len(found) != 1 {
					t.Fatalf("%d spans named %q", len(found), name)
				}
				if i > 0 && !tr.Under(found[0], parent.SpanID) {
					t.Fatalf("%q is not under %q", name, parent.Name)
				}
				parent = found[0]
			}
			lk := parent
			if lk.Attrs["lock.backend"] != name || lk.Attrs["lock.outcome"] != "acquired" {
				t.Errorf("lock span attributes %v", lk.Attrs)
			}
			calls := 0
			for _, sp := range tr {
				if isBackendCall(sp) {
					calls++
					if !tr.Under(sp, lk.SpanID) {
						t.Errorf("backend call %q outside the lock span", sp.Name)
					}
				}
			}
			if calls == 0 {
				t.Errorf("no %s calls under the lock span", name)
			}
			txn := tr.Find("inventory.transaction")
			batches := tr.Find("BATCH")
			if len(txn) != 1 || len(batches) == 0 || !tr.Under(batches[0], txn[0].SpanID) {
				t.Errorf("want the PostgreSQL batches under one transaction span")
			}
			if res := tr.Find("mutation stockOut")[0].Resource; res["service.name"] != "inventory" || res["service.instance.id"] == "" {
				t.Errorf("resource %v", res)
			}
		})
	}
}

// postTraced posts a GraphQL query as a caller in trace traceID.
func (s *server) postTraced(t *testing.T, traceID, query string) int {
	t.Helper()
	body, _ := json.Marshal(map[string]string{"query": query})
	req, _ := http.NewRequest(http.MethodPost, s.url+"/query", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("traceparent", "00-"+traceID+"-b7ad6b7169203331-01")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestMetricsEndpoint reads /metrics as Prometheus does after a few sales,
// a refused one, a low-stock crossing and a reservation.
func TestMetricsEndpoint(t *testing.T) {
	s := startServer(t, envFor(t, gormstore.SQLite))
	id := s.createProduct(t, "M-1", 5) // threshold 2
	for range 3 {
		if code, msg := s.stockOut(id, ""); code != "OK" {
			t.Fatalf("stockOut: %s %s", code, msg)
		}
	}
	s.graphql(t, fmt.Sprintf(`mutation { stockOut(input: {productId: %q, quantity: 9}) { movement { id } } }`, id), nil, nil)
	r := s.graphql(t, fmt.Sprintf(`mutation { reserveStock(input: {items: [{productId: %q, quantity: 1}], ttlSeconds: 600}) { reservation { id } } }`, id), nil, nil)
	if len(r.Errors) > 0 {
		t.Fatalf("reserveStock: %+v", r.Errors)
	}
	// A read model miss, then the same answer from the answer cache, then a
	// read model hit (an answer with movements is never cached).
	for _, q := range []string{`{ product(id: %q) { available } }`, `{ product(id: %q) { available } }`,
		`{ product(id: %q) { available movements(first: 1) { edges { node { sequence } } } } }`} {
		if r := s.graphql(t, fmt.Sprintf(q, id), nil, nil); len(r.Errors) > 0 {
			t.Fatalf("product: %+v", r.Errors)
		}
	}

	status, body := get(t, s.url+"/metrics")
	if status != http.StatusOK {
		t.Fatalf("/metrics: HTTP %d", status)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	for _, c := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"inventory_requests_total", map[string]string{"operation": "stockOut", "transport": "graphql", "code": "OK"}, 3},
		{"inventory_requests_total", map[string]string{"operation": "stockOut", "transport": "graphql", "code": "INSUFFICIENT_STOCK"}, 1},
		{"inventory_requests_total", map[string]string{"operation": "reserveStock", "code": "OK"}, 1},
		{"inventory_request_duration_seconds", map[string]string{"operation": "stockOut"}, 4}, // observations
		{"inventory_movements_total", map[string]string{"type": "OUT"}, 3},
		{"inventory_movements_total", map[string]string{"type": "RESERVE"}, 1},
		{"inventory_low_stock_alerts_total", nil, 1},
		{"inventory_reservations_active", nil, 1},
		{"inventory_subscriptions_active", nil, 0},
	} {
		if got, ok := sample(mfs[c.name], c.labels); !ok || got != c.want {
			t.Errorf("%s%v = %v (found %v), want %v", c.name, c.labels, got, ok, c.want)
		}
	}
	for _, c := range []struct {
		name string
		min  float64
	}{
		{"inventory_read_model_hits_total", 1}, {"inventory_read_model_misses_total", 1}, {"inventory_read_model_products", 1},
		{"inventory_read_model_capacity", 100_000}, {"inventory_read_model_sequence", 4},
		{"inventory_answer_cache_hits_total", 1}, {"inventory_answer_cache_misses_total", 1}, {"inventory_answer_cache_answers", 1},
		{"inventory_answer_cache_bytes", 10},
	} {
		if got, ok := sample(mfs[c.name], nil); !ok || got < c.min {
			t.Errorf("%s = %v (found %v), want at least %v", c.name, got, ok, c.min)
		}
	}
	if got, ok := sample(mfs["inventory_read_model_lag_sequences"], nil); !ok || got != 0 {
		t.Errorf("inventory_read_model_lag_sequences = %v (found %v): behind this replica's own commits", got, ok)
	}
	// The level's lease is kept across its requests while they keep coming
	// (INVENTORY_LEASE_IDLE), so the sales and the reservation take it once,
	// or again where it was let go between them.
	if got, _ := sample(mfs["inventory_lock_acquisitions_total"], map[string]string{"backend": "local", "outcome": "acquired"}); got < 1 || got > 5 {
		t.Errorf("lock acquisitions: %v, want 1..5", got)
	}
	// The batch sizes' count is the committed stock transactions: the
	// initial stock, 3 sales, the refused sale (its transaction judged it
	// and wrote nothing) and the reservation.
	if got, _ := sample(mfs["inventory_stock_transaction_requests"], nil); got != 6 {
		t.Errorf("stock transactions: %v, want 6", got)
	}
	for _, name := range []string{"go_goroutines", "process_resident_memory_bytes", "inventory_flow_breaker_state"} {
		if mfs[name] == nil {
			t.Errorf("/metrics lacks %s", name)
		}
	}
}

// sample returns the value of mf's metric with labels (a counter or gauge
// value, or a histogram's observation count).
func sample(mf *dto.MetricFamily, labels map[string]string) (float64, bool) {
	if mf == nil {
		return 0, false
	}
next:
	for _, m := range mf.GetMetric() {
		have := map[string]string{}
		for _, l := range m.GetLabel() {
			have[l.GetName()] = l.GetValue()
		}
		for k, v := range labels {
			if have[k] != v {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.GetCounter().GetValue(), true
		case m.Gauge != nil:
			return m.GetGauge().GetValue(), true
		case m.Histogram != nil:
			return float64(m.GetHistogram().GetSampleCount()), true
		}
	}
	return 0, false
}
