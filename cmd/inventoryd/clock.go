package main

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// dbClock is the service's clock: this host's, corrected to the
// database's. Reservations expire and the reaper judges by it, so replicas
// whose clocks disagree still agree on when a reservation lapses. skew
// adds to the host's reading, to simulate a wrong clock in fault tests.
type dbClock struct {
	read   func(context.Context) (time.Time, error)
	skew   time.Duration
	offset atomic.Int64 // nanoseconds to add to the (skewed) host clock
	log    *slog.Logger

	stop chan struct{}
	wg   sync.WaitGroup
}

// clockResync is how often the offset is measured again.
const clockResync = 30 * time.Second

// newDBClock measures the offset once, then every clockResync until Close.
func newDBClock(ctx context.Context, read func(context.Context) (time.Time, error), skew time.Duration, log *slog.Logger) (*dbClock, error) {
	c := &dbClock{read: read, skew: skew, log: log, stop: make(chan struct{})}
	if err := c.sync(ctx); err != nil {
		return nil, err
	}
	if off := time.Duration(c.offset.Load()); off > time.Second || off < -time.Second {
		log.Warn("this host's clock differs from the database's; the service follows the database", "offset", off.String())
	}
	c.wg.Go(func() {
		t := time.NewTicker(clockResync)
		defer t.Stop()
		for {
			select {
			case <-c.stop:
				return
			case <-t.C:
				sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				if err := c.sync(sctx); err != nil {
					log.Warn("could not read the database's clock; keeping the last offset", "err", err)
				}
				cancel()
			}
		}
	})
	return c, nil
}

// sync measures the database's clock against the host's, at the midpoint
// of the round trip.
func (c *dbClock) sync(ctx context.Context) error {
	before := c.host()
	db, err := c.read(ctx)
	if err != nil {
		return err
	}
	after := c.host()
	mid := before.Add(after.Sub(before) / 2)
	c.offset.Store(int64(db.Sub(mid)))
	return nil
}

func (c *dbClock) host() time.Time { return time.Now().Add(c.skew) }

// Now is the corrected clock.
func (c *dbClock) Now() time.Time { return c.host().Add(time.Duration(c.offset.Load())) }

// Close stops the resync.
func (c *dbClock) Close() {
	close(c.stop)
	c.wg.Wait()
}
