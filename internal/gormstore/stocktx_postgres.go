package gormstore

import (
	"database/sql"
	"database/sql/driver"
	"time"

	"gorm.io/gorm"

	"github.com/shopstack/inventory/internal/inventory"
)

// On PostgreSQL a stock transaction is six round trips whatever the number
// of levels and movements: BEGIN, a read that locks the products, a read of
// their levels, a read of the replays, one statement for all writes,
// COMMIT. Rows travel as typed arrays through unnest, so each
// statement's text is the same for every transaction and is parsed once.
// The product rows are locked from the first read to the commit, so every
// round trip saved there is time the next batch on the product waits less.

// pgLoad locks the products of works in ID order, then reads their levels.
// Two statements: in READ COMMITTED each statement reads its own snapshot,
// and a statement that waited for a row lock sees the latest version only
// of the rows it locked; the levels must be read after the lock is held.
func pgLoad(tx *gorm.DB, works []inventory.LevelWork) (map[int64]inventory.Product, map[inventory.LevelKey]inventory.Level, error) {
	pids := make([]int64, len(works))
	lids := make([]int64, len(works))
	for i, w := range works {
		pids[i], lids[i] = w.Key.ProductID, w.Key.LocationID
	}
	var prows []productRow
	if err := tx.Raw("SELECT "+productColumns+" FROM products WHERE id = ANY(?::bigint[]) ORDER BY id FOR UPDATE", a(pids)).Scan(&prows).Error; err != nil {
		return nil, nil, err
	}
	products := make(map[int64]inventory.Product, len(prows))
	for _, r := range prows {
		products[r.ID] = r.product()
	}
	var lrows []levelRow
	err := tx.Raw(`SELECT l.product_id, l.location_id, l.stock, l.reserved, l.version, l.lease_epoch, l.lease_token, l.updated_at
		FROM unnest(?::bigint[], ?::bigint[]) AS k (pid, lid)
		JOIN stock_levels l ON l.product_id = k.pid AND l.location_id = k.lid`, a(pids), a(lids)).Scan(&lrows).Error
	if err != nil {
		return nil, nil, err
	}
	levels := make(map[inventory.LevelKey]inventory.Level, len(lrows))
	for _, r := range lrows {
		levels[inventory.LevelKey{ProductID: r.ProductID, LocationID: r.LocationID}] = r.level()
	}
	return products, levels, nil
}

// pgWriteSQL writes a stock transaction: it takes n sequences, updates the
// existing levels (compare-and-set on the version read, fenced unless the
// write is unfenced), inserts the new ones, saves the product totals and
// inserts the movements numbered from the first sequence taken. It returns
// the last sequence and how many levels it updated and inserted, so the
// caller can tell a lost compare-and-set and roll back.
const pgWriteSQL = `WITH sq AS (
		UPDATE ledger_sequence SET last = last + ?::bigint WHERE id = 1 RETURNING last
	), lv AS (
		UPDATE stock_levels AS l SET stock = v.stock, reserved = v.reserved, version = l.version + 1,
			lease_epoch = CASE WHEN v.fenced THEN v.epoch ELSE l.lease_epoch END,
			lease_token = CASE WHEN v.fenced THEN v.token ELSE l.lease_token END,
			updated_at = v.at
		FROM unnest(?::bigint[], ?::bigint[], ?::bigint[], ?::bigint[], ?::bigint[], ?::boolean[], ?::bigint[], ?::bigint[], ?::timestamptz[])
			AS v (pid, lid, stock, reserved, readver, fenced, epoch, token, at)
		WHERE l.product_id = v.pid AND l.location_id = v.lid AND l.version = v.readver
		AND (NOT v.fenced OR l.lease_epoch < v.epoch OR (l.lease_epoch = v.epoch AND l.lease_token <= v.token))
		RETURNING 1
	), nl AS (
		INSERT INTO stock_levels (product_id, location_id, stock, reserved, version, lease_epoch, lease_token, updated_at)
		SELECT pid, lid, stock, reserved, 1, epoch, token, at
		FROM unnest(?::bigint[], ?::bigint[], ?::bigint[], ?::bigint[], ?::bigint[], ?::bigint[], ?::timestamptz[])
			AS v (pid, lid, stock, reserved, epoch, token, at)
		ON CONFLICT (product_id, location_id) DO NOTHING
		RETURNING 1
	), pr AS (
		UPDATE products AS p SET stock = v.stock, reserved = v.reserved, low_stock_alerted = v.alerted
		FROM unnest(?::bigint[], ?::bigint[], ?::bigint[], ?::boolean[]) AS v (id, stock, reserved, alerted)
		WHERE p.id = v.id
	), mv AS (
		INSERT INTO stock_movements (` + movementColumns + `)
		SELECT sq.last - ?::bigint + m.ord, m.product_id, m.location_id, m.type, m.delta, m.quantity_after,
			m.available_after, m.low_stock_alert, m.reason, m.reference, m.actor, m.idempotency_key,
			m.request_hash, m.lease_epoch, m.lease_token, m.trace_id, m.created_at
		FROM sq, unnest(?::bigint[], ?::bigint[], ?::text[], ?::bigint[], ?::bigint[], ?::bigint[], ?::boolean[],
			?::text[], ?::text[], ?::text[], ?::text[], ?::text[], ?::bigint[], ?::bigint[], ?::text[], ?::timestamptz[])
			WITH ORDINALITY AS m (product_id, location_id, type, delta, quantity_after, available_after, low_stock_alert,
				reason, reference, actor, idempotency_key, request_hash, lease_epoch, lease_token, trace_id, created_at, ord)
	)
	SELECT (SELECT last FROM sq) AS last, (SELECT count(*) FROM lv) AS updated, (SELECT count(*) FROM nl) AS inserted`

