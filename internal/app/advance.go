package app

import (
	"context"
	"sync"

	"github.com/shopstack/inventory/internal/inventory"
	"github.com/shopstack/inventory/internal/lock"
)

// staleTokens remembers, per lock key, the newest token the database
// refused a lease against, for a locker whose token counters can go back
// (lock.Advancer: a Redis failover can lose a counter's latest
// increments). The next acquisition of the key in this replica advances
// the counter past it first, so that the level is writable again after one
// refused batch, not after as many as the counter lost. The refusal itself
// is the database's (the fence compare-and-set); this only ends it sooner.
type staleTokens struct {
	adv lock.Advancer // nil: the locker's tokens never go back

	mu     sync.Mutex
	tokens map[string]int64
}

// refused records that the database refused lease on key, a level whose
// fence is newer: level.
func (st *staleTokens) refused(key inventory.LevelKey, lease, level inventory.Fence) {
	if st.adv == nil || lease == (inventory.Fence{}) || lease.Epoch != level.Epoch || lease.Token >= level.Token {
		return
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.tokens == nil {
		st.tokens = make(map[string]int64)
	}
	name := key.LockName()
	st.tokens[name] = max(st.tokens[name], level.Token)
}

// advance moves the counter of name past the token recorded for it, if
// any. If the locker cannot, the token stays recorded for the next
// acquisition; the lock then most likely fails as well.
func (st *staleTokens) advance(ctx context.Context, name string) error {
	if st.adv == nil {
		return nil
	}
	st.mu.Lock()
	token, ok := st.tokens[name]
	delete(st.tokens, name)
	st.mu.Unlock()
	if !ok {
		return nil
	}
	if err := st.adv.Advance(ctx, name, token); err != nil {
		st.mu.Lock()
		st.tokens[name] = max(st.tokens[name], token)
		st.mu.Unlock()
		return err
	}
	return nil
}
