package redislock_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/shopstack/inventory/internal/lock"
	"github.com/shopstack/inventory/internal/lock/locktest"
	"github.com/shopstack/inventory/internal/lock/redislock"
	"github.com/shopstack/inventory/internal/testenv"
	"github.com/shopstack/inventory/internal/testenv/redistest"
)

// suiteTTL is short so that the expiry tests run in seconds.
const suiteTTL = time.Second

// fast is how quickly a dead backend must fail a Lock whose context allows
// much longer: generous, it only tells "fails fast" from "waits for ctx".
const fast = 5 * time.Second

func TestConformance(t *testing.T) {
	for _, n := range []int{1, 3} {
		t.Run(mastersName(n), func(t *testing.T) {
			servers := startServers(t, n)
			locktest.Run(t, locktest.Backend{
				New: func(t *testing.T) lock.Locker {
					return newLocker(t, redislock.Config{Addrs: addrs(servers), TTL: suiteTTL})
				},
				TTL:       suiteTTL,
				Abandon:   func(_ *testing.T, l lock.Lease) { redislock.Abandon(l) },
				Contended: true,
			})
		})
	}
}

// TestQuorum kills masters one by one: with two of three up, leases are
// still granted with increasing tokens, also after a master restarts
// without its data; with one of three, Lock fails fast as unavailable.
func TestQuorum(t *testing.T) {
	servers := startServers(t, 3)
	l := newLocker(t, redislock.Config{Addrs: addrs(servers), TTL: suiteTTL})
	ctx := context.Background()
	key := t.Name()
	var last int64
	lockUnlock := func(when string) {
		t.Helper()
		lease := lockEventually(t, l, key)
		if lease.Token() <= last {
			t.Fatalf("%s: token %d after %d", when, lease.Token(), last)
		}
		last = lease.Token()
		if err := lease.Unlock(ctx); err != nil {
			t.Fatalf("%s: unlock: %v", when, err)
		}
	}
	for range 3 {
		lockUnlock("all up")
	}

	servers[0].Kill(t)
	for range 5 {
		lockUnlock("one master down")
	}
	if err := l.Check(ctx); err != nil {
		t.Fatalf("Check with two of three masters up: %v", err)
	}
	servers[0].Restart(t)
	for range 5 {
		lockUnlock("after a restart without data")
	}

	servers[0].Kill(t)
	servers[1].Kill(t)
	wantUnavailable(t, l, key)
	err := l.Check(ctx)
	if !errors.Is(err, lock.ErrUnavailable) {
		t.Fatalf("Check with one of three masters up = %v, want lock.ErrUnavailable", err)
	}
	for _, s := range servers[:2] {
		if !strings.Contains(err.Error(), s.Addr) {
			t.Errorf("Check error %q does not name the dead master %s", err, s.Addr)
		}
	}
	servers[1].Restart(t)
	lockUnlock("quorum back")
}

