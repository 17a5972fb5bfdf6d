package etcdlock_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shopstack/inventory/internal/lock"
	"github.com/shopstack/inventory/internal/lock/etcdlock"
	"github.com/shopstack/inventory/internal/testenv"
	"github.com/shopstack/inventory/internal/testenv/etcdtest"
)

// TestLeaderKilled crashes the leader of a 3-member cluster while three
// replicas take turns on one key: exclusion and token order hold
// throughout, and locking goes on after the election.
func TestLeaderKilled(t *testing.T) {
	c := etcdtest.Start(t, 3)
	// Sessions must outlive the election; with the 2s test TTL a session
	// may lapse while keepalives get no answer.
	cfg := etcdlock.Config{TTL: 5 * time.Second}
	lockers := []*etcdlock.Locker{mustNew(t, c, cfg), mustNew(t, c, cfg), mustNew(t, c, cfg)}
	const workers = 6

	var (
		inside, maxInside, lastToken atomic.Int64
		before, after, lost          atomic.Int64
		lockUnavailable, unlockFail  atomic.Int64
		slowest                      atomic.Int64 // longest Lock call, ns
		elected                      atomic.Bool
		mu                           sync.Mutex
		failures                     []error
	)
	fail := func(err error) {
		mu.Lock()
		failures = append(failures, err)
		mu.Unlock()
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i := range workers {
		wg.Go(func() {
			l := lockers[i%len(lockers)]
			for {
				select {
				case <-stop:
					return
				default:
				}
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				start := time.Now()
				le, err := l.Lock(ctx, "hot")
				if d := int64(time.Since(start)); d > slowest.Load() {
					slowest.Store(d) // racy max, good enough for a log line
				}
				if err != nil {
					cancel()
					if errors.Is(err, lock.ErrUnavailable) {
						lockUnavailable.Add(1)
						continue
					}
					fail(err)
					return
				}
				n := inside.Add(1)
				for m := maxInside.Load(); n > m && !maxInside.CompareAndSwap(m, n); m = maxInside.Load() {
				}
				if prev := lastToken.Swap(le.Token()); le.Token() <= prev {
					fail(errors.New("token did not increase"))
				}
				time.Sleep(200 * time.Microsecond)
				select {
				case <-le.Done():
					lost.Add(1)
				default:
				}
				inside.Add(-1)
				if err := le.Unlock(ctx); err != nil {
					unlockFail.Add(1)
					t.Logf("unlock: %v", err)
				}
				cancel()
				if elected.Load() {
					after.Add(1)
				} else {
					before.Add(1)
				}
			}
		})
	}

	time.Sleep(time.Second)
	lead := c.Leader(t)
	killed := time.Now()
	c.Kill(t, lead)
	next := c.Leader(t)
	elected.Store(true)
	t.Logf("killed leader m%d; m%d leads after %v", lead, next, time.Since(killed).Round(time.Millisecond))
	testenv.Poll(20*time.Second, func() bool { return after.Load() >= 100 })
	close(stop)
	wg.Wait()

	t.Logf("critical sections: %d before the election, %d after; slowest Lock %v",
		before.Load(), after.Load(), time.Duration(slowest.Load()).Round(time.Millisecond))
	t.Logf("Lock ErrUnavailable: %d, Unlock errors: %d, leases lost while held: %d",
		lockUnavailable.Load(), unlockFail.Load(), lost.Load())
	for _, err := range failures {
		t.Error(err)
	}
	if got := maxInside.Load(); got != 1 {
		t.Errorf("%d holders at once, want 1", got)
	}
	if after.Load() == 0 {
		t.Error("no lock granted after the election")
	}
	if lost.Load() != 0 {
		t.Errorf("%d leases lost while held: sessions should outlive an election", lost.Load())
	}
}

// TestRapidHandoff passes one key back and forth between two replicas as
// fast as they can. A waiter that misses its predecessor's delete (the key
// name of a session is the same for every acquisition, so the key may be
// back under a new create revision) waits forever: each Lock gets 20s.
func TestRapidHandoff(t *testing.T) {
	c := etcdtest.Start(t, 1)
	replicas := []*etcdlock.Locker{mustNew(t, c, etcdlock.Config{}), mustNew(t, c, etcdlock.Config{})}
	const workers, rounds = 8, 60
	var wg sync.WaitGroup
	errs := make(chan error, workers*rounds)
	for i := range workers {
		wg.Go(func() {
			l := replicas[i%len(replicas)]
			for range rounds {
				ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
				le, err := l.Lock(ctx, "hot")
				if err != nil {
					cancel()
					errs <- err
					return
				}
				if err := le.Unlock(ctx); err != nil {
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
