package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shopstack/inventory/internal/gormstore"
	"github.com/shopstack/inventory/internal/testenv"
	"github.com/shopstack/inventory/internal/testenv/etcdtest"
	"github.com/shopstack/inventory/internal/testenv/gormstoretest"
	"github.com/shopstack/inventory/internal/testenv/redistest"
)

// Lock backend tests run real servers (run on :0) against real backends:
// redis-server processes and embedded etcd members on loopback ports of
// their own, and a fresh PostgreSQL schema, as replicas would share them.

func redsyncEnv(dsn string, addrs ...string) map[string]string {
	return map[string]string{
		"INVENTORY_DB_DRIVER": gormstore.Postgres, "INVENTORY_DB_DSN": dsn,
		"INVENTORY_LOCK_BACKEND": "redsync", "INVENTORY_REDIS_ADDRS": strings.Join(addrs, ","),
		"INVENTORY_LOCK_TIMEOUT": "5s",
	}
}

func etcdEnv(dsn string, endpoints []string) map[string]string {
	return map[string]string{
		"INVENTORY_DB_DRIVER": gormstore.Postgres, "INVENTORY_DB_DSN": dsn,
		"INVENTORY_LOCK_BACKEND": "etcd", "INVENTORY_ETCD_ENDPOINTS": strings.Join(endpoints, ","),
		"INVENTORY_LOCK_TTL": "2s", "INVENTORY_LOCK_TIMEOUT": "5s",
	}
}

// TestConcurrentStockOutEachBackend is the foundation's flash sale with
// each distributed backend and two replicas sharing PostgreSQL and the lock:
// 500 concurrent stock-outs of one unit against 100 in stock.
func TestConcurrentStockOutEachBackend(t *testing.T) {
	t.Run("redsync", func(t *testing.T) {
		r := redistest.Start(t)
		dsn := gormstoretest.DSN(t, gormstore.Postgres)
		sellHot(t, startServer(t, redsyncEnv(dsn, r.Addr)), startServer(t, redsyncEnv(dsn, r.Addr)))
	})
	t.Run("redlock-3-masters", func(t *testing.T) {
		rs := []*redistest.Server{redistest.Start(t), redistest.Start(t), redistest.Start(t)}
		dsn := gormstoretest.DSN(t, gormstore.Postgres)
		env := redsyncEnv(dsn, rs[0].Addr, rs[1].Addr, rs[2].Addr)
		sellHot(t, startServer(t, env), startServer(t, env))
	})
	t.Run("etcd", func(t *testing.T) {
		c := etcdtest.Start(t, 1)
		dsn := gormstoretest.DSN(t, gormstore.Postgres)
		env := etcdEnv(dsn, c.Endpoints())
		sellHot(t, startServer(t, env), startServer(t, env))
	})
	t.Run("redis-cluster", func(t *testing.T) {
		env := redisClusterEnv(gormstoretest.DSN(t, gormstore.Postgres), redistest.StartCluster(t))
		sellHot(t, startServer(t, env), startServer(t, env))
	})
}

// redisClusterEnv locks through a Redis Cluster, every node a seed.
func redisClusterEnv(dsn string, c *redistest.Cluster) map[string]string {
	env := redsyncEnv(dsn, c.Addrs()...)
	env["INVENTORY_REDIS_MODE"] = "cluster"
	return env
}

// sellHot sends 500 concurrent stockOut(quantity: 1) over HTTP, spread over
// the replicas, against 100 in stock: exactly 100 succeed, the rest are
// INSUFFICIENT_STOCK, and the ledger holds exactly the acknowledged sales.
// A client retries an UNAVAILABLE answer (nothing changed; a lock wait
// that ran out on a busy machine) with the same key, as clients are told
// to: the test judges final outcomes, not how fast they came.
func sellHot(t *testing.T, replicas ...*server) {
	t.Helper()
	id := replicas[0].createProduct(t, "HOT", 100)
	const clients = 500
	codes := newTally()
	var retried atomic.Int64
	var wg sync.WaitGroup
	for i := range clients {
		wg.Go(func() {
			key := fmt.Sprintf("hot-%d", i)
			s := replicas[i%len(replicas)]
			code, message := s.stockOut(id, key)
			for attempt := 1; code == "UNAVAILABLE" && attempt < 100; attempt++ {
				retried.Add(1)
				time.Sleep(20 * time.Millisecond)
				code, message = s.stockOut(id, key)
			}
			codes.add(key)(code, message)
		})
	}
	wg.Wait()
	t.Logf("%d replicas: %v (%d retries of UNAVAILABLE)", len(replicas), codes, retried.Load())
	if c := codes.counts(); c["OK"] != 100 || c["INSUFFICIENT_STOCK"] != 400 || len(c) != 2 {
		t.Errorf("want exactly 100 OK and 400 INSUFFICIENT_STOCK")
	}
	replicas[len(replicas)-1].audit(t, id, 100, codes.acked())
}

