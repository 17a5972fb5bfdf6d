//go:build faults

package faults

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
	_ "github.com/jackc/pgx/v5/stdlib"
	"github.com/redis/go-redis/v9"

	"github.com/shopstack/inventory/internal/gormstore"
	"github.com/shopstack/inventory/internal/retry"
	"github.com/shopstack/inventory/internal/testenv"
	"github.com/shopstack/inventory/internal/testenv/etcdtest"
	"github.com/shopstack/inventory/internal/testenv/gormstoretest"
	"github.com/shopstack/inventory/internal/testenv/kafkatest"
	"github.com/shopstack/inventory/internal/testenv/natstest"
	"github.com/shopstack/inventory/internal/testenv/redistest"
)

// The suite's shape: two replicas share PostgreSQL and a lock backend;
// eight clients send stock-outs and stock-ins with idempotency keys, and
// holders more clients reserve units of the same products and commit or
// release them, retrying as a client should, for runFor; the fault
// strikes at faultAt and is healed by its own function. Then each
// product's history (stock changes and reservations) must be
// linearizable, and the database must agree: no level drifted from its
// ledger, every acknowledged change is in the ledger exactly once, every
// unknown one at most once, nothing negative.
const (
	runFor   = 8 * time.Second
	faultAt  = 2 * time.Second
	products = 3
	initial  = 40
	clients  = 8
	holders  = 4
)

// setup is a case's deployment: the environment of its replicas, and the
// fault it injects into them (which returns once healed, or when ctx
// ends).
type setup struct {
	env      map[string]string
	replicas int
	// timeout is the clients' HTTP timeout; 0 means 5s.
	timeout time.Duration
	// retryFor is how long a client retries one request before it gives
	// up, its outcome unknown; 0 means 20s.
	retryFor time.Duration
	// runFor, if set, is the case's own run time (default runFor).
	runFor time.Duration
	// env2, if set, is the second replica's environment.
	env2 map[string]string
	// dsn, if set, is the database the checks read, when the replicas
	// do not use the base environment's.
	dsn   string
	fault func(ctx context.Context, t *testing.T, rs []*replica)
	// audit, if set, checks more once the run's own checks are done.
	audit func(t *testing.T, dsn string, rs []*replica)
}

func pgEnv(t *testing.T) (map[string]string, string) {
	dsn := gormstoretest.DSN(t, gormstore.Postgres)
	return map[string]string{"INVENTORY_DB_DRIVER": gormstore.Postgres, "INVENTORY_DB_DSN": dsn, "INVENTORY_LOCK_TIMEOUT": "5s"}, dsn
}

func redsync(env map[string]string, addrs ...string) map[string]string {
	env = maps.Clone(env)
	env["INVENTORY_LOCK_BACKEND"], env["INVENTORY_REDIS_ADDRS"], env["INVENTORY_LOCK_TTL"] = "redsync", strings.Join(addrs, ","), "2s"
	return env
}

