package redislock_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/shopstack/inventory/internal/lock"
	"github.com/shopstack/inventory/internal/lock/locktest"
	"github.com/shopstack/inventory/internal/lock/redislock"
	"github.com/shopstack/inventory/internal/testenv/redistest"
)

// TestCluster runs the conformance suites on a Redis Cluster of three
// masters with a replica each.
func TestCluster(t *testing.T) {
	c := redistest.StartCluster(t)
	cfg := redislock.Config{Addrs: c.Addrs(), Cluster: true, TTL: suiteTTL}
	t.Run("Conformance", func(t *testing.T) {
		locktest.Run(t, locktest.Backend{
			New:       func(t *testing.T) lock.Locker { return newLocker(t, cfg) },
			TTL:       suiteTTL,
			Abandon:   func(_ *testing.T, l lock.Lease) { redislock.Abandon(l) },
			Contended: true,
		})
	})
	t.Run("Elector", func(t *testing.T) {
		locktest.RunElector(t, func(t *testing.T) lock.Elector {
			return lock.LockElector{Locker: newLocker(t, cfg), Retry: 50 * time.Millisecond}
		}, suiteTTL, func(_ *testing.T, l lock.Lease) { redislock.Abandon(l) })
	})
	t.Run("Domain", func(t *testing.T) {
		standalone := newLocker(t, redislock.Config{Addrs: c.Addrs()[:1]})
		if d := newLocker(t, cfg).Domain(); d == standalone.Domain() {
			t.Fatalf("cluster and standalone lockers share the fencing domain %q", d)
		}
	})
	t.Run("LeaseKeysShareASlot", func(t *testing.T) { testKeysShareSlot(t, c, cfg) })
	t.Run("Namespace", func(t *testing.T) { testNamespace(t, cfg) })
	t.Run("TryLockAcrossMasters", func(t *testing.T) { testTryLockAcrossMasters(t, c, cfg) })
}

// testTryLockAcrossMasters takes keys of every master in one TryLock: the
// slots the Locker computes are the cluster's, and every key is granted
// on its own master.
func testTryLockAcrossMasters(t *testing.T, c *redistest.Cluster, cfg redislock.Config) {
	l := newLocker(t, cfg)
	ctx := context.Background()
	rdb := redis.NewClient(&redis.Options{Addr: c.Addrs()[0]})
	defer rdb.Close()
	var keys []string
	masters := map[string]bool{}
	for i := range 50 {
		key := fmt.Sprintf("stock/%d/0", i)
		keys = append(keys, key)
		masters[c.MasterOf(t, l.LockKey(key)).Addr] = true
		want, err := rdb.ClusterKeySlot(ctx, l.LockKey(key)).Result()
		if err != nil {
			t.Fatal(err)
		}
		if got := redislock.Slot(l.LockKey(key)); int64(got) != want {
			t.Fatalf("slot of %s = %d, the cluster says %d", l.LockKey(key), got, want)
		}
	}
	if len(masters) < 2 {
		t.Fatal("every key on one master: the test proves little")
	}
	for i, g := range l.TryLock(ctx, keys) {
		if g.Err != nil {
			t.Fatalf("%s: %v", keys[i], g.Err)
		}
		_ = g.Lease.Unlock(ctx)
	}
}

