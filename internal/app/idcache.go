package app

import "sync"

// idCache remembers values by ID that never change once known (a
// reservation's levels, a bundle's components), holding at most max:
// forgetting one costs a read, never an answer.
type idCache[V any] struct {
	mu  sync.RWMutex
	m   map[int64]V
	max int
}

func (c *idCache[V]) get(id int64) (V, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	v, ok := c.m[id]
	return v, ok
}

func (c *idCache[V]) put(id int64, v V) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = make(map[int64]V)
	}
	if _, known := c.m[id]; !known && len(c.m) >= c.max {
		for k := range c.m { // an arbitrary one: map order is random
			delete(c.m, k)
			break
		}
	}
	c.m[id] = v
}
