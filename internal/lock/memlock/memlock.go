// Package memlock is the in-process lock backend: the zero-setup default for
// a single replica.
package memlock

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/shopstack/inventory/internal/lock"
)

// Locker is an in-process lock.Locker. Leases never lapse. Tokens come from
// one counter shared by all keys, so they also increase per key. A Lock
// that has to wait tells the holder (lock.Contended).
type Locker struct {
	gate   lock.Gate
	token  atomic.Int64
	wanted lock.Signals
}

var (
	_ lock.Locker    = (*Locker)(nil)
	_ lock.Contended = (*lease)(nil)
)

// New returns a Locker whose first token is base+1. Pass a base above every
// token already written (for example the largest one stored) so tokens keep
// increasing across restarts.
func New(base int64) *Locker {
	l := &Locker{}
	l.token.Store(base)
	return l
}

// Lock acquires key, waiting until it is free or ctx is done.
func (l *Locker) Lock(ctx context.Context, key string) (lock.Lease, error) {
	leave, ok := l.gate.TryEnter(key)
	if !ok {
		l.wanted.Signal(key)
		var err error
		if leave, err = l.gate.Enter(ctx, key); err != nil {
			return nil, fmt.Errorf("memlock: lock %s: %w", key, err)
		}
	}
	return l.newLease(key, leave), nil
}

// newLease is the lease on key, whose gate it holds (leave).
func (l *Locker) newLease(key string, leave func()) *lease {
	le := &lease{leave: leave, token: l.token.Add(1), done: make(chan struct{})}
	le.wanted, le.unwant = l.wanted.Listen(key)
	return le
}

// TryLock acquires each of keys that is free, without waiting.
func (l *Locker) TryLock(ctx context.Context, keys []string) []lock.Grant {
	grants := make([]lock.Grant, len(keys))
	for i, key := range keys {
		if err := ctx.Err(); err != nil {
			grants[i].Err = fmt.Errorf("memlock: lock %s: %w", key, err)
			continue
		}
		leave, ok := l.gate.TryEnter(key)
		if !ok {
			grants[i].Err = fmt.Errorf("memlock: lock %s: %w", key, lock.ErrNotAcquired)
			continue
		}
		grants[i].Lease = l.newLease(key, leave)
	}
	return grants
}

// Domain returns "local": in-process tokens are comparable only with tokens
// of the same process lineage (see lock.Locker).
func (l *Locker) Domain() string { return "local" }

// KeyCount returns how many keys are held or waited for.
func (l *Locker) KeyCount() int { return l.gate.Len() }

type lease struct {
	leave  func()
	token  int64
	once   sync.Once
	done   chan struct{}
	wanted <-chan struct{}
	unwant func()
}

func (le *lease) Token() int64            { return le.token }
func (le *lease) Done() <-chan struct{}   { return le.done }
func (le *lease) Wanted() <-chan struct{} { return le.wanted }

func (le *lease) Unlock(context.Context) error {
	le.once.Do(func() {
		le.unwant()
		close(le.done)
		le.leave()
	})
	return nil
}