func TestFaults(t *testing.T) {
	cases := []struct {
		name  string
		setup func(t *testing.T, base map[string]string) setup
	}{
		{"none", func(t *testing.T, base map[string]string) setup {
			return setup{env: redsync(base, redistest.Start(t).Addr), replicas: 2}
		}},
		{"redis killed and restarted", func(t *testing.T, base map[string]string) setup {
			r := redistest.Start(t)
			return setup{env: redsync(base, r.Addr), replicas: 2, fault: func(ctx context.Context, t *testing.T, _ []*replica) {
				r.Kill(t)
				retry.Sleep(ctx, 2*time.Second)
				r.Restart(t)
			}}
		}},
		{"one of three Redlock masters down", func(t *testing.T, base map[string]string) setup {
			rs := []*redistest.Server{redistest.Start(t), redistest.Start(t), redistest.Start(t)}
			return setup{env: redsync(base, rs[0].Addr, rs[1].Addr, rs[2].Addr), replicas: 2, fault: func(ctx context.Context, t *testing.T, _ []*replica) {
				rs[1].Kill(t)
			}}
		}},
		{"lock holder paused past its TTL", func(t *testing.T, base map[string]string) setup {
			return setup{env: redsync(base, redistest.Start(t).Addr), replicas: 2, timeout: 1500 * time.Millisecond,
				fault: func(ctx context.Context, t *testing.T, rs []*replica) {
					rs[0].pause(5 * time.Second) // the TTL is 2s
				}}
		}},
		{"replica killed with SIGKILL mid-batch", func(t *testing.T, base map[string]string) setup {
			return setup{env: redsync(base, redistest.Start(t).Addr), replicas: 2, fault: func(ctx context.Context, t *testing.T, rs []*replica) {
				rs[0].kill()
				retry.Sleep(ctx, time.Second)
				rs[0].start()
			}}
		}},
		{"etcd member lost of three", func(t *testing.T, base map[string]string) setup {
			c := etcdtest.Start(t, 3)
			env := maps.Clone(base)
			env["INVENTORY_LOCK_BACKEND"], env["INVENTORY_ETCD_ENDPOINTS"], env["INVENTORY_LOCK_TTL"] = "etcd", strings.Join(c.Endpoints(), ","), "2s"
			return setup{env: env, replicas: 2, fault: func(ctx context.Context, t *testing.T, _ []*replica) {
				c.Kill(t, c.Leader(t))
			}}
		}},
		{"database connections reset mid-transaction (toxiproxy)", func(t *testing.T, base map[string]string) setup {
			p := newDBProxy(t, base["INVENTORY_DB_DSN"])
			env := redsync(base, redistest.Start(t).Addr)
			env["INVENTORY_DB_DSN"] = p.DSN
			return setup{env: env, replicas: 2, fault: func(ctx context.Context, t *testing.T, _ []*replica) {
				for range 2 {
					// Every connection is reset as soon as data flows: in the
					// middle of reads, writes and commits.
					p.toxics(ctx, t, 500*time.Millisecond, `{"name": "reset", "type": "reset_peer", "stream": "upstream", "attributes": {"timeout": 0}}`)
					retry.Sleep(ctx, 500*time.Millisecond)
				}
				// Then a slow database: 200ms more on every answer.
				p.toxics(ctx, t, time.Second, `{"name": "slow", "type": "latency", "stream": "downstream", "attributes": {"latency": 200, "jitter": 50}}`)
			}}
		}},
		{"replica with a skewed clock", func(t *testing.T, base map[string]string) setup {
			// One replica's clock runs 3 minutes ahead: were it trusted,
			// that replica would expire the other's 30-second
			// reservations as soon as it saw them, and keep its own for
			// 3 minutes too long.
			env := redsync(base, redistest.Start(t).Addr)
			skewed := maps.Clone(env)
			skewed["INVENTORY_CLOCK_SKEW"] = "3m"
			skewed["INVENTORY_REAP_INTERVAL"] = "100ms"
			env["INVENTORY_REAP_INTERVAL"] = "100ms"
			return setup{env: env, env2: skewed, replicas: 2}
		}},
		{"event broker killed and restarted", func(t *testing.T, base map[string]string) setup {
			// Both replicas publish events to a nats-server of the
			// test's own, which dies (SIGKILL) and comes back on its
			// store while sales go on: every committed change must
			// reach the stream once, in order.
			n := natstest.Start(t)
			env := redsync(base, redistest.Start(t).Addr)
			env["INVENTORY_BROKER"], env["INVENTORY_NATS_URL"] = "nats", n.URL
			return setup{env: env, replicas: 2,
				fault: func(ctx context.Context, t *testing.T, _ []*replica) {
					n.Kill(t)
					retry.Sleep(ctx, 2*time.Second)
					n.Restart(t)
				},
				audit: func(t *testing.T, dsn string, _ []*replica) { auditEvents(t, dsn, natsStream(n.URL)) }}
		}},
		{"kafka cluster stopped and restarted", func(t *testing.T, base map[string]string) setup {
			// The same with Kafka: both replicas publish to a three-broker
			// cluster of the test's own (kfake, franz-go's Kafka protocol
			// implementation, as a process: no Kafka broker can be
			// installed here), which stops (every broker at once, with
			// transactions open) and comes back on its store 2 s later
			// while sales go on. The topic, read read_committed, must
			// hold every committed change once, in order per partition
			// (per product). Not SIGKILL: killed mid-commit, kfake breaks
			// a transaction's atomicity (see kafkatest.Process.Stop).
			k := kafkatest.StartProcess(t)
			env := redsync(base, redistest.Start(t).Addr)
			env["INVENTORY_BROKER"], env["INVENTORY_KAFKA_BROKERS"] = "kafka", strings.Join(k.Addrs, ",")
			return setup{env: env, replicas: 2,
				fault: func(ctx context.Context, t *testing.T, _ []*replica) {
					k.Stop(t)
					retry.Sleep(ctx, 2*time.Second)
					k.Restart(t)
				},
				audit: func(t *testing.T, dsn string, _ []*replica) { auditEvents(t, dsn, kafkaStream(k.Addrs)) }}
		}},
		{"redis cluster master killed under load, replica promoted", func(t *testing.T, base map[string]string) setup {
			// The replicas lock on a Redis Cluster of three masters with a
			// replica each. The master holding the most of the products'
			// fencing counters (and their leases: same slot) is SIGKILLed;
			// its replica takes over a couple of node timeouts later,
			// with whatever had replicated (asynchronously): a lease can
			// be lost and granted again, a counter can go back, and then
			// the database refuses the stale token and the service
			// advances the counter. Sales of that product must resume.
			c := redistest.StartCluster(t)
			env := redsync(base, c.Addrs()...)
			env["INVENTORY_REDIS_MODE"] = "cluster"
			var killed time.Time
			var product int64
			// Long enough after the kill for a failover on a loaded
			// machine to show as a stall, not as a run without sales.
			return setup{env: env, replicas: 2, runFor: 14 * time.Second,
				fault: func(ctx context.Context, t *testing.T, _ []*replica) {
					key, pid := busiestFenceMaster(t, c)
					old := c.KillMasterOf(t, key)
					killed, product = time.Now(), pid
					m := c.WaitFailover(t, key, old)
					t.Logf("killed %s, the master of %s; %s took over %v later",
						old.Addr, key, m.Addr, time.Since(killed).Round(time.Millisecond))
				},
				audit: func(t *testing.T, dsn string, _ []*replica) { auditResumed(t, dsn, product, killed) }}
		}},
		{"client timeouts and retries", func(t *testing.T, base map[string]string) setup {
			// Clients give up after 150ms: some outcomes stay unknown.
			return setup{env: redsync(base, redistest.Start(t).Addr), replicas: 2, timeout: 20 * time.Millisecond, retryFor: 150 * time.Millisecond}
		}},
		{"postgres killed with SIGKILL and restarted under load", postgresKilled},
		{"one replica partitioned from the database", oneReplicaPartitioned},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			base, dsn := pgEnv(t)
			s := c.setup(t, base)
			runCase(t, s, cmp.Or(s.dsn, dsn))
		})
	}
}

