package locktest

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/shopstack/inventory/internal/lock"
)

// prompt bounds a TryLock: it waits for no holder, so it answers within a
// few round trips however long the keys stay held.
const prompt = 5 * time.Second

// testTryLock asks one locker for five keys at once: two free, one held by
// another replica, one held by this locker, and a free key listed twice.
// Each free key is granted and the others refused as taken, promptly; the
// granted leases exclude other holders until they are released.
func testTryLock(t *testing.T, b Backend) {
	ctx := context.Background()
	a, other := b.New(t), b.New(t)
	free1, free2, elsewhere, here := uniqueKey(t), uniqueKey(t), uniqueKey(t), uniqueKey(t)
	heldElsewhere, err := other.Lock(ctx, elsewhere)
	if err != nil {
		t.Fatal(err)
	}
	defer heldElsewhere.Unlock(ctx)
	heldHere, err := a.Lock(ctx, here)
	if err != nil {
		t.Fatal(err)
	}
	defer heldHere.Unlock(ctx)

	keys := []string{free1, elsewhere, free2, here, free1}
	start := time.Now()
	grants := tryLock(ctx, a, keys)
	if took := time.Since(start); took > prompt {
		t.Errorf("TryLock took %v with keys held, want under %v", took, prompt)
	}
	if len(grants) != len(keys) {
		t.Fatalf("TryLock of %d keys returned %d grants", len(keys), len(grants))
	}
	for i, g := range grants {
		granted := i == 0 || i == 2
		switch {
		case granted && g.Err != nil:
			t.Errorf("free key %d (%s) refused: %v", i, keys[i], g.Err)
		case granted && g.Lease == nil:
			t.Errorf("free key %d granted without a lease", i)
		case !granted && g.Lease != nil:
			_ = g.Lease.Unlock(ctx)
			t.Errorf("key %d (%s), held or listed before, was granted", i, keys[i])
		case !granted && (!errors.Is(g.Err, lock.ErrNotAcquired) || errors.Is(g.Err, lock.ErrUnavailable)):
			t.Errorf("key %d (%s) refused with %v, want lock.ErrNotAcquired only", i, keys[i], g.Err)
		}
	}
	for _, i := range []int{0, 2} {
		if grants[i].Lease == nil {
			continue
		}
		probeCtx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
		if stolen, err := other.Lock(probeCtx, keys[i]); err == nil {
			_ = stolen.Unlock(ctx)
			t.Errorf("another replica got %s while a TryLock lease held it", keys[i])
		}
		cancel()
		token := grants[i].Lease.Token()
		if err := grants[i].Lease.Unlock(ctx); err != nil {
			t.Errorf("unlock %s: %v", keys[i], err)
		}
		next, err := other.Lock(ctx, keys[i])
		if err != nil {
			t.Fatalf("lock %s after its TryLock lease was released: %v", keys[i], err)
		}
		if next.Token() <= token {
			t.Errorf("%s: token %d after the TryLock lease's %d", keys[i], next.Token(), token)
		}
		_ = next.Unlock(ctx)
	}
}

// testTryLockTokens alternates Lock and TryLock of many keys at once over
// two lockers: every key's tokens strictly increase.
func testTryLockTokens(t *testing.T, b Backend) {
	ctx := context.Background()
	lockers := []lock.Locker{b.New(t), b.New(t)}
	keys := make([]string, 20)
	for i := range keys {
		keys[i] = fmt.Sprintf("%s/%d", uniqueKey(t), i)
	}
	last := make([]int64, len(keys))
	see := func(round, i int, l lock.Lease) {
		t.Helper()
		if tok := l.Token(); tok <= last[i] {
			t.Fatalf("round %d, key %d: token %d after %d", round, i, tok, last[i])
		} else {
			last[i] = tok
		}
		if err := l.Unlock(ctx); err != nil {
			t.Fatalf("round %d, key %d: unlock: %v", round, i, err)
		}
	}
	for round := range 6 {
		l := lockers[round%2]
		if round%3 == 2 {
			for i, k := range keys {
				lease, err := l.Lock(ctx, k)
				if err != nil {
					t.Fatal(err)
				}
				see(round, i, lease)
			}
			continue
		}
		for i, g := range tryLock(ctx, l, keys) {
			if g.Err != nil {
				t.Fatalf("round %d: free key %d refused: %v", round, i, g.Err)
			}
			see(round, i, g.Lease)
		}
	}
}

// tryLock is l.TryLock(ctx, keys), asked again (up to three times) for the
// keys it answered unavailable: a backend may answer a first request
// slowly (a cluster client loads its slot map), and a lease granted too
// late to be valid is refused as unavailable.
func tryLock(ctx context.Context, l lock.Locker, keys []string) []lock.Grant {
	grants := l.TryLock(ctx, keys)
	for range 3 {
		var again []int
		for i, g := range grants {
			if errors.Is(g.Err, lock.ErrUnavailable) {
				again = append(again, i)
			}
		}
		if len(again) == 0 {
			break
		}
		ks := make([]string, len(again))
		for j, i := range again {
			ks[j] = keys[i]
		}
		for j, g := range l.TryLock(ctx, ks) {
			grants[again[j]] = g
		}
	}
	return grants
}
