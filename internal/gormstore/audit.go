package gormstore

import (
	"context"
	"strings"

	"github.com/shopstack/inventory/internal/inventory"
)

// AuditLevels returns each selected level's stored stock and reserved
// units beside the sum of its ledger deltas and of its active reservation
// items. It is one statement, so it reads one snapshot of the database.
func (s *Store) AuditLevels(ctx context.Context, productIDs, locationIDs []int64) ([]inventory.LevelAudit, error) {
	var where []string
	var args []any
	if len(productIDs) > 0 {
		where, args = append(where, "l.product_id IN ?"), append(args, productIDs)
	}
	if len(locationIDs) > 0 {
		where, args = append(where, "l.location_id IN ?"), append(args, locationIDs)
	}
	filter := ""
	if len(where) > 0 {
		filter = " WHERE " + strings.Join(where, " AND ")
	}
	var rows []struct {
		ProductID, LocationID  int64
		Stock, LedgerStock     int64
		Reserved, HeldReserved int64
	}
	err := s.db.WithContext(ctx).Raw(`SELECT l.product_id, l.location_id, l.stock, l.reserved,
		COALESCE((SELECT SUM(m.delta) FROM stock_movements m WHERE m.product_id = l.product_id AND m.location_id = l.location_id), 0) AS ledger_stock,
		COALESCE((SELECT SUM(r.quantity) FROM reservation_items r WHERE r.product_id = l.product_id AND r.location_id = l.location_id AND r.active), 0) AS held_reserved
		FROM stock_levels l`+filter+` ORDER BY l.product_id, l.location_id`, args...).Scan(&rows).Error
	if err != nil {
		return nil, translate(err)
	}
	out := make([]inventory.LevelAudit, len(rows))
	for i, r := range rows {
		out[i] = inventory.LevelAudit{Key: inventory.LevelKey{ProductID: r.ProductID, LocationID: r.LocationID},
			Stock: r.Stock, LedgerStock: r.LedgerStock, Reserved: r.Reserved, HeldReserved: r.HeldReserved}
	}
	return out, nil
}