// TestReleaseReachesEveryMaster checks that a lease is written to at least
// a quorum and released from every master that answers, not only from the
// first quorum: a key left behind on a straggler would block that key there
// for a TTL, and with another master down that denies the quorum.
func TestReleaseReachesEveryMaster(t *testing.T) {
	servers := startServers(t, 3)
	l := newLocker(t, redislock.Config{Addrs: addrs(servers)})
	ctx := context.Background()
	clients := make([]*redis.Client, len(servers))
	for i, s := range servers {
		clients[i] = redis.NewClient(&redis.Options{Addr: s.Addr})
		defer clients[i].Close()
	}
	count := func(key string) int {
		n := 0
		for _, c := range clients {
			n += int(c.Exists(ctx, l.LockKey(key)).Val())
		}
		return n
	}
	key := t.Name()
	// A SET that timed out on the client may still land on its master
	// after the release (a loaded machine delays the server): that key
	// then lives out its TTL. Such stragglers must stay rare; a release
	// that missed a master would leave the key every time.
	late := 0
	for i := range 200 {
		lease, err := l.Lock(ctx, key)
		if err != nil {
			t.Fatal(err)
		}
		if n := count(key); n < 2 {
			t.Fatalf("lease %d held on %d masters, want a quorum", i, n)
		}
		if err := lease.Unlock(ctx); err != nil {
			t.Fatal(err)
		}
		if testenv.Poll(2*time.Second, func() bool { return count(key) == 0 }) {
			continue
		}
		late++
		if !testenv.Poll(redislock.DefaultTTL+time.Second, func() bool { return count(key) == 0 }) {
			t.Fatalf("lease %d is still on %d masters a TTL after its release", i, count(key))
		}
	}
	if late > 4 {
		t.Fatalf("%d of 200 leases stayed on a master after their release, want stragglers rare", late)
	}
	// So with one master gone, the key is free at once, nearly every time.
	servers[1].Kill(t)
	slow := 0
	for i := range 100 {
		lctx, cancel := context.WithTimeout(ctx, redislock.DefaultTTL+2*time.Second)
		start := time.Now()
		lease, err := l.Lock(lctx, key)
		cancel()
		if err != nil {
			t.Fatalf("lock %d with one master down: %v", i, err)
		}
		if time.Since(start) > time.Second {
			slow++
		}
		if err := lease.Unlock(ctx); err != nil {
			t.Fatalf("unlock %d with one master down: %v", i, err)
		}
	}
	if slow > 2 {
		t.Fatalf("%d of 100 locks with one master down waited over 1s", slow)
	}
	t.Logf("stragglers: %d of 200 releases; slow locks with a master down: %d of 100", late, slow)
}

// TestReleasesShareAScript releases 64 leases at once, on one master and
// on three: they share scripts (one per server for each group), every
// released key is free afterwards, and a lease whose lock was deleted
// behind its back reports lock.ErrLeaseLost without failing the others.
func TestReleasesShareAScript(t *testing.T) {
	for _, n := range []int{1, 3} {
		t.Run(mastersName(n), func(t *testing.T) {
			servers := startServers(t, n)
			l := newLocker(t, redislock.Config{Addrs: addrs(servers)})
			ctx := context.Background()
			clients := make([]*redis.Client, n)
			for i, s := range servers {
				clients[i] = redis.NewClient(&redis.Options{Addr: s.Addr})
				defer clients[i].Close()
			}
			scripts := func() (total int64) {
				for _, c := range clients {
					info, err := c.Info(ctx, "commandstats").Result()
					if err != nil {
						t.Fatal(err)
					}
					for _, line := range strings.Split(info, "\n") {
						for _, cmd := range []string{"cmdstat_evalsha:calls=", "cmdstat_eval:calls="} {
							if rest, ok := strings.CutPrefix(line, cmd); ok {
								var calls int64
								fmt.Sscanf(rest, "%d", &calls)
								total += calls
							}
						}
					}
				}
				return total
			}
			keys := make([]string, 64)
			for i := range keys {
				keys[i] = fmt.Sprintf("%s/%d", t.Name(), i)
			}
			var leases []lock.Lease
			for i, g := range l.TryLock(ctx, keys) {
				if g.Err != nil {
					t.Fatalf("TryLock(%s): %v", keys[i], g.Err)
				}
				leases = append(leases, g.Lease)
			}
			lost := keys[7] // deleted behind its lease's back, on every master
			for _, c := range clients {
				if err := c.Del(ctx, l.LockKey(lost)).Err(); err != nil {
					t.Fatal(err)
				}
			}
			before := scripts()
			start := make(chan struct{})
			errs := make([]error, len(leases))
			var wg sync.WaitGroup
			for i, le := range leases {
				wg.Go(func() {
					<-start
					errs[i] = le.Unlock(ctx)
				})
			}
			close(start)
			wg.Wait()
			ran := scripts() - before
			t.Logf("%d releases on %d masters in %d scripts", len(leases), n, ran)
			if ran > int64(n*len(leases)/2) {
				t.Errorf("%d releases at once ran %d scripts on %d masters, want them shared", len(leases), ran, n)
			}
			for i, err := range errs {
				switch {
				case keys[i] == lost && !errors.Is(err, lock.ErrLeaseLost):
					t.Errorf("Unlock of a lease whose lock was deleted = %v, want lock.ErrLeaseLost", err)
				case keys[i] != lost && err != nil:
					t.Errorf("Unlock(%s) = %v", keys[i], err)
				}
			}
			for _, k := range keys {
				for i, c := range clients {
					if c.Exists(ctx, l.LockKey(k)).Val() != 0 {
						t.Errorf("%s still held on master %d after its lease was released", k, i)
					}
				}
			}
		})
	}
}

