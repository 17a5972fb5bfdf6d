// Package locktest is the conformance suite for lock.Locker backends.
package locktest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shopstack/inventory/internal/lock"
)

// Backend describes the backend under test.
type Backend struct {
	// New returns a locker on the shared backend state. Each call must
	// return a distinct locker (its own connections and sessions), so that
	// several lockers contend like several replicas.
	New func(t *testing.T) lock.Locker
	// TTL is the lease time to live of the lockers New returns; zero for
	// backends whose leases never lapse (the TTL tests are then skipped).
	TTL time.Duration
	// Abandon makes the holder of lease stop maintaining it, as if its
	// process were paused or had died, without releasing it. Required when
	// TTL is set.
	Abandon func(t *testing.T, lease lock.Lease)
	// Contended says the backend's leases tell their holder when another
	// replica waits for their key (lock.Contended).
	Contended bool
}

// Run checks the lock.Locker contract.
func Run(t *testing.T, b Backend) {
	if d := b.New(t).Domain(); d == "" || len(d) > 200 {
		t.Fatalf("Domain() = %q, want 1..200 characters", d)
	}
	t.Run("MutualExclusion", func(t *testing.T) { testMutualExclusion(t, b) })
	t.Run("TokensIncrease", func(t *testing.T) { testTokensIncrease(t, b) })
	t.Run("UnlockIdempotent", func(t *testing.T) { testUnlockIdempotent(t, b.New(t)) })
	t.Run("CancelWhileWaiting", func(t *testing.T) { testCancel(t, b.New(t)) })
	t.Run("DeadlineWhileWaiting", func(t *testing.T) { testDeadline(t, b) })
	t.Run("IndependentKeys", func(t *testing.T) { testIndependentKeys(t, b.New(t)) })
	t.Run("LockAllSorted", func(t *testing.T) { testLockAll(t, b) })
	t.Run("LockAllHoldsNoneWhileWaiting", func(t *testing.T) { testLockAllWaiting(t, b) })
	t.Run("TryLockEachKey", func(t *testing.T) { testTryLock(t, b) })
	t.Run("TryLockTokensIncrease", func(t *testing.T) { testTryLockTokens(t, b) })
	if b.Contended {
		t.Run("WantedHandsOff", func(t *testing.T) { testWantedHandsOff(t, b) })
	}
	if b.TTL <= 0 {
		return
	}
	if b.Abandon == nil {
		t.Fatal("locktest: Backend.Abandon is required when TTL is set")
	}
	t.Run("ExpiryFreesKey", func(t *testing.T) { testExpiry(t, b, lockOne) })
	t.Run("LongHolderKeepsLease", func(t *testing.T) { testLongHolder(t, b, lockOne) })
	t.Run("TryLockExpiryFreesKey", func(t *testing.T) { testExpiry(t, b, tryLockOne) })
	t.Run("TryLockLongHolderKeepsLease", func(t *testing.T) { testLongHolder(t, b, tryLockOne) })
}

// acquireFunc takes key's lease through l, with Lock or with TryLock.
type acquireFunc func(ctx context.Context, l lock.Locker, key string) (lock.Lease, error)

func lockOne(ctx context.Context, l lock.Locker, key string) (lock.Lease, error) {
	return l.Lock(ctx, key)
}

func tryLockOne(ctx context.Context, l lock.Locker, key string) (lock.Lease, error) {
	g := l.TryLock(ctx, []string{key})
	if len(g) != 1 {
		return nil, fmt.Errorf("TryLock of one key returned %d grants", len(g))
	}
	return g[0].Lease, g[0].Err
}