// runCase deploys s, runs the workload with its fault, and checks.
func runCase(t *testing.T, s setup, dsn string) {
	rs := make([]*replica, s.replicas)
	for i := range rs {
		env := s.env
		if i == 1 && s.env2 != nil {
			env = s.env2
		}
		rs[i] = startReplica(t, env)
	}
	timeout := s.timeout
	if timeout == 0 {
		timeout = 5 * time.Second
	}
	admin := &client{t: t, replicas: rs[:1], http: &http.Client{Timeout: 10 * time.Second}, retryFor: 30 * time.Second}
	ids := createProducts(t, admin, "F", products, initial)
	dest := createDestination(t, admin)
	// The first product takes backorders: its sales may go that far
	// below the shelf, and no further. The second is untracked: nothing
	// of it is refused for want of stock, and it takes no stock lock.
	var updated map[string]any
	for _, change := range []string{"backorderLimit: 5", "tracked: false"} {
		id := ids[0]
		if change == "tracked: false" {
			id = ids[1]
		}
		if code, err := admin.do(`mutation($id: ID!) { updateProduct(input: {id: $id, `+change+`}) { product { id } } }`,
			map[string]any{"id": id}, &updated); code != "OK" || err != nil {
			t.Fatalf("%s: %s %v", change, code, err)
		}
	}

	retryFor := s.retryFor
	if retryFor == 0 {
		retryFor = 20 * time.Second
	}
	h := NewHistory()
	h.SetBackorderLimit(ids[0], 5)
	h.SetBackorderLimit(ids[1], Untracked)
	kit := newBundles(t, admin, h)
	cs := make([]*client, clients)
	for i := range cs {
		cs[i] = &client{t: t, id: i, replicas: rs, http: &http.Client{Timeout: timeout}, retryFor: retryFor}
	}
	ctx, cancel := context.WithTimeout(context.Background(), cmp.Or(s.runFor, runFor))
	defer cancel()
	var faultDone sync.WaitGroup
	if s.fault != nil {
		faultDone.Go(func() {
			if retry.Sleep(ctx, faultAt) {
				s.fault(ctx, t, rs)
			}
		})
	}
	held := &holds{outcomes: map[string]int{}}
	var holdWG sync.WaitGroup
	for i := range holders {
		c := &client{t: t, id: clients + 1 + i, replicas: rs, http: &http.Client{Timeout: timeout}, retryFor: retryFor}
		holdWG.Go(func() { c.reserveLoop(ctx, h, ids, 30*time.Second, held) })
	}
	warehouse := &sync.Map{} // the keys of the moves and transfer steps acknowledged
	mover := &client{t: t, id: clients + 1 + holders, replicas: rs, http: &http.Client{Timeout: timeout}, retryFor: retryFor}
	shipper := &client{t: t, id: clients + 2 + holders, replicas: rs, http: &http.Client{Timeout: timeout}, retryFor: retryFor}
	holdWG.Go(func() { mover.moveLoop(ctx, h, ids, warehouse) })
	holdWG.Go(func() { shipper.transferLoop(ctx, h, ids, dest, warehouse) })
	holdWG.Go(func() { kit.run(ctx, t, h, rs, timeout, retryFor) })
	acked := workload(ctx, h, cs, ids)
	holdWG.Wait()
	steps := map[string]int{}
	warehouse.Range(func(k, v any) bool {
		acked.Store(k, v)
		kind, _, transfer := strings.Cut(k.(string), ":")
		if !transfer {
			kind = "move"
		}
		steps[kind]++
		return true
	})
	t.Logf("warehouse steps acknowledged: %d moves, %d shipped, %d received, %d cancelled",
		steps["move"], steps["ship"], steps["receive"], steps["cancel"])
	kit.acked.Range(func(k, v any) bool { acked.Store(k, v); return true })
	t.Logf("bundle %d sales: %s", kit.id, kit.sales())
	faultDone.Wait()
	checkHolds(t, held, s.timeout != 0)

	// Reads after the dust settles: each product's final units, at both
	// locations and in transit, and the bundle's components'.
	reader := &client{t: t, id: clients, replicas: rs, http: &http.Client{Timeout: 10 * time.Second}, retryFor: 30 * time.Second}
	init := maps.Clone(kit.initial)
	for _, id := range ids {
		init[id] = initial
	}
	for id := range init {
		ret := h.Call(reader.id, id, Input{Kind: OpRead}, "")
		ret(readUnits(t, reader, id, dest))
	}

	applied, dropped, err := h.ResolveUnknown(func(stockKeys, resKeys []string) (Settled, error) { return settled(dsn, stockKeys, resKeys) })
	if err != nil {
		t.Fatal(err)
	}
	if applied+dropped > 0 {
		rows, err := ledgerRows(dsn, h.Keys())
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("unknown outcomes settled by the database: %d took effect, %d never did; %d of them bounded by a later change of their level",
			applied, dropped, h.Bound(rows))
	}
	total, unknown, linearizable := dropped, applied+dropped, true
	for _, r := range h.Check(init, time.Minute) {
		total, unknown = total+r.Ops, unknown+r.Unknown
		if r.Linearized != "Ok" {
			linearizable = false
			explain(t, dsn, h.Ops(r.Product))
			t.Errorf("product %d (components %v): %d operations (%d unknown): linearizability %s", r.Product, r.Components, r.Ops, r.Unknown, r.Linearized)
		}
		if r.Product == kit.id {
			kit.checked = r
		}
	}
	if kit.checked.Ops == 0 {
		t.Errorf("bundle %d: no history checked", kit.id)
	}
	n := 0
	acked.Range(func(any, any) bool { n++; return true })
	var retries int64
	for _, c := range cs {
		retries += c.retries.Load()
	}
	lost, dup, negative := checkLedger(t, dsn, acked)
	drift := reconcile(t, admin)
	kit.audit(t, dsn)
	if s.audit != nil {
		s.audit(t, dsn, rs)
	}
	t.Logf("RESULT | %s | %d | %d | %d | %d | %v | %d | %d | %d | %d | bundles=%s, %d ops with its components %s |",
		strings.TrimPrefix(t.Name(), "TestFaults/"), total, n, retries, unknown, linearizable, negative, lost, dup, drift,
		kit.sales(), kit.checked.Ops, kit.checked.Linearized)
}

