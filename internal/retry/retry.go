// Package retry is how this project waits between attempts. Schedules are
// cenkalti/backoff's; Forever retries an operation until it succeeds or
// the caller's context ends, where backoff.Retry on its own would give up
// after 15 minutes, a default no background loop here wants; Sleep is the
// one pause that a context cuts short, for the loops whose wait is not a
// retry (a poll) or whose stop conditions backoff.Retry cannot express.
package retry

import (
	"context"
	"time"

	"github.com/cenkalti/backoff/v5"
)

// Doubling returns a schedule that waits first, then twice as long after
// each wait up to most, without jitter: first, 2·first, 4·first, …, most.
func Doubling(first, most time.Duration) *backoff.ExponentialBackOff {
	b := &backoff.ExponentialBackOff{InitialInterval: first, Multiplier: 2, MaxInterval: most}
	b.Reset()
	return b
}

// Forever calls op until it returns nil, waiting b's next backoff after
// each failure (b is reset first), or until ctx ends or op returns a
// backoff.Permanent error. It returns nil, the context's cause, or the
// permanent error unwrapped. notify, if not nil, is called with each
// failure and the wait before the next attempt; it is not called for a
// failure that ends the retries.
func Forever(ctx context.Context, b backoff.BackOff, op func() error, notify backoff.Notify) error {
	_, err := backoff.Retry(ctx, func() (struct{}, error) { return struct{}{}, op() },
		backoff.WithBackOff(b), backoff.WithMaxElapsedTime(0), backoff.WithNotify(notify))
	return err
}

// Sleep waits d or until ctx ends, and reports whether d passed.
func Sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
