package broker

import (
	"context"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/cenkalti/backoff/v5"

	"github.com/shopstack/inventory/internal/duty"
	"github.com/shopstack/inventory/internal/inventory"
	"github.com/shopstack/inventory/internal/lock"
	"github.com/shopstack/inventory/internal/retry"
)

// Relay publishes the ledger to a Publisher, from the last sequence the
// broker holds. Its zero value is not usable; set Ledger and Publisher.
type Relay struct {
	Ledger    Ledger
	Publisher Publisher
	// Batch is the most events per Publish (default 500). Poll is how
	// often the relay reads the ledger when it is not behind (default
	// 20ms): after a page shorter than Batch, or an empty one, it waits
	// Poll before the next read; after a full page it reads on at once.
	Batch int
	Poll  time.Duration
	Log   *slog.Logger

	published atomic.Int64 // the last sequence the broker confirmed
	lag       atomic.Int64 // nanoseconds from commit to confirmation, of the last batch's newest event
}

// Published returns the last sequence the broker confirmed.
func (r *Relay) Published() int64 { return r.published.Load() }

// Lag returns how long the last confirmed event waited from its commit.
func (r *Relay) Lag() time.Duration { return time.Duration(r.lag.Load()) }

// Run publishes until ctx ends. Failures (the broker or the database away)
// are retried with backoff, each retry from what the broker holds.
func (r *Relay) Run(ctx context.Context) {
	if r.Batch <= 0 {
		r.Batch = 500
	}
	if r.Poll <= 0 {
		r.Poll = 20 * time.Millisecond
	}
	if r.Log == nil {
		r.Log = slog.New(slog.DiscardHandler)
	}
	bo := backoff.NewExponentialBackOff()
	bo.InitialInterval, bo.MaxInterval = 100*time.Millisecond, 5*time.Second
	// relay returns only with an error, so this ends only with ctx.
	_ = retry.Forever(ctx, bo, func() error { return r.relay(ctx) }, func(err error, wait time.Duration) {
		r.Log.Warn("event publisher: failed; resuming from the broker's last event", "err", err, "retryIn", wait.String())
	})
}

// relay runs until an error: the broker's last sequence, then the ledger
// after it, batch by batch.
func (r *Relay) relay(ctx context.Context) error {
	last, err := r.Publisher.Last(ctx)
	if err != nil {
		return fmt.Errorf("last published: %w", err)
	}
	r.published.Store(last)
	for {
		page, err := r.Ledger.Movements(ctx, inventory.MovementQuery{After: last, HasAfter: true, Limit: r.Batch})
		if err != nil {
			return fmt.Errorf("read the ledger after %d: %w", last, err)
		}
		if len(page.Movements) == 0 {
			if !retry.Sleep(ctx, r.Poll) {
				return ctx.Err()
			}
			continue
		}
		events := make([]Event, len(page.Movements))
		for i, m := range page.Movements {
			events[i] = NewEvent(m)
		}
		if err := r.Publisher.Publish(ctx, last, events); err != nil {
			return fmt.Errorf("publish after %d: %w", last, err)
		}
		newest := page.Movements[len(page.Movements)-1]
		last = newest.Seq
		r.published.Store(last)
		r.lag.Store(int64(time.Since(newest.CreatedAt)))
		if len(page.Movements) < r.Batch && !retry.Sleep(ctx, r.Poll) {
			// A page short of Batch read all there was: the next read
			// waits for Poll, so that under load each read (the
			// watermark's and the page's statements) serves a Poll's
			// worth of changes rather than what one commit wrote.
			return ctx.Err()
		}
	}
}

// Duty is the name of the publisher's election: one replica publishes.
const Duty = "broker/publish"

// Elected returns the duty that runs r on the replica leading Duty; Run
// it on every replica.
func Elected(elector lock.Elector, r *Relay, log *slog.Logger) *duty.Duty {
	return &duty.Duty{Name: Duty, Elector: elector, Lead: r.Run,
		Title: "event publisher", Doing: "publishing the ledger", Log: log}
}
