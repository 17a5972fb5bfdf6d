// Package duty runs duties that must run on one replica at a time:
// campaign through a lock.Elector, lead while the lease holds, resign,
// campaign again. The reservation reaper and the broker's event publisher
// are such duties.
//
// Leadership is only as good as the lease: a leader that stalls past its
// lease may still be running when another replica starts leading, so a
// duty's writes must be safe to repeat or fenced (the stock path is both).
package duty

import (
	"context"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/cenkalti/backoff/v5"

	"github.com/shopstack/inventory/internal/lock"
	"github.com/shopstack/inventory/internal/retry"
)

// resignTimeout bounds the Unlock after leading: a backend that is away
// must not hold up a shutdown, and the lease lapses on its own anyway.
const resignTimeout = 5 * time.Second

// Duty is one elected duty. Set Name, Elector and Lead before Run; the
// other fields have defaults. Run it on every replica: one of them leads
// at a time.
type Duty struct {
	// Name is the election's: replicas electing through the same backend
	// under the same name elect one leader among them.
	Name    string
	Elector lock.Elector
	// Lead does the duty while this replica leads. Its context ends when
	// leadership is lost or Run's context ends, and Lead must then return
	// soon: another replica may lead. Should it return earlier, the
	// replica resigns and campaigns again.
	Lead func(ctx context.Context)

	// Title names the duty in the log ("reaper"), Doing what its leader
	// does ("expiring reservations"). Defaults: Name, and "its duty".
	Title, Doing string
	// Retry is the pause after a failed campaign (the backend away, or
	// refusing); default one second.
	Retry time.Duration
	// Log receives campaign failures, leadership changes and resign
	// failures; default none.
	Log *slog.Logger

	leading atomic.Bool
}

// Leading reports whether this replica runs Lead now.
func (d *Duty) Leading() bool { return d.leading.Load() }

// Run campaigns, leads and resigns until ctx ends. Its caller owns it:
// Run returns once Lead has returned and the lease is released.
func (d *Duty) Run(ctx context.Context) {
	d.defaults()
	for ctx.Err() == nil {
		lease, err := d.campaign(ctx)
		if err != nil {
			return // only when ctx ended
		}
		d.lead(ctx, lease)
		d.resign(ctx, lease)
	}
}

func (d *Duty) defaults() {
	if d.Title == "" {
		d.Title = d.Name
	}
	if d.Doing == "" {
		d.Doing = "its duty"
	}
	if d.Retry <= 0 {
		d.Retry = time.Second
	}
	if d.Log == nil {
		d.Log = slog.New(slog.DiscardHandler)
	}
}

// campaign returns a lease once this replica leads, retrying a failed
// campaign after d.Retry, or an error once ctx ends.
func (d *Duty) campaign(ctx context.Context) (lock.Lease, error) {
	var lease lock.Lease
	err := retry.Forever(ctx, backoff.NewConstantBackOff(d.Retry), func() (err error) {
		lease, err = d.Elector.Campaign(ctx, d.Name)
		return err
	}, func(err error, _ time.Duration) {
		d.Log.Warn(d.Title+": campaign failed; will retry", "err", err)
	})
	return lease, err
}

// lead runs Lead until it returns, with a context that ends when ctx ends
// or the lease is lost.
func (d *Duty) lead(ctx context.Context, lease lock.Lease) {
	lctx, cancel := context.WithCancel(ctx)
	defer cancel()
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		select {
		case <-lease.Done():
			if ctx.Err() == nil {
				d.Log.Warn(d.Title + ": leadership lost")
			}
			cancel()
		case <-lctx.Done():
		}
	}()
	d.leading.Store(true)
	d.Log.Info(d.Title + ": leading: " + d.Doing + " on this replica")
	d.Lead(lctx)
	d.leading.Store(false)
	cancel()
	<-watched
}

// resign releases the lease, so that another replica leads at once rather
// than after the lease lapses. It does so after ctx ended too, within
// resignTimeout.
func (d *Duty) resign(ctx context.Context, lease lock.Lease) {
	uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), resignTimeout)
	defer cancel()
	if err := lease.Unlock(uctx); err != nil {
		d.Log.Warn(d.Title+": resign failed", "err", err)
	}
}
