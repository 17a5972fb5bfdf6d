package readmodel

import (
	"cmp"
	"context"
	"slices"

	"github.com/shopstack/inventory/internal/inventory"
)

// cursor is where the view is in a change log (the ledger, or the
// catalog's edits): every change up to at is in it. This replica's changes
// move it without a read when they follow on from it; other replicas' are
// read from the log.
type cursor struct {
	at, end int64
	// local are this replica's committed ranges of sequences beyond at,
	// in order.
	local [][2]int64
}

func (c *cursor) start(seq int64) {
	c.at, c.end = max(c.at, seq), max(c.end, seq)
	c.settle()
}

// committed records a range of sequences this replica committed and
// applied.
func (c *cursor) committed(first, last int64) {
	c.end = max(c.end, last)
	i, _ := slices.BinarySearchFunc(c.local, first, func(r [2]int64, f int64) int { return cmp.Compare(r[0], f) })
	c.local = slices.Insert(c.local, i, [2]int64{first, last})
	c.settle()
}

// pass moves the cursor past a change read from the ledger.
func (c *cursor) pass(pos int64) {
	c.at, c.end = max(c.at, pos), max(c.end, pos)
	c.settle()
}

// settle moves at over the local ranges that follow on from it, and drops
// those it passed.
func (c *cursor) settle() {
	for len(c.local) > 0 && c.local[0][0] <= c.at+1 {
		c.at = max(c.at, c.local[0][1])
		c.local = c.local[1:]
	}
}

// Wake makes the view read the ledger and the catalog for changes made
// elsewhere. It never blocks: wake-ups coalesce.
func (v *View) Wake() {
	select {
	case v.wake <- struct{}{}:
	default:
	}
}

func (v *View) run(ctx context.Context) {
	defer close(v.done)
	for {
		select {
		case <-ctx.Done():
			return
		case <-v.wake:
		}
		if err := v.catchUp(ctx); err != nil && ctx.Err() == nil {
			v.log.Warn("read model: reading changes failed; will retry at the next wake-up", "err", err)
		}
	}
}

// catchUp reads the ledger's and the catalog's changes since the view's
// positions, and reads again, in one statement per page of changes, the
// products it holds that they changed.
func (v *View) catchUp(ctx context.Context) error {
	for {
		v.mu.RLock()
		at := v.ledger.at
		v.mu.RUnlock()
		changes, err := v.src.LedgerChanges(ctx, at, pageSize)
		if err != nil {
			return err
		}
		if err := v.refresh(ctx, v.passLedger(changes)); err != nil {
			return err
		}
		if len(changes) < pageSize {
			break
		}
	}
	for {
		v.mu.RLock()
		rev := v.catalog.at
		v.mu.RUnlock()
		changes, err := v.src.CatalogChanges(ctx, rev, pageSize)
		if err != nil {
			return err
		}
		if err := v.refresh(ctx, v.passCatalog(changes)); err != nil {
			return err
		}
		if len(changes) < pageSize {
			return nil
		}
	}
}

// passLedger moves the view past ledger changes and returns the products
// it holds at an earlier state.
func (v *View) passLedger(changes []inventory.Change) []int64 {
	v.mu.Lock()
	defer v.mu.Unlock()
	var stale []int64
	for _, c := range changes {
		if e := v.products[c.ProductID]; e != nil {
			if seq, _ := e.at(); seq < c.Pos {
				stale = append(stale, c.ProductID)
			}
		}
		v.ledger.pass(c.Pos)
	}
	return stale
}

// passCatalog moves the view past catalog changes made elsewhere and
// returns the products it holds among them.
func (v *View) passCatalog(changes []inventory.Change) []int64 {
	v.mu.Lock()
	defer v.mu.Unlock()
	var held []int64
	for _, c := range changes {
		if c.Pos <= v.catalog.at { // this replica's, applied already
			continue
		}
		if v.products[c.ProductID] != nil {
			held = append(held, c.ProductID)
		}
		v.catalog.pass(c.Pos)
		v.gen++
	}
	return held
}

// refresh reads products the view holds again, and keeps what is newer.
func (v *View) refresh(ctx context.Context, ids []int64) error {
	slices.Sort(ids)
	ids = slices.Compact(ids)
	if len(ids) == 0 {
		return nil
	}
	_, err := v.fill(nil, ids, false, func() ([]inventory.ProductStock, error) { return v.src.ProductStocks(ctx, ids) })
	return err
}
