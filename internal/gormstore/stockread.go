package gormstore

import (
	"database/sql"
	"fmt"
	"time"

	"github.com/shopstack/inventory/internal/inventory"
)

// The reads of a stock transaction are one list of statements for both
// databases (see dialect.go): loadStock builds them, and a runner runs
// them. PostgreSQL's runner sends BEGIN, the plan settings and the first
// list in one round trip.

// stockSQL is the text of each stock read in one dialect, built once.
type stockSQL struct {
	d                            dialect
	products, productsSkipLocked string
	levels, replays, rejections  string
	audits                       string
	reservations, items, newIDs  string
	existingProducts, locations  string
	expired, nextExpiry          string
}

func newStockSQL(d dialect) *stockSQL {
	q := &stockSQL{d: d}
	q.products = "SELECT " + productColumns + " FROM products WHERE " + d.in("id", "bigint") + " ORDER BY id" + d.forUpdate()
	q.productsSkipLocked = q.products
	if d.pg { // SQLite's transaction holds the whole database: nothing is held elsewhere
		q.productsSkipLocked += " SKIP LOCKED"
	}
	q.levels = `SELECT l.product_id, l.location_id, l.stock, l.reserved, l.version, l.lease_epoch, l.lease_token, l.updated_at,
			l.next_expiry
		FROM ` + d.pairs() + `
		JOIN stock_levels l ON l.product_id = k.pid AND l.location_id = k.lid`
	q.replays = "SELECT " + movementColumns + " FROM stock_movements WHERE " + d.in("idempotency_key", "text")
	q.rejections = "SELECT idempotency_key, request_hash, code, message FROM stock_rejections WHERE " + d.in("idempotency_key", "text")
	q.audits = "SELECT " + auditColumns + " FROM " + d.pairs() + " JOIN stock_levels l ON l.product_id = k.pid AND l.location_id = k.lid"
	q.reservations = "SELECT " + reservationColumns + " FROM reservations WHERE " + d.in("id", "bigint") + " ORDER BY id" + d.forUpdate()
	q.items = "SELECT " + itemColumns + " FROM reservation_items WHERE " + d.in("reservation_id", "bigint") +
		" ORDER BY reservation_id, product_id, location_id"
	q.newIDs = d.newIDs()
	q.existingProducts = "SELECT id FROM products WHERE " + d.in("id", "bigint")
	q.locations = "SELECT id FROM locations WHERE " + d.in("id", "bigint")
	// expired returns the expired active items of the levels, and
	// nextExpiry the earliest expiry of each level's other active items:
	// one index probe per level, never all of a hot level's items.
	q.expired = `SELECT i.product_id, i.location_id, i.reservation_id, i.quantity
		FROM ` + d.pairs() + `
		JOIN reservation_items i ON i.product_id = k.pid AND i.location_id = k.lid AND i.active AND i.expires_at <= ?
		ORDER BY i.expires_at, i.reservation_id`
	q.nextExpiry = `SELECT k.pid, k.lid, (SELECT i.expires_at FROM reservation_items i
			WHERE i.product_id = k.pid AND i.location_id = k.lid AND i.active AND i.expires_at > ?
			ORDER BY i.expires_at LIMIT 1)
		FROM ` + d.pairs()
	for _, s := range []*string{&q.products, &q.productsSkipLocked, &q.levels, &q.replays, &q.rejections, &q.audits, &q.reservations,
		&q.items, &q.newIDs, &q.existingProducts, &q.locations, &q.expired, &q.nextExpiry} {
		*s = d.text(*s)
	}
	return q
}

var (
	pgStockSQL     = newStockSQL(postgresDialect)
	sqliteStockSQL = newStockSQL(sqliteDialect)
)

