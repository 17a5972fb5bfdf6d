package redislock

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/cenkalti/backoff/v5"
	"github.com/go-redsync/redsync/v4"

	"github.com/shopstack/inventory/internal/lock"
)

// lease is a held Redlock. Two timers drive it, so a held lease costs no
// goroutine: extend renews the lock at about half its remaining validity,
// and expiry closes done at the deadline unless a renewal moved it.
type lease struct {
	l     *Locker
	key   string
	m     *redsync.Mutex
	token int64
	done  chan struct{}
	leave func() // leaves the gate; set by start
	// wanted is closed when a Lock elsewhere is refused key; unwant
	// stops listening. Both set by start.
	wanted <-chan struct{}
	unwant func()

	mu       sync.Mutex
	deadline time.Time // validity minus the safety margin
	expiry   *time.Timer
	extend   *time.Timer
	bo       backoff.ExponentialBackOff // between failed renewals
	stopped  bool                       // no more renewals
	ended    bool                       // done is closed
	lapsed   bool                       // ended because ownership could no longer be assumed

	once sync.Once
	err  error
}

var (
	_ lock.Lease     = (*lease)(nil)
	_ lock.Contended = (*lease)(nil)
)

func newLease(l *Locker, key string, m *redsync.Mutex, token int64) *lease {
	return &lease{
		l:     l,
		key:   key,
		m:     m,
		token: token,
		done:  make(chan struct{}),
		bo: backoff.ExponentialBackOff{
			InitialInterval:     l.cfg.RetryMin,
			RandomizationFactor: backoff.DefaultRandomizationFactor,
			Multiplier:          2,
			MaxInterval:         l.cfg.RetryMax,
		},
	}
}

// deadlineOf returns when ownership of a lock valid until until can no
// longer be assumed: a margin before, for clock drift between this process
// and Redis and for the time a holder needs to notice Done.
func (l *Locker) deadlineOf(until time.Time) time.Time {
	return until.Add(-l.cfg.TTL / 10)
}

// start arms the timers of a lease just acquired, valid until until.
func (le *lease) start(leave func(), until time.Time) {
	le.mu.Lock()
	defer le.mu.Unlock()
	le.leave = leave
	le.wanted, le.unwant = le.l.wanted.Listen(le.key)
	now := time.Now()
	le.deadline = le.l.deadlineOf(until)
	le.bo.Reset()
	le.expiry = time.AfterFunc(le.deadline.Sub(now), le.lapse)
	le.extend = time.AfterFunc(until.Sub(now)/2, le.renew)
}

func (le *lease) Token() int64          { return le.token }
func (le *lease) Done() <-chan struct{} { return le.done }

// Wanted is closed once a Lock elsewhere was refused the key.
func (le *lease) Wanted() <-chan struct{} { return le.wanted }

// renew extends the lock once and schedules the next renewal: at half the
// new validity after a success, after a backoff after a failure. A failure
// ends the lease only when the servers say the lock is no longer ours;
// otherwise the expiry timer ends it at the deadline.
func (le *lease) renew() {
	le.mu.Lock()
	stopped := le.stopped
	le.mu.Unlock()
	if stopped {
		return
	}
	ok, err := le.m.ExtendContext(quorumContext(context.Background(), le.l.cfg.OpTimeout))

	if !ok {
		le.l.refresh()
	}
	le.mu.Lock()
	defer le.mu.Unlock()
	if le.stopped {
		return
	}
	now := time.Now()
	switch {
	case ok:
		until := le.m.Until()
		le.deadline = le.l.deadlineOf(until)
		le.expiry.Reset(max(le.deadline.Sub(now), 0))
		le.bo.Reset()
		le.extend.Reset(until.Sub(now) / 2)
	case le.l.gone(err), !now.Before(le.deadline):
		le.end(true)
	default:
		le.extend.Reset(min(le.bo.NextBackOff(), le.deadline.Sub(now)))
	}
}

// lapse ends the lease at its deadline. A renewal may have moved the
// deadline after the timer fired; the timer is then armed again.
func (le *lease) lapse() {
	le.mu.Lock()
	defer le.mu.Unlock()
	if !le.ended && !time.Now().Before(le.deadline) {
		le.end(true)
	}
}

// end stops the timers and closes done; le.mu is held.
func (le *lease) end(lapsed bool) {
	if le.ended {
		return
	}
	le.ended, le.lapsed, le.stopped = true, lapsed, true
	le.unwant()
	le.expiry.Stop()
	le.extend.Stop()
	close(le.done)
}

// Unlock releases the lock and leaves the gate. The release is attempted
// even after the lease lapsed: redsync deletes the key only if it still
// holds this lease's value, so another holder's lock is never released.
func (le *lease) Unlock(ctx context.Context) error {
	le.once.Do(func() {
		le.err = le.release(ctx)
		if le.err != nil {
			le.err = fmt.Errorf("redislock: unlock %s: %w", le.key, le.err)
		}
	})
	return le.err
}

func (le *lease) release(ctx context.Context) error {
	le.mu.Lock()
	lapsed := le.lapsed
	le.end(false)
	le.mu.Unlock()
	// Leave the gate only after Redis released the key, so that the next
	// caller in this process does not find it still taken.
	defer le.leave()

	// Leases released at about the same time share one script per server
	// (releaseGroup): on a spread of many levels each is let go about once
	// per request.
	r := &release{ctx: ctx, key: le.key, value: le.m.Value(), done: make(chan error, 1)}
	le.l.releases.Add(r)
	err := <-r.done
	if err == nil && !lapsed && lock.Closed(le.wanted) {
		// Leave the key to the waiter elsewhere, and wake it.
		le.l.yields.add(le.key, le.l.yieldFor())
		le.l.tell(msgFreed, le.key)
	}
	if lapsed {
		return lock.ErrLeaseLost
	}
	return err
}