// testMutualExclusion runs 50 goroutines over two lockers (two "replicas")
// on one key: never more than one inside.
func testMutualExclusion(t *testing.T, b Backend) {
	const workers, rounds = 50, 4
	lockers := []lock.Locker{b.New(t), b.New(t)}
	key := uniqueKey(t)
	var inside, maxInside, total atomic.Int64
	var lastToken atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, workers*rounds)
	for i := range workers {
		wg.Go(func() {
			l := lockers[i%len(lockers)]
			for range rounds {
				ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
				lease, err := l.Lock(ctx, key)
				if err != nil {
					cancel()
					errs <- err
					return
				}
				n := inside.Add(1)
				for {
					m := maxInside.Load()
					if n <= m || maxInside.CompareAndSwap(m, n) {
						break
					}
				}
				// Inside the critical section tokens must increase in
				// acquisition order.
				if prev := lastToken.Swap(lease.Token()); lease.Token() <= prev {
					errs <- fmt.Errorf("token %d granted after %d", lease.Token(), prev)
				}
				total.Add(1)
				time.Sleep(100 * time.Microsecond)
				inside.Add(-1)
				if err := lease.Unlock(ctx); err != nil {
					errs <- err
				}
				cancel()
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("lock/unlock: %v", err)
	}
	if got := maxInside.Load(); got != 1 {
		t.Errorf("%d holders at once, want 1", got)
	}
	if got := total.Load(); got != workers*rounds {
		t.Errorf("%d critical sections, want %d", got, workers*rounds)
	}
}

// testTokensIncrease alternates two lockers on one key: each token is
// greater than the one before, whichever replica got it.
func testTokensIncrease(t *testing.T, b Backend) {
	ctx := context.Background()
	lockers := []lock.Locker{b.New(t), b.New(t)}
	key := uniqueKey(t)
	var last int64
	for i := range 20 {
		lease, err := lockers[i%2].Lock(ctx, key)
		if err != nil {
			t.Fatalf("lock %d: %v", i, err)
		}
		if tok := lease.Token(); tok <= last {
			t.Fatalf("token %d after %d: tokens must strictly increase", tok, last)
		} else {
			last = tok
		}
		if err := lease.Unlock(ctx); err != nil {
			t.Fatalf("unlock %d: %v", i, err)
		}
	}
}

func testUnlockIdempotent(t *testing.T, l lock.Locker) {
	ctx := context.Background()
	key := uniqueKey(t)
	lease, err := l.Lock(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-lease.Done():
		t.Fatal("Done() closed while the lease is held")
	default:
	}
	if err := lease.Unlock(ctx); err != nil {
		t.Fatalf("first unlock: %v", err)
	}
	if err := lease.Unlock(ctx); err != nil && !errors.Is(err, lock.ErrLeaseLost) {
		t.Fatalf("second unlock: %v", err)
	}
	select {
	case <-lease.Done():
	default:
		t.Error("Done() not closed after Unlock")
	}
	// The key is free again.
	ctx2, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	again, err := l.Lock(ctx2, key)
	if err != nil {
		t.Fatalf("lock after unlock: %v", err)
	}
	_ = again.Unlock(ctx)
}

func testCancel(t *testing.T, l lock.Locker) {
	ctx := context.Background()
	key := uniqueKey(t)
	held, err := l.Lock(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	defer held.Unlock(ctx)
	waitCtx, cancel := context.WithCancel(ctx)
	got := make(chan error, 1)
	go func() {
		lease, err := l.Lock(waitCtx, key)
		if err == nil {
			_ = lease.Unlock(ctx)
		}
		got <- err
	}()
	time.Sleep(50 * time.Millisecond)
	cancel()
	select {
	case err := <-got:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Lock after cancel = %v, want context.Canceled", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Lock did not return after its context was cancelled")
	}
}

// testDeadline waits on a key another replica holds: the wait ends with
// context.DeadlineExceeded, told apart from a backend failure.
func testDeadline(t *testing.T, b Backend) {
	ctx := context.Background()
	key := uniqueKey(t)
	held, err := b.New(t).Lock(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	defer held.Unlock(ctx)
	waitCtx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	lease, err := b.New(t).Lock(waitCtx, key)
	if err == nil {
		_ = lease.Unlock(ctx)
		t.Fatal("a second replica got a held key")
	}
	if !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, lock.ErrNotAcquired) {
		t.Fatalf("Lock past its deadline = %v, want context.DeadlineExceeded or lock.ErrNotAcquired", err)
	}
	if errors.Is(err, lock.ErrUnavailable) {
		t.Fatalf("Lock on a busy key = %v: a taken key is not an unavailable backend", err)
	}
}

func testIndependentKeys(t *testing.T, l lock.Locker) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	key := uniqueKey(t)
	a, err := l.Lock(ctx, key+"/a")
	if err != nil {
		t.Fatal(err)
	}
	defer a.Unlock(ctx)
	b, err := l.Lock(ctx, key+"/b")
	if err != nil {
		t.Fatalf("a held key blocked another key: %v", err)
	}
	_ = b.Unlock(ctx)
}

// testLockAll runs two replicas that lock overlapping key sets given in
// opposite orders: neither deadlocks.
func testLockAll(t *testing.T, b Backend) {
	key := uniqueKey(t)
	sets := [][]string{{key + "/c", key + "/a", key + "/b"}, {key + "/b", key + "/c", key + "/a", key + "/a"}}
	lockers := []lock.Locker{b.New(t), b.New(t)}
	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for i := range 2 {
		wg.Go(func() {
			for range 10 {
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				leases, err := lock.LockAll(ctx, lockers[i], sets[i])
				if err != nil {
					cancel()
					errs <- err
					return
				}
				if len(leases) != 3 {
					errs <- fmt.Errorf("LockAll returned %d leases for 3 distinct keys", len(leases))
				}
				if err := leases.Unlock(context.Background()); err != nil {
					errs <- err
				}
				cancel()
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// testLockAllWaiting has LockAll wait for a held key: meanwhile the other
// key it wants stays free for others, and it returns both leases once
// each holder has let go.
func testLockAllWaiting(t *testing.T, b Backend) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	key := uniqueKey(t)
	free, busy := key+"/a", key+"/b"
	other := b.New(t)
	held, err := other.Lock(ctx, busy)
	if err != nil {
		t.Fatal(err)
	}
	type result struct {
		leases lock.Leases
		err    error
	}
	done := make(chan result, 1)
	waiting := make(chan struct{})
	go func() {
		l := &announcer{Locker: b.New(t), key: busy, waiting: waiting}
		leases, err := lock.LockAll(ctx, l, []string{busy, free})
		done <- result{leases, err}
	}()
	select {
	case <-waiting:
	case r := <-done:
		t.Fatalf("LockAll returned (%v) without waiting for %s", r.err, busy)
	}
	// LockAll waits for busy now: free must be free.
	g := other.TryLock(ctx, []string{free})[0]
	if g.Err != nil {
		t.Fatalf("TryLock(%s) while LockAll waits for %s = %v, want it granted", free, busy, g.Err)
	}
	mine := g.Lease
	select {
	case r := <-done:
		t.Fatalf("LockAll returned (%v) while both keys were held elsewhere", r.err)
	default:
	}
	if err := held.Unlock(ctx); err != nil {
		t.Fatal(err)
	}
	if err := mine.Unlock(ctx); err != nil {
		t.Fatal(err)
	}
	r := <-done
	if r.err != nil {
		t.Fatalf("LockAll: %v", r.err)
	}
	if len(r.leases) != 2 || r.leases[0].Token() <= mine.Token() || r.leases[1].Token() <= held.Token() {
		t.Errorf("LockAll returned %d leases, tokens %v; want 2, above %d and %d", len(r.leases), tokens(r.leases), mine.Token(), held.Token())
	}
	_ = r.leases.Unlock(context.Background())
}

// announcer is a Locker that closes waiting when Lock is first called
// for key.
type announcer struct {
	lock.Locker
	key     string
	waiting chan struct{}
	once    sync.Once
}

func (a *announcer) Lock(ctx context.Context, key string) (lock.Lease, error) {
	if key == a.key {
		a.once.Do(func() { close(a.waiting) })
	}
	return a.Locker.Lock(ctx, key)
}

func tokens(ls lock.Leases) []int64 {
	var ts []int64
	for _, l := range ls {
		ts = append(ts, l.Token())
	}
	return ts
}

// testExpiry abandons a lease: the key is free again about one TTL later,
// the abandoned lease's Done fires, its Unlock reports ErrLeaseLost without
// releasing the new holder, and the new holder's token is greater.
func testExpiry(t *testing.T, b Backend, acquire acquireFunc) {
	ctx := context.Background()
	key := uniqueKey(t)
	old, err := acquire(ctx, b.New(t), key)
	if err != nil {
		t.Fatal(err)
	}
	b.Abandon(t, old)
	start := time.Now()
	waitCtx, cancel := context.WithTimeout(ctx, 4*b.TTL+5*time.Second)
	defer cancel()
	other := b.New(t)
	newer, err := other.Lock(waitCtx, key)
	if err != nil {
		t.Fatalf("key not freed %v after its holder stopped: %v", time.Since(start), err)
	}
	defer newer.Unlock(ctx)
	t.Logf("key freed %v after the holder stopped (TTL %v)", time.Since(start).Round(time.Millisecond), b.TTL)
	if newer.Token() <= old.Token() {
		t.Errorf("new token %d is not greater than the lapsed lease's %d", newer.Token(), old.Token())
	}
	select {
	case <-old.Done():
	case <-time.After(2*b.TTL + 2*time.Second):
		t.Fatal("Done() of the lapsed lease did not fire")
	}
	if err := old.Unlock(ctx); !errors.Is(err, lock.ErrLeaseLost) {
		t.Errorf("Unlock of a lapsed lease = %v, want lock.ErrLeaseLost", err)
	}
	// The lapsed lease's Unlock must not have released the new holder.
	probeCtx, cancelProbe := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancelProbe()
	if stolen, err := b.New(t).Lock(probeCtx, key); err == nil {
		_ = stolen.Unlock(ctx)
		t.Fatal("the key was free while the new holder held it")
	}
	select {
	case <-newer.Done():
		t.Fatal("the new holder's Done() fired")
	default:
	}
}

// testLongHolder holds a lease for several TTLs: it is kept alive while its
// holder works, so Done does not fire and nobody else gets the key.
func testLongHolder(t *testing.T, b Backend, acquire acquireFunc) {
	ctx := context.Background()
	key := uniqueKey(t)
	lease, err := acquire(ctx, b.New(t), key)
	if err != nil {
		t.Fatal(err)
	}
	defer lease.Unlock(ctx)
	probeCtx, cancel := context.WithTimeout(ctx, 2*b.TTL+b.TTL/2)
	defer cancel()
	if stolen, err := b.New(t).Lock(probeCtx, key); err == nil {
		_ = stolen.Unlock(ctx)
		t.Fatalf("another replica got the key while its holder was still working")
	}
	select {
	case <-lease.Done():
		t.Fatal("Done() fired while the holder was still working")
	default:
	}
	if err := lease.Unlock(ctx); err != nil {
		t.Fatalf("unlock after %v: %v", 2*b.TTL+b.TTL/2, err)
	}
}

// testWantedHandsOff has a replica wait for a key another holds: the
// holder hears of it before it lets go (lock.Contended), and once it lets
// go the key is the waiter's: the holder's own TryLock right after its
// Unlock does not take it back.
func testWantedHandsOff(t *testing.T, b Backend) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	key := uniqueKey(t)
	holder, waiter := b.New(t), b.New(t)
	for round := range 3 {
		held, err := holder.Lock(ctx, key)
		if err != nil {
			t.Fatal(err)
		}
		wanted := lock.WantedOf(held)
		if wanted == nil {
			t.Fatal("the lease does not tell when its key is wanted (lock.Contended)")
		}
		select {
		case <-wanted:
			t.Fatalf("round %d: Wanted closed while nobody waits", round)
		default:
		}
		type result struct {
			lease lock.Lease
			err   error
		}
		got := make(chan result, 1)
		go func() {
			l, err := waiter.Lock(ctx, key)
			got <- result{l, err}
		}()
		select {
		case <-wanted:
		case <-ctx.Done():
			t.Fatalf("round %d: the holder never heard that another replica waits for its key", round)
		}
		if err := held.Unlock(ctx); err != nil {
			t.Fatal(err)
		}
		if g := holder.TryLock(ctx, []string{key}); g[0].Err == nil {
			_ = g[0].Lease.Unlock(ctx)
			t.Fatalf("round %d: the holder took back a key another replica waits for", round)
		}
		r := <-got
		if r.err != nil {
			t.Fatalf("round %d: the waiter did not get the key: %v", round, r.err)
		}
		if err := r.lease.Unlock(ctx); err != nil {
			t.Fatal(err)
		}
	}
}

var keySeq atomic.Int64

func uniqueKey(t *testing.T) string {
	return fmt.Sprintf("locktest/%s/%d/%d", t.Name(), time.Now().UnixNano(), keySeq.Add(1))
}

// RunElector checks the Elector contract: one leader at a time among
// several replicas, the next one leads after the leader resigns, and, for
// backends whose leases lapse (ttl > 0; abandon as in Backend), after the
// leader stops renewing.
func RunElector(t *testing.T, newElector func(t *testing.T) lock.Elector, ttl time.Duration, abandon func(t *testing.T, l lock.Lease)) {
	t.Run("OneLeader", func(t *testing.T) {
		name := uniqueKey(t)
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		var leaders, maxLeaders, terms atomic.Int64
		var wg sync.WaitGroup
		for range 3 {
			e := newElector(t)
			wg.Go(func() {
				for range 3 {
					lease, err := e.Campaign(ctx, name)
					if err != nil {
						t.Errorf("campaign: %v", err)
						return
					}
					n := leaders.Add(1)
					for {
						m := maxLeaders.Load()
						if n <= m || maxLeaders.CompareAndSwap(m, n) {
							break
						}
					}
					terms.Add(1)
					time.Sleep(5 * time.Millisecond)
					leaders.Add(-1)
					if err := lease.Unlock(ctx); err != nil {
						t.Errorf("resign: %v", err)
					}
				}
			})
		}
		wg.Wait()
		if maxLeaders.Load() != 1 || terms.Load() != 9 {
			t.Errorf("%d leaders at once over %d terms, want 1 over 9", maxLeaders.Load(), terms.Load())
		}
	})
	t.Run("CancelCampaign", func(t *testing.T) {
		name := uniqueKey(t)
		leader, err := newElector(t).Campaign(context.Background(), name)
		if err != nil {
			t.Fatal(err)
		}
		defer leader.Unlock(context.Background())
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		if l, err := newElector(t).Campaign(ctx, name); err == nil {
			_ = l.Unlock(context.Background())
			t.Fatal("two leaders")
		} else if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("campaign past its deadline = %v, want context.DeadlineExceeded", err)
		}
	})
	if ttl <= 0 {
		return
	}
	t.Run("LeaderDies", func(t *testing.T) {
		name := uniqueKey(t)
		leader, err := newElector(t).Campaign(context.Background(), name)
		if err != nil {
			t.Fatal(err)
		}
		abandon(t, leader)
		start := time.Now()
		ctx, cancel := context.WithTimeout(context.Background(), 4*ttl+5*time.Second)
		defer cancel()
		next, err := newElector(t).Campaign(ctx, name)
		if err != nil {
			t.Fatalf("no new leader %v after the leader stopped: %v", time.Since(start), err)
		}
		defer next.Unlock(context.Background())
		t.Logf("new leader %v after the leader stopped (TTL %v)", time.Since(start).Round(time.Millisecond), ttl)
		select {
		case <-leader.Done():
		case <-time.After(2*ttl + 2*time.Second):
			t.Fatal("the old leader's Done did not fire")
		}
	})
}
