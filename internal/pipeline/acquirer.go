package pipeline

import (
	"context"

	"github.com/shopstack/inventory/internal/gather"
	"github.com/shopstack/inventory/internal/lock"
)

// acquirer takes the leases workers ask for at about the same time in one
// TryLock: while one is under way, the next requests gather, and the next
// TryLock asks for all of them.
type acquirer[K comparable] struct {
	gather.Gatherer[want[K]]
}

type want[K comparable] struct {
	ctx   context.Context
	key   K
	grant chan lock.Grant // buffered
}

func newAcquirer[K comparable](try func(ctx context.Context, keys []K) []lock.Grant) *acquirer[K] {
	return &acquirer[K]{gather.Gatherer[want[K]]{Labels: []string{"pipeline", "acquirer"}, Run: func(ws []want[K]) {
		keys := make([]K, len(ws))
		for i, w := range ws {
			keys[i] = w.key
		}
		for i, g := range try(context.WithoutCancel(ws[0].ctx), keys) {
			ws[i].grant <- g
		}
	}}}
}

// lock asks for key's lease with the others waiting and returns its grant.
// The TryLock serves many: it runs in the first one's trace, bounded by the
// Backend, not by any one's ctx.
func (a *acquirer[K]) lock(ctx context.Context, key K) lock.Grant {
	w := want[K]{ctx: ctx, key: key, grant: make(chan lock.Grant, 1)}
	a.Add(w)
	return <-w.grant
}
