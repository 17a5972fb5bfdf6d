package lock

import (
	"context"
	"sync"
)

// Gate is a per-key mutex inside one process. Backends put it in front of
// the shared lock so that concurrent callers in the same replica queue in
// memory, and only one of them at a time talks to the backend. For etcd this
// is also required for correctness: its mutex keys are per session, so two
// goroutines sharing a session would both be granted the lock.
//
// The zero value is ready to use. Keys are forgotten when nobody holds or
// waits for them, so memory does not grow with every key ever locked.
type Gate struct {
	mu   sync.Mutex
	keys map[string]*gateEntry
}

// gateEntry is a one-slot semaphore; refs counts its holder and waiters.
type gateEntry struct {
	sem  chan struct{}
	refs int
}

// Enter waits until key is free in this process, then holds it; the
// returned func leaves, exactly once however often it is called. It fails
// only with ctx.Err().
func (g *Gate) Enter(ctx context.Context, key string) (leave func(), err error) {
	g.mu.Lock()
	if g.keys == nil {
		g.keys = make(map[string]*gateEntry)
	}
	e := g.keys[key]
	if e == nil {
		e = &gateEntry{sem: make(chan struct{}, 1)}
		g.keys[key] = e
	}
	e.refs++
	g.mu.Unlock()

	select {
	case e.sem <- struct{}{}:
		return g.leaver(key, e), nil
	case <-ctx.Done():
		g.release(key, e)
		return nil, ctx.Err()
	}
}

// TryEnter holds key if it is free in this process, without waiting; ok
// is false if another caller holds it. A key is free once its holder let
// go, even while that caller is still inside its leave: the entry outlives
// its slot by a moment, and refusing then would send the caller to wait
// for a key nobody holds. It never takes a key from a waiter: a holder
// that lets go hands the slot to a waiting Enter directly.
func (g *Gate) TryEnter(key string) (leave func(), ok bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.keys == nil {
		g.keys = make(map[string]*gateEntry)
	}
	e := g.keys[key]
	if e == nil {
		e = &gateEntry{sem: make(chan struct{}, 1)}
		g.keys[key] = e
	}
	select {
	case e.sem <- struct{}{}:
		e.refs++
		return g.leaver(key, e), true
	default:
		return nil, false
	}
}

// leaver returns the leave of a caller that holds key's entry e: it lets
// e go once, however often it is called.
func (g *Gate) leaver(key string, e *gateEntry) func() {
	var once sync.Once
	return func() {
		once.Do(func() {
			<-e.sem
			g.release(key, e)
		})
	}
}

func (g *Gate) release(key string, e *gateEntry) {
	g.mu.Lock()
	e.refs--
	if e.refs == 0 {
		delete(g.keys, key)
	}
	g.mu.Unlock()
}

// Len returns how many keys are held or waited for.
func (g *Gate) Len() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.keys)
}
