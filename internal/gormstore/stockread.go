package gormstore

import (
	"database/sql"
	"fmt"
	"strings"
	"time"

	"github.com/shopstack/inventory/internal/gormstore/dialect"
	"github.com/shopstack/inventory/internal/inventory"
)

// The reads of a stock transaction are one list of statements for both
// databases (see package dialect): loadStock builds them, and a runner runs
// them. PostgreSQL's runner sends BEGIN, the plan settings and the first
// list in one round trip.

// stockSQL is the text of each stock read in one dialect, built once.
type stockSQL struct {
	d                            dialect.Dialect
	products, productsSkipLocked string
	levels, replays, rejections  string
	audits                       string
	reservations, items, newIDs  string
	transfers, transferItems     string
	existingProducts, locations  string
	expired, nextExpiry          string
}

func newStockSQL(d dialect.Dialect) *stockSQL {
	q := &stockSQL{d: d}
	q.products = "SELECT " + productColumns + " FROM products WHERE " + d.In("id", "bigint") + " ORDER BY id" + d.ForUpdate()
	q.productsSkipLocked = q.products
	if d.PG { // SQLite's transaction holds the whole database: nothing is held elsewhere
		q.productsSkipLocked += " SKIP LOCKED"
	}
	q.levels = "SELECT l." + strings.ReplaceAll(levelColumns, ", ", ", l.") + `
		FROM ` + d.Pairs() + `
		JOIN stock_levels l ON l.product_id = k.pid AND l.location_id = k.lid`
	q.replays = "SELECT " + movementColumns + " FROM stock_movements WHERE " + d.In("idempotency_key", "text")
	q.rejections = "SELECT idempotency_key, request_hash, code, message, field FROM stock_rejections WHERE " + d.In("idempotency_key", "text")
	q.audits = "SELECT " + auditColumns + " FROM " + d.Pairs() + " JOIN stock_levels l ON l.product_id = k.pid AND l.location_id = k.lid"
	q.reservations = "SELECT " + reservationColumns + " FROM reservations WHERE " + d.In("id", "bigint") + " ORDER BY id" + d.ForUpdate()
	q.items = "SELECT " + itemColumns + " FROM reservation_items WHERE " + d.In("reservation_id", "bigint") +
		" ORDER BY reservation_id, product_id, location_id, bundle_id"
	q.transfers = "SELECT " + transferColumns + " FROM transfers WHERE " + d.In("id", "bigint") + " ORDER BY id" + d.ForUpdate()
	q.transferItems = "SELECT " + transferItemColumns + " FROM transfer_items WHERE " + d.In("transfer_id", "bigint") +
		" ORDER BY transfer_id, product_id"
	q.newIDs = d.NewIDs()
	q.existingProducts = "SELECT id FROM products WHERE " + d.In("id", "bigint")
	q.locations = "SELECT id FROM locations WHERE " + d.In("id", "bigint")
	// expired returns the expired active items of the levels, and
	// nextExpiry the earliest expiry of each level's other active items:
	// one index probe per level, never all of a hot level's items.
	q.expired = `SELECT i.product_id, i.location_id, i.reservation_id, i.quantity, i.bundle_id
		FROM ` + d.Pairs() + `
		JOIN reservation_items i ON i.product_id = k.pid AND i.location_id = k.lid AND i.active AND i.expires_at <= ?
		ORDER BY i.expires_at, i.reservation_id`
	q.nextExpiry = `SELECT k.pid, k.lid, (SELECT i.expires_at FROM reservation_items i
			WHERE i.product_id = k.pid AND i.location_id = k.lid AND i.active AND i.expires_at > ?
			ORDER BY i.expires_at LIMIT 1)
		FROM ` + d.Pairs()
	for _, s := range []*string{&q.products, &q.productsSkipLocked, &q.levels, &q.replays, &q.rejections, &q.audits, &q.reservations,
		&q.items, &q.transfers, &q.transferItems, &q.newIDs, &q.existingProducts, &q.locations, &q.expired, &q.nextExpiry} {
		*s = d.Text(*s)
	}
	return q
}

var (
	pgStockSQL     = newStockSQL(dialect.Postgres)
	sqliteStockSQL = newStockSQL(dialect.SQLite)
)

