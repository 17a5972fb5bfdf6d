package lock

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Elector elects one leader among replicas for a named duty, such as
// expiring reservations.
type Elector interface {
	// Campaign blocks until this replica leads name, or ctx ends (the
	// error then wraps ctx.Err()). Leadership lasts until the returned
	// lease's Done closes (the duty must then stop: another replica may
	// lead) or until Unlock, which resigns.
	Campaign(ctx context.Context, name string) (Lease, error)
}

// LockElector elects through a Locker: the leader is the holder of the
// duty's lock, which the backend keeps alive while the holder runs and
// frees a TTL after it dies. Backends with a native election (etcd) offer
// their own Elector.
type LockElector struct {
	Locker Locker
	// Retry is the pause after a failed attempt (backend down); zero
	// means one second.
	Retry time.Duration
}

var _ Elector = LockElector{}

// Campaign takes the lock "leader/"+name, retrying until it is granted or
// ctx ends.
func (e LockElector) Campaign(ctx context.Context, name string) (Lease, error) {
	retry := e.Retry
	if retry <= 0 {
		retry = time.Second
	}
	for {
		lease, err := e.Locker.Lock(ctx, "leader/"+name)
		if err == nil {
			return lease, nil
		}
		if ctx.Err() != nil {
			return nil, fmt.Errorf("campaign %s: %w", name, ctx.Err())
		}
		if !errors.Is(err, ErrNotAcquired) && !errors.Is(err, ErrUnavailable) && !errors.Is(err, context.DeadlineExceeded) {
			return nil, fmt.Errorf("campaign %s: %w", name, err)
		}
		t := time.NewTimer(retry)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, fmt.Errorf("campaign %s: %w", name, ctx.Err())
		case <-t.C:
		}
	}
}
