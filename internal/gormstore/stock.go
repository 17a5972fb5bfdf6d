package gormstore

import (
	"context"
	"fmt"
	"strings"

	"gorm.io/gorm"

	"github.com/shopstack/inventory/internal/inventory"
)

// UpdateStock runs one stock transaction; see inventory.Store.
func (s *Store) UpdateStock(ctx context.Context, key inventory.LevelKey, fence inventory.Fence, replayKeys []string, fn func(*inventory.StockTx) error) error {
	return s.write(ctx, func(tx *gorm.DB) error {
		p, err := s.lockProduct(tx, key.ProductID)
		if err != nil {
			return err
		}
		lvl, exists, err := loadLevel(tx, key)
		if err != nil {
			return err
		}
		st := &inventory.StockTx{Product: p, Level: lvl, Replays: map[string]inventory.Movement{}}
		if len(replayKeys) > 0 {
			var rows []movementRow
			if err := tx.Raw("SELECT "+movementColumns+" FROM stock_movements WHERE idempotency_key IN ?", replayKeys).Scan(&rows).Error; err != nil {
				return err
			}
			for _, r := range rows {
				st.Replays[r.IdempotencyKey.String] = r.movement()
			}
		}
		if err := fn(st); err != nil {
			return err
		}
		if len(st.Movements()) == 0 {
			return nil
		}
		return s.writeStock(tx, st, fence, exists, lvl.Version)
	})
}

// loadLevel reads a level. A missing level of an existing location is an
// empty level that does not exist yet.
func loadLevel(tx *gorm.DB, key inventory.LevelKey) (inventory.Level, bool, error) {
	var rows []levelRow
	err := tx.Raw("SELECT "+levelColumns+" FROM stock_levels WHERE product_id = ? AND location_id = ?",
		key.ProductID, key.LocationID).Scan(&rows).Error
	if err != nil {
		return inventory.Level{}, false, err
	}
	if len(rows) > 0 {
		return rows[0].level(), true, nil
	}
	var n int64
	if err := tx.Raw("SELECT count(*) FROM locations WHERE id = ?", key.LocationID).Scan(&n).Error; err != nil {
		return inventory.Level{}, false, err
	}
	if n == 0 {
		return inventory.Level{}, false, inventory.Errorf(inventory.CodeNotFound, "location %d not found", key.LocationID)
	}
	return inventory.Level{ProductID: key.ProductID, LocationID: key.LocationID}, false, nil
}

// writeStock persists a StockTx whose movements were applied: the level
// (compare-and-set on the version it was read at, so a concurrent writer is
// detected rather than overwritten, and fenced: a level last written under a
// newer lease is not touched), the product totals, and the movements with
// sequences taken last, so the counter's row lock is held only for the
// insert and the commit.
func (s *Store) writeStock(tx *gorm.DB, st *inventory.StockTx, fence inventory.Fence, exists bool, readVersion int64) error {
	ms := st.Movements()
	at := ms[len(ms)-1].CreatedAt
	l := st.Level
	if exists {
		var res *gorm.DB
		if fence == (inventory.Fence{}) {
			res = tx.Exec(`UPDATE stock_levels SET stock = ?, reserved = ?, version = version + 1, updated_at = ?
				WHERE product_id = ? AND location_id = ? AND version = ?`,
				l.Stock, l.Reserved, at, l.ProductID, l.LocationID, readVersion)
		} else {
			res = tx.Exec(`UPDATE stock_levels SET stock = ?, reserved = ?, version = version + 1, lease_epoch = ?, lease_token = ?, updated_at = ?
				WHERE product_id = ? AND location_id = ? AND version = ?
				AND (lease_epoch < ? OR (lease_epoch = ? AND lease_token <= ?))`,
				l.Stock, l.Reserved, fence.Epoch, fence.Token, at, l.ProductID, l.LocationID, readVersion,
				fence.Epoch, fence.Epoch, fence.Token)
		}
		if res.Error != nil {
			return res.Error
		}
		if res.RowsAffected != 1 {
			return inventory.ErrVersionConflict
		}
	} else {
		res := tx.Exec(`INSERT INTO stock_levels (product_id, location_id, stock, reserved, version, lease_epoch, lease_token, updated_at)
			VALUES (?, ?, ?, ?, 1, ?, ?, ?) ON CONFLICT (product_id, location_id) DO NOTHING`,
			l.ProductID, l.LocationID, l.Stock, l.Reserved, fence.Epoch, fence.Token, at)
		if res.Error != nil {
			return res.Error
		}
		if res.RowsAffected != 1 {
			return inventory.ErrVersionConflict
		}
	}
	p := st.Product
	if err := tx.Exec("UPDATE products SET stock = ?, reserved = ?, low_stock_alerted = ? WHERE id = ?",
		p.Stock, p.Reserved, p.LowStockAlerted, p.ID).Error; err != nil {
		return err
	}
	var last int64
	if err := tx.Raw("UPDATE ledger_sequence SET last = last + ? WHERE id = 1 RETURNING last", len(ms)).Scan(&last).Error; err != nil {
		return err
	}
	first := last - int64(len(ms)) + 1
	st.Committed(first, fence, at)
	ms = st.Movements()
	row := "(" + strings.TrimSuffix(strings.Repeat("?, ", movementColumnCount), ", ") + ")"
	values := make([]string, len(ms))
	args := make([]any, 0, movementColumnCount*len(ms))
	for i, m := range ms {
		values[i] = row
		args = append(args, movementArgs(m)...)
	}
	return tx.Exec("INSERT INTO stock_movements ("+movementColumns+") VALUES "+strings.Join(values, ", "), args...).Error
}

