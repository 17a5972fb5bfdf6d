package etcdlock_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/shopstack/inventory/internal/lock"
	"github.com/shopstack/inventory/internal/lock/etcdlock"
	"github.com/shopstack/inventory/internal/lock/locktest"
	"github.com/shopstack/inventory/internal/testenv"
	"github.com/shopstack/inventory/internal/testenv/etcdtest"
)

const testTTL = 2 * time.Second

// mustNew returns a Locker on c, closed at tb.Cleanup. Each call is its own
// client and session, like another replica.
func mustNew(tb testing.TB, c *etcdtest.Cluster, cfg etcdlock.Config) *etcdlock.Locker {
	tb.Helper()
	cfg.Endpoints = c.Endpoints()
	if cfg.TTL == 0 {
		cfg.TTL = testTTL
	}
	l, err := etcdlock.New(context.Background(), cfg)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = l.Close() })
	return l
}

// mustClient returns a plain etcd client on c, to look at or tamper with
// what the lockers wrote.
func mustClient(tb testing.TB, c *etcdtest.Cluster) *clientv3.Client {
	tb.Helper()
	cli, err := clientv3.New(clientv3.Config{Endpoints: c.Endpoints(), DialTimeout: 5 * time.Second})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = cli.Close() })
	return cli
}

func TestConformance(t *testing.T) {
	for _, members := range []int{1, 3} {
		t.Run(fmt.Sprintf("%dmembers", members), func(t *testing.T) {
			c := etcdtest.Start(t, members)
			locktest.Run(t, locktest.Backend{
				New:       func(t *testing.T) lock.Locker { return mustNew(t, c, etcdlock.Config{}) },
				TTL:       testTTL,
				Abandon:   func(_ *testing.T, le lock.Lease) { etcdlock.Abandon(le) },
				Contended: true,
			})
		})
	}
}

func TestSessionLoss(t *testing.T) {
	c := etcdtest.Start(t, 1)
	cli := mustClient(t, c)
	l := mustNew(t, c, etcdlock.Config{})
	ctx := context.Background()

	// Several leases share the session: all are lost with it.
	var leases []lock.Lease
	for _, k := range []string{"a", "b", "c"} {
		le, err := l.Lock(ctx, k)
		if err != nil {
			t.Fatal(err)
		}
		leases = append(leases, le)
	}
	id := etcdlock.LeaseID(leases[0])
	if _, err := cli.Revoke(ctx, id); err != nil {
		t.Fatal(err)
	}
	// Unlock right away, before the session notices: the key is gone.
	if err := leases[0].Unlock(ctx); !errors.Is(err, lock.ErrLeaseLost) {
		t.Errorf("Unlock after revoke = %v, want lock.ErrLeaseLost", err)
	}
	for i, le := range leases[1:] {
		select {
		case <-le.Done():
		case <-time.After(2*testTTL + 5*time.Second):
			t.Fatalf("lease %d: Done did not fire after its session's lease was revoked", i+1)
		}
		if err := le.Unlock(ctx); !errors.Is(err, lock.ErrLeaseLost) {
			t.Errorf("lease %d: Unlock after session loss = %v, want lock.ErrLeaseLost", i+1, err)
		}
	}

	// The next Lock starts a new session.
	lockCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	le, err := l.Lock(lockCtx, "a")
	if err != nil {
		t.Fatalf("Lock after session loss: %v", err)
	}
	if got := etcdlock.LeaseID(le); got == id {
		t.Errorf("new lease acquired through the revoked session %x", id)
	}
	if le.Token() <= leases[0].Token() {
		t.Errorf("token %d after %d", le.Token(), leases[0].Token())
	}
	if err := le.Unlock(ctx); err != nil {
		t.Fatal(err)
	}
	if n := l.GateLen(); n != 0 {
		t.Errorf("%d keys left in the gate", n)
	}
}

