package lock

import "sync"

// Contended is implemented by the leases of backends that tell a holder
// when another process waits for its key (redislock, etcdlock). A holder
// that keeps a lease through idle and busy stretches of its key can then
// let it go when someone waits, rather than after a fixed bound.
type Contended interface {
	// Wanted is closed once a Lock in another process was refused the
	// lease's key while this lease held it. The signal can be lost (a
	// dropped connection), so holders still bound how long they keep a
	// lease.
	Wanted() <-chan struct{}
}

// WantedOf returns the Wanted channel of l, or nil, which is never ready,
// when l's backend does not tell.
func WantedOf(l Lease) <-chan struct{} {
	if c, ok := l.(Contended); ok {
		return c.Wanted()
	}
	return nil
}

// Closed reports whether ch is closed: a lease's Done or Wanted has
// fired.
func Closed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// Signals are one-shot signals by key inside one process: a backend's
// leases waiting to hear that their key is wanted elsewhere, or its
// waiters waiting to hear that a key was let go. The gate in front of
// every backend admits one caller per key, so a key has one listener at a
// time. The zero value is ready to use.
type Signals struct {
	mu   sync.Mutex
	keys map[string]chan struct{}
}

// Listen returns a channel closed by the next Signal of key, and a func
// that stops listening (and frees the entry) if it was not signalled.
func (s *Signals) Listen(key string) (ch <-chan struct{}, stop func()) {
	c := make(chan struct{})
	s.mu.Lock()
	if s.keys == nil {
		s.keys = make(map[string]chan struct{})
	}
	s.keys[key] = c
	s.mu.Unlock()
	return c, func() {
		s.mu.Lock()
		if s.keys[key] == c {
			delete(s.keys, key)
		}
		s.mu.Unlock()
	}
}

// Signal closes the channel listening for key, if any.
func (s *Signals) Signal(key string) {
	s.mu.Lock()
	c := s.keys[key]
	delete(s.keys, key)
	s.mu.Unlock()
	if c != nil {
		close(c)
	}
}

// Len returns how many keys are listened for.
func (s *Signals) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.keys)
}
