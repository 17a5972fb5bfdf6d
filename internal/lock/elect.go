package lock

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/cenkalti/backoff/v5"

	"github.com/shopstack/inventory/internal/retry"
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
	pause := e.Retry
	if pause <= 0 {
		pause = time.Second
	}
	var lease Lease
	var refused error // an error not worth retrying
	err := retry.Forever(ctx, backoff.NewConstantBackOff(pause), func() (err error) {
		lease, err = e.Locker.Lock(ctx, "leader/"+name)
		if err != nil && ctx.Err() == nil && !errors.Is(err, ErrNotAcquired) && !errors.Is(err, ErrUnavailable) &&
			!errors.Is(err, context.DeadlineExceeded) {
			refused = err
			return backoff.Permanent(err)
		}
		return err
	}, nil)
	switch {
	case err == nil:
		return lease, nil
	case refused != nil:
		return nil, fmt.Errorf("campaign %s: %w", name, refused)
	}
	return nil, fmt.Errorf("campaign %s: %w", name, ctx.Err())
}
