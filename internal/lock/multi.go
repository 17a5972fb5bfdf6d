package lock

import (
	"context"
	"errors"
	"fmt"
	"slices"
)

// Leases are the leases LockAll acquired, in key order.
type Leases []Lease

// LockAll acquires the leases on keys in sorted order, so that two
// operations on overlapping key sets cannot deadlock. Duplicate keys are
// locked once. On failure it releases what it had acquired (with unlockCtx
// semantics: a context detached from ctx) and returns the error.
func LockAll(ctx context.Context, l Locker, keys []string) (Leases, error) {
	sorted := slices.Clone(keys)
	slices.Sort(sorted)
	sorted = slices.Compact(sorted)
	leases := make(Leases, 0, len(sorted))
	for _, k := range sorted {
		lease, err := l.Lock(ctx, k)
		if err != nil {
			_ = leases.Unlock(context.WithoutCancel(ctx))
			return nil, fmt.Errorf("lock %s: %w", k, err)
		}
		leases = append(leases, lease)
	}
	return leases, nil
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
