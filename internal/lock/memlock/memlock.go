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
// one counter shared by all keys, so they also increase per key.
type Locker struct {
	mu    sync.Mutex
	keys  map[string]*entry
	token atomic.Int64
}

// entry is the lock of one key: a one-slot semaphore. refs counts holders
// and waiters, so the entry is deleted when nobody needs it and the map does
// not grow with every key ever locked.
type entry struct {
	sem  chan struct{}
	refs int
}

var _ lock.Locker = (*Locker)(nil)

// New returns a Locker whose first token is base+1. Pass a base above every
// token already written (for example the largest one stored) so tokens keep
// increasing across restarts.
func New(base int64) *Locker {
	l := &Locker{keys: make(map[string]*entry)}
	l.token.Store(base)
	return l
}

// Lock acquires key, waiting until it is free or ctx is done.
func (l *Locker) Lock(ctx context.Context, key string) (lock.Lease, error) {
	l.mu.Lock()
	e := l.keys[key]
	if e == nil {
		e = &entry{sem: make(chan struct{}, 1)}
		l.keys[key] = e
	}
	e.refs++
	l.mu.Unlock()

	select {
	case e.sem <- struct{}{}:
		return &lease{l: l, key: key, e: e, token: l.token.Add(1), done: make(chan struct{})}, nil
	case <-ctx.Done():
		l.release(key, e)
		return nil, fmt.Errorf("memlock: lock %s: %w", key, ctx.Err())
	}
}

func (l *Locker) release(key string, e *entry) {
	l.mu.Lock()
	e.refs--
	if e.refs == 0 {
		delete(l.keys, key)
	}
	l.mu.Unlock()
}

type lease struct {
	l     *Locker
	key   string
	e     *entry
	token int64
	once  sync.Once
	done  chan struct{}
}

func (le *lease) Token() int64          { return le.token }
func (le *lease) Done() <-chan struct{} { return le.done }

func (le *lease) Unlock(context.Context) error {
	le.once.Do(func() {
		close(le.done)
		<-le.e.sem
		le.l.release(le.key, le.e)
	})
	return nil
}

// KeyCount returns how many keys are held or waited for.
func (l *Locker) KeyCount() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.keys)
}
