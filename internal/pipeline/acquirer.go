package pipeline

import (
	"context"
	"sync"

	"github.com/shopstack/inventory/internal/lock"
)

// acquirer takes the leases workers ask for at about the same time in one
// TryLock: while one is under way, the next requests gather, and the next
// TryLock asks for all of them. Its goroutine runs while requests wait.
type acquirer[K comparable] struct {
	try func(ctx context.Context, keys []K) []lock.Grant

	mu      sync.Mutex
	waiting []want[K]
	running bool
	wg      sync.WaitGroup
}

type want[K comparable] struct {
	ctx   context.Context
	key   K
	grant chan lock.Grant // buffered
}

// lock asks for key's lease with the others waiting and returns its grant.
// The TryLock serves many: it runs in the first one's trace, bounded by the
// Backend, not by any one's ctx.
func (a *acquirer[K]) lock(ctx context.Context, key K) lock.Grant {
	w := want[K]{ctx: ctx, key: key, grant: make(chan lock.Grant, 1)}
	a.mu.Lock()
	a.waiting = append(a.waiting, w)
	if !a.running {
		a.running = true
		a.wg.Add(1)
		go a.loop()
	}
	a.mu.Unlock()
	return <-w.grant
}

func (a *acquirer[K]) loop() {
	defer a.wg.Done()
	for {
		a.mu.Lock()
		ws := a.waiting
		a.waiting = nil
		if len(ws) == 0 {
			a.running = false
			a.mu.Unlock()
			return
		}
		a.mu.Unlock()
		keys := make([]K, len(ws))
		for i, w := range ws {
			keys[i] = w.key
		}
		for i, g := range a.try(context.WithoutCancel(ws[0].ctx), keys) {
			ws[i].grant <- g
		}
	}
}