// TestOneMasterRestart kills the only master: Lock and Check fail fast, a
// held lease's Unlock reports the backend unavailable, and after a restart
// that lost the counters tokens still go up.
func TestOneMasterRestart(t *testing.T) {
	srv := redistest.Start(t)
	// A long TTL, so the held lease cannot lapse during the test.
	l := newLocker(t, redislock.Config{Addrs: []string{srv.Addr}, TTL: 10 * time.Second})
	ctx := context.Background()
	key := t.Name()
	var last int64
	for range 5 {
		lease := lockEventually(t, l, key)
		last = max(last, lease.Token())
		if err := lease.Unlock(ctx); err != nil {
			t.Fatal(err)
		}
	}
	held := lockEventually(t, l, key+"/held")

	srv.Kill(t)
	wantUnavailable(t, l, key)
	if err := l.Check(ctx); !errors.Is(err, lock.ErrUnavailable) || !strings.Contains(err.Error(), srv.Addr) {
		t.Fatalf("Check with the master down = %v, want lock.ErrUnavailable naming %s", err, srv.Addr)
	}
	if err := held.Unlock(ctx); !errors.Is(err, lock.ErrUnavailable) {
		t.Errorf("Unlock with the master down = %v, want lock.ErrUnavailable", err)
	}
	select {
	case <-held.Done():
	default:
		t.Error("Done() not closed after a failed Unlock")
	}

	srv.Restart(t)
	lease := lockEventually(t, l, key)
	defer lease.Unlock(ctx)
	if lease.Token() <= last {
		t.Fatalf("first token after the restart %d is not above %d from before", lease.Token(), last)
	}
	t.Logf("last token before the restart %d, first after %d", last, lease.Token())
	if err := l.Check(ctx); err != nil {
		t.Fatalf("Check after the restart: %v", err)
	}
	// The held lease's Unlock failed, but it left the gate.
	again := lockEventually(t, l, key+"/held")
	_ = again.Unlock(ctx)
}

// TestKeyDeletedBehindBack deletes a held lock in Redis: the next renewal
// finds it gone and closes Done.
func TestKeyDeletedBehindBack(t *testing.T) {
	srv := redistest.Start(t)
	l := newLocker(t, redislock.Config{Addrs: []string{srv.Addr}, TTL: suiteTTL})
	ctx := context.Background()
	key := t.Name()
	lease, err := l.Lock(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr})
	defer rdb.Close()
	if n, err := rdb.Del(ctx, l.LockKey(key)).Result(); err != nil || n != 1 {
		t.Fatalf("DEL %s = %d, %v", l.LockKey(key), n, err)
	}
	select {
	case <-lease.Done():
	case <-time.After(2*suiteTTL + 2*time.Second):
		t.Fatal("Done() did not fire after the lock was deleted")
	}
	if err := lease.Unlock(ctx); !errors.Is(err, lock.ErrLeaseLost) {
		t.Fatalf("Unlock of a deleted lock = %v, want lock.ErrLeaseLost", err)
	}
}

