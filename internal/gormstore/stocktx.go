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
// inventory.Store. Its cost in statements does not grow with the number of
// levels and movements on PostgreSQL (see pgUpdateStocks); on SQLite,
// which runs in process, statements cost no round trips.
func (s *Store) UpdateStocks(ctx context.Context, works []inventory.LevelWork, apply func([]*inventory.StockTx) error, beforeCommit func() error) error {
	if len(works) == 0 {
		return nil
	}
	if err := checkDistinctLevels(works); err != nil {
		return err
	}
	if s.driver == Postgres {
		return s.pgUpdateStocks(ctx, works, apply, beforeCommit)
	}
	return s.write(ctx, func(tx *gorm.DB) error {
		items, err := s.loadStock(tx, works)
		if err != nil {
			return err
		}
		if err := applyItems(items, apply, beforeCommit); err != nil {
			return err
		}
		return s.writeStocks(tx, items)
	})
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

// applyItems hands the loaded levels to apply, then runs beforeCommit (if
// set): the caller's part of every stock transaction, between its reads and
// its writes.
func applyItems(items []stockItem, apply func([]*inventory.StockTx) error, beforeCommit func() error) error {
	txs := make([]*inventory.StockTx, len(items))
	for i := range items {
		txs[i] = items[i].st
	}
	if err := apply(txs); err != nil {
		return err
	}
	if beforeCommit != nil {
		return beforeCommit()
	}
	return nil
}

// stockItem is one level of a stock transaction.
type stockItem struct {
	st          *inventory.StockTx
	fence       inventory.Fence
	exists      bool  // the level row exists
	readVersion int64 // its version when read
}

// stockData is what a stock transaction reads before applying: the
// products, the levels that exist, and the movements of the replay keys.
type stockData struct {
	products map[int64]*inventory.Product // shared by the levels of each
	levels   map[inventory.LevelKey]inventory.Level
	replays  map[string]inventory.Movement
}

// buildItems makes the StockTx of each work from what was read. It
// returns the locations of the levels not found, which may not exist.
func buildItems(works []inventory.LevelWork, d stockData) (items []stockItem, missing []int64) {
	items = make([]stockItem, len(works))
	for i, w := range works {
		st := &inventory.StockTx{Replays: map[string]inventory.Movement{}}
		for _, k := range w.ReplayKeys {
			if m, ok := d.replays[k]; ok {
				st.Replays[k] = m
			}
		}
		p, ok := d.products[w.Key.ProductID]
		if !ok {
			p = &inventory.Product{ID: w.Key.ProductID}
			st.Err = inventory.Errorf(inventory.CodeNotFound, "product %d not found", w.Key.ProductID)
		}
		st.Product = p
		l, exists := d.levels[w.Key]
		if !exists {
			l = inventory.Level{ProductID: w.Key.ProductID, LocationID: w.Key.LocationID}
			missing = append(missing, w.Key.LocationID)
		}
		st.Level = l
		items[i] = stockItem{st: st, fence: w.Fence, exists: exists, readVersion: l.Version}
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
	return keys
}

// loadStock reads a stock transaction's data on SQLite, whose immediate
// transaction already holds the database's write lock.
func (s *Store) loadStock(tx *gorm.DB, works []inventory.LevelWork) ([]stockItem, error) {
	ids := make([]int64, len(works))
	for i, w := range works {
		ids[i] = w.Key.ProductID
	}
	d := stockData{replays: map[string]inventory.Movement{}}
	var err error
	if d.products, d.levels, err = loadProductsAndLevels(tx, ids, works); err != nil {
		return nil, err
	}
	if keys := replayKeys(works); len(keys) > 0 {
		var rows []movementRow
		if err := tx.Raw("SELECT "+movementColumns+" FROM stock_movements WHERE idempotency_key IN ?", keys).Scan(&rows).Error; err != nil {
			return nil, err
		}
		for _, r := range rows {
			d.replays[r.IdempotencyKey.String] = r.movement()
		}
	}
	items, missing := buildItems(works, d)
	if len(missing) > 0 {
		var found []int64
		if err := tx.Raw("SELECT id FROM locations WHERE id IN ?", missing).Scan(&found).Error; err != nil {
			return nil, err
		}
		markUnknownLocations(items, found)
	}
	return items, nil
}

// loadProductsAndLevels reads the products and the levels of works.
func loadProductsAndLevels(tx *gorm.DB, ids []int64, works []inventory.LevelWork) (map[int64]*inventory.Product, map[inventory.LevelKey]inventory.Level, error) {
	var prows []productRow
	if err := tx.Raw("SELECT "+productColumns+" FROM products WHERE id IN ? ORDER BY id", ids).Scan(&prows).Error; err != nil {
		return nil, nil, err
	}
	products := make(map[int64]*inventory.Product, len(prows))
	for _, r := range prows {
		p := r.product()
		products[r.ID] = &p
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

// changedItems returns the items that appended movements, and how many.
func changedItems(items []stockItem) (changed []stockItem, n int) {
	for _, it := range items {
		if len(it.st.Movements()) > 0 {
			changed = append(changed, it)
			n += len(it.st.Movements())
		}
	}
	return changed, n
}

// writeStocks persists the items that appended movements: their levels
// (compare-and-set on the version each was read at, and fenced), product
// totals, and movements, with sequences taken last, so the counter's row
// lock is held only for the insert and the commit.
func (s *Store) writeStocks(tx *gorm.DB, items []stockItem) error {
	changed, n := changedItems(items)
	if len(changed) == 0 {
		return nil
	}
	if s.driver == Postgres { // a new product's initial stock
		var out struct{ Last int64 }
		sql, args := pgWrite(changed, n)
		if err := tx.Raw(sql, args...).Scan(&out).Error; err != nil {
			return err
		}
		committed(changed, out.Last-int64(n)+1)
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
			values[i] = "(?, ?, ?, ?, 1, ?, ?, ?, ?)"
			args = append(args, l.ProductID, l.LocationID, l.Stock, l.Reserved, it.fence.Epoch, it.fence.Token, at, nullTime(l.NextExpiry))
		}
		res := tx.Exec(`INSERT INTO stock_levels (product_id, location_id, stock, reserved, version, lease_epoch, lease_token, updated_at, next_expiry)
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
			res = tx.Exec(`UPDATE stock_levels SET stock = ?, reserved = ?, version = version + 1, updated_at = ?, next_expiry = ?
				WHERE product_id = ? AND location_id = ? AND version = ?`,
				l.Stock, l.Reserved, lastAt(it.st), nullTime(l.NextExpiry), l.ProductID, l.LocationID, it.readVersion)
		} else {
			res = tx.Exec(`UPDATE stock_levels SET stock = ?, reserved = ?, version = version + 1, lease_epoch = ?, lease_token = ?, updated_at = ?,
				next_expiry = ?
				WHERE product_id = ? AND location_id = ? AND version = ?
				AND (lease_epoch < ? OR (lease_epoch = ? AND lease_token <= ?))`,
				l.Stock, l.Reserved, f.Epoch, f.Token, lastAt(it.st), nullTime(l.NextExpiry), l.ProductID, l.LocationID, it.readVersion, f.Epoch, f.Epoch, f.Token)
		}
		if res.Error != nil {
			return 0, res.Error
		}
		n += res.RowsAffected
	}
	return n, nil
}

// writeProducts saves the product totals of the items on SQLite, once per
// product.
func (s *Store) writeProducts(tx *gorm.DB, items []stockItem) error {
	for _, p := range distinctProducts(items) {
		if err := tx.Exec("UPDATE products SET stock = ?, reserved = ?, low_stock_alerted = ? WHERE id = ?",
			p.Stock, p.Reserved, p.LowStockAlerted, p.ID).Error; err != nil {
			return err
		}
	}
	return nil
}

// distinctProducts returns the products of items, each once.
func distinctProducts(items []stockItem) []*inventory.Product {
	seen := map[int64]bool{}
	var out []*inventory.Product
	for _, it := range items {
		if p := it.st.Product; !seen[p.ID] {
			seen[p.ID] = true
			out = append(out, p)
		}
	}
	return out
}

// lastAt is when the item's last movement was made: the level's new
// updated_at.
func lastAt(st *inventory.StockTx) time.Time {
	ms := st.Movements()
	return ms[len(ms)-1].CreatedAt.UTC()
}
