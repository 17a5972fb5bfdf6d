package gormstore

import (
	"context"
	"fmt"
	"strings"

	"github.com/shopstack/inventory/internal/gormstore/dialect"
	"github.com/shopstack/inventory/internal/inventory"
)

// movementFilter returns the conditions q puts on ledger rows, besides
// its products, and the order of travel.
func movementFilter(q inventory.MovementQuery) (where []string, args []any, order string) {
	where = []string{"1 = 1"}
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
	if len(q.Seqs) > 0 {
		where, args = append(where, "seq IN ?"), append(args, q.Seqs)
	}
	order = "ASC"
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
	return where, args, order
}

func movementLimit(q inventory.MovementQuery) int {
	if q.Limit <= 0 {
		return inventory.DefaultPageSize
	}
	return q.Limit
}

// movementPage makes a page of up to limit rows from rows, which hold one
// more if there is a next page.
func movementPage(rows []movementRow, limit int) inventory.MovementPage {
	page := inventory.MovementPage{HasNext: len(rows) > limit}
	rows = rows[:min(len(rows), limit)]
	page.Movements = make([]inventory.Movement, len(rows))
	for i, r := range rows {
		page.Movements[i] = r.movement()
	}
	return page
}

// Movements returns ledger rows as q selects them.
func (s *Store) Movements(ctx context.Context, q inventory.MovementQuery) (inventory.MovementPage, error) {
	if q.HasAfter && !q.Descending && s.driver == Postgres {
		// Following the ledger: up to the watermark, so that a row
		// committed later below it cannot be skipped (see LastSeq).
		w, err := s.pgWatermark(ctx)
		if err != nil {
			return inventory.MovementPage{}, translate(err)
		}
		if w <= q.After {
			return inventory.MovementPage{}, nil
		}
		if q.UpTo <= 0 || w < q.UpTo {
			q.UpTo = w
		}
	}
	where, args, order := movementFilter(q)
	if q.ProductID > 0 {
		where, args = append(where, "product_id = ?"), append(args, q.ProductID)
	}
	if len(q.ProductIDs) > 0 {
		where, args = append(where, "product_id IN ?"), append(args, q.ProductIDs)
	}
	limit := movementLimit(q)
	args = append(args, limit+1)
	sql := fmt.Sprintf("SELECT %s FROM stock_movements WHERE %s ORDER BY seq %s LIMIT ?", movementColumns, strings.Join(where, " AND "), order)
	rows, err := scanMovements(s.db.WithContext(ctx), sql, args...)
	if err != nil {
		return inventory.MovementPage{}, translate(err)
	}
	return movementPage(rows, limit), nil
}

// MovementsByProducts returns a page of ledger rows per product, as q
// selects them, in one statement: each product's page is an index range
// of its own (PostgreSQL: a LATERAL subquery per element of an array;
// SQLite, which has no LATERAL: a UNION ALL of one subquery per product).
func (s *Store) MovementsByProducts(ctx context.Context, productIDs []int64, q inventory.MovementQuery) (map[int64]inventory.MovementPage, error) {
	out := make(map[int64]inventory.MovementPage, len(productIDs))
	if len(productIDs) == 0 {
		return out, nil
	}
	where, fargs, order := movementFilter(q)
	limit := movementLimit(q)
	page := fmt.Sprintf("SELECT %s FROM stock_movements WHERE product_id = %%s AND %s ORDER BY seq %s LIMIT ?",
		movementColumns, strings.Join(where, " AND "), order)
	var sql string
	var args []any
	if s.driver == Postgres {
		sql = "SELECT m.* FROM unnest(?::bigint[]) AS k (pid) CROSS JOIN LATERAL (" + fmt.Sprintf(page, "k.pid") + ") AS m"
		args = append(append([]any{dialect.Array(productIDs)}, fargs...), limit+1)
	} else {
		parts := make([]string, len(productIDs))
		for i, id := range productIDs {
			parts[i] = "SELECT * FROM (" + fmt.Sprintf(page, "?") + ")"
			args = append(append(append(args, id), fargs...), limit+1)
		}
		sql = strings.Join(parts, " UNION ALL ")
	}
	rows, err := scanMovements(s.db.WithContext(ctx), sql, args...)
	if err != nil {
		return nil, translate(err)
	}
	byProduct := make(map[int64][]movementRow, len(productIDs))
	for _, r := range rows {
		byProduct[r.ProductID] = append(byProduct[r.ProductID], r)
	}
	for _, id := range productIDs {
		out[id] = movementPage(byProduct[id], limit)
	}
	return out, nil
}

// MaxLeaseToken returns the highest fencing token recorded on a level.
func (s *Store) MaxLeaseToken(ctx context.Context) (int64, error) {
	var max int64
	err := s.db.WithContext(ctx).Raw("SELECT coalesce(max(lease_token), 0) FROM stock_levels").Scan(&max).Error
	return max, translate(err)
}
