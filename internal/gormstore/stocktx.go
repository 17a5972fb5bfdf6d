package gormstore

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgtype"
	"gorm.io/gorm"

	"github.com/shopstack/inventory/internal/inventory"
)

// UpdateStocks runs one stock transaction over several levels; see
// inventory.Store. Its cost in statements does not grow with the number of
// levels and movements on PostgreSQL (see pgUpdateStocks); on SQLite,
// which runs in process, statements cost no round trips.
func (s *Store) UpdateStocks(ctx context.Context, works []inventory.LevelWork, opts inventory.StockOptions, cb inventory.StockCallbacks) error {
	if len(works) == 0 && len(opts.Reservations) == 0 && opts.NewReservations == 0 {
		return nil
	}
	if err := checkDistinctLevels(works); err != nil {
		return err
	}
	if s.driver == Postgres {
		return s.pgUpdateStocks(ctx, works, opts, cb)
	}
	return s.write(ctx, func(tx *gorm.DB) error {
		set, items, err := loadStock(gormReader{tx}, sqliteStockSQL, works, opts)
		if err != nil {
			return err
		}
		if err := applySet(set, cb); err != nil {
			return err
		}
		return s.writeStocks(tx, set, items)
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
	return keys
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
	ProductID, LocationID, ReservationID, Quantity int64
}

// changedItems returns the items to write (they appended movements or
// changed their NextExpiry), and how many movements they hold.
func changedItems(items []stockItem) (changed []stockItem, n int) {
	for _, it := range items {
		if len(it.st.Movements()) > 0 || !it.st.Level.NextExpiry.Equal(it.readExpiry) {
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
func (s *Store) writeStocks(tx *gorm.DB, set *inventory.StockSet, items []stockItem) error {
	if err := insertRejections(tx, items); err != nil {
		return err
	}
	changed, n := changedItems(items)
	var rw reservationWrites
	if set != nil {
		rw = reservationChanges(set)
	}
	if len(changed) == 0 && rw.empty() {
		return nil
	}
	if s.driver == Postgres { // a new product's initial stock
		if err := tx.Exec(pgWritingSQL).Error; err != nil {
			return err
		}
		var seqs []int64
		var ok bool
		sql, args := pgWrite(changed, n, rw)
		if err := tx.Raw(sql, args...).Row().Scan(pgtype.NewMap().SQLScanner(&seqs), &ok); err != nil {
			return err
		}
		committed(changed, seqs)
		return nil
	}
	if len(changed) > 0 {
		if err := s.writeLevels(tx, changed); err != nil {
			return err
		}
	}
	// After the levels: items reference them.
	if err := writeReservations(tx, rw); err != nil {
		return err
	}
	rw.written(set)
	if n == 0 {
		committed(changed, nil)
		return s.writeProducts(tx, changed)
	}
	var last int64
	if err := tx.Raw("UPDATE ledger_sequence SET last = last + ? WHERE id = 1 RETURNING last", n).Scan(&last).Error; err != nil {
		return err
	}
	seqs := make([]int64, n)
	for i := range seqs {
		seqs[i] = last - int64(n) + 1 + int64(i)
	}
	// Numbered first: a product's last_seq is its last movement's.
	committed(changed, seqs)
	if err := s.writeProducts(tx, changed); err != nil {
		return err
	}
	var ms []inventory.Movement
	for _, it := range changed {
		ms = append(ms, it.st.Movements()...)
	}
	return insertMovements(tx, ms)
}

type rejectionRow struct {
	IdempotencyKey, RequestHash, Code, Message string
}

func (r *rejectionRow) fields() []any {
	return []any{&r.IdempotencyKey, &r.RequestHash, &r.Code, &r.Message}
}

func (r rejectionRow) rejection() inventory.Rejection {
	return inventory.Rejection{Key: r.IdempotencyKey, RequestHash: r.RequestHash, Code: inventory.Code(r.Code), Message: r.Message}
}

// newRejections returns the refusals the items recorded.
func newRejections(items []stockItem) []inventory.Rejection {
	var out []inventory.Rejection
	for _, it := range items {
		out = append(out, it.st.NewRejections()...)
	}
	return out
}

// insertRejections remembers the items' final refusals (SQLite, and a new
// product's transaction on PostgreSQL).
func insertRejections(tx *gorm.DB, items []stockItem) error {
	rs := newRejections(items)
	if len(rs) == 0 {
		return nil
	}
	values := make([]string, len(rs))
	args := make([]any, 0, 5*len(rs))
	now := items[0].now.UTC()
	for i, r := range rs {
		values[i] = "(?, ?, ?, ?, ?)"
		args = append(args, r.Key, r.RequestHash, string(r.Code), r.Message, now)
	}
	return tx.Exec("INSERT INTO stock_rejections (idempotency_key, request_hash, code, message, created_at) VALUES "+
		strings.Join(values, ", ")+" ON CONFLICT (idempotency_key) DO NOTHING", args...).Error
}

// committed gives the items' movements, in order, the sequences seqs, and
// records the levels' new version and fence.
func committed(items []stockItem, seqs []int64) {
	for _, it := range items {
		n := len(it.st.Movements())
		it.st.Committed(seqs[:n], it.fence, it.lastAt())
		seqs = seqs[n:]
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
	return tx.Exec("WITH m ("+movementColumns+") AS (VALUES "+strings.Join(values, ", ")+") "+
		fmt.Sprintf(movementInsertSQL, "m"), args...).Error
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
			l, at := it.st.Level, it.lastAt()
			values[i] = "(?, ?, ?, ?, ?, ?, ?, ?)"
			args = append(args, l.ProductID, l.LocationID, l.Stock, l.Reserved, it.fence.Epoch, it.fence.Token, at, nullTime(l.NextExpiry))
		}
		res := tx.Exec("WITH v (pid, lid, stock, reserved, epoch, token, at, next) AS (VALUES "+strings.Join(values, ", ")+") "+
			fmt.Sprintf(levelInsertSQL, "v"), args...)
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

// levelWriteSQL is the rule for writing a level, for both databases: a
// compare-and-set on the version the transaction read, and, for a write
// made under a lease (fenced), only if no newer lease wrote the level,
// which then records the lease. The rows v (pid, lid, stock, reserved,
// readver, fenced, epoch, token, at, next) come from %s: typed arrays on
// PostgreSQL, a VALUES list on SQLite.
const levelWriteSQL = `UPDATE stock_levels AS l SET stock = v.stock, reserved = v.reserved, version = l.version + 1,
			lease_epoch = CASE WHEN v.fenced THEN v.epoch ELSE l.lease_epoch END,
			lease_token = CASE WHEN v.fenced THEN v.token ELSE l.lease_token END,
			updated_at = v.at, next_expiry = v.next
		FROM %s
		WHERE l.product_id = v.pid AND l.location_id = v.lid AND l.version = v.readver
		AND (NOT v.fenced OR l.lease_epoch < v.epoch OR (l.lease_epoch = v.epoch AND l.lease_token <= v.token))`

// levelInsertSQL creates levels, for both databases: version 1, under the
// lease that wrote them; one that a concurrent transaction created first
// is left alone (and the caller, seeing fewer rows, retries). The rows v
// (pid, lid, stock, reserved, epoch, token, at, next) come from %s. (WHERE
// true: SQLite's parser needs it before ON CONFLICT.)
const levelInsertSQL = `INSERT INTO stock_levels (product_id, location_id, stock, reserved, version, lease_epoch, lease_token,
			updated_at, next_expiry)
		SELECT pid, lid, stock, reserved, 1, epoch, token, at, next FROM %s WHERE true
		ON CONFLICT (product_id, location_id) DO NOTHING`

// updateLevels writes the existing levels of items on SQLite, in one
// statement, and returns how many it wrote.
func (s *Store) updateLevels(tx *gorm.DB, items []stockItem) (int64, error) {
	if len(items) == 0 {
		return 0, nil
	}
	values := make([]string, len(items))
	var args []any
	for i, it := range items {
		l, f := it.st.Level, it.fence
		values[i] = "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
		args = append(args, l.ProductID, l.LocationID, l.Stock, l.Reserved, it.readVersion, f != (inventory.Fence{}),
			f.Epoch, f.Token, it.lastAt(), nullTime(l.NextExpiry))
	}
	res := tx.Exec("WITH v (pid, lid, stock, reserved, readver, fenced, epoch, token, at, next) AS (VALUES "+
		strings.Join(values, ", ")+") "+fmt.Sprintf(levelWriteSQL, "v"), args...)
	return res.RowsAffected, res.Error
}

// productTotalsSQL saves product totals and each product's last
// sequence, for both databases. The rows v (id, stock, reserved, alerted,
// seq) come from %s; a NULL seq (a product that made no movement) keeps
// its last_seq.
const productTotalsSQL = `UPDATE products AS p SET stock = v.stock, reserved = v.reserved, low_stock_alerted = v.alerted,
			last_seq = coalesce(v.seq, p.last_seq)
		FROM %s
		WHERE p.id = v.id`

// movementInsertSQL inserts ledger rows, for both databases; the rows m,
// numbered already (movementColumns), come from %s.
const movementInsertSQL = "INSERT INTO stock_movements (" + movementColumns + ") SELECT " + movementColumns + " FROM %s"

// writeProducts saves the product totals of the items and their last
// sequence on SQLite, in one statement.
func (s *Store) writeProducts(tx *gorm.DB, items []stockItem) error {
	ps := distinctProducts(items)
	if len(ps) == 0 {
		return nil
	}
	values := make([]string, len(ps))
	args := make([]any, 0, 5*len(ps))
	for i, p := range ps {
		values[i] = "(?, ?, ?, ?, ?)"
		args = append(args, p.ID, p.Stock, p.Reserved, p.LowStockAlerted, p.LastSeq)
	}
	return tx.Exec("WITH v (id, stock, reserved, alerted, seq) AS (VALUES "+strings.Join(values, ", ")+") "+
		fmt.Sprintf(productTotalsSQL, "v"), args...).Error
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

// lastAt is the level's new updated_at: when its last movement was made,
// or the transaction's clock reading if it made none.
func (it stockItem) lastAt() time.Time {
	ms := it.st.Movements()
	if len(ms) == 0 {
		return it.now.UTC()
	}
	return ms[len(ms)-1].CreatedAt.UTC()
}