// checkLedger compares the ledger with what clients were told: every
// acknowledged key once, no key twice, no level negative.
func checkLedger(t *testing.T, dsn string, acked *sync.Map) (lost, dup, negative int) {
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query("SELECT idempotency_key, count(*) FROM stock_movements WHERE idempotency_key IS NOT NULL GROUP BY 1")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	seen := map[string]int{}
	for rows.Next() {
		var k string
		var c int
		if err := rows.Scan(&k, &c); err != nil {
			t.Fatal(err)
		}
		seen[k] = c
		if c > 1 {
			dup++
			t.Errorf("key %s is in the ledger %d times", k, c)
		}
	}
	acked.Range(func(k, _ any) bool {
		if seen[k.(string)] == 0 {
			lost++
			t.Errorf("acknowledged change %s is not in the ledger", k)
		}
		return true
	})
	// Oversold means beyond the level's backorder limit; an untracked
	// product's level has none (NULL), and is never oversold.
	if err := db.QueryRow(`SELECT count(*) FROM stock_levels
		WHERE reserved < 0 OR damaged < 0 OR incoming < 0
		OR stock + backorder_limit < reserved + damaged + quality_control + safety_stock`).Scan(&negative); err != nil {
		t.Fatal(err)
	}
	if negative > 0 {
		t.Errorf("%d levels are negative or over-reserved", negative)
	}
	return lost, dup, negative
}

