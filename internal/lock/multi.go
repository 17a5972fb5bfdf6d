package lock

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/shopstack/inventory/internal/retry"
)

// Leases are the leases LockAll acquired, in key order.
type Leases []Lease

// allAtOnceWaits is how many keys LockAll waits for, holding no other,
// before it takes the keys in order instead.
const allAtOnceWaits = 2

// LockAll acquires the leases on keys, all or none, and returns them in
// key order. Duplicate keys are locked once. On failure it releases what
// it had acquired (with a context detached from ctx) and returns the
// error.
//
// It first tries to take them all at once, holding none while it waits
// for one: one TryLock (one round trip per lock server) for every key,
// and when some are held it lets go of those it got, waits for one of
// the held keys alone (Lock), and tries the rest again. So a caller
// waiting for a busy key keeps no other key from the requests that would
// run on it meanwhile. That can go on while others keep taking some of
// the keys, so after allAtOnceWaits waits it takes them in key order
// instead, holding those before the key it waits for: since every
// caller that holds a key while it waits for another waits in that
// order, no two deadlock, and each wait gains a key for good. It still
// takes each run of free keys in one TryLock.
func LockAll(ctx context.Context, l Locker, keys []string) (Leases, error) {
	sorted := slices.Clone(keys)
	slices.Sort(sorted)
	sorted = slices.Compact(sorted)
	var waited Lease // the lease of the key last waited for, if any
	waitedKey := ""
	for round := 0; ; round++ {
		rest := slices.DeleteFunc(slices.Clone(sorted), func(k string) bool { return waited != nil && k == waitedKey })
		var grants []Grant
		if len(rest) > 0 {
			grants = l.TryLock(ctx, rest)
		}
		leases := make(Leases, 0, len(sorted))
		var busy string
		var err error
		j := 0 // rest is sorted without the key waited for
		for _, k := range sorted {
			if waited != nil && k == waitedKey {
				leases = append(leases, waited)
				continue
			}
			g := grants[j]
			j++
			switch {
			case g.Err == nil:
				leases = append(leases, g.Lease)
			case refused(g.Err):
				if busy == "" {
					busy = k
				}
			case err == nil:
				err = fmt.Errorf("lock %s: %w", k, g.Err)
			}
		}
		if err == nil && busy == "" {
			return leases, nil
		}
		_ = leases.Unlock(context.WithoutCancel(ctx))
		waited = nil
		if err != nil {
			return nil, err
		}
		if round == allAtOnceWaits {
			return lockInOrder(ctx, l, sorted)
		}
		if round > 0 {
			// Two callers that want each other's key must not keep
			// refusing each other in step.
			if !retry.Sleep(ctx, time.Duration(rand.Int64N(int64(time.Millisecond)))) {
				return nil, fmt.Errorf("lock %s: %w", busy, ctx.Err())
			}
		}
		lease, err := l.Lock(ctx, busy)
		if err != nil {
			return nil, fmt.Errorf("lock %s: %w", busy, err)
		}
		waited, waitedKey = lease, busy
	}
}

// lockInOrder takes the leases of sorted (sorted, without duplicates) in
// that order: each run of free keys in one TryLock, and the first held
// key after it with Lock, holding only the keys before it.
func lockInOrder(ctx context.Context, l Locker, sorted []string) (Leases, error) {
	leases := make(Leases, 0, len(sorted))
	fail := func(key string, err error) (Leases, error) {
		_ = leases.Unlock(context.WithoutCancel(ctx))
		return nil, fmt.Errorf("lock %s: %w", key, err)
	}
	for i := 0; i < len(sorted); {
		grants := l.TryLock(ctx, sorted[i:])
		first := slices.IndexFunc(grants, func(g Grant) bool { return g.Err != nil })
		if first < 0 {
			first = len(grants)
		}
		for j, g := range grants {
			switch {
			case j < first:
				leases = append(leases, g.Lease)
			case g.Err == nil:
				// Held past a key this waits for: let go for now.
				_ = g.Lease.Unlock(context.WithoutCancel(ctx))
			}
		}
		i += first
		if i == len(sorted) {
			break
		}
		if g := grants[first]; !refused(g.Err) {
			return fail(sorted[i], g.Err)
		}
		lease, err := l.Lock(ctx, sorted[i])
		if err != nil {
			return fail(sorted[i], err)
		}
		leases = append(leases, lease)
		i++
	}
	return leases, nil
}

// refused reports whether err, a Grant's, says the key is held.
func refused(err error) bool {
	return errors.Is(err, ErrNotAcquired) && !errors.Is(err, ErrUnavailable)
}

// Unlock releases every lease, in reverse order, and joins their errors.
func (ls Leases) Unlock(ctx context.Context) error {
	var errs []error
	for i := len(ls) - 1; i >= 0; i-- {
		if err := ls[i].Unlock(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
