package app

import (
	"sync"

	"github.com/shopstack/inventory/internal/inventory"
)

// untrackedSet remembers which products this replica last saw untracked,
// so that their stock requests take no lease (StockOp.Unlocked). It learns
// from every transaction it commits and every product it saves; what it
// says is a hint, never a judgment: a product tracked meanwhile is judged
// in its transaction like any other.
type untrackedSet struct {
	mu  sync.Mutex
	ids map[int64]struct{}
}

// maxUntracked bounds the products the set remembers.
const maxUntracked = 1 << 16

func (u *untrackedSet) has(id int64) bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	_, ok := u.ids[id]
	return ok
}

// saw records p's tracking as a transaction or a save left it.
func (u *untrackedSet) saw(p *inventory.Product) {
	u.mu.Lock()
	defer u.mu.Unlock()
	switch _, known := u.ids[p.ID]; {
	case p.Untracked && !known && len(u.ids) < maxUntracked:
		if u.ids == nil {
			u.ids = map[int64]struct{}{}
		}
		u.ids[p.ID] = struct{}{}
	case !p.Untracked && known:
		delete(u.ids, p.ID)
	}
}