// reconcile asks the service whether any level drifted from its history.
func reconcile(t *testing.T, c *client) int {
	var out struct {
		Reconcile struct {
			LevelsChecked, TransferItemsChecked int
			Drifts, TransferDrifts              []json.RawMessage
		}
	}
	if code, err := c.do(`{ reconcile { levelsChecked drifts { stock ledgerStock reserved heldReserved states { damaged incoming } ledgerStates { damaged incoming } }
		transferItemsChecked transferDrifts { transfer { id } inTransit ledgerInTransit ledgerImbalance } } }`, nil, &out); code != "OK" || err != nil {
		t.Fatalf("reconcile: %s %v", code, err)
	}
	if len(out.Reconcile.Drifts) > 0 {
		t.Errorf("drift: %s", out.Reconcile.Drifts)
	}
	if len(out.Reconcile.TransferDrifts) > 0 {
		t.Errorf("transfer drift: %s", out.Reconcile.TransferDrifts)
	}
	if out.Reconcile.TransferItemsChecked == 0 {
		t.Errorf("no transfer was made")
	}
	return len(out.Reconcile.Drifts) + len(out.Reconcile.TransferDrifts)
}

// explain compares each acknowledged change of a non-linearizable
// history with its ledger row.
func explain(t *testing.T, dsn string, ops []porcupine.Operation) {
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	shown := 0
	for _, op := range ops {
		key, _ := op.Metadata.(string)
		in, out := op.Input.(Input), op.Output.(Output)
		if key == "" {
			continue
		}
		var seq, after int64
		err := db.QueryRow("SELECT seq, quantity_after FROM stock_movements WHERE idempotency_key = $1", key).Scan(&seq, &after)
		switch {
		case out.Kind == OK && (err != nil || (in.Kind != OpReserve && in.Kind != OpCartItem && after != out.After)):
			t.Logf("%s %v: told after=%d, ledger seq %d after %d (%v)", key, op.Input, out.After, seq, after, err)
			shown++
		case out.Kind == Insufficient && err == nil:
			t.Logf("%s %v: told insufficient, but the ledger has it: seq %d after %d", key, op.Input, seq, after)
			shown++
		}
		if shown > 20 {
			return
		}
	}
}

