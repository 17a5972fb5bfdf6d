package gormstore

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"gorm.io/gorm"

	"github.com/shopstack/inventory/internal/inventory"
)

// UpdateStocks runs one stock transaction over several levels; see
// inventory.Store. On PostgreSQL it costs the same number of statements
// whatever the number of levels: reads and writes are batched.
func (s *Store) UpdateStocks(ctx context.Context, works []inventory.LevelWork, apply func([]*inventory.StockTx) error, beforeCommit func() error) error {
	if len(works) == 0 {
		return nil
	}
	return s.write(ctx, func(tx *gorm.DB) error {
		items, err := s.loadStock(tx, works)
		if err != nil {
			return err
		}
		txs := make([]*inventory.StockTx, len(items))
		for i := range items {
			txs[i] = items[i].st
		}
		if err := apply(txs); err != nil {
			return err
		}
		if err := s.writeStocks(tx, items); err != nil {
			return err
		}
		if beforeCommit != nil {
			return beforeCommit()
		}
		return nil
	})
}

// stockItem is one level of a stock transaction.
type stockItem struct {
	st          *inventory.StockTx
	fence       inventory.Fence
	exists      bool  // the level row exists
	readVersion int64 // its version when read
}

// loadStock locks the products of works in ID order and reads their levels
// and replays, in three statements.
func (s *Store) loadStock(tx *gorm.DB, works []inventory.LevelWork) ([]stockItem, error) {
	ids := make([]int64, len(works))
	var keys []string
	for i, w := range works {
		ids[i] = w.Key.ProductID
		keys = append(keys, w.ReplayKeys...)
	}
	slices.Sort(ids)
	if len(slices.Compact(slices.Clone(ids))) != len(ids) {
		return nil, fmt.Errorf("stock transaction: two levels of one product")
	}
	var products map[int64]inventory.Product
	var levels map[inventory.LevelKey]inventory.Level
	var err error
	if s.driver == Postgres {
		products, levels, err = pgLoad(tx, works)
	} else {
		products, levels, err = loadProductsAndLevels(tx, ids, works)
	}
	if err != nil {
		return nil, err
	}
	replays := map[string]inventory.Movement{}
	if len(keys) > 0 {
		q := "SELECT " + movementColumns + " FROM stock_movements WHERE idempotency_key IN ?"
		if s.driver == Postgres {
			q = "SELECT " + movementColumns + " FROM stock_movements WHERE idempotency_key = ANY(?::text[])"
		}
		var arg any = keys
		if s.driver == Postgres {
			arg = pgArray[string](keys)
		}
		var rows []movementRow
		if err := tx.Raw(q, arg).Scan(&rows).Error; err != nil {
			return nil, err
		}
		for _, r := range rows {
			replays[r.IdempotencyKey.String] = r.movement()
		}
	}
	items := make([]stockItem, len(works))
	var missing []int64 // locations of levels not found
	for i, w := range works {
		st := &inventory.StockTx{Replays: map[string]inventory.Movement{}}
		for _, k := range w.ReplayKeys {
			if m, ok := replays[k]; ok {
				st.Replays[k] = m
			}
		}
		p, ok := products[w.Key.ProductID]
		st.Product = p
		if !ok {
			st.Err = inventory.Errorf(inventory.CodeNotFound, "product %d not found", w.Key.ProductID)
		}
		l, exists := levels[w.Key]
		if !exists {
			l = inventory.Level{ProductID: w.Key.ProductID, LocationID: w.Key.LocationID}
			missing = append(missing, w.Key.LocationID)
		}
		st.Level = l
		items[i] = stockItem{st: st, fence: w.Fence, exists: exists, readVersion: l.Version}
	}
	if len(missing) > 0 {
		var found []int64
		if err := tx.Raw("SELECT id FROM locations WHERE id IN ?", missing).Scan(&found).Error; err != nil {
			return nil, err
		}
		for _, it := range items {
			if !it.exists && it.st.Err == nil && !slices.Contains(found, it.st.Level.LocationID) {
				it.st.Err = inventory.Errorf(inventory.CodeNotFound, "location %d not found", it.st.Level.LocationID)
			}
		}
	}
	return items, nil
}

// loadProductsAndLevels reads the products (ids sorted) and the levels of
// works; SQLite's immediate transaction already holds the write lock.
func loadProductsAndLevels(tx *gorm.DB, ids []int64, works []inventory.LevelWork) (map[int64]inventory.Product, map[inventory.LevelKey]inventory.Level, error) {
	var prows []productRow
	if err := tx.Raw("SELECT "+productColumns+" FROM products WHERE id IN ? ORDER BY id", ids).Scan(&prows).Error; err != nil {
		return nil, nil, err
	}
	products := make(map[int64]inventory.Product, len(prows))
	for _, r := range prows {
		products[r.ID] = r.product()
	}
	levels, err := loadLevels(tx, works)
	return products, levels, err
}

func loadLevels(tx *gorm.DB, works []inventory.LevelWork) (map[inventory.LevelKey]inventory.Level, error) {
	pairs := make([]string, len(works))
	args := make([]any, 0, 2*len(works))
	for i, w := range works {
		pairs[i] = "(?, ?)"
		args = append(args, w.Key.ProductID, w.Key.LocationID)
	}
	var rows []levelRow
	err := tx.Raw("SELECT "+levelColumns+" FROM stock_levels WHERE (product_id, location_id) IN ("+strings.Join(pairs, ", ")+")", args...).Scan(&rows).Error
	if err != nil {
		return nil, err
	}
	out := make(map[inventory.LevelKey]inventory.Level, len(rows))
	for _, r := range rows {
		out[inventory.LevelKey{ProductID: r.ProductID, LocationID: r.LocationID}] = r.level()
	}
	return out, nil
}

