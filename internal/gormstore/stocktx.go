package gormstore

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/shopstack/inventory/internal/gormstore/dialect"
	"github.com/shopstack/inventory/internal/inventory"
)

// UpdateStocks runs one stock transaction over several levels; see
// inventory.Store. It reads (stockread.go), hands what it read to the
// domain, and writes what the domain decided (stockwrite.go) with COMMIT:
// on PostgreSQL two round trips, whatever the number of levels and
// movements.
//
// The products are locked from the first round trip to the commit: every
// round trip saved there is time the next batch on the product waits less.
func (s *Store) UpdateStocks(ctx context.Context, works []inventory.LevelWork, opts inventory.StockOptions, cb inventory.StockCallbacks) error {
	if len(works) == 0 && len(opts.Reservations) == 0 && opts.NewReservations == 0 {
		return nil
	}
	if err := checkDistinctLevels(works); err != nil {
		return err
	}
	var committed func()
	err := s.inTx(ctx, func(r dialect.Runner) error {
		set, items, err := loadStock(r, s.reads, works, opts)
		if err != nil {
			return err
		}
		if err := applySet(set, cb); err != nil {
			return err
		}
		var stmts []dialect.Stmt
		stmts, committed = writeStocks(s.writes, items, set, opts.Now)
		return r.Commit(stmts)
	})
	if err != nil {
		return err
	}
	committed()
	return nil
}

func checkDistinctLevels(works []inventory.LevelWork) error {
	seen := make(map[inventory.LevelKey]bool, len(works))
	for _, w := range works {
		if seen[w.Key] {
			return fmt.Errorf("stock transaction: level %+v twice", w.Key)
		}
		seen[w.Key] = true
	}
	return nil
}

// applySet hands the loaded set to cb.Apply, then runs cb.BeforeCommit (if
// set): the caller's part of every stock transaction, between its reads
// and its writes.
func applySet(set *inventory.StockSet, cb inventory.StockCallbacks) error {
	if err := cb.Apply(set); err != nil {
		return err
	}
	if cb.BeforeCommit != nil {
		return cb.BeforeCommit()
	}
	return nil
}

// stockItem is one level of a stock transaction.
type stockItem struct {
	st          *inventory.StockTx
	fence       inventory.Fence
	exists      bool      // the level row exists
	readVersion int64     // its version when read
	readExpiry  time.Time // its NextExpiry when read
	now         time.Time // the transaction's clock reading
}

// stockData is what a stock transaction reads before applying: the
// products, the levels that exist, and the movements of the replay keys.
type stockData struct {
	products map[int64]*inventory.Product // shared by the levels of each
	levels   map[inventory.LevelKey]inventory.Level
	replays  map[string]inventory.Movement
	// rejections are the remembered refusals of the replay keys.
	rejections map[string]inventory.Rejection
	// audits are the audits of the levels that asked for one.
	audits map[inventory.LevelKey]inventory.LevelAudit
}

// buildItems makes the StockTx of each work from what was read. It
// returns the locations of the levels not found, which may not exist.
func buildItems(works []inventory.LevelWork, d stockData, now time.Time) (items []stockItem, missing []int64) {
	items = make([]stockItem, len(works))
	for i, w := range works {
		st := &inventory.StockTx{Replays: map[string]inventory.Movement{}, Rejections: map[string]inventory.Rejection{}}
		for _, k := range w.ReplayKeys {
			if m, ok := d.replays[k]; ok {
				st.Replays[k] = m
			}
			if r, ok := d.rejections[k]; ok {
				st.Rejections[k] = r
			}
		}
		p, ok := d.products[w.Key.ProductID]
		if !ok {
			p = &inventory.Product{ID: w.Key.ProductID}
			st.Err = inventory.Errorf(inventory.CodeNotFound, "product %d not found", w.Key.ProductID)
		}
		st.Product, st.ReadSeq = p, p.LastSeq
		l, exists := d.levels[w.Key]
		if !exists {
			l = inventory.Level{ProductID: w.Key.ProductID, LocationID: w.Key.LocationID}
			missing = append(missing, w.Key.LocationID)
		}
		st.Level = l
		if a, ok := d.audits[w.Key]; ok && w.Audit {
			st.Audit = &a
		}
		items[i] = stockItem{st: st, fence: w.Fence, exists: exists, readVersion: l.Version, readExpiry: l.NextExpiry, now: now}
	}
	return items, missing
}

// markUnknownLocations sets Err on the new levels whose location is not
// among found.
func markUnknownLocations(items []stockItem, found []int64) {
	for _, it := range items {
		if !it.exists && it.st.Err == nil && !slices.Contains(found, it.st.Level.LocationID) {
			it.st.Err = inventory.Errorf(inventory.CodeNotFound, "location %d not found", it.st.Level.LocationID)
		}
	}
}

func replayKeys(works []inventory.LevelWork) []string {
	var keys []string
	for _, w := range works {
		keys = append(keys, w.ReplayKeys...)
	}
	// A request over several levels asks for its key at each.
	slices.Sort(keys)
	return slices.Compact(keys)
}

// dueLevels returns the items whose level's NextExpiry has passed at now:
// some of their reservation items may have expired.
func dueLevels(items []stockItem, now time.Time) map[inventory.LevelKey]*stockItem {
	due := map[inventory.LevelKey]*stockItem{}
	for i := range items {
		l := items[i].st.Level
		if items[i].exists && !l.NextExpiry.IsZero() && !now.Before(l.NextExpiry) {
			due[inventory.LevelKey{ProductID: l.ProductID, LocationID: l.LocationID}] = &items[i]
		}
	}
	return due
}

// expiredRow is an expired active reservation item of a due level.
type expiredRow struct {
	ProductID, LocationID, ReservationID, Quantity, BundleID int64
}

// lastAt is the level's new updated_at: when its last movement was made,
// or the transaction's clock reading if it made none.
func (it stockItem) lastAt() time.Time {
	ms := it.st.Movements()
	if len(ms) == 0 {
		return it.now.UTC()
	}
	return ms[len(ms)-1].CreatedAt.UTC()
}