// createProducts creates n products with SKUs prefix-0…, each with stock
// units, and returns their IDs.
func createProducts(t *testing.T, admin *client, prefix string, n int, stock int64) []int64 {
	ids := make([]int64, n)
	for i := range ids {
		var out struct {
			CreateProduct struct{ Product struct{ DatabaseID int64 } }
		}
		q := fmt.Sprintf(`mutation { createProduct(input: {sku: "%s-%d", name: "Fault", price: "1.00", initialStock: %d}) { product { databaseId } } }`, prefix, i, stock)
		if code, err := admin.do(q, nil, &out); code != "OK" || err != nil || out.CreateProduct.Product.DatabaseID == 0 {
			t.Fatalf("createProduct: %s %v", code, err)
		}
		ids[i] = out.CreateProduct.Product.DatabaseID
	}
	return ids
}

// checkHolds checks the reservation workload's outcomes: a hold may be
// refused for want of stock, but every reservation made was committed or
// released as asked (none expired: their TTL outlasts the run). What they
// did to the stock is checked with the stock changes, by the model.
// Where clients are cut off (cutOff), a request's answer may be lost
// however fast the service is, so the holders need only have run: a
// reservation made but not heard of is unknown, and the model settles it.
func checkHolds(t *testing.T, h *holds, cutOff bool) {
	t.Logf("reservation outcomes: %v", h.outcomes)
	for what, n := range h.outcomes {
		if !strings.HasSuffix(what, " OK") && !strings.HasSuffix(what, " unknown") && what != "reserve INSUFFICIENT_STOCK" && what != "cart INSUFFICIENT_STOCK" {
			t.Errorf("%d × %s", n, what)
		}
	}
	made := func(kind string) bool { return h.outcomes[kind+" OK"] > 0 || cutOff && h.outcomes[kind+" unknown"] > 0 }
	if !made("reserve") || !made("cart") {
		t.Errorf("no reservation of one product, or none of two, was made")
	}
}

// auditEvents waits until the broker holds every sequence of the ledger,
// then checks it holds each once and in order (per ordering unit: the
// stream, or a Kafka partition).
func auditEvents(t *testing.T, dsn string, read eventReader) {
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var ledger []int64
	rows, err := db.Query("SELECT seq FROM stock_movements ORDER BY seq")
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var seq int64
		if err := rows.Scan(&seq); err != nil {
			t.Fatal(err)
		}
		ledger = append(ledger, seq)
	}
	rows.Close()
	var stream []event
	testenv.Poll(time.Minute, func() bool {
		stream = read(t, len(ledger))
		return len(stream) >= len(ledger)
	})
	missing, duplicated, misordered := 0, 0, 0
	seen := map[int64]int{}
	last := map[int32]int64{}
	for _, e := range stream {
		seen[e.seq]++
		if seen[e.seq] == 2 {
			duplicated++
			if duplicated <= 5 {
				t.Logf("event %d (order %d) twice", e.seq, e.order)
			}
		}
		if e.seq <= last[e.order] && seen[e.seq] == 1 {
			misordered++
		}
		last[e.order] = e.seq
	}
	for _, seq := range ledger {
		if seen[seq] == 0 {
			missing++
		}
	}
	t.Logf("EVENTS | %s | ledger %d | published %d | missing %d | duplicated %d | out of order %d |",
		strings.TrimPrefix(t.Name(), "TestFaults/"), len(ledger), len(stream), missing, duplicated, misordered)
	if missing+duplicated+misordered > 0 {
		t.Errorf("events: %d missing, %d duplicated, %d out of order", missing, duplicated, misordered)
	}
}

// settled reads what the database says of the requests whose outcome no
// client learned: the stock each stock change the ledger holds left, and
// each reservation's status (its key with or without the service's
// prefix).
func settled(dsn string, stockKeys, resKeys []string) (Settled, error) {
	out := Settled{After: map[string]int64{}, Status: map[string]string{}}
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		return out, err
	}
	defer db.Close()
	read := func(query string, keys []string, put func(rows *sql.Rows) error) error {
		rows, err := db.Query(query, keys)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			if err := put(rows); err != nil {
				return err
			}
		}
		return rows.Err()
	}
	err = read("SELECT idempotency_key, quantity_after FROM stock_movements WHERE idempotency_key = ANY($1)", stockKeys,
		func(rows *sql.Rows) error {
			var k string
			var q int64
			err := rows.Scan(&k, &q)
			out.After[k] = q
			return err
		})
	if err != nil {
		return out, err
	}
	both := slices.Clone(resKeys)
	for _, k := range resKeys {
		both = append(both, reserveKeyPrefix+k)
	}
	err = read("SELECT idempotency_key, status FROM reservations WHERE idempotency_key = ANY($1)", both,
		func(rows *sql.Rows) error {
			var k, status string
			err := rows.Scan(&k, &status)
			out.Status[strings.TrimPrefix(k, reserveKeyPrefix)] = status
			return err
		})
	return out, err
}

