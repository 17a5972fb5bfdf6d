package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shopstack/inventory/internal/gormstore"
	"github.com/shopstack/inventory/internal/testenv"
	"github.com/shopstack/inventory/internal/testenv/gormstoretest"
	"github.com/shopstack/inventory/internal/testenv/redistest"
)

// writeRules replaces the rules file as an editor would.
func writeRules(t *testing.T, path, rules string) {
	t.Helper()
	if err := os.WriteFile(path+".tmp", []byte(rules), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(path+".tmp", path); err != nil {
		t.Fatal(err)
	}
}

type flowControl struct {
	Source, LoadedAt string
	LastError        *string
	OperationRules   []struct {
		Operation string
		QPS       *float64
	}
	HotspotRule *struct {
		QPS            int
		UnresolvedSkus []string
	}
	Breakers []struct{ Resource, State string }
	Blocked  []struct {
		Resource, Rule string
		Count          int
	}
	HotProducts []struct {
		ProductID         string
		Product           *struct{ Sku string }
		Admitted, Blocked int
	}
}

func (s *server) flowControl(t *testing.T) flowControl {
	t.Helper()
	var out struct{ FlowControl flowControl }
	r := s.graphql(t, `{ flowControl(hotProducts: 3) { source loadedAt lastError operationRules { operation qps }
		hotspotRule { qps unresolvedSkus } breakers { resource state } blocked { resource rule count }
		hotProducts { productId product { sku } admitted blocked } } }`, nil, &out)
	if len(r.Errors) > 0 {
		t.Fatalf("flowControl: %+v", r.Errors)
	}
	return out.FlowControl
}

// TestFlowControlThroughAPI: a 10-per-second rule on stockOut and a
// hot-spot rule, as a client and an SRE see them, then edited live.
func TestFlowControlThroughAPI(t *testing.T) {
	rules := filepath.Join(t.TempDir(), "flow-rules.yaml")
	writeRules(t, rules, `
operations:
  - resource: stockOut
    qps: 10
hotspot:
  qps: 100000
  overrides:
    - sku: HOT-1
      qps: 3
`)
	env := envFor(t, gormstore.SQLite)
	env["INVENTORY_FLOW_RULES"] = rules
	env["INVENTORY_FLOW_CHECK_INTERVAL"] = "50ms"
	s := startServer(t, env)
	if fc := s.flowControl(t); len(fc.HotspotRule.UnresolvedSkus) != 1 {
		t.Fatalf("HOT-1 does not exist yet, but unresolved = %v", fc.HotspotRule.UnresolvedSkus)
	}
	const stock = 10_000
	id := s.createProduct(t, "PLAIN", stock)

	// 8 clients for about 1.5s: about 10 per second pass, every refusal
	// is RATE_LIMITED with a hint, and stock moves only for what passed.
	codes := newTally()
	var wg sync.WaitGroup
	until := time.Now().Add(1500 * time.Millisecond)
	var mu sync.Mutex
	hints := 0
	for c := range 8 {
		wg.Go(func() {
			for i := 0; time.Now().Before(until); i++ {
				key := fmt.Sprintf("flow-%d-%d", c, i)
				code, msg := s.stockOutWithHint(id, key, func(ms float64) {
					mu.Lock()
					defer mu.Unlock()
					if ms > 0 && ms <= 1000 {
						hints++
					}
				})
				codes.add(key)(code, msg)
			}
		})
	}
	wg.Wait()
	n := codes.counts()
	t.Logf("stockOut at 8 clients for 1.5s under 10/s: %v", codes)
	if n["OK"] < 5 || n["OK"] > 35 || n["RATE_LIMITED"] < 50 || len(n) != 2 {
		t.Errorf("outcomes %v: want about 15 OK and the rest RATE_LIMITED", n)
	}
	if hints != n["RATE_LIMITED"] {
		t.Errorf("%d of %d refusals had retryAfterMs in (0, 1000]", hints, n["RATE_LIMITED"])
	}
	s.audit(t, id, stock, codes.acked())

	// The REST route is the same operation: 429 with Retry-After.
	saw429 := false
	for range 30 {
		resp, err := http.Post(s.url+"/stock/out", "application/json", strings.NewReader(`{"productId": "`+id+`", "count": 1}`))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusTooManyRequests {
			if ra, err := strconv.Atoi(resp.Header.Get("Retry-After")); err != nil || ra < 1 {
				t.Errorf("429 with Retry-After %q", resp.Header.Get("Retry-After"))
			}
			saw429 = true
			break
		}
	}
	if !saw429 {
		t.Error("30 quick REST stock-outs under 10/s: no 429")
	}

	// The hot-spot override applies once HOT-1 exists (looked up again),
	// while another product flows.
	hot := s.createProduct(t, "HOT-1", stock)
	testenv.Eventually(t, "HOT-1 resolved", func() bool { return len(s.flowControl(t).HotspotRule.UnresolvedSkus) == 0 })
	loaded := s.flowControl(t).LoadedAt
	writeRules(t, rules, "hotspot:\n  qps: 100000\n  overrides:\n    - sku: HOT-1\n      qps: 3\n")
	testenv.Eventually(t, "the edited rules", func() bool { return s.flowControl(t).LoadedAt != loaded })
	hotCodes, plainCodes := newTally(), newTally()
	for i := range 40 {
		hotCodes.add(fmt.Sprintf("hot-%d", i))(s.stockOut(hot, fmt.Sprintf("hot-%d", i)))
		plainCodes.add(fmt.Sprintf("plain-%d", i))(s.stockOut(id, fmt.Sprintf("plain-%d", i)))
	}
	t.Logf("after the edit, 40 each: HOT-1 %v, PLAIN %v", hotCodes, plainCodes)
	if h := hotCodes.counts(); h["OK"] < 1 || h["OK"] > 12 || h["OK"]+h["RATE_LIMITED"] != 40 {
		t.Errorf("HOT-1 (3/s): %v", h)
	}
	if p := plainCodes.counts(); p["OK"] != 40 {
		t.Errorf("PLAIN with the stockOut limit removed: %v", p)
	}
	s.audit(t, hot, stock, hotCodes.acked())

	fc := s.flowControl(t)
	if len(fc.HotProducts) == 0 || fc.HotProducts[0].Product == nil || fc.HotProducts[0].Admitted+fc.HotProducts[0].Blocked < 40 {
		t.Errorf("hot products = %+v", fc.HotProducts)
	}
	blocked := map[string]int{}
	for _, b := range fc.Blocked {
		blocked[b.Resource+"/"+b.Rule] = b.Count
	}
	if blocked["stockOut/qps"] < n["RATE_LIMITED"] || blocked["stockOut/hotspot"] != hotCodes.counts()["RATE_LIMITED"] {
		t.Errorf("blocked = %v", blocked)
	}
	_, metrics := get(t, s.url+"/metrics")
	for _, want := range []string{`inventory_flow_blocked_total{resource="stockOut",rule="hotspot"}`,
		`inventory_flow_breaker_state{resource="lock"} 0`, "go_goroutines", `inventory_flow_rules_reloads_total{result="applied"} 1`} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}

	// An invalid edit is refused and reported; the rules in force stay.
	writeRules(t, rules, "hotspot:\n  qps: 1000\n  overides: []\n")
	testenv.Eventually(t, "the refusal", func() bool { return s.flowControl(t).LastError != nil })
	if fc := s.flowControl(t); !strings.Contains(*fc.LastError, `unknown field "overides"`) || fc.HotspotRule == nil {
		t.Errorf("after an invalid edit: lastError %v, hotspot %+v", *fc.LastError, fc.HotspotRule)
	}
	if !s.logged("flow rules file refused") {
		t.Error("the refusal was not logged")
	}
}

