package gormstore

import (
	"context"
	"fmt"
	"strings"

	"github.com/shopstack/inventory/internal/inventory"
)

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
	if q.Reservations {
		where = append(where, "reservation_id IS NOT NULL")
	}
	if len(q.ReservationIDs) > 0 {
		where, args = append(where, "reservation_id IN ?"), append(args, q.ReservationIDs)
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
