// Package lock defines the distributed-lock contract that stock mutations go
// through. Backends live in subpackages; locktest holds the conformance suite
// every backend must pass.
//
// A lock serializes writers; it does not guarantee correctness. A lease can
// lapse while its holder is paused, so every lease carries a fencing token and
// the database rejects writes made under a superseded lease.
package lock

import (
	"context"
	"errors"
)

// Locker acquires exclusive leases on keys.
type Locker interface {
	// Lock blocks until the lease on key is acquired, ctx is done, or the
	// backend gives up. Errors wrap ErrNotAcquired or ctx.Err().
	Lock(ctx context.Context, key string) (Lease, error)
}

// Lease is ownership of one key until Unlock or until it lapses.
type Lease interface {
	// Token is the fencing token: greater than the token of every earlier
	// lease on the same key.
	Token() int64
	// Done is closed when ownership can no longer be assumed (the lease
	// lapsed or was lost). Backends without expiry return a channel that is
	// closed only by Unlock.
	Done() <-chan struct{}
	// Unlock releases the lease. It is idempotent; releasing a lease that was
	// already lost returns ErrLeaseLost.
	Unlock(ctx context.Context) error
}

var (
	// ErrNotAcquired means the backend could not grant the lease.
	ErrNotAcquired = errors.New("lock: not acquired")
	// ErrLeaseLost means the lease lapsed or was taken over before Unlock.
	ErrLeaseLost = errors.New("lock: lease lost")
)