// stockOutWithHint is stockOut, passing retryAfterMs of a refusal to hint.
func (s *server) stockOutWithHint(id, key string, hint func(ms float64)) (code, message string) {
	body := fmt.Sprintf(`{"query": "mutation { stockOut(input: {productId: \"%s\", quantity: 1, idempotencyKey: \"%s\"}) { movement { sequence } } }"}`, id, key)
	resp, err := testClient.Post(s.url+"/query", "application/json", bytes.NewReader([]byte(body)))
	if err != nil {
		return "transport error", err.Error()
	}
	defer resp.Body.Close()
	var r gqlResponse
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		return "undecodable", err.Error()
	}
	if len(r.Errors) == 0 {
		return "OK", ""
	}
	e := r.Errors[0]
	if e.Extensions["code"] == "RATE_LIMITED" {
		if e.Extensions["retryable"] != true {
			return "RATE_LIMITED without retryable", e.Message
		}
		ms, _ := e.Extensions["retryAfterMs"].(float64)
		hint(ms)
	}
	return fmt.Sprint(e.Extensions["code"]), e.Message
}

// TestLockBreaker: with Redis stopped, the lock breaker opens and stock
// mutations fail fast with UNAVAILABLE; once Redis returns, the breaker's
// health check of the backend closes it (its open time, 10 minutes, would
// not have ended yet) and sales resume.
func TestLockBreaker(t *testing.T) {
	r := redistest.Start(t)
	rules := filepath.Join(t.TempDir(), "flow-rules.yaml")
	writeRules(t, rules, `
breakers:
  - resource: lock
    errorRatio: 0.5
    minRequests: 5
    windowMs: 1000
    openMs: 600000
`)
	env := redsyncEnv(gormstoretest.DSN(t, gormstore.Postgres), r.Addr)
	env["INVENTORY_FLOW_RULES"] = rules
	s := startServer(t, env)
	const stock = 100_000
	id := s.createProduct(t, "BREAK", stock)
	codes := newTally()
	stop := s.sellInBackground(id, "brk", codes)
	defer stop()
	testenv.Eventually(t, "sales before the stop", func() bool { return codes.counts()["OK"] >= 50 })
	r.Kill(t)
	testenv.Eventually(t, "the breaker open", func() bool { return breakerState(t, s, "lock") == "OPEN" })
	testenv.Eventually(t, "a refusal by the open breaker", func() bool { return codes.has("UNAVAILABLE", "paused") })
	if !s.logged("circuit breaker open") {
		t.Error("the breaker's opening was not logged")
	}
	r.Restart(t)
	back := time.Now()
	okBefore := codes.counts()["OK"]
	testenv.Eventually(t, "the breaker closed", func() bool { return breakerState(t, s, "lock") == "CLOSED" })
	t.Logf("breaker closed %v after Redis answered again", time.Since(back).Round(time.Millisecond))
	if !s.logged("answers its health check again") {
		t.Error("the breaker closed, but not by its health check")
	}
	testenv.Eventually(t, "a sale after the restart", func() bool { return codes.counts()["OK"] > okBefore })
	t.Logf("first sale %v after Redis answered again", time.Since(back).Round(time.Millisecond))
	okBefore = codes.counts()["OK"]
	testenv.Eventually(t, "sales after the restart", func() bool { return codes.counts()["OK"] >= okBefore+50 })
	stop()
	codes.wantOKOrUnavailable(t)
	s.audit(t, id, stock, codes.acked())
}