// TestRedisKilledAndRestarted kills the only Redis mid-load: stock
// mutations fail fast with a retryable UNAVAILABLE while queries keep
// working and /readyz says why; after a restart (which loses Redis's data,
// fencing counters included) sales resume without STALE_LEASE, and the
// ledger holds exactly the acknowledged sales.
func TestRedisKilledAndRestarted(t *testing.T) {
	r := redistest.Start(t)
	s := startServer(t, redsyncEnv(gormstoretest.DSN(t, gormstore.Postgres), r.Addr))
	const stock = 100_000
	id := s.createProduct(t, "KILL", stock)
	codes := newTally()
	stop := s.sellInBackground(id, "kill", codes)
	testenv.Eventually(t, "sales before the kill", func() bool { return codes.counts()["OK"] >= 50 })
	r.Kill(t)
	before := codes.counts()["UNAVAILABLE"]
	testenv.Eventually(t, "UNAVAILABLE while Redis is down", func() bool { return codes.counts()["UNAVAILABLE"] >= before+20 })
	if code, body := get(t, s.url+"/readyz"); code != http.StatusServiceUnavailable || !strings.Contains(body, `"lock":"unreachable"`) {
		t.Errorf("/readyz with Redis down = %d %s", code, body)
	}
	var q struct{ Product struct{ Stock int } }
	if resp := s.graphql(t, `query($id: ID!) { product(id: $id) { stock } }`, map[string]any{"id": id}, &q); len(resp.Errors) > 0 {
		t.Errorf("a query failed while Redis was down: %+v", resp.Errors)
	}
	r.Restart(t)
	okBefore := codes.counts()["OK"]
	testenv.Eventually(t, "sales after the restart", func() bool { return codes.counts()["OK"] >= okBefore+50 })
	stop()
	codes.wantOKOrUnavailable(t)
	// Sales may resume before /readyz's own check reconnects: the Redis
	// client dials a server that refused it again about once a second.
	var ready string
	if !testenv.Poll(testenv.Wait, func() bool {
		code, body := get(t, s.url+"/readyz")
		ready = fmt.Sprint(code, " ", body)
		return code == http.StatusOK
	}) {
		t.Errorf("/readyz after the restart = %s", ready)
	}
	s.audit(t, id, stock, codes.acked())
}

// TestRedlockOneMasterDown: with three independent masters, losing one
// changes nothing a client can see.
func TestRedlockOneMasterDown(t *testing.T) {
	rs := []*redistest.Server{redistest.Start(t), redistest.Start(t), redistest.Start(t)}
	s := startServer(t, redsyncEnv(gormstoretest.DSN(t, gormstore.Postgres), rs[0].Addr, rs[1].Addr, rs[2].Addr))
	const stock = 100_000
	id := s.createProduct(t, "QUORUM", stock)
	codes := newTally()
	stop := s.sellInBackground(id, "quorum", codes)
	testenv.Eventually(t, "sales before the kill", func() bool { return codes.counts()["OK"] >= 50 })
	rs[1].Kill(t)
	okBefore := codes.counts()["OK"]
	testenv.Eventually(t, "sales with one master down", func() bool { return codes.counts()["OK"] >= okBefore+200 })
	stop()
	t.Logf("outcomes: %v", codes)
	if c := codes.counts(); len(c) != 1 {
		t.Errorf("outcomes %v: want every sale OK with one master of three down", c)
	}
	s.audit(t, id, stock, codes.acked())
}