// TestPausedMaster stalls the only master: the held lease's Done fires
// although renewals hang, and Lock fails fast as unavailable.
func TestPausedMaster(t *testing.T) {
	srv := redistest.Start(t)
	l := newLocker(t, redislock.Config{Addrs: []string{srv.Addr}, TTL: suiteTTL})
	ctx := context.Background()
	key := t.Name()
	lease, err := l.Lock(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	srv.Pause(t)
	select {
	case <-lease.Done():
	case <-time.After(2*suiteTTL + 2*time.Second):
		t.Fatal("Done() did not fire while the master was paused")
	}
	if err := lease.Unlock(ctx); !errors.Is(err, lock.ErrLeaseLost) {
		t.Errorf("Unlock of a lapsed lease = %v, want lock.ErrLeaseLost", err)
	}
	wantUnavailable(t, l, key)
	srv.Resume(t)
	again := lockEventually(t, l, key)
	if again.Token() <= lease.Token() {
		t.Errorf("token %d after the pause is not above %d", again.Token(), lease.Token())
	}
	_ = again.Unlock(ctx)
}

// TestTakenIsNotUnavailable exhausts Tries on a held key.
func TestTakenIsNotUnavailable(t *testing.T) {
	srv := redistest.Start(t)
	cfg := redislock.Config{Addrs: []string{srv.Addr}, TTL: suiteTTL, Tries: 3}
	ctx := context.Background()
	key := t.Name()
	held, err := newLocker(t, cfg).Lock(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	defer held.Unlock(ctx)
	lease, err := newLocker(t, cfg).Lock(ctx, key)
	if err == nil {
		_ = lease.Unlock(ctx)
		t.Fatal("a second replica got a held key")
	}
	if !errors.Is(err, lock.ErrNotAcquired) || errors.Is(err, lock.ErrUnavailable) {
		t.Fatalf("Lock on a held key after 3 tries = %v, want lock.ErrNotAcquired only", err)
	}
}

// TestNoRedis needs no server: New does not connect, and Lock on a closed
// port fails fast.
func TestNoRedis(t *testing.T) {
	l := newLocker(t, redislock.Config{Addrs: []string{"127.0.0.1:1"}})
	wantUnavailable(t, l, t.Name())
	if err := l.Check(context.Background()); !errors.Is(err, lock.ErrUnavailable) {
		t.Fatalf("Check = %v, want lock.ErrUnavailable", err)
	}
}

func TestNewRejects(t *testing.T) {
	addr := []string{"127.0.0.1:1"}
	for name, cfg := range map[string]redislock.Config{
		"NoAddrs":            {},
		"AddrWithoutPort":    {Addrs: []string{"localhost"}},
		"DuplicateAddr":      {Addrs: []string{"127.0.0.1:1", "127.0.0.1:1"}},
		"NegativeTTL":        {Addrs: addr, TTL: -time.Second},
		"ShortTTL":           {Addrs: addr, TTL: time.Millisecond},
		"RetryMinAboveMax":   {Addrs: addr, RetryMin: time.Second, RetryMax: time.Millisecond},
		"NegativeRetry":      {Addrs: addr, RetryMin: -1},
		"NegativeTries":      {Addrs: addr, Tries: -1},
		"NegativeErrRetries": {Addrs: addr, ErrorRetries: -1},
		"LongOpTimeout":      {Addrs: addr, TTL: time.Second, OpTimeout: time.Second},
	} {
		t.Run(name, func(t *testing.T) {
			if l, err := redislock.New(cfg); err == nil {
				_ = l.Close()
				t.Fatalf("New(%+v) accepted", cfg)
			} else {
				t.Log(err)
			}
		})
	}
}

func BenchmarkLockUnlock(b *testing.B) {
	for _, n := range []int{1, 3} {
		b.Run(mastersName(n), func(b *testing.B) {
			l := newLocker(b, redislock.Config{Addrs: addrs(startServers(b, n))})
			run := fmt.Sprintf("bench/%d", time.Now().UnixNano())
			b.Run("DistinctKeys", func(b *testing.B) {
				benchLockUnlock(b, l, func(i int64) string { return fmt.Sprintf("%s/%d", run, i) })
			})
			b.Run("OneKey", func(b *testing.B) {
				benchLockUnlock(b, l, func(int64) string { return run })
			})
		})
	}
}

// benchLockUnlock locks and unlocks keys from parallel goroutines and
// reports the latency of Lock, queueing in the gate included.
func benchLockUnlock(b *testing.B, l lock.Locker, key func(i int64) string) {
	ctx := context.Background()
	var seq atomic.Int64
	var mu sync.Mutex
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		var local []time.Duration
		defer func() {
			mu.Lock()
			lat = append(lat, local...)
			mu.Unlock()
		}()
		for pb.Next() {
			k := key(seq.Add(1))
			start := time.Now()
			lease, err := l.Lock(ctx, k)
			local = append(local, time.Since(start))
			if err != nil {
				b.Error(err)
				return
			}
			if err := lease.Unlock(ctx); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.StopTimer()
	if len(lat) == 0 {
		return
	}
	slices.Sort(lat)
	at := func(p int) float64 { return float64(lat[(len(lat)-1)*p/100].Microseconds()) }
	b.ReportMetric(at(50), "p50-µs")
	b.ReportMetric(at(99), "p99-µs")
}

func newLocker(tb testing.TB, cfg redislock.Config) *redislock.Locker {
	tb.Helper()
	l, err := redislock.New(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = l.Close() })
	return l
}

func startServers(tb testing.TB, n int) []*redistest.Server {
	tb.Helper()
	servers := make([]*redistest.Server, n)
	for i := range servers {
		servers[i] = redistest.Start(tb)
	}
	return servers
}

func addrs(servers []*redistest.Server) []string {
	a := make([]string, len(servers))
	for i, s := range servers {
		a[i] = s.Addr
	}
	return a
}

func mastersName(n int) string {
	if n == 1 {
		return "OneMaster"
	}
	return fmt.Sprintf("%dMasters", n)
}

// lockEventually locks key, retrying while the backend is unavailable: a
// restarted server may take a moment to be dialled again.
func lockEventually(t *testing.T, l lock.Locker, key string) lock.Lease {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for {
		lease, err := l.Lock(ctx, key)
		if err == nil {
			return lease
		}
		if !errors.Is(err, lock.ErrUnavailable) || ctx.Err() != nil {
			t.Fatalf("lock %s: %v", key, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// wantUnavailable checks that Lock fails fast with lock.ErrUnavailable,
// although its context would let it wait much longer.
func wantUnavailable(t *testing.T, l lock.Locker, key string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	start := time.Now()
	lease, err := l.Lock(ctx, key)
	took := time.Since(start)
	if err == nil {
		_ = lease.Unlock(ctx)
		t.Fatal("Lock succeeded without a quorum")
	}
	if !errors.Is(err, lock.ErrUnavailable) || errors.Is(err, lock.ErrNotAcquired) || ctx.Err() != nil {
		t.Fatalf("Lock without a quorum = %v, want lock.ErrUnavailable", err)
	}
	if took > fast {
		t.Fatalf("Lock took %v to report the backend unavailable, want under %v", took, fast)
	}
	t.Logf("unavailable after %v: %v", took.Round(time.Millisecond), err)
}

// TestElector: leadership through the lock, kept alive by lease renewal.
func TestElector(t *testing.T) {
	servers := startServers(t, 1)
	locktest.RunElector(t, func(t *testing.T) lock.Elector {
		return lock.LockElector{Locker: newLocker(t, redislock.Config{Addrs: addrs(servers), TTL: suiteTTL}), Retry: 50 * time.Millisecond}
	}, suiteTTL, func(_ *testing.T, l lock.Lease) { redislock.Abandon(l) })
}