// breakerState asks for the breakers only: it must answer while the
// database is unreachable.
func breakerState(t *testing.T, s *server, resource string) string {
	var out struct{ FlowControl flowControl }
	if r := s.graphql(t, `{ flowControl { breakers { resource state } } }`, nil, &out); len(r.Errors) > 0 {
		t.Fatalf("flowControl: %+v", r.Errors)
	}
	for _, b := range out.FlowControl.Breakers {
		if b.Resource == resource {
			return b.State
		}
	}
	return ""
}

// TestDatabaseBreaker: with the database unreachable (its connections cut
// by a proxy), the database breaker opens and stock mutations fail fast;
// after the network returns, its health check closes it (its open time
// would not have ended yet). Each sale that failed is
// retried with its idempotency key, as a client would: whatever happened
// to it, it is then in the ledger exactly once.
func TestDatabaseBreaker(t *testing.T) {
	u, err := url.Parse(gormstoretest.DSN(t, gormstore.Postgres))
	if err != nil {
		t.Fatal(err)
	}
	p, err := testenv.NewProxy(u.Host)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	u.Host = p.Addr()
	rules := filepath.Join(t.TempDir(), "flow-rules.yaml")
	writeRules(t, rules, `
breakers:
  - resource: database
    errorRatio: 0.5
    minRequests: 5
    windowMs: 1000
    openMs: 600000
`)
	s := startServer(t, map[string]string{"INVENTORY_DB_DRIVER": gormstore.Postgres, "INVENTORY_DB_DSN": u.String(),
		"INVENTORY_FLOW_RULES": rules, "INVENTORY_LOCK_TIMEOUT": "5s"})
	const stock = 100_000
	id := s.createProduct(t, "DB-BREAK", stock)
	codes := newTally()
	stop := s.sellInBackground(id, "dbb", codes)
	defer stop()
	testenv.Eventually(t, "sales before the cut", func() bool { return codes.counts()["OK"] >= 50 })
	p.Cut()
	testenv.Eventually(t, "the breaker open", func() bool { return breakerState(t, s, "database") == "OPEN" })
	testenv.Eventually(t, "a refusal by the open breaker", func() bool { return codes.has("UNAVAILABLE", "the database is failing") })
	p.Restore()
	testenv.Eventually(t, "the breaker closed", func() bool { return breakerState(t, s, "database") == "CLOSED" })
	okBefore := codes.counts()["OK"]
	testenv.Eventually(t, "sales after the restore", func() bool { return codes.counts()["OK"] >= okBefore+50 })
	stop()
	codes.wantOKOrUnavailable(t)
	acked := codes.acked()
	failed := codes.failed()
	retried := newTally()
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := w; i < len(failed); i += 8 {
				retried.add(failed[i])(s.stockOut(id, failed[i]))
			}
		})
	}
	wg.Wait()
	t.Logf("%d failed sales retried with their keys: %v", len(failed), retried)
	if n := retried.counts()["OK"]; n != len(failed) {
		t.Fatalf("retries: %v", retried)
	}
	for k := range retried.acked() {
		acked[k] = true
	}
	s.audit(t, id, stock, acked)
}