// ledgerRows reads where the changes of the given idempotency keys are in
// the ledger.
func ledgerRows(dsn string, keys []string) (map[string]LedgerRow, error) {
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	rows, err := db.Query("SELECT idempotency_key, seq, product_id, location_id FROM stock_movements WHERE idempotency_key = ANY($1)", keys)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]LedgerRow{}
	for rows.Next() {
		var k string
		var r LedgerRow
		if err := rows.Scan(&k, &r.Seq, &r.Product, &r.Location); err != nil {
			return nil, err
		}
		out[k] = r
	}
	return out, rows.Err()
}

// busiestFenceMaster finds the cluster master holding the most of the
// products' fencing counters and returns one of its counters' keys and the
// product it fences.
func busiestFenceMaster(t *testing.T, c *redistest.Cluster) (key string, product int64) {
	rdb := redis.NewClusterClient(&redis.ClusterOptions{Addrs: c.Addrs()})
	defer rdb.Close()
	ctx := context.Background()
	var mu sync.Mutex
	byMaster := map[string][]string{}
	err := rdb.ForEachMaster(ctx, func(ctx context.Context, m *redis.Client) error {
		keys, err := m.Keys(ctx, "inventory:fence:{stock/*").Result()
		mu.Lock()
		defer mu.Unlock()
		byMaster[m.Options().Addr] = keys
		return err
	})
	if err != nil {
		t.Fatalf("find the products' fencing counters: %v", err)
	}
	for _, keys := range byMaster {
		if len(keys) > 0 && (key == "" || len(keys) > len(byMaster[c.MasterOf(t, key).Addr])) {
			key = keys[0]
		}
	}
	if key == "" {
		t.Fatal("no product's fencing counter in the cluster")
	}
	var loc int64
	if _, err := fmt.Sscanf(key, "inventory:fence:{stock/%d/%d}", &product, &loc); err != nil {
		t.Fatalf("fencing counter %q: %v", key, err)
	}
	return key, product
}

// resumeWithin bounds how long a product's stock changes may stall after
// a fault: after its Redis master is killed, the cluster's failover (about
// two node timeouts, 2-3 s here), the lease lost with it (a TTL, 2 s, at
// worst) and the clients' backoff; after the database is killed or
// partitioned, its 2 or 4 s away and a new connection; with room for a
// loaded machine. It tells a service that recovers on its own from one
// that waits for something else (a counter climbing back, a restart); the
// RESUMED line reports the stall.
const resumeWithin = 10 * time.Second

// auditResumed checks that the changes of product went on after the fault
// struck at killed: none of the gaps between its ledger rows from then to
// the last row is longer than resumeWithin (the workload's stock-ins write
// a row every few milliseconds while the lock and the database work).
func auditResumed(t *testing.T, dsn string, product int64, killed time.Time) {
	if product == 0 {
		t.Fatal("the fault did not strike")
	}
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query("SELECT created_at FROM stock_movements WHERE product_id = $1 AND created_at > $2 ORDER BY created_at",
		product, killed)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	prev, n := killed, 0
	var stall time.Duration
	var stallEnd time.Time
	for rows.Next() {
		var at time.Time
		if err := rows.Scan(&at); err != nil {
			t.Fatal(err)
		}
		if gap := at.Sub(prev); gap > stall {
			stall, stallEnd = gap, at
		}
		prev, n = at, n+1
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if n == 0 {
		t.Fatalf("no change of product %d committed after the fault", product)
	}
	t.Logf("RESUMED | %s | product %d | %d changes after the fault | longest stall %v, ended %v after the fault |",
		strings.TrimPrefix(t.Name(), "TestFaults/"), product, n, stall.Round(time.Millisecond), stallEnd.Sub(killed).Round(time.Millisecond))
	if stall > resumeWithin {
		t.Errorf("product %d: changes stalled %v after the fault, want under %v", product, stall, resumeWithin)
	}
}