// loadStock reads a stock transaction's data: the products (locked, or
// with SkipLocked those no other transaction holds), their levels, the
// replays and remembered refusals of its keys, the reservations it changes
// and IDs for those it creates, the transfers it changes; then, if needed, which of the missing
// levels' locations exist, which skipped products exist, and the expired
// items of the levels whose NextExpiry has passed.
func loadStock(r dialect.Runner, q *stockSQL, works []inventory.LevelWork, opts inventory.StockOptions) (*inventory.StockSet, []stockItem, error) {
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
	qs := []dialect.Stmt{
		{SQL: q.products, Args: []any{d.List(pids)}, Dest: p.fields(), Row: func() error {
			pp := p.product()
			data.products[p.ID] = &pp
			return nil
		}},
		{SQL: q.levels, Args: d.PairArgs(keys), Dest: l.fields(), Row: func() error {
			data.levels[inventory.LevelKey{ProductID: l.ProductID, LocationID: l.LocationID}] = l.level()
			return nil
		}},
	}
	if opts.SkipLocked {
		qs[0].SQL = q.productsSkipLocked
	}
	if rk := replayKeys(works); len(rk) > 0 {
		var m movementRow
		var rj rejectionRow
		qs = append(qs,
			dialect.Stmt{SQL: q.replays, Args: []any{d.List(rk)}, Dest: m.fields(), Row: func() error {
				data.replays[m.IdempotencyKey.String] = m.movement()
				return nil
			}},
			dialect.Stmt{SQL: q.rejections, Args: []any{d.List(rk)}, Dest: rj.fields(), Row: func() error {
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
		qs = append(qs, dialect.Stmt{SQL: q.audits, Args: d.PairArgs(audited), Dest: a.fields(), Row: func() error {
			data.audits[a.key()] = a.audit()
			return nil
		}})
	}
	var items []itemRow
	if len(opts.Reservations) > 0 {
		var rr reservationRow
		var it itemRow
		qs = append(qs,
			dialect.Stmt{SQL: q.reservations, Args: []any{d.List(opts.Reservations)}, Dest: rr.fields(), Row: func() error {
				set.Reservations[rr.ID] = rr.reservation()
				return nil
			}},
			dialect.Stmt{SQL: q.items, Args: []any{d.List(opts.Reservations)}, Dest: it.fields(), Row: func() error {
				items = append(items, it)
				return nil
			}})
	}
	var transferItems []transferItemRow
	if len(opts.Transfers) > 0 {
		set.Transfers = map[int64]*inventory.Transfer{}
		var tr transferRow
		var it transferItemRow
		qs = append(qs,
			dialect.Stmt{SQL: q.transfers, Args: []any{d.List(opts.Transfers)}, Dest: tr.fields(), Row: func() error {
				set.Transfers[tr.ID] = tr.transfer()
				return nil
			}},
			dialect.Stmt{SQL: q.transferItems, Args: []any{d.List(opts.Transfers)}, Dest: it.fields(), Row: func() error {
				transferItems = append(transferItems, it)
				return nil
			}})
	}
	if opts.NewReservations > 0 {
		var id int64
		qs = append(qs, dialect.Stmt{SQL: q.newIDs, Args: []any{opts.NewReservations}, Dest: []any{&id}, Row: func() error {
			set.NewIDs = append(set.NewIDs, id)
			return nil
		}})
	}
	if err := r.Run(qs); err != nil {
		return nil, nil, err
	}
	attachItems(set.Reservations, items)
	attachTransferItems(set.Transfers, transferItems)

	stock, missing := buildItems(works, data, opts.Now)
	for _, it := range stock {
		set.Levels = append(set.Levels, it.st)
	}
	if err := r.Run(followUps(q, stock, data, missing, opts)); err != nil {
		return nil, nil, err
	}
	return set, stock, nil
}

// followUps are the reads that depend on the first ones: with SkipLocked,
// which absent products another transaction holds (their levels get
// ErrLevelBusy); which missing levels' locations exist; and the expired
// items of the levels whose NextExpiry has passed, with the earliest expiry
// of their other items.
func followUps(q *stockSQL, items []stockItem, data stockData, missing []int64, opts inventory.StockOptions) []dialect.Stmt {
	d := q.d
	var qs []dialect.Stmt
	if opts.SkipLocked && d.PG {
		var absent []int64
		for _, it := range items {
			if id := it.st.Level.ProductID; data.products[id] == nil {
				absent = append(absent, id)
			}
		}
		if len(absent) > 0 {
			var id int64
			qs = append(qs, dialect.Stmt{SQL: q.existingProducts, Args: []any{d.List(absent)}, Dest: []any{&id}, Row: func() error {
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
		qs = append(qs, dialect.Stmt{SQL: q.locations, Args: []any{d.List(missing)}, Dest: []any{&id},
			Row: func() error { found = append(found, id); return nil },
			End: func() { markUnknownLocations(items, found) }})
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
		dialect.Stmt{SQL: q.expired, Args: append(d.PairArgs(keys), now), Dest: []any{&e.ProductID, &e.LocationID, &e.ReservationID, &e.Quantity, &e.BundleID},
			Row: func() error {
				it := due[inventory.LevelKey{ProductID: e.ProductID, LocationID: e.LocationID}]
				it.st.Expired = append(it.st.Expired, inventory.ReservedItem{ReservationID: e.ReservationID, Quantity: e.Quantity, BundleID: e.BundleID})
				return nil
			}},
		dialect.Stmt{SQL: q.nextExpiry, Args: append([]any{now}, d.PairArgs(keys)...), Dest: []any{&pid, &lid, &next},
			Row: func() error {
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