// TestCancelledWaitLeavesNoKey checks that a waiter that gives up removes
// its waiter key: a key left under a live session would never be released.
func TestCancelledWaitLeavesNoKey(t *testing.T) {
	c := etcdtest.Start(t, 1)
	cli := mustClient(t, c)
	holder, waiter := mustNew(t, c, etcdlock.Config{}), mustNew(t, c, etcdlock.Config{})
	ctx := context.Background()
	held, err := holder.Lock(ctx, "k")
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range []time.Duration{0, 10 * time.Millisecond, 200 * time.Millisecond} {
		waitCtx, cancel := context.WithTimeout(ctx, d)
		_, err := waiter.Lock(waitCtx, "k")
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Lock on a held key with timeout %v = %v, want context.DeadlineExceeded", d, err)
		}
	}
	// Cleanup of a key may finish in the background; give it a moment.
	var keys []string
	testenv.Poll(testenv.Wait, func() bool {
		resp, err := cli.Get(ctx, "/inventory/lock/", clientv3.WithPrefix(), clientv3.WithKeysOnly())
		if err != nil {
			t.Fatal(err)
		}
		keys = keys[:0]
		for _, kv := range resp.Kvs {
			keys = append(keys, string(kv.Key))
		}
		return len(keys) == 1 && waiter.GateLen() == 0
	})
	if len(keys) != 1 {
		t.Errorf("keys under the prefix = %q, want only the holder's", keys)
	}
	if n := waiter.GateLen(); n != 0 {
		t.Errorf("waiter gate holds %d keys", n)
	}
	if err := held.Unlock(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestNestedKeysIndependent checks that "a" does not wait for "a/b": etcd
// mutexes are key prefixes.
func TestNestedKeysIndependent(t *testing.T) {
	c := etcdtest.Start(t, 1)
	l1, l2 := mustNew(t, c, etcdlock.Config{}), mustNew(t, c, etcdlock.Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, keys := range [][2]string{{"a/b", "a"}, {"x", "x/y"}} {
		first, err := l1.Lock(ctx, keys[0])
		if err != nil {
			t.Fatal(err)
		}
		second, err := l2.Lock(ctx, keys[1])
		if err != nil {
			t.Fatalf("%q held blocked %q: %v", keys[0], keys[1], err)
		}
		_ = second.Unlock(ctx)
		_ = first.Unlock(ctx)
	}
}

func TestClusterDown(t *testing.T) {
	c := etcdtest.Start(t, 1)
	holder := mustNew(t, c, etcdlock.Config{})
	waiter := mustNew(t, c, etcdlock.Config{})
	fresh := mustNew(t, c, etcdlock.Config{})
	ctx := context.Background()
	held, err := holder.Lock(ctx, "k")
	if err != nil {
		t.Fatal(err)
	}
	waitErr := make(chan error, 1)
	go func() {
		waitCtx, cancel := context.WithTimeout(ctx, 60*time.Second)
		defer cancel()
		le, err := waiter.Lock(waitCtx, "k")
		if err == nil {
			_ = le.Unlock(ctx)
		}
		waitErr <- err
	}()
	time.Sleep(200 * time.Millisecond) // let the waiter queue up

	c.Kill(t, 0)
	start := time.Now()
	lockCtx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	if _, err := fresh.Lock(lockCtx, "other"); !errors.Is(err, lock.ErrUnavailable) {
		t.Errorf("Lock with the cluster down = %v, want lock.ErrUnavailable", err)
	} else if d := time.Since(start); d > 10*time.Second {
		t.Errorf("Lock took %v to report the cluster down, want under 10s", d)
	} else {
		t.Logf("Lock failed after %v: %v", d.Round(time.Millisecond), err)
	}
	if err := fresh.Check(ctx); !errors.Is(err, lock.ErrUnavailable) {
		t.Errorf("Check with the cluster down = %v, want lock.ErrUnavailable", err)
	}

	// A waiter gives up once its session lapses.
	select {
	case err := <-waitErr:
		if !errors.Is(err, lock.ErrUnavailable) {
			t.Errorf("waiting Lock = %v, want lock.ErrUnavailable", err)
		}
		t.Logf("waiter failed %v after the kill: %v", time.Since(start).Round(time.Millisecond), err)
	case <-time.After(30 * time.Second):
		t.Fatal("waiting Lock still blocked 30s after the cluster went down")
	}
	// The holder's lease can no longer be kept alive.
	select {
	case <-held.Done():
	case <-time.After(2*testTTL + 5*time.Second):
		t.Fatal("held lease's Done did not fire with the cluster down")
	}
	if err := held.Unlock(ctx); !errors.Is(err, lock.ErrLeaseLost) {
		t.Errorf("Unlock with the cluster down = %v, want lock.ErrLeaseLost", err)
	}
	for _, l := range []*etcdlock.Locker{holder, waiter, fresh} {
		_ = l.Close()
		if n := l.GateLen(); n != 0 {
			t.Errorf("%d keys left in a gate after Close", n)
		}
	}
}

func TestNewUnreachable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close() // nothing listens there now
	start := time.Now()
	_, err = etcdlock.New(context.Background(), etcdlock.Config{Endpoints: []string{addr}})
	if !errors.Is(err, lock.ErrUnavailable) {
		t.Fatalf("New on a closed port = %v, want lock.ErrUnavailable", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("New took %v to fail", d)
	}
}

func TestDomain(t *testing.T) {
	c1, c2 := etcdtest.Start(t, 1), etcdtest.Start(t, 1)
	a, b := mustNew(t, c1, etcdlock.Config{}), mustNew(t, c1, etcdlock.Config{})
	other := mustNew(t, c2, etcdlock.Config{})
	if !strings.HasPrefix(a.Domain(), "etcd/") {
		t.Errorf("Domain() = %q, want etcd/<cluster id>", a.Domain())
	}
	if a.Domain() != b.Domain() {
		t.Errorf("two lockers on one cluster: domains %q and %q", a.Domain(), b.Domain())
	}
	if a.Domain() == other.Domain() {
		t.Errorf("two clusters share domain %q", a.Domain())
	}
	// A cluster that lost its data (rebuilt with the same settings keeps
	// its cluster ID) restarts its revisions: a new domain.
	if _, err := mustClient(t, c1).Delete(context.Background(), "", clientv3.WithFromKey()); err != nil {
		t.Fatal(err)
	}
	rebuilt := mustNew(t, c1, etcdlock.Config{})
	id := func(d string) string { return d[:strings.LastIndex(d, "/")] }
	if rebuilt.Domain() == a.Domain() || id(rebuilt.Domain()) != id(a.Domain()) {
		t.Errorf("after a data loss: domain %q, before %q; want the same cluster ID, another incarnation", rebuilt.Domain(), a.Domain())
	}
}

func TestConfigErrors(t *testing.T) {
	eps := []string{"127.0.0.1:1"}
	for name, cfg := range map[string]etcdlock.Config{
		"NoEndpoints":       {},
		"EmptyEndpoint":     {Endpoints: []string{""}},
		"ShortTTL":          {Endpoints: eps, TTL: time.Second},
		"NegativeTimeout":   {Endpoints: eps, OpTimeout: -time.Second},
		"RetryMinAboveMax":  {Endpoints: eps, RetryMin: time.Second, RetryMax: time.Millisecond},
		"NegativeRetries":   {Endpoints: eps, ErrorRetries: -1},
		"NegativeDialLimit": {Endpoints: eps, DialTimeout: -1},
	} {
		t.Run(name, func(t *testing.T) {
			l, err := etcdlock.New(context.Background(), cfg)
			if err == nil {
				_ = l.Close()
				t.Fatal("New accepted an invalid config")
			}
			if errors.Is(err, lock.ErrUnavailable) {
				t.Fatalf("New = %v: a config error, not an unavailable backend", err)
			}
		})
	}
}

// TestReleasesShareATransaction unlocks 64 leases at once: etcd sees a
// few transactions, not one per key (its revision counts them), every
// key is gone, and each lease reports a clean release.
func TestReleasesShareATransaction(t *testing.T) {
	c := etcdtest.Start(t, 1)
	l := mustNew(t, c, etcdlock.Config{})
	cli := mustClient(t, c)
	ctx := context.Background()
	keys := make([]string, 64)
	for i := range keys {
		keys[i] = fmt.Sprintf("release/%d", i)
	}
	var leases []lock.Lease
	for i, g := range l.TryLock(ctx, keys) {
		if g.Err != nil {
			t.Fatalf("TryLock(%s): %v", keys[i], g.Err)
		}
		leases = append(leases, g.Lease)
	}
	before, err := cli.Get(ctx, "release")
	if err != nil {
		t.Fatal(err)
	}
	start := make(chan struct{})
	errs := make(chan error, len(leases))
	for _, le := range leases {
		go func() {
			<-start
			errs <- le.Unlock(ctx)
		}()
	}
	close(start)
	for range leases {
		if err := <-errs; err != nil {
			t.Errorf("Unlock: %v", err)
		}
	}
	after, err := cli.Get(ctx, "release", clientv3.WithPrefix())
	if err != nil {
		t.Fatal(err)
	}
	txns := after.Header.Revision - before.Header.Revision
	t.Logf("%d releases in %d transactions", len(leases), txns)
	if txns > int64(len(leases))/2 {
		t.Errorf("%d releases at once took %d transactions, want them shared", len(leases), txns)
	}
	for _, k := range keys {
		if l.TryLock(ctx, []string{k})[0].Err != nil {
			t.Errorf("%s still held after its lease was released", k)
		}
	}
}