// testKeysShareSlot checks that a held lease's lock key and fencing counter
// lie in one slot, on the one master serving it, for keys hashing all over
// the cluster.
func testKeysShareSlot(t *testing.T, c *redistest.Cluster, cfg redislock.Config) {
	l := newLocker(t, cfg)
	ctx := context.Background()
	masters := map[string]bool{}
	for _, key := range []string{"stock/1/0", "stock/2/0", "stock/3/7", "leader/reaper", "leader/publisher", "a{b}c"} {
		lease, err := l.Lock(ctx, key)
		if err != nil {
			t.Fatal(err)
		}
		m := c.MasterOf(t, l.LockKey(key))
		if f := c.MasterOf(t, l.FenceKey(key)); f != m {
			t.Errorf("%s: lock key on %s, fence counter on %s", key, m.Addr, f.Addr)
		}
		rdb := redis.NewClient(&redis.Options{Addr: m.Addr})
		if n, err := rdb.Exists(ctx, l.LockKey(key), l.FenceKey(key)).Result(); err != nil || n != 2 {
			t.Errorf("%s: EXISTS of its two keys on %s = %d, %v; want 2", key, m.Addr, n, err)
		}
		_ = rdb.Close()
		masters[m.Addr] = true
		if err := lease.Unlock(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if len(masters) < 2 {
		t.Errorf("every key on one master: the test proves little")
	}
}

// testNamespace: two namespaces on one cluster never share a lease.
func testNamespace(t *testing.T, cfg redislock.Config) {
	a := cfg
	a.Namespace = "shop-a"
	b := cfg
	b.Namespace = "shop-b"
	la, lb := newLocker(t, a), newLocker(t, b)
	ctx := context.Background()
	held, err := la.Lock(ctx, t.Name())
	if err != nil {
		t.Fatal(err)
	}
	defer held.Unlock(ctx)
	lctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	other, err := lb.Lock(lctx, t.Name())
	if err != nil {
		t.Fatalf("another namespace waits for a key held in %s: %v", a.Namespace, err)
	}
	_ = other.Unlock(ctx)
	if la.LockKey("k") == lb.LockKey("k") || la.FenceKey("k") == lb.FenceKey("k") {
		t.Fatal("two namespaces share a Redis key")
	}
}

// TestClusterFailover kills the master of a key's slot while a lease on
// the key is held: the lease ends, Check stays ready (two of three masters
// answer), and once the replica took over the key is granted again with a
// token above the old ones, at the latest after Advance (replication is
// asynchronous: the new master may have missed the last increments).
func TestClusterFailover(t *testing.T) {
	c := redistest.StartCluster(t)
	l := newLocker(t, redislock.Config{Addrs: c.Addrs(), Cluster: true, TTL: 2 * time.Second})
	ctx := context.Background()
	key := "stock/1/0"
	var last int64
	for range 20 {
		lease := lockEventually(t, l, key)
		last = lease.Token()
		if err := lease.Unlock(ctx); err != nil {
			t.Fatal(err)
		}
	}
	held := lockEventually(t, l, key)
	last = held.Token()
	old := c.KillMasterOf(t, l.LockKey(key))
	start := time.Now()
	if err := l.Check(ctx); err != nil {
		t.Errorf("Check with one master of three down: %v", err)
	}
	select {
	case <-held.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("the lease on a dead master did not end")
	}
	if err := held.Unlock(ctx); err == nil {
		t.Error("Unlock of a lease whose master died succeeded")
	}
	lease := lockEventually(t, l, key)
	t.Logf("granted again %v after the kill, token %d (last before: %d)", time.Since(start).Round(time.Millisecond), lease.Token(), last)
	if lease.Token() <= last {
		// The counter went back: the database would refuse this
		// lease, and the service advances the counter past the token
		// it saw.
		_ = lease.Unlock(ctx)
		if err := l.Advance(ctx, key, last); err != nil {
			t.Fatal(err)
		}
		lease = lockEventually(t, l, key)
		if lease.Token() <= last {
			t.Fatalf("token %d after Advance(%d)", lease.Token(), last)
		}
	}
	_ = lease.Unlock(ctx)
	if m := c.WaitFailover(t, l.LockKey(key), old); m == old {
		t.Fatal("no failover")
	}
	if err := l.Check(ctx); err != nil {
		t.Fatalf("Check after the failover: %v", err)
	}

	// With every node dead, Lock and Check fail fast.
	for _, n := range c.Nodes {
		if n != old {
			n.Kill(t)
		}
	}
	wantUnavailable(t, l, key)
	if err := l.Check(ctx); !errors.Is(err, lock.ErrUnavailable) {
		t.Fatalf("Check with the cluster down = %v, want lock.ErrUnavailable", err)
	}
}

// TestAdvance puts a key's counter back behind the locker's back, as a
// failover can: tokens go back until Advance raises the counter past the
// token given, on one server and on a Redlock quorum.
func TestAdvance(t *testing.T) {
	for _, n := range []int{1, 3} {
		t.Run(mastersName(n), func(t *testing.T) {
			servers := startServers(t, n)
			l := newLocker(t, redislock.Config{Addrs: addrs(servers), TTL: suiteTTL})
			ctx := context.Background()
			key := t.Name()
			lease := lockEventually(t, l, key)
			high := lease.Token()
			_ = lease.Unlock(ctx)
			for _, s := range servers {
				rdb := redis.NewClient(&redis.Options{Addr: s.Addr})
				if err := rdb.Set(ctx, l.FenceKey(key), 1000, 0).Err(); err != nil {
					t.Fatal(err)
				}
				_ = rdb.Close()
			}
			lease = lockEventually(t, l, key)
			if lease.Token() > high {
				t.Fatalf("token %d after the counter was put back: the test did not put it back", lease.Token())
			}
			_ = lease.Unlock(ctx)
			if err := l.Advance(ctx, key, high); err != nil {
				t.Fatal(err)
			}
			lease = lockEventually(t, l, key)
			if lease.Token() <= high {
				t.Fatalf("token %d after Advance(%d)", lease.Token(), high)
			}
			_ = lease.Unlock(ctx)
			// Advance never lowers a counter.
			if err := l.Advance(ctx, key, 5); err != nil {
				t.Fatal(err)
			}
			if again := lockEventually(t, l, key); again.Token() <= lease.Token() {
				t.Fatalf("token %d after Advance(5) following %d", again.Token(), lease.Token())
			} else {
				_ = again.Unlock(ctx)
			}
		})
	}
}
