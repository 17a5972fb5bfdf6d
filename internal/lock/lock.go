// Package lock defines the distributed-lock contract that stock mutations go
// through. Backends live in subpackages (memlock, redislock, etcdlock);
// locktest holds the conformance suite every backend must pass.
//
// A lock serializes writers; it does not guarantee correctness. A lease can
// lapse while its holder is paused (GC, network), so every lease carries a
// fencing token and the database rejects writes made under a superseded
// lease.
//
// Tokens are comparable only within one fencing domain: the tokens of one
// backend installation (one etcd cluster, the Redis counters, one process
// lineage for the in-process lock), which Locker.Domain names. The service
// starts a new lock epoch when the domain changes, and fences on
// (epoch, token).
package lock

import (
	"context"
	"errors"
)

// Locker acquires exclusive leases on keys.
type Locker interface {
	// Lock blocks until the lease on key is acquired, ctx is done, or the
	// backend gives up. Errors wrap ctx.Err() when ctx ended the wait,
	// ErrNotAcquired when the key stayed taken through every retry, and
	// ErrUnavailable when the backend could not be reached.
	Lock(ctx context.Context, key string) (Lease, error)
	// TryLock tries once to acquire each of keys, waiting for none that
	// another holder (in this process or elsewhere) has, in one round trip
	// per lock server. Grant i is keys[i]'s: a lease, or an error
	// wrapping ErrNotAcquired (the key is held; a key listed twice is
	// granted once), ErrUnavailable, or ctx.Err(). A lease it grants is
	// like one Lock grants.
	TryLock(ctx context.Context, keys []string) []Grant
	// Domain names the fencing domain of the tokens this locker grants:
	// tokens from lockers with the same domain are comparable.
	Domain() string
}

// Grant is the outcome of TryLock for one key: Lease if it was acquired,
// else Err.
type Grant struct {
	Lease Lease
	Err   error
}

// Lease is ownership of one key until Unlock or until it lapses.
type Lease interface {
	// Token is the fencing token: greater than the token of every earlier
	// lease on the same key.
	Token() int64
	// Done is closed when ownership can no longer be assumed: the lease
	// lapsed, was lost, or was released. Backends without expiry close it
	// only in Unlock.
	Done() <-chan struct{}
	// Unlock releases the lease. It is idempotent; releasing a lease that
	// was already lost returns ErrLeaseLost. Pass a context that is not
	// already cancelled, or the release cannot reach the backend and the
	// key stays taken until the lease expires.
	Unlock(ctx context.Context) error
}

// Checker is implemented by backends that can report their health, for
// readiness probes.
type Checker interface {
	// Check returns nil if the backend answers and can grant leases.
	Check(ctx context.Context) error
}

// Advancer is implemented by backends whose token counters can go back
// below tokens they granted before: a Redis failover can lose a counter's
// latest increments, since replication is asynchronous. Until such a
// counter climbs past the tokens the database has seen, every lease it
// grants is refused as stale; Advance puts it past them at once.
type Advancer interface {
	// Advance makes every token granted on key from now on greater than
	// token.
	Advance(ctx context.Context, key string, token int64) error
}

var (
	// ErrNotAcquired means the key stayed taken by another holder through
	// every retry.
	ErrNotAcquired = errors.New("lock: not acquired")
	// ErrLeaseLost means the lease lapsed or was taken over before Unlock.
	ErrLeaseLost = errors.New("lock: lease lost")
	// ErrUnavailable means the backend could not be reached (or not enough
	// of it for a quorum).
	ErrUnavailable = errors.New("lock: backend unavailable")
)