// loadStock reads a stock transaction's data: the products (locked, or
// with SkipLocked those no other transaction holds), their levels, the
// replays and remembered refusals of its keys, the reservations it changes
// and IDs for those it creates; then, if needed, which of the missing
// levels' locations exist, which skipped products exist, and the expired
// items of the levels whose NextExpiry has passed.
func loadStock(r runner, q *stockSQL, works []inventory.LevelWork, opts inventory.StockOptions) (*inventory.StockSet, []stockItem, error) {
	d := q.d
	pids := make([]int64, len(works))
	keys := make([]inventory.LevelKey, len(works))
	for i, w := range works {
		pids[i], keys[i] = w.Key.ProductID, w.Key
	}
	data := stockData{products: map[int64]*inventory.Product{}, levels: map[inventory.LevelKey]inventory.Level{},
		replays: map[string]inventory.Movement{}, rejections: map[string]inventory.Rejection{}, audits: map[inventory.LevelKey]inventory.LevelAudit{}}
	set := &inventory.StockSet{Now: opts.Now, Reservations: map[int64]*inventory.Reservation{}}

	var p productRow
	var l levelRow
	qs := []stmt{
		{sql: q.products, args: []any{d.list(pids)}, dest: p.fields(), row: func() error {
			pp := p.product()
			data.products[p.ID] = &pp
			return nil
		}},
		{sql: q.levels, args: d.pairArgs(keys), dest: l.fields(), row: func() error {
			data.levels[inventory.LevelKey{ProductID: l.ProductID, LocationID: l.LocationID}] = l.level()
			return nil
		}},
	}
	if opts.SkipLocked {
		qs[0].sql = q.productsSkipLocked
	}
	if rk := replayKeys(works); len(rk) > 0 {
		var m movementRow
		var rj rejectionRow
		qs = append(qs,
			stmt{sql: q.replays, args: []any{d.list(rk)}, dest: m.fields(), row: func() error {
				data.replays[m.IdempotencyKey.String] = m.movement()
				return nil
			}},
			stmt{sql: q.rejections, args: []any{d.list(rk)}, dest: rj.fields(), row: func() error {
				data.rejections[rj.IdempotencyKey] = rj.rejection()
				return nil
			}})
	}
	var audited []inventory.LevelKey
	for _, w := range works {
		if w.Audit {
			audited = append(audited, w.Key)
		}
	}
	if len(audited) > 0 {
		var a auditRow
		qs = append(qs, stmt{sql: q.audits, args: d.pairArgs(audited), dest: a.fields(), row: func() error {
			data.audits[a.key()] = a.audit()
			return nil
		}})
	}
	var items []itemRow
	if len(opts.Reservations) > 0 {
		var rr reservationRow
		var it itemRow
		qs = append(qs,
			stmt{sql: q.reservations, args: []any{d.list(opts.Reservations)}, dest: rr.fields(), row: func() error {
				set.Reservations[rr.ID] = rr.reservation()
				return nil
			}},
			stmt{sql: q.items, args: []any{d.list(opts.Reservations)}, dest: it.fields(), row: func() error {
				items = append(items, it)
				return nil
			}})
	}
	if opts.NewReservations > 0 {
		var id int64
		qs = append(qs, stmt{sql: q.newIDs, args: []any{opts.NewReservations}, dest: []any{&id}, row: func() error {
			set.NewIDs = append(set.NewIDs, id)
			return nil
		}})
	}
	if err := r.run(qs); err != nil {
		return nil, nil, err
	}
	attachItems(set.Reservations, items)

	stock, missing := buildItems(works, data, opts.Now)
	for _, it := range stock {
		set.Levels = append(set.Levels, it.st)
	}
	if err := r.run(followUps(q, stock, data, missing, opts)); err != nil {
		return nil, nil, err
	}
	return set, stock, nil
}

// followUps are the reads that depend on the first ones: with SkipLocked,
// which absent products another transaction holds (their levels get
// ErrLevelBusy); which missing levels' locations exist; and the expired
// items of the levels whose NextExpiry has passed, with the earliest expiry
// of their other items.
func followUps(q *stockSQL, items []stockItem, data stockData, missing []int64, opts inventory.StockOptions) []stmt {
	d := q.d
	var qs []stmt
	if opts.SkipLocked && d.pg {
		var absent []int64
		for _, it := range items {
			if id := it.st.Level.ProductID; data.products[id] == nil {
				absent = append(absent, id)
			}
		}
		if len(absent) > 0 {
			var id int64
			qs = append(qs, stmt{sql: q.existingProducts, args: []any{d.list(absent)}, dest: []any{&id}, row: func() error {
				for _, it := range items {
					if it.st.Level.ProductID == id {
						it.st.Err = inventory.ErrLevelBusy
					}
				}
				return nil
			}})
		}
	}
	if len(missing) > 0 {
		var found []int64
		var id int64
		qs = append(qs, stmt{sql: q.locations, args: []any{d.list(missing)}, dest: []any{&id},
			row: func() error { found = append(found, id); return nil },
			end: func() { markUnknownLocations(items, found) }})
	}
	due := dueLevels(items, opts.Now)
	if len(due) == 0 {
		return qs
	}
	keys := make([]inventory.LevelKey, 0, len(due))
	for k := range due {
		keys = append(keys, k)
	}
	now := opts.Now.UTC()
	var e expiredRow
	var pid, lid int64
	var next anyTime
	return append(qs,
		stmt{sql: q.expired, args: append(d.pairArgs(keys), now), dest: []any{&e.ProductID, &e.LocationID, &e.ReservationID, &e.Quantity},
			row: func() error {
				it := due[inventory.LevelKey{ProductID: e.ProductID, LocationID: e.LocationID}]
				it.st.Expired = append(it.st.Expired, inventory.ReservedItem{ReservationID: e.ReservationID, Quantity: e.Quantity})
				return nil
			}},
		stmt{sql: q.nextExpiry, args: append([]any{now}, d.pairArgs(keys)...), dest: []any{&pid, &lid, &next},
			row: func() error {
				if !next.IsZero() {
					due[inventory.LevelKey{ProductID: pid, LocationID: lid}].st.NextActiveExpiry = next.UTC()
				}
				return nil
			}})
}

// anyTime scans a time that SQLite returns as text when it does not know
// the value is one (the result of a subquery), or NULL as the zero time.
type anyTime struct{ time.Time }

var _ sql.Scanner = (*anyTime)(nil)

func (t *anyTime) Scan(v any) error {
	switch v := v.(type) {
	case nil:
		t.Time = time.Time{}
	case time.Time:
		t.Time = v
	case string:
		for _, layout := range []string{"2006-01-02 15:04:05.999999999-07:00", time.RFC3339Nano, "2006-01-02 15:04:05.999999999"} {
			if p, err := time.Parse(layout, v); err == nil {
				t.Time = p
				return nil
			}
		}
		return fmt.Errorf("scan time: cannot parse %q", v)
	default:
		return fmt.Errorf("scan time: unsupported %T", v)
	}
	return nil
}
