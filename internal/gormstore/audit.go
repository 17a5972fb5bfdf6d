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
	rows, err := s.db.WithContext(ctx).Raw("SELECT "+auditColumns+" FROM stock_levels l"+filter+" ORDER BY l.product_id, l.location_id", args...).Rows()
	if err != nil {
		return nil, translate(err)
	}
	defer rows.Close()
	var out []inventory.LevelAudit
	for rows.Next() {
		var a auditRow
		if err := rows.Scan(a.fields()...); err != nil {
			return nil, translate(err)
		}
		out = append(out, a.audit())
	}
	return out, translate(rows.Err())
}

// auditColumns are a level l's stored values beside the sum of its ledger
// deltas and of its active reservation items, for a query over levels l
// (AuditLevels, and a stock transaction's audited levels).
var auditColumns = `l.product_id, l.location_id, l.stock, l.reserved,
	COALESCE((SELECT SUM(m.delta) FROM stock_movements m WHERE m.product_id = l.product_id AND m.location_id = l.location_id), 0),
	COALESCE((SELECT SUM(r.quantity) FROM reservation_items r WHERE r.product_id = l.product_id AND r.location_id = l.location_id AND r.active), 0),
	l.damaged, l.quality_control, l.safety_stock, l.incoming, ` + ledgerStatesSQL

// ledgerStatesSQL sums the level l's ledger changes of each state.
var ledgerStatesSQL = func() string {
	var sums []string
	for _, c := range strings.Split(stateColumns, ", ") {
		sums = append(sums, "COALESCE((SELECT SUM(m."+c+"_delta) FROM stock_movements m WHERE m.product_id = l.product_id AND m.location_id = l.location_id), 0)")
	}
	return strings.Join(sums, ",\n\t")
}()

type auditRow struct {
	ProductID, LocationID int64
	Stock, Reserved       int64
	LedgerStock, Held     int64
	States, LedgerStates  StateCols
}

func (r *auditRow) fields() []any {
	return append(append([]any{&r.ProductID, &r.LocationID, &r.Stock, &r.Reserved, &r.LedgerStock, &r.Held},
		r.States.fields()...), r.LedgerStates.fields()...)
}

func (r auditRow) key() inventory.LevelKey {
	return inventory.LevelKey{ProductID: r.ProductID, LocationID: r.LocationID}
}

func (r auditRow) audit() inventory.LevelAudit {
	return inventory.LevelAudit{Key: r.key(), Stock: r.Stock, LedgerStock: r.LedgerStock, Reserved: r.Reserved, HeldReserved: r.Held,
		States: r.States.states(), LedgerStates: r.LedgerStates.states()}
}
