//go:build faults

package faults

import (
	"context"
	"database/sql"
	"fmt"
	"maps"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/shopstack/inventory/internal/retry"
	"github.com/shopstack/inventory/internal/testenv"
	"github.com/shopstack/inventory/internal/testenv/pgtest"
	"github.com/shopstack/inventory/internal/testenv/redistest"
)

// postgresKilled is the case of a database that crashes under load: the
// replicas use a PostgreSQL server of the test's own (created empty; the
// replicas migrate it), whose postmaster and backends are SIGKILLed and
// which is restarted 2s later on its data. Every connection of both
// replicas breaks, transactions in flight are lost (commits among them,
// unanswered), and the server recovers what it acknowledged.
func postgresKilled(t *testing.T, base map[string]string) setup {
	pg := pgtest.Start(t)
	env := redsync(base, redistest.Start(t).Addr)
	env["INVENTORY_DB_DSN"] = pg.DSN
	var struck time.Time
	return setup{env: env, dsn: pg.DSN, replicas: 2,
		fault: func(ctx context.Context, t *testing.T, _ []*replica) {
			struck = time.Now()
			pg.Kill(t)
			retry.Sleep(ctx, 2*time.Second)
			pg.Restart(t) // even if the run is over: the checks read it
		},
		audit: func(t *testing.T, dsn string, rs []*replica) { auditRecovered(t, dsn, rs, struck) }}
}

// oneReplicaPartitioned is the case of a network partition between one
// replica and the database: replica 0 reaches PostgreSQL through a proxy,
// replica 1 directly. For 4s the proxy delivers nothing either way on any
// connection, old or new, and closes none (toxiproxy's timeout toxic with
// timeout 0 drops the data); then it lets data through again, closing the
// connections whose data it dropped. Clients go on sending to both
// replicas; replica 0 still reaches Redis, and holds the leases of the
// batches it cannot commit.
func oneReplicaPartitioned(t *testing.T, base map[string]string) setup {
	direct := redsync(base, redistest.Start(t).Addr)
	p := newDBProxy(t, direct["INVENTORY_DB_DSN"])
	proxied := maps.Clone(direct)
	proxied["INVENTORY_DB_DSN"] = p.DSN
	var struck time.Time
	return setup{env: proxied, env2: direct, replicas: 2,
		fault: func(ctx context.Context, t *testing.T, _ []*replica) {
			struck = time.Now()
			p.toxics(ctx, t, 4*time.Second,
				`{"name": "partition-up", "type": "timeout", "stream": "upstream", "attributes": {"timeout": 0}}`,
				`{"name": "partition-down", "type": "timeout", "stream": "downstream", "attributes": {"timeout": 0}}`)
		},
		audit: func(t *testing.T, dsn string, rs []*replica) { auditRecovered(t, dsn, rs, struck) }}
}

// recoverWithin bounds how long a replica may take, once the run is over
// (2s or more after the database came back), to answer a client of its
// own again.
const recoverWithin = 10 * time.Second

// auditRecovered checks that the service came back whole after a fault of
// its database that struck at struck: every product's changes resumed
// (auditResumed), and each replica serves on its own again: its cached
// reads catch up with the database, and it acknowledges a stock change of
// a new product. The run's clients fail over to the other replica when
// one answers UNAVAILABLE, so a replica that never got its connections
// back, or whose read model stopped following the ledger, would pass the
// run's own checks.
func auditRecovered(t *testing.T, dsn string, rs []*replica, struck time.Time) {
	if struck.IsZero() {
		t.Fatal("the fault did not strike")
	}
	for _, id := range productIDs(t, dsn) {
		auditResumed(t, dsn, id, struck)
	}
	for i, r := range rs {
		c := &client{t: t, id: clients + holders + 1 + i, replicas: []*replica{r},
			http: &http.Client{Timeout: 5 * time.Second}, retryFor: recoverWithin}
		start := time.Now()
		for _, id := range productIDs(t, dsn) {
			caughtUp(t, c, i, id)
		}
		reads := time.Since(start)
		start = time.Now()
		ids := createProducts(t, c, fmt.Sprintf("R%d", i), 1, 1)
		if got := c.stock(NewHistory(), ids[0], Input{Kind: OpOut, Qty: 1}, fmt.Sprintf("recovered-%d", i)); got != OK {
			t.Errorf("replica %d: a stock-out of a new product after the fault: %s", i, got)
		}
		t.Logf("RECOVERED | %s | replica %d | cached reads caught up in %v | a new product sold in %v, %d retries |",
			strings.TrimPrefix(t.Name(), "TestFaults/"), i, reads.Round(time.Millisecond), time.Since(start).Round(time.Millisecond), c.retries.Load())
	}
}

// caughtUp waits until replica i's cached read of product (its read
// model's) shows what the database holds, and fails t if it does not
// within recoverWithin.
func caughtUp(t *testing.T, c *client, i int, product int64) {
	type level struct{ Stock, Reserved int64 }
	var out struct{ Cached, Strong level }
	ok := testenv.Poll(recoverWithin, func() bool {
		code, err := c.do(`query($id: ID!) { cached: product(id: $id) { stock reserved } strong: product(id: $id, consistency: STRONG) { stock reserved } }`,
			map[string]any{"id": product}, &out)
		return code == "OK" && err == nil && out.Cached == out.Strong
	})
	if !ok {
		t.Errorf("replica %d: its cached read of product %d shows %+v, the database %+v", i, product, out.Cached, out.Strong)
	}
}

// productIDs returns the IDs of the products, in order, but bundles (a
// bundle's ledger rows are its components').
func productIDs(t *testing.T, dsn string) []int64 {
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query("SELECT id FROM products WHERE NOT bundle ORDER BY id")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var ids []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return ids
}
