package gormstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"gorm.io/gorm"

	"github.com/shopstack/inventory/internal/inventory"
)

// The reads of a stock transaction are written once, for both databases:
// loadStock builds them as a list of queries (stockReads), and a reader
// runs the list. PostgreSQL's reader pipelines each list in one round trip
// (BEGIN and the settings go with the first), SQLite's runs it statement by
// statement through GORM inside its immediate transaction. The texts differ
// only where the databases do (a dialect): how a list of values travels as
// one parameter (a typed array, or a JSON array read with json_each), row
// locks, and where new reservation IDs come from.

// dialect is what the stock reads' SQL text needs to know of a database.
type dialect struct {
	pg bool
}

// in is the predicate "col is one of the list" of SQL type typ, passed as
// one parameter made by list.
func (d dialect) in(col, typ string) string {
	if d.pg {
		return col + " = ANY(?::" + typ + "[])"
	}
	return col + " IN (SELECT value FROM json_each(?))"
}

// list is the parameter of in for vals ([]int64 or []string).
func (d dialect) list(vals any) any {
	if d.pg {
		return vals
	}
	b, _ := json.Marshal(vals) // slices of ints or strings always marshal
	return string(b)
}

// pairs is a table k (pid, lid) of levels, passed as pairArgs.
func (d dialect) pairs() string {
	if d.pg {
		return "unnest(?::bigint[], ?::bigint[]) AS k (pid, lid)"
	}
	return "(SELECT value ->> 0 AS pid, value ->> 1 AS lid FROM json_each(?)) AS k"
}

func (d dialect) pairArgs(keys []inventory.LevelKey) []any {
	pids, lids := make([]int64, len(keys)), make([]int64, len(keys))
	for i, k := range keys {
		pids[i], lids[i] = k.ProductID, k.LocationID
	}
	if d.pg {
		return []any{pids, lids}
	}
	pairs := make([][2]int64, len(keys))
	for i := range keys {
		pairs[i] = [2]int64{pids[i], lids[i]}
	}
	b, _ := json.Marshal(pairs)
	return []any{string(b)}
}

// forUpdate locks the rows read until the transaction ends; SQLite's
// transaction holds the whole database already.
func (d dialect) forUpdate() string {
	if d.pg {
		return " FOR UPDATE"
	}
	return ""
}

// stockSQL is the text of each stock read in one dialect, built once.
type stockSQL struct {
	d                            dialect
	products, productsSkipLocked string
	levels, replays, rejections  string
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
	q.reservations = "SELECT " + reservationColumns + " FROM reservations WHERE " + d.in("id", "bigint") + " ORDER BY id" + d.forUpdate()
	q.items = "SELECT " + itemColumns + " FROM reservation_items WHERE " + d.in("reservation_id", "bigint") +
		" ORDER BY reservation_id, product_id, location_id"
	if d.pg {
		q.newIDs = "SELECT nextval(pg_get_serial_sequence('reservations', 'id')) FROM generate_series(1, ?::int)"
	} else {
		// The IDs after the largest ever used; the transaction holds the
		// database, so no one else takes them first.
		q.newIDs = `WITH RECURSIVE n (i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?)
			SELECT max(coalesce((SELECT max(id) FROM reservations), 0),
				coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'reservations'), 0)) + i FROM n`
	}
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
	if d.pg {
		for _, s := range []*string{&q.products, &q.productsSkipLocked, &q.levels, &q.replays, &q.rejections, &q.reservations,
			&q.items, &q.newIDs, &q.existingProducts, &q.locations, &q.expired, &q.nextExpiry} {
			*s = pgNumbered(*s)
		}
	}
	return q
}

var (
	pgStockSQL     = newStockSQL(dialect{pg: true})
	sqliteStockSQL = newStockSQL(dialect{})
)

// readQuery is one read: its text and arguments, where each row is
// scanned to, what is done with it then, and (if set) what is done after
// the last row.
type readQuery struct {
	sql  string
	args []any
	dest []any
	row  func() error
	end  func()
}

// reader runs reads in a stock transaction, in order.
type reader interface {
	read(qs []readQuery) error
}

