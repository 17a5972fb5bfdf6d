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

// Run checks the lock.Locker contract against lockers made by newLocker.
// Every call of newLocker must return a locker on the same backend state, so
// that several lockers contend like several replicas.
func Run(t *testing.T, newLocker func(t *testing.T) lock.Locker) {
	t.Run("MutualExclusion", func(t *testing.T) { testMutualExclusion(t, newLocker) })
	t.Run("TokensIncrease", func(t *testing.T) { testTokensIncrease(t, newLocker(t)) })
	t.Run("UnlockIdempotent", func(t *testing.T) { testUnlockIdempotent(t, newLocker(t)) })
	t.Run("CancelWhileWaiting", func(t *testing.T) { testCancel(t, newLocker(t)) })
	t.Run("IndependentKeys", func(t *testing.T) { testIndependentKeys(t, newLocker(t)) })
}

func testMutualExclusion(t *testing.T, newLocker func(t *testing.T) lock.Locker) {
	const workers, rounds = 50, 4
	lockers := []lock.Locker{newLocker(t), newLocker(t)}
	key := uniqueKey(t)
	var inside, maxInside, total atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for i := range workers {
		wg.Go(func() {
			l := lockers[i%len(lockers)]
			for range rounds {
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
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

func testTokensIncrease(t *testing.T, l lock.Locker) {
	ctx := context.Background()
	key := uniqueKey(t)
	var last int64
	for i := range 20 {
		lease, err := l.Lock(ctx, key)
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
	time.Sleep(20 * time.Millisecond)
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

func testIndependentKeys(t *testing.T, l lock.Locker) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	a, err := l.Lock(ctx, uniqueKey(t)+"/a")
	if err != nil {
		t.Fatal(err)
	}
	defer a.Unlock(ctx)
	b, err := l.Lock(ctx, uniqueKey(t)+"/b")
	if err != nil {
		t.Fatalf("a held key blocked another key: %v", err)
	}
	_ = b.Unlock(ctx)
}

var keySeq atomic.Int64

func uniqueKey(t *testing.T) string {
	return fmt.Sprintf("locktest/%s/%d/%d", t.Name(), time.Now().UnixNano(), keySeq.Add(1))
}