// Levels returns a product's levels ordered by location.
func (s *Store) Levels(ctx context.Context, productID int64) ([]inventory.Level, error) {
	var rows []levelRow
	err := s.db.WithContext(ctx).Raw("SELECT "+levelColumns+" FROM stock_levels WHERE product_id = ? ORDER BY location_id", productID).Scan(&rows).Error
	if err != nil {
		return nil, translate(err)
	}
	out := make([]inventory.Level, len(rows))
	for i, r := range rows {
		out[i] = r.level()
	}
	return out, nil
}

// Movements returns ledger rows as q selects them.
func (s *Store) Movements(ctx context.Context, q inventory.MovementQuery) (inventory.MovementPage, error) {
	where, args := []string{"1 = 1"}, []any{}
	if q.ProductID > 0 {
		where, args = append(where, "product_id = ?"), append(args, q.ProductID)
	}
	if len(q.ProductIDs) > 0 {
		where, args = append(where, "product_id IN ?"), append(args, q.ProductIDs)
	}
	if q.LocationID > 0 {
		where, args = append(where, "location_id = ?"), append(args, q.LocationID)
	}
	if q.AlertsOnly {
		where = append(where, "low_stock_alert")
	}
	order := "ASC"
	if q.Descending {
		order = "DESC"
	}
	if q.HasAfter {
		op := ">"
		if q.Descending {
			op = "<"
		}
		where, args = append(where, "seq "+op+" ?"), append(args, q.After)
	}
	if q.UpTo > 0 {
		where, args = append(where, "seq <= ?"), append(args, q.UpTo)
	}
	limit := q.Limit
	if limit <= 0 {
		limit = inventory.DefaultPageSize
	}
	args = append(args, limit+1)
	var rows []movementRow
	sql := fmt.Sprintf("SELECT %s FROM stock_movements WHERE %s ORDER BY seq %s LIMIT ?", movementColumns, strings.Join(where, " AND "), order)
	if err := s.db.WithContext(ctx).Raw(sql, args...).Scan(&rows).Error; err != nil {
		return inventory.MovementPage{}, translate(err)
	}
	page := inventory.MovementPage{HasNext: len(rows) > limit}
	rows = rows[:min(len(rows), limit)]
	page.Movements = make([]inventory.Movement, len(rows))
	for i, r := range rows {
		page.Movements[i] = r.movement()
	}
	return page, nil
}

// LastSeq returns the highest committed ledger sequence.
func (s *Store) LastSeq(ctx context.Context) (int64, error) {
	var last int64
	err := s.db.WithContext(ctx).Raw("SELECT last FROM ledger_sequence WHERE id = 1").Scan(&last).Error
	return last, translate(err)
}

// MaxLeaseToken returns the highest fencing token recorded on a level.
func (s *Store) MaxLeaseToken(ctx context.Context) (int64, error) {
	var max int64
	err := s.db.WithContext(ctx).Raw("SELECT coalesce(max(lease_token), 0) FROM stock_levels").Scan(&max).Error
	return max, translate(err)
}