// writeStocks persists the items that appended movements: their levels
// (compare-and-set on the version each was read at, and fenced), product
// totals, and movements, with sequences taken last, so the counter's row
// lock is held only for the insert and the commit.
func (s *Store) writeStocks(tx *gorm.DB, items []stockItem) error {
	var changed []stockItem
	n := 0
	for _, it := range items {
		if len(it.st.Movements()) > 0 {
			changed = append(changed, it)
			n += len(it.st.Movements())
		}
	}
	if len(changed) == 0 {
		return nil
	}
	if s.driver == Postgres {
		first, err := pgWrite(tx, changed, n)
		if err != nil {
			return err
		}
		committed(changed, first)
		return nil
	}
	if err := s.writeLevels(tx, changed); err != nil {
		return err
	}
	if err := s.writeProducts(tx, changed); err != nil {
		return err
	}
	var last int64
	if err := tx.Raw("UPDATE ledger_sequence SET last = last + ? WHERE id = 1 RETURNING last", n).Scan(&last).Error; err != nil {
		return err
	}
	committed(changed, last-int64(n)+1)
	var ms []inventory.Movement
	for _, it := range changed {
		ms = append(ms, it.st.Movements()...)
	}
	return insertMovements(tx, ms)
}

// committed numbers the items' movements from first on, in order, and
// records the levels' new version and fence.
func committed(items []stockItem, first int64) {
	for _, it := range items {
		it.st.Committed(first, it.fence, lastAt(it.st))
		first += int64(len(it.st.Movements()))
	}
}

func insertMovements(tx *gorm.DB, ms []inventory.Movement) error {
	row := "(" + strings.TrimSuffix(strings.Repeat("?, ", movementColumnCount), ", ") + ")"
	values := make([]string, len(ms))
	args := make([]any, 0, movementColumnCount*len(ms))
	for i, m := range ms {
		values[i] = row
		args = append(args, movementArgs(m)...)
	}
	return tx.Exec("INSERT INTO stock_movements ("+movementColumns+") VALUES "+strings.Join(values, ", "), args...).Error
}

// writeLevels updates the existing levels and inserts the new ones, on
// SQLite (PostgreSQL: pgWrite). A level
// changed since it was read, or written under a newer fence, is not
// touched, and the transaction fails with ErrVersionConflict.
func (s *Store) writeLevels(tx *gorm.DB, items []stockItem) error {
	var olds, news []stockItem
	for _, it := range items {
		if it.exists {
			olds = append(olds, it)
		} else {
			news = append(news, it)
		}
	}
	updated, err := s.updateLevels(tx, olds)
	if err != nil {
		return err
	}
	inserted := int64(0)
	if len(news) > 0 {
		values := make([]string, len(news))
		var args []any
		for i, it := range news {
			l, at := it.st.Level, lastAt(it.st)
			values[i] = "(?, ?, ?, ?, 1, ?, ?, ?)"
			args = append(args, l.ProductID, l.LocationID, l.Stock, l.Reserved, it.fence.Epoch, it.fence.Token, at)
		}
		res := tx.Exec(`INSERT INTO stock_levels (product_id, location_id, stock, reserved, version, lease_epoch, lease_token, updated_at)
			VALUES `+strings.Join(values, ", ")+` ON CONFLICT (product_id, location_id) DO NOTHING`, args...)
		if res.Error != nil {
			return res.Error
		}
		inserted = res.RowsAffected
	}
	if updated != int64(len(olds)) || inserted != int64(len(news)) {
		return inventory.ErrVersionConflict
	}
	return nil
}

// updateLevels updates existing levels on SQLite, one statement per level:
// in process, there are no round trips to save.
func (s *Store) updateLevels(tx *gorm.DB, items []stockItem) (int64, error) {
	if len(items) == 0 {
		return 0, nil
	}
	var n int64
	for _, it := range items {
		l, f := it.st.Level, it.fence
		var res *gorm.DB
		if f == (inventory.Fence{}) {
			res = tx.Exec(`UPDATE stock_levels SET stock = ?, reserved = ?, version = version + 1, updated_at = ?
				WHERE product_id = ? AND location_id = ? AND version = ?`,
				l.Stock, l.Reserved, lastAt(it.st), l.ProductID, l.LocationID, it.readVersion)
		} else {
			res = tx.Exec(`UPDATE stock_levels SET stock = ?, reserved = ?, version = version + 1, lease_epoch = ?, lease_token = ?, updated_at = ?
				WHERE product_id = ? AND location_id = ? AND version = ?
				AND (lease_epoch < ? OR (lease_epoch = ? AND lease_token <= ?))`,
				l.Stock, l.Reserved, f.Epoch, f.Token, lastAt(it.st), l.ProductID, l.LocationID, it.readVersion, f.Epoch, f.Epoch, f.Token)
		}
		if res.Error != nil {
			return 0, res.Error
		}
		n += res.RowsAffected
	}
	return n, nil
}

// writeProducts saves the product totals of the items on SQLite.
func (s *Store) writeProducts(tx *gorm.DB, items []stockItem) error {
	for _, it := range items {
		p := it.st.Product
		if err := tx.Exec("UPDATE products SET stock = ?, reserved = ?, low_stock_alerted = ? WHERE id = ?",
			p.Stock, p.Reserved, p.LowStockAlerted, p.ID).Error; err != nil {
			return err
		}
	}
	return nil
}

// lastAt is when the item's last movement was made: the level's new
// updated_at.
func lastAt(st *inventory.StockTx) time.Time {
	ms := st.Movements()
	return ms[len(ms)-1].CreatedAt.UTC()
}
