package main

import (
	"encoding/json"
	"fmt"
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

// TestReplicas runs two replicas sharing PostgreSQL and a lock backend (a
// redis-server of its own, a Redis Cluster of three masters with a replica
// each, or embedded etcd). The event feeds poll the ledger only once a
// minute, so events can cross between replicas quickly only through the
// fan-out (Redis pub/sub, etcd watch). The failover of a cluster master
// under load is a case of the fault suite (internal/faults).
func TestReplicas(t *testing.T) {
	for _, backend := range []string{"redsync", "redis-cluster", "etcd"} {
		t.Run(backend, func(t *testing.T) {
			dsn := gormstoretest.DSN(t, gormstore.Postgres)
			var env map[string]string
			switch backend {
			case "redsync":
				env = redsyncEnv(dsn, redistest.Start(t).Addr)
			case "redis-cluster":
				env = redisClusterEnv(dsn, redistest.StartCluster(t))
			default:
				env = etcdEnv(dsn, etcdtest.Start(t, 1).Endpoints())
			}
			env["INVENTORY_EVENT_POLL_INTERVAL"] = "1m"
			env["INVENTORY_REAP_INTERVAL"] = "100ms"
			env["INVENTORY_LOCK_TTL"] = "2s"
			a := startServer(t, env)
			b := startServer(t, env)
			t.Run("EventsCross", func(t *testing.T) { testEventsCross(t, a, b) })
			t.Run("OneAlertClusterWide", func(t *testing.T) { testOneAlert(t, a, b) })
			t.Run("ReservationExpiresAcross", func(t *testing.T) { testReservationExpiresAcross(t, a, b) })
			t.Run("NoOverReservation", func(t *testing.T) { testNoOverReservation(t, a, b) })
			t.Run("ReplayAfterReconnect", func(t *testing.T) { testReplayAfterReconnect(t, a, b) })
			var survivor *server
			t.Run("LeaderStops", func(t *testing.T) { survivor = testLeaderStops(t, a, b) })
			t.Run("LeaderKilled", func(t *testing.T) { testLeaderKilled(t, env, survivor) })
		})
	}
}

// product creates a product on s and returns its ID and the sequence of
// its initial stock.
func (s *server) product(t *testing.T, sku string, stock, threshold int) (string, int64) {
	t.Helper()
	var out struct {
		CreateProduct struct {
			Product  struct{ ID string }
			Movement struct{ Sequence int64 }
		}
	}
	r := s.graphql(t, `mutation($sku: String!, $stock: Int, $th: Int) { createProduct(input: {sku: $sku, name: "Item", price: "1.00",
		initialStock: $stock, threshold: $th}) { product { id } movement { sequence } } }`,
		map[string]any{"sku": sku, "stock": stock, "th": threshold}, &out)
	if len(r.Errors) > 0 {
		t.Fatalf("createProduct: %+v", r.Errors)
	}
	return out.CreateProduct.Product.ID, out.CreateProduct.Movement.Sequence
}

func (s *server) sell(t *testing.T, id string, qty int) {
	t.Helper()
	r := s.graphql(t, `mutation($id: ID!, $q: Int!) { stockOut(input: {productId: $id, quantity: $q}) { replayed } }`,
		map[string]any{"id": id, "q": qty}, nil)
	if len(r.Errors) > 0 {
		t.Fatalf("stockOut: %+v", r.Errors)
	}
}

// nextData reads the next data message of subscription id, failing after
// within.
func (c *wsClient) nextData(t *testing.T, id string, within time.Duration, out any) {
	t.Helper()
	type result struct {
		m   wsMessage
		err error
	}
	got := make(chan result, 1)
	go func() {
		for {
			m, err := c.next()
			if err != nil || m.ID == id {
				got <- result{m, err}
				return
			}
		}
	}()
	select {
	case r := <-got:
		if r.err != nil {
			t.Fatalf("subscription %s: %v", id, r.err)
		}
		if r.m.Type != "next" {
			t.Fatalf("subscription %s: %s %s", id, r.m.Type, r.m.Payload)
		}
		var payload struct{ Data json.RawMessage }
		if err := json.Unmarshal(r.m.Payload, &payload); err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(payload.Data, out); err != nil {
			t.Fatal(err)
		}
	case <-time.After(within):
		t.Fatalf("subscription %s: nothing within %v", id, within)
	}
}

// testEventsCross: a subscriber on B sees a stock-out made on A at once.
func testEventsCross(t *testing.T, a, b *server) {
	id, since := a.product(t, "CROSS", 100, 0)
	c := dialWS(t, b.url)
	c.subscribe("changes", `subscription($ids: [ID!], $after: Int64) { stockChanged(productIds: $ids, afterSequence: $after) {
		sequence movement { type delta } } }`, map[string]any{"ids": []string{id}, "after": since})
	start := time.Now()
	a.sell(t, id, 5)
	var ev struct {
		StockChanged struct {
			Sequence int64
			Movement struct {
				Type  string
				Delta int
			}
		}
	}
	c.nextData(t, "changes", 5*time.Second, &ev)
	if ev.StockChanged.Movement.Type != "OUT" || ev.StockChanged.Movement.Delta != -5 {
		t.Fatalf("event %+v", ev)
	}
	t.Logf("a sale on A reached B's subscriber in %v (feeds poll once a minute)", time.Since(start).Round(time.Millisecond))
}

// testOneAlert: crossing the threshold on one replica raises one alert,
// which the subscribers of both replicas see once.
func testOneAlert(t *testing.T, a, b *server) {
	id, since := a.product(t, "ALERT", 100, 90)
	var clients []*wsClient
	for _, s := range []*server{a, b} {
		c := dialWS(t, s.url)
		c.subscribe("alerts", `subscription($ids: [ID!], $after: Int64) { lowStockAlerts(productIds: $ids, afterSequence: $after) {
			sequence available } }`, map[string]any{"ids": []string{id}, "after": since})
		clients = append(clients, c)
	}
	var wg sync.WaitGroup
	for i := range 20 { // 100 -> 80 in 20 sales on both replicas: one crossing of 90
		wg.Go(func() { []*server{a, b}[i%2].sell(t, id, 1) })
	}
	wg.Wait()
	for i, c := range clients {
		var ev struct {
			LowStockAlerts struct{ Sequence, Available int64 }
		}
		c.nextData(t, "alerts", 5*time.Second, &ev)
		if ev.LowStockAlerts.Available != 89 {
			t.Errorf("replica %d: alert at %d available, want 89", i, ev.LowStockAlerts.Available)
		}
	}
	// No second alert: the ledger holds one.
	var n int
	out := struct {
		StockMovements struct {
			Edges []struct{ Node struct{ LowStockAlert bool } }
		}
	}{}
	a.graphql(t, `query($id: ID!) { stockMovements(productId: $id, first: 100) { edges { node { lowStockAlert } } } }`, map[string]any{"id": id}, &out)
	for _, e := range out.StockMovements.Edges {
		if e.Node.LowStockAlert {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("%d alerts in the ledger, want 1", n)
	}
}

type reservationEvent struct {
	ReservationEvents struct {
		Sequence    int64
		Type        string
		Reservation struct {
			ID     string
			Status string
		}
	}
}

// testReservationExpiresAcross: a reservation made on A expires; whichever
// replica leads releases it, and B's subscriber sees both events; committing
// it then fails cleanly.
func testReservationExpiresAcross(t *testing.T, a, b *server) {
	id, since := a.product(t, "EXPIRES", 10, 0)
	c := dialWS(t, b.url)
	c.subscribe("res", `subscription($after: Int64) { reservationEvents(afterSequence: $after) {
		sequence type reservation { id status } } }`, map[string]any{"after": since})
	var res struct {
		ReserveStock struct{ Reservation struct{ ID string } }
	}
	r := a.graphql(t, `mutation($id: ID!) { reserveStock(input: {items: [{productId: $id, quantity: 3}], ttlSeconds: 1}) {
		reservation { id } } }`, map[string]any{"id": id}, &res)
	if len(r.Errors) > 0 {
		t.Fatalf("reserveStock: %+v", r.Errors)
	}
	rid := res.ReserveStock.Reservation.ID
	var ev reservationEvent
	c.nextData(t, "res", 5*time.Second, &ev)
	if ev.ReservationEvents.Type != "RESERVE" || ev.ReservationEvents.Reservation.ID != rid {
		t.Fatalf("first event %+v", ev)
	}
	c.nextData(t, "res", 10*time.Second, &ev) // 1s TTL, then the reaper
	if ev.ReservationEvents.Type != "EXPIRE" || ev.ReservationEvents.Reservation.Status != "EXPIRED" {
		t.Fatalf("second event %+v", ev)
	}
	r = b.graphql(t, `mutation($r: ID!) { commitReservation(id: $r) { replayed } }`, map[string]any{"r": rid}, nil)
	if len(r.Errors) != 1 || r.Errors[0].Extensions["code"] != "RESERVATION_EXPIRED" {
		t.Fatalf("commit after expiry: %+v", r.Errors)
	}
	var p struct{ Product struct{ Available int } }
	b.graphql(t, `query($id: ID!) { product(id: $id) { available } }`, map[string]any{"id": id}, &p)
	if p.Product.Available != 10 {
		t.Fatalf("available %d after expiry, want 10", p.Product.Available)
	}
}

// testNoOverReservation: 200 clients on both replicas reserve one unit of
// 50: exactly 50 succeed. Each client is a careful one: an answer that says
// retry (UNAVAILABLE, which a busy machine gives when a lock or the
// database is slow) is retried with the same idempotency key until a final
// one, so the test judges the guarantee, not the machine's speed.
func testNoOverReservation(t *testing.T, a, b *server) {
	id, _ := a.product(t, "RESHOT", 50, 0)
	codes := newTally()
	var retries atomic.Int64
	var wg sync.WaitGroup
	for i := range 200 {
		wg.Go(func() {
			code := "UNAVAILABLE"
			for attempt := 0; code == "UNAVAILABLE" && attempt < 50; attempt++ {
				if attempt > 0 {
					retries.Add(1)
					time.Sleep(50 * time.Millisecond)
				}
				r := []*server{a, b}[(i+attempt)%2].graphql(t, `mutation($id: ID!, $key: String!) {
					reserveStock(input: {items: [{productId: $id, quantity: 1}], ttlSeconds: 600, idempotencyKey: $key}) {
					reservation { id } } }`, map[string]any{"id": id, "key": fmt.Sprintf("client-%d", i)}, nil)
				code = "OK"
				if len(r.Errors) > 0 {
					code = fmt.Sprint(r.Errors[0].Extensions["code"])
				}
			}
			codes.add(fmt.Sprint(i))(code, "")
		})
	}
	wg.Wait()
	t.Logf("200 reservations of 1 of 50 over two replicas: %v, after %d retries", codes, retries.Load())
	if c := codes.counts(); c["OK"] != 50 || c["INSUFFICIENT_STOCK"] != 150 {
		t.Fatalf("want exactly 50 reserved and 150 INSUFFICIENT_STOCK")
	}
	var p struct {
		Product struct{ Reserved, Available int }
	}
	b.graphql(t, `query($id: ID!) { product(id: $id) { reserved available } }`, map[string]any{"id": id}, &p)
	if p.Product.Reserved != 50 || p.Product.Available != 0 {
		t.Fatalf("product %+v", p.Product)
	}
}

// testReplayAfterReconnect: a subscriber on B drops; the sales made on A
// meanwhile are replayed, each once, when it reconnects with the last
// sequence it saw, and live events follow.
func testReplayAfterReconnect(t *testing.T, a, b *server) {
	id, since := a.product(t, "REPLAY", 100, 0)
	const query = `subscription($ids: [ID!], $after: Int64) { stockChanged(productIds: $ids, afterSequence: $after) { sequence } }`
	type event struct{ StockChanged struct{ Sequence int64 } }
	c := dialWS(t, b.url)
	c.subscribe("s", query, map[string]any{"ids": []string{id}, "after": since})
	a.sell(t, id, 1)
	var ev event
	c.nextData(t, "s", 5*time.Second, &ev)
	last := ev.StockChanged.Sequence
	_ = c.conn.CloseNow() // the client drops

	for range 5 {
		a.sell(t, id, 1)
	}
	c = dialWS(t, b.url)
	c.subscribe("s", query, map[string]any{"ids": []string{id}, "after": last})
	for i := range 5 {
		c.nextData(t, "s", 5*time.Second, &ev)
		if ev.StockChanged.Sequence <= last {
			t.Fatalf("replayed event %d has sequence %d after %d: a duplicate or out of order", i, ev.StockChanged.Sequence, last)
		}
		last = ev.StockChanged.Sequence
	}
	b.sell(t, id, 1)
	c.nextData(t, "s", 5*time.Second, &ev)
	if ev.StockChanged.Sequence <= last {
		t.Fatalf("live event %d after %d", ev.StockChanged.Sequence, last)
	}
}

// testLeaderStops stops the replica that runs the reaper: the other takes
// the duty over and releases the next expired reservation.
func testLeaderStops(t *testing.T, a, b *server) (survivor *server) {
	testenv.Eventually(t, "a reaper leader", func() bool { return a.logged("reaper: leading") || b.logged("reaper: leading") })
	leader, other := a, b
	if b.logged("reaper: leading") && !a.logged("reaper: leading") {
		leader, other = b, a
	}
	leader.shutdown(t)
	testenv.Eventually(t, "the other replica to lead", func() bool { return other.logged("reaper: leading") })
	wantExpiryOn(t, other, "TAKEOVER")
	return other
}

// testLeaderKilled: a leader that dies without resigning (SIGKILL of its
// process) is replaced once its lease lapses, within about two lock TTLs.
func testLeaderKilled(t *testing.T, env map[string]string, survivor *server) {
	if survivor == nil {
		t.Skip("LeaderStops failed")
	}
	// A child process takes over from the survivor, then a fresh replica
	// joins and waits behind it.
	child := startProcess(t, env)
	survivor.shutdown(t)
	testenv.Eventually(t, "the child process to lead", func() bool { return child.logged("reaper: leading") })
	next := startServer(t, env)
	if next.logged("reaper: leading") {
		t.Fatal("two leaders")
	}

	child.kill()
	killed := time.Now()
	testenv.Eventually(t, "a replica to lead after the leader was killed", func() bool { return next.logged("reaper: leading") })
	ttl, _ := time.ParseDuration(env["INVENTORY_LOCK_TTL"])
	t.Logf("leader killed: the other replica led %v later (lock TTL %v)", time.Since(killed).Round(time.Millisecond), ttl)
	wantExpiryOn(t, next, "AFTERKILL")
}

// wantExpiryOn reserves stock for a second on s, the reaper's leader, and
// waits for the EXPIRE event on s's subscription.
func wantExpiryOn(t *testing.T, s *server, sku string) {
	t.Helper()
	id, since := s.product(t, sku, 5, 0)
	c := dialWS(t, s.url)
	c.subscribe("res", `subscription($after: Int64) { reservationEvents(afterSequence: $after) { type } }`, map[string]any{"after": since})
	r := s.graphql(t, `mutation($id: ID!) { reserveStock(input: {items: [{productId: $id, quantity: 2}], ttlSeconds: 1}) {
		reservation { id } } }`, map[string]any{"id": id}, nil)
	if len(r.Errors) > 0 {
		t.Fatalf("reserveStock: %+v", r.Errors)
	}
	var ev reservationEvent
	c.nextData(t, "res", 5*time.Second, &ev)
	c.nextData(t, "res", 10*time.Second, &ev)
	if ev.ReservationEvents.Type != "EXPIRE" {
		t.Fatalf("event %+v, want the leader's EXPIRE", ev)
	}
}