// TestEtcdMemberLost kills the leader of a three-member etcd cluster under
// load: sales go on, and the ledger holds exactly the acknowledged sales.
func TestEtcdMemberLost(t *testing.T) {
	c := etcdtest.Start(t, 3)
	s := startServer(t, etcdEnv(gormstoretest.DSN(t, gormstore.Postgres), c.Endpoints()))
	const stock = 100_000
	id := s.createProduct(t, "MEMBER", stock)
	codes := newTally()
	stop := s.sellInBackground(id, "member", codes)
	testenv.Eventually(t, "sales before the kill", func() bool { return codes.counts()["OK"] >= 50 })
	c.Kill(t, c.Leader(t))
	okBefore := codes.counts()["OK"]
	testenv.Eventually(t, "sales after losing the leader", func() bool { return codes.counts()["OK"] >= okBefore+200 })
	stop()
	t.Logf("outcomes: %v", codes)
	if c := codes.counts(); len(c) != 1 {
		t.Errorf("outcomes %v: want every sale OK with one member of three down", c)
	}
	s.audit(t, id, stock, codes.acked())
}

// TestUnreachableLockBackend: a lock backend that does not answer fails
// start-up within the lock timeout, with a message naming it.
func TestUnreachableLockBackend(t *testing.T) {
	for backend, env := range map[string]map[string]string{
		"redsync": {"INVENTORY_LOCK_BACKEND": "redsync", "INVENTORY_REDIS_ADDRS": "127.0.0.1:1"},
		"etcd":    {"INVENTORY_LOCK_BACKEND": "etcd", "INVENTORY_ETCD_ENDPOINTS": "127.0.0.1:1"},
	} {
		env["INVENTORY_DB_DSN"] = gormstoretest.DSN(t, gormstore.SQLite)
		env["INVENTORY_LOCK_TIMEOUT"] = "1s"
		err := run(t.Context(), []string{"inventoryd", "-addr", "127.0.0.1:0"}, func(k string) string { return env[k] }, io.Discard, io.Discard)
		if err == nil || !strings.Contains(err.Error(), "lock backend "+backend) || !strings.Contains(err.Error(), "127.0.0.1:1") {
			t.Errorf("%s: run = %v, want a start-up error naming the backend and its address", backend, err)
		}
	}
}

// stockOut sells one unit with an idempotency key and returns "OK" or the
// error's extensions.code, and the error's message.
func (s *server) stockOut(id, key string) (code, message string) {
	body, _ := json.Marshal(map[string]any{
		"query":     `mutation($id: ID!, $key: String) { stockOut(input: {productId: $id, quantity: 1, idempotencyKey: $key}) { movement { sequence } } }`,
		"variables": map[string]any{"id": id, "key": key},
	})
	resp, err := testClient.Post(s.url+"/query", "application/json", bytes.NewReader(body))
	if err != nil {
		return "transport error", err.Error()
	}
	defer resp.Body.Close()
	var r gqlResponse
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		return fmt.Sprintf("undecodable (status %d)", resp.StatusCode), err.Error()
	}
	if len(r.Errors) > 0 {
		e := r.Errors[0]
		if e.Extensions["code"] == "UNAVAILABLE" && e.Extensions["retryable"] != true {
			return "UNAVAILABLE without retryable", e.Message
		}
		return fmt.Sprint(e.Extensions["code"]), e.Message
	}
	return "OK", ""
}

var testClient = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}, Timeout: 30 * time.Second}

// sellInBackground runs 8 clients selling one unit at a time, each with a
// fresh idempotency key, until the returned stop is called.
func (s *server) sellInBackground(id, prefix string, codes *tally) (stop func()) {
	var done atomic.Bool
	var seq atomic.Int64
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for !done.Load() {
				key := fmt.Sprintf("%s-%d", prefix, seq.Add(1))
				codes.add(key)(s.stockOut(id, key))
			}
		})
	}
	return func() {
		done.Store(true)
		wg.Wait()
	}
}