// loadStock reads a stock transaction's data: the products (locked, or
// with SkipLocked those no other transaction holds), their levels, the
// replays and remembered refusals of its keys, the reservations it changes
// and IDs for those it creates; then, if needed, which of the missing
// levels' locations exist, which skipped products exist, and the expired
// items of the levels whose NextExpiry has passed.
func loadStock(r reader, q *stockSQL, works []inventory.LevelWork, opts inventory.StockOptions) (*inventory.StockSet, []stockItem, error) {
	d := q.d
	pids := make([]int64, len(works))
	keys := make([]inventory.LevelKey, len(works))
	for i, w := range works {
		pids[i], keys[i] = w.Key.ProductID, w.Key
	}
	data := stockData{products: map[int64]*inventory.Product{}, levels: map[inventory.LevelKey]inventory.Level{},
		replays: map[string]inventory.Movement{}, rejections: map[string]inventory.Rejection{}}
	set := &inventory.StockSet{Now: opts.Now, Reservations: map[int64]*inventory.Reservation{}}

	var p productRow
	var l levelRow
	qs := []readQuery{
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
			readQuery{sql: q.replays, args: []any{d.list(rk)}, dest: m.fields(), row: func() error {
				data.replays[m.IdempotencyKey.String] = m.movement()
				return nil
			}},
			readQuery{sql: q.rejections, args: []any{d.list(rk)}, dest: rj.fields(), row: func() error {
				data.rejections[rj.IdempotencyKey] = rj.rejection()
				return nil
			}})
	}
	var items []itemRow
	if len(opts.Reservations) > 0 {
		var rr reservationRow
		var it itemRow
		qs = append(qs,
			readQuery{sql: q.reservations, args: []any{d.list(opts.Reservations)}, dest: rr.fields(), row: func() error {
				set.Reservations[rr.ID] = rr.reservation()
				return nil
			}},
			readQuery{sql: q.items, args: []any{d.list(opts.Reservations)}, dest: it.fields(), row: func() error {
				items = append(items, it)
				return nil
			}})
	}
	if opts.NewReservations > 0 {
		var id int64
		qs = append(qs, readQuery{sql: q.newIDs, args: []any{opts.NewReservations}, dest: []any{&id}, row: func() error {
			set.NewIDs = append(set.NewIDs, id)
			return nil
		}})
	}
	if err := r.read(qs); err != nil {
		return nil, nil, err
	}
	attachItems(set.Reservations, items)

	stock, missing := buildItems(works, data, opts.Now)
	for _, it := range stock {
		set.Levels = append(set.Levels, it.st)
	}
	if err := r.read(followUps(q, stock, data, missing, opts)); err != nil {
		return nil, nil, err
	}
	return set, stock, nil
}

// followUps are the reads that depend on the first ones: with SkipLocked,
// which absent products another transaction holds (their levels get
// ErrLevelBusy); which missing levels' locations exist; and the expired
// items of the levels whose NextExpiry has passed, with the earliest expiry
// of their other items.
func followUps(q *stockSQL, items []stockItem, data stockData, missing []int64, opts inventory.StockOptions) []readQuery {
	d := q.d
	var qs []readQuery
	if opts.SkipLocked && d.pg {
		var absent []int64
		for _, it := range items {
			if id := it.st.Level.ProductID; data.products[id] == nil {
				absent = append(absent, id)
			}
		}
		if len(absent) > 0 {
			var id int64
			qs = append(qs, readQuery{sql: q.existingProducts, args: []any{d.list(absent)}, dest: []any{&id}, row: func() error {
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
		qs = append(qs, readQuery{sql: q.locations, args: []any{d.list(missing)}, dest: []any{&id},
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
		readQuery{sql: q.expired, args: append(d.pairArgs(keys), now), dest: []any{&e.ProductID, &e.LocationID, &e.ReservationID, &e.Quantity},
			row: func() error {
				it := due[inventory.LevelKey{ProductID: e.ProductID, LocationID: e.LocationID}]
				it.st.Expired = append(it.st.Expired, inventory.ReservedItem{ReservationID: e.ReservationID, Quantity: e.Quantity})
				return nil
			}},
		readQuery{sql: q.nextExpiry, args: append([]any{now}, d.pairArgs(keys)...), dest: []any{&pid, &lid, &next},
			row: func() error {
				if !next.IsZero() {
					due[inventory.LevelKey{ProductID: pid, LocationID: lid}].st.NextActiveExpiry = next.UTC()
				}
				return nil
			}})
}

// pgReader runs reads on a pgx connection, each list in one round trip;
// the first list opens the transaction.
type pgReader struct {
	ctx   context.Context
	c     *pgx.Conn
	begun bool
}

func (r *pgReader) read(qs []readQuery) error {
	if len(qs) == 0 {
		return nil
	}
	b := &pgx.Batch{}
	var prefix []string
	if !r.begun {
		prefix = append([]string{"BEGIN"}, pgPlanSettings...)
		r.begun = true
	}
	for _, s := range prefix {
		b.Queue(s)
	}
	for _, q := range qs {
		b.Queue(q.sql, q.args...)
	}
	br := r.c.SendBatch(r.ctx, b)
	err := func() error {
		for range prefix {
			if _, err := br.Exec(); err != nil {
				return err
			}
		}
		for _, q := range qs {
			rows, _ := br.Query()
			if _, err := pgx.ForEachRow(rows, q.dest, q.row); err != nil {
				return err
			}
			if q.end != nil {
				q.end()
			}
		}
		return nil
	}()
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	return err
}

// gormReader runs reads through GORM in its transaction, one statement at
// a time (SQLite runs in process: a statement costs no round trip).
type gormReader struct {
	tx *gorm.DB
}

func (r gormReader) read(qs []readQuery) error {
	for _, q := range qs {
		if err := r.query(q); err != nil {
			return err
		}
	}
	return nil
}

func (r gormReader) query(q readQuery) error {
	rows, err := r.tx.Raw(q.sql, q.args...).Rows()
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		if err := rows.Scan(q.dest...); err != nil {
			return err
		}
		if err := q.row(); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return err
	}
	if q.end != nil {
		q.end()
	}
	return nil
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