// pgWrite runs pgWriteSQL for the changed items and returns the sequence
// of the first movement.
func pgWrite(tx *gorm.DB, items []stockItem, n int) (int64, error) {
	var upd struct {
		pid, lid, stock, reserved, readver, epoch, token []int64
		fenced                                           []bool
		at                                               []time.Time
	}
	var ins struct {
		pid, lid, stock, reserved, epoch, token []int64
		at                                      []time.Time
	}
	var prod struct {
		id, stock, reserved []int64
		alerted             []bool
	}
	var mv struct {
		pid, lid, delta, qty, avail, epoch, token []int64
		typ, reason, ref, actor, trace            []string
		key, hash                                 []*string
		alert                                     []bool
		at                                        []time.Time
	}
	for _, it := range items {
		l, p, f, at := it.st.Level, it.st.Product, it.fence, lastAt(it.st)
		if it.exists {
			upd.pid, upd.lid, upd.stock, upd.reserved = append(upd.pid, l.ProductID), append(upd.lid, l.LocationID), append(upd.stock, l.Stock), append(upd.reserved, l.Reserved)
			upd.readver, upd.fenced = append(upd.readver, it.readVersion), append(upd.fenced, f != (inventory.Fence{}))
			upd.epoch, upd.token, upd.at = append(upd.epoch, f.Epoch), append(upd.token, f.Token), append(upd.at, at)
		} else {
			ins.pid, ins.lid, ins.stock, ins.reserved = append(ins.pid, l.ProductID), append(ins.lid, l.LocationID), append(ins.stock, l.Stock), append(ins.reserved, l.Reserved)
			ins.epoch, ins.token, ins.at = append(ins.epoch, f.Epoch), append(ins.token, f.Token), append(ins.at, at)
		}
		prod.id, prod.stock, prod.reserved, prod.alerted = append(prod.id, p.ID), append(prod.stock, p.Stock), append(prod.reserved, p.Reserved), append(prod.alerted, p.LowStockAlerted)
		for _, m := range it.st.Movements() {
			mv.pid, mv.lid, mv.delta, mv.qty, mv.avail = append(mv.pid, l.ProductID), append(mv.lid, l.LocationID), append(mv.delta, m.Delta), append(mv.qty, m.QuantityAfter), append(mv.avail, m.AvailableAfter)
			mv.epoch, mv.token, mv.alert = append(mv.epoch, m.Fence.Epoch), append(mv.token, m.Fence.Token), append(mv.alert, m.LowStockAlert)
			mv.typ, mv.reason, mv.ref, mv.actor, mv.trace = append(mv.typ, string(m.Type)), append(mv.reason, m.Reason), append(mv.ref, m.Reference), append(mv.actor, m.Actor), append(mv.trace, m.TraceID)
			key, hash := nullable(m.IdempotencyKey), nullableHash(m)
			mv.key, mv.hash = append(mv.key, nullPtr(key)), append(mv.hash, nullPtr(hash))
			mv.at = append(mv.at, m.CreatedAt.UTC())
		}
	}
	var out struct{ Last, Updated, Inserted int64 }
	err := tx.Raw(pgWriteSQL, n,
		a(upd.pid), a(upd.lid), a(upd.stock), a(upd.reserved), a(upd.readver), a(upd.fenced), a(upd.epoch), a(upd.token), a(upd.at),
		a(ins.pid), a(ins.lid), a(ins.stock), a(ins.reserved), a(ins.epoch), a(ins.token), a(ins.at),
		a(prod.id), a(prod.stock), a(prod.reserved), a(prod.alerted),
		n, a(mv.pid), a(mv.lid), a(mv.typ), a(mv.delta), a(mv.qty), a(mv.avail), a(mv.alert), a(mv.reason), a(mv.ref), a(mv.actor),
		a(mv.key), a(mv.hash), a(mv.epoch), a(mv.token), a(mv.trace), a(mv.at),
	).Scan(&out).Error
	if err != nil {
		return 0, err
	}
	if out.Updated != int64(len(upd.pid)) || out.Inserted != int64(len(ins.pid)) {
		return 0, inventory.ErrVersionConflict
	}
	return out.Last - int64(n) + 1, nil
}

// pgArray passes a slice as one array parameter: GORM would expand a bare
// slice into a list of parameters.
type pgArray[T any] []T

// Value returns the slice, which pgx encodes as an array.
func (a pgArray[T]) Value() (driver.Value, error) { return []T(a), nil }

// a wraps a column's values as one array parameter.
func a[T any](v []T) pgArray[T] { return pgArray[T](v) }

func nullPtr(s sql.NullString) *string {
	if !s.Valid {
		return nil
	}
	return &s.String
}
