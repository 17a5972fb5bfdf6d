package pipeline_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/shopstack/inventory/internal/lock"
	"github.com/shopstack/inventory/internal/pipeline"
	"github.com/shopstack/inventory/internal/testenv"
)

// TestKeepsLeaseWhileBusy: a key's requests, one at a time, a little
// apart, are served under one lease; once the key got no work for Idle
// the lease is released (another holder gets it), and the next request
// takes a new one.
func TestKeepsLeaseWhileBusy(t *testing.T) {
	c := newCounters()
	const idle = 300 * time.Millisecond
	p := pipeline.New[key, op, int64](c, pipeline.Config{Idle: idle, MaxKeep: time.Minute})
	defer p.Wait()
	ctx := context.Background()
	k := key{1, 1}
	for i := range 5 {
		if _, err := p.Submit(ctx, k, op{add: 1}); err != nil {
			t.Fatal(err)
		}
		if i < 4 {
			time.Sleep(idle / 10)
		}
	}
	if n := c.lockCalls(k); n != 1 {
		t.Fatalf("5 requests within the idle time asked for the lease %d times, want 1", n)
	}
	// The lease is kept: another holder cannot have it now (TryLock
	// waits for nobody, so the holder does not hear it is wanted)...
	if g := c.locker.TryLock(ctx, []string{fmt.Sprint(k)})[0]; g.Err == nil {
		_ = g.Lease.Unlock(ctx)
		t.Fatal("the key's lease was free right after its requests")
	}
	// ...and gets it once the key was idle for Idle.
	testenv.Eventually(t, "the lease of an idle key released", func() bool {
		g := c.locker.TryLock(ctx, []string{fmt.Sprint(k)})[0]
		if g.Err == nil {
			_ = g.Lease.Unlock(ctx)
		}
		return g.Err == nil
	})
	if _, err := p.Submit(ctx, k, op{add: 1}); err != nil {
		t.Fatal(err)
	}
	if n := c.lockCalls(k); n != 2 {
		t.Fatalf("a request after the release asked for the lease %d times in all, want 2", n)
	}
}

// TestWantedLeaseLetGo: a lease kept for an idle key is let go as soon as
// another holder waits for it (lock.Contended), not after Idle; a lease
// kept busy through MaxHold is kept on while nobody waits, and let go,
// between two batches, once someone does. The key's requests all succeed.
func TestWantedLeaseLetGo(t *testing.T) {
	c := newCounters()
	p := pipeline.New[key, op, int64](c, pipeline.Config{Idle: time.Hour, MaxKeep: time.Hour, MaxHold: time.Millisecond, MaxBatch: 1})
	defer p.Wait()
	ctx, cancel := context.WithTimeout(context.Background(), testenv.Wait)
	defer cancel()
	k := key{1, 1}
	if _, err := p.Submit(ctx, k, op{add: 1}); err != nil {
		t.Fatal(err)
	}
	l, err := c.locker.Lock(ctx, fmt.Sprint(k))
	if err != nil {
		t.Fatalf("a kept lease was not let go to a holder waiting for it: %v", err)
	}
	_ = l.Unlock(ctx)

	// Busy: three requests, one per batch, whose commits wait for the
	// test, so that the queue does not empty.
	c.gate = make(chan struct{})
	openGate := sync.OnceFunc(func() { close(c.gate) })
	defer openGate() // before p.Wait, should the test fail
	c.committing.Store(0)
	results := make(chan error, 3)
	for range 3 {
		go func() {
			_, err := p.Submit(ctx, k, op{add: 1})
			results <- err
		}()
	}
	testenv.Eventually(t, "the first batch committing", func() bool { return c.committing.Load() == 1 })
	time.Sleep(5 * time.Millisecond) // past MaxHold
	before := c.lockCalls(k)
	c.gate <- struct{}{}
	testenv.Eventually(t, "the second batch committing", func() bool { return c.committing.Load() == 2 })
	if n := c.lockCalls(k) - before; n != 0 {
		t.Fatalf("a busy lease nobody else wants was let go after MaxHold: asked for %d more times", n)
	}
	got := make(chan lock.Lease, 1)
	go func() {
		l, err := c.locker.Lock(ctx, fmt.Sprint(k))
		if err != nil {
			t.Error(err)
		}
		got <- l
	}()
	testenv.Eventually(t, "the holder told its key is wanted", func() bool {
		select {
		case <-lock.WantedOf(c.lease(k)):
			return true
		default:
			return false
		}
	})
	c.gate <- struct{}{}
	select {
	case l = <-got:
	case <-ctx.Done():
		t.Fatal("a busy lease was not let go, after its batch, to a holder waiting for it")
	}
	if n := c.committing.Load(); n != 2 {
		t.Fatalf("%d batches committing while the lease is held elsewhere, want 2 (the third waits for it)", n)
	}
	_ = l.Unlock(ctx)
	openGate()
	for range 3 {
		if err := <-results; err != nil {
			t.Fatal(err)
		}
	}
}