// audit checks the ledger against what clients were told: stock is the
// initial stock less one unit per acknowledged sale, and the OUT rows carry
// exactly the acknowledged idempotency keys, each once.
func (s *server) audit(t *testing.T, id string, initial int, acked map[string]bool) {
	t.Helper()
	seen := map[string]int{}
	after := ""
	for {
		var out struct {
			StockMovements struct {
				Edges []struct {
					Node struct {
						Type           string
						IdempotencyKey *string
					}
				}
				PageInfo struct {
					HasNextPage bool
					EndCursor   string
				}
			}
		}
		resp := s.graphql(t, `query($id: ID!, $after: String) { stockMovements(productId: $id, first: 100, after: $after, order: ASC) {
			edges { node { type idempotencyKey } } pageInfo { hasNextPage endCursor } } }`,
			map[string]any{"id": id, "after": after}, &out)
		if len(resp.Errors) > 0 {
			t.Fatalf("read the ledger: %+v", resp.Errors)
		}
		for _, e := range out.StockMovements.Edges {
			if e.Node.Type == "OUT" && e.Node.IdempotencyKey != nil {
				seen[*e.Node.IdempotencyKey]++
			}
		}
		if !out.StockMovements.PageInfo.HasNextPage {
			break
		}
		after = out.StockMovements.PageInfo.EndCursor
	}
	for key, n := range seen {
		if n != 1 || !acked[key] {
			t.Errorf("ledger has %d OUT rows for %s (acknowledged: %v)", n, key, acked[key])
		}
	}
	for key := range acked {
		if seen[key] == 0 {
			t.Errorf("acknowledged sale %s is not in the ledger", key)
		}
	}
	var p struct{ Product struct{ Stock int } }
	s.graphql(t, `query($id: ID!) { product(id: $id) { stock } }`, map[string]any{"id": id}, &p)
	if p.Product.Stock != initial-len(acked) {
		t.Errorf("stock %d, want %d - %d acknowledged sales", p.Product.Stock, initial, len(acked))
	}
	s.noDrift(t)
}

// noDrift asks reconcile, the oracle of every level: stock must be the sum
// of its ledger and reserved what its active reservations hold.
func (s *server) noDrift(t *testing.T) {
	t.Helper()
	var out struct {
		Reconcile struct {
			LevelsChecked int
			Drifts        []map[string]any
		}
	}
	resp := s.graphql(t, `{ reconcile { levelsChecked drifts { product { id } location { id } stock ledgerStock reserved heldReserved } } }`, nil, &out)
	if len(resp.Errors) > 0 {
		t.Fatalf("reconcile: %+v", resp.Errors)
	}
	if out.Reconcile.LevelsChecked == 0 || len(out.Reconcile.Drifts) > 0 {
		t.Errorf("reconcile checked %d levels; drifts: %v", out.Reconcile.LevelsChecked, out.Reconcile.Drifts)
	}
}

// tally records each request's outcome by idempotency key, and one sample
// message per error code.
type tally struct {
	mu      sync.Mutex
	byCode  map[string]int
	okeys   map[string]bool
	samples map[string]string
	seen    map[[2]string]bool // code and message
	others  map[string]bool    // keys of the outcomes that were not OK
}

func newTally() *tally {
	return &tally{byCode: map[string]int{}, okeys: map[string]bool{}, samples: map[string]string{}, seen: map[[2]string]bool{}, others: map[string]bool{}}
}

// add returns the recorder of key's outcome.
func (t *tally) add(key string) func(code, message string) {
	return func(code, message string) {
		t.mu.Lock()
		defer t.mu.Unlock()
		t.byCode[code]++
		if len(t.seen) < 100 {
			t.seen[[2]string{code, message}] = true
		}
		if code == "OK" {
			t.okeys[key] = true
			return
		}
		t.others[key] = true
		if _, ok := t.samples[code]; !ok {
			t.samples[code] = message
		}
	}
}

// String lists the counts and the sample messages, for logs.
func (t *tally) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return fmt.Sprintf("%v, samples %q", t.byCode, t.samples)
}

// wantOKOrUnavailable logs the outcomes and fails tb if any was neither
// OK nor UNAVAILABLE (which stockOut reports only when retryable).
func (t *tally) wantOKOrUnavailable(tb testing.TB) {
	tb.Helper()
	tb.Logf("outcomes: %v", t)
	for code := range t.counts() {
		if code != "OK" && code != "UNAVAILABLE" {
			tb.Errorf("outcome %s: want only OK or UNAVAILABLE", code)
		}
	}
}

// has reports whether an outcome had code and a message containing part.
func (t *tally) has(code, part string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	for k := range t.seen {
		if k[0] == code && strings.Contains(k[1], part) {
			return true
		}
	}
	return false
}

func (t *tally) counts() map[string]int {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make(map[string]int, len(t.byCode))
	for k, v := range t.byCode {
		out[k] = v
	}
	return out
}

// failed returns the keys whose outcome was not OK.
func (t *tally) failed() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]string, 0, len(t.others))
	for k := range t.others {
		out = append(out, k)
	}
	return out
}

func (t *tally) acked() map[string]bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make(map[string]bool, len(t.okeys))
	for k := range t.okeys {
		out[k] = true
	}
	return out
}