// TestMaxKeepBoundsAKeptLease: a lease kept across requests is released
// after MaxKeep however busy its key.
func TestMaxKeepBoundsAKeptLease(t *testing.T) {
	c := newCounters()
	p := pipeline.New[key, op, int64](c, pipeline.Config{Idle: time.Minute, MaxKeep: 50 * time.Millisecond})
	defer p.Wait()
	ctx := context.Background()
	k := key{1, 1}
	deadline := time.Now().Add(300 * time.Millisecond)
	for time.Now().Before(deadline) {
		if _, err := p.Submit(ctx, k, op{add: 1}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if n := c.lockCalls(k); n < 3 {
		t.Fatalf("300ms of requests with MaxKeep 50ms asked for the lease %d times, want at least 3", n)
	}
}

// TestLeasesOfManyKeysAtOnce: workers that need their keys' leases at the
// same time get them from a few TryLock calls, not one each.
func TestLeasesOfManyKeysAtOnce(t *testing.T) {
	c := newCounters()
	c.tryDelay = 50 * time.Millisecond
	p := pipeline.New[key, op, int64](c, pipeline.Config{})
	defer p.Wait()
	const keys = 50
	var wg sync.WaitGroup
	for i := range keys {
		wg.Go(func() {
			if _, err := p.Submit(context.Background(), key{int64(i), 0}, op{add: 1}); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if n := c.tries.Load(); n > 5 {
		t.Fatalf("%d TryLock calls for %d keys asked for at once, want a few", n, keys)
	}
	t.Logf("%d TryLock calls for %d keys", c.tries.Load(), keys)
}

// TestHeldKeyStallsNoOtherKey holds one key's lease elsewhere: requests on
// forty other keys, asked for in the same TryLock, complete while the held
// key's request waits, and that one completes once the lease is let go.
func TestHeldKeyStallsNoOtherKey(t *testing.T) {
	c := newCounters()
	p := pipeline.New[key, op, int64](c, pipeline.Config{})
	defer p.Wait()
	ctx := context.Background()
	heldKey := key{0, 0}
	lease, err := c.locker.Lock(ctx, fmt.Sprint(heldKey))
	if err != nil {
		t.Fatal(err)
	}
	heldDone := make(chan error, 1)
	go func() {
		_, err := p.Submit(ctx, heldKey, op{add: 1})
		heldDone <- err
	}()
	var wg sync.WaitGroup
	for i := 1; i <= 40; i++ {
		wg.Go(func() {
			if _, err := p.Submit(ctx, key{int64(i), 0}, op{add: 1}); err != nil {
				t.Error(err)
			}
		})
	}
	others := make(chan struct{})
	go func() { wg.Wait(); close(others) }()
	select {
	case <-others:
	case <-time.After(testenv.Wait):
		t.Fatal("requests on other keys waited for the held key")
	}
	select {
	case err := <-heldDone:
		t.Fatalf("the held key's request returned (%v) while its lease was held elsewhere", err)
	default:
	}
	if err := lease.Unlock(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-heldDone; err != nil {
		t.Fatal(err)
	}
}

// TestReleaseKeepsNoLeaseWhileWanted: while a caller here waits to take a
// key's lease itself (Release), the key's batches let the lease go after
// them rather than keep it for Idle; once the caller is done, it is kept
// again.
func TestReleaseKeepsNoLeaseWhileWanted(t *testing.T) {
	c := newCounters()
	p := pipeline.New[key, op, int64](c, pipeline.Config{Idle: time.Minute, MaxKeep: time.Minute})
	defer p.Wait()
	ctx := context.Background()
	k := key{1, 1}
	free := func() bool {
		g := c.locker.TryLock(ctx, []string{fmt.Sprint(k)})[0]
		if g.Err == nil {
			_ = g.Lease.Unlock(ctx)
		}
		return g.Err == nil
	}
	done := p.Release(ctx, []key{k})
	if _, err := p.Submit(ctx, k, op{add: 1}); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, "the lease let go after its batch while wanted", free)
	done()
	if _, err := p.Submit(ctx, k, op{add: 1}); err != nil {
		t.Fatal(err)
	}
	if free() {
		t.Fatal("the lease was let go after its batch with nobody here waiting for it")
	}
}
