package gormstore

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/shopstack/inventory/internal/inventory"
)

// On PostgreSQL a stock transaction is two round trips, whatever the number
// of levels and movements. It runs on one of the pool's connections through
// pgx, with pipelining, which database/sql (and so GORM) does not offer:
//
//  1. BEGIN, lock the products in ID order, read their levels, read the
//     replays. The server runs them in order, so the levels are read after
//     the lock is held (in READ COMMITTED a statement sees the new version
//     only of rows it locked itself; a later statement sees all of them).
//  2. One statement for all writes, and COMMIT. A lost compare-and-set makes
//     the write statement fail (stock_write_check), which aborts the
//     transaction, so COMMIT then rolls back.
//
// The products are locked from the first trip to the commit: every round
// trip saved there is time the next batch on the product waits less. The
// statements' texts are the same for every transaction (rows travel as
// typed arrays through unnest), so pgx prepares each once per connection.

// pgPlanSettings steer the planner for the stock transaction only. Its
// statements, and the foreign-key checks of the rows it inserts, are key
// lookups: they are planned once per connection (a custom plan each time
// cost more than running the statement; with three foreign keys per ledger
// row it was most of PostgreSQL's time), and never as sequential scans, so
// a plan made while a table was small stays right as it grows. The session
// default stays force_custom_plan (see postgresConfig) for every other
// query.
var pgPlanSettings = []string{"SET LOCAL plan_cache_mode = force_generic_plan", "SET LOCAL enable_seqscan = off"}

// pgUpdateStocks is UpdateStocks on PostgreSQL.
func (s *Store) pgUpdateStocks(ctx context.Context, works []inventory.LevelWork, opts inventory.StockOptions, cb inventory.StockCallbacks) error {
	sqlDB, err := s.db.DB()
	if err != nil {
		return err
	}
	conn, err := sqlDB.Conn(ctx)
	if err != nil {
		return translate(err)
	}
	defer conn.Close()
	err = conn.Raw(func(dc any) error {
		c := dc.(*stdlib.Conn).Conn()
		err := pgStockTx(ctx, c, works, opts, cb)
		if c.PgConn().TxStatus() != 'I' {
			// A failure left the transaction open: end it, or have the pool
			// drop the connection.
			rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			defer cancel()
			if _, rerr := c.Exec(rctx, "ROLLBACK"); rerr != nil {
				return errors.Join(err, driver.ErrBadConn)
			}
		}
		return err
	})
	return translate(err)
}

func pgStockTx(ctx context.Context, c *pgx.Conn, works []inventory.LevelWork, opts inventory.StockOptions, cb inventory.StockCallbacks) error {
	set, items, err := loadStock(&pgReader{ctx: ctx, c: c}, pgStockSQL, works, opts)
	if err != nil {
		return err
	}
	if err := applySet(set, cb); err != nil {
		return err
	}
	changed, n := changedItems(items)
	rw := reservationChanges(set)
	write := len(changed) > 0 || !rw.empty()
	b := &pgx.Batch{}
	rejections := newRejections(items)
	if len(rejections) > 0 {
		b.Queue(pgInsertRejectionsSQL, pgRejectionArgs(rejections, opts.Now)...)
	}
	if write {
		b.Queue(pgWritingSQL)
		sql, args := pgWrite(changed, n, rw)
		b.Queue(pgNumbered(sql), args...)
	}
	b.Queue("COMMIT")
	br := c.SendBatch(ctx, b)
	if len(rejections) > 0 {
		if _, err := br.Exec(); err != nil {
			_ = br.Close()
			return err
		}
	}
	var seqs []int64
	if write {
		if _, err := br.Exec(); err != nil {
			_ = br.Close()
			return err
		}
		var ok bool
		if err := br.QueryRow().Scan(&seqs, &ok); err != nil {
			_ = br.Close()
			return err
		}
	}
	tag, err := br.Exec()
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if tag.String() != "COMMIT" {
		return fmt.Errorf("stock transaction: COMMIT answered %q", tag.String())
	}
	committed(changed, seqs)
	rw.written(set)
	return nil
}

// pgWritingSQL is run by every transaction that writes ledger rows, just
// before the statement that takes their sequences: it holds pgWritingKey,
// shared, to its end. A reader that wants every sequence up to the last one
// taken waits for the holders it sees (pgWatermark). The statement that
// follows it waits for no row lock (its rows are locked through their
// products in the first round trip), so holders are brief.
const pgWritingSQL = "SELECT pg_advisory_xact_lock_shared(" + pgWritingKey + ")"

// pgWritingKey is the advisory lock of ledger writers: a class of our own
// (the migrations' lock is 7460221), and the ledger sequence's OID, so that
// stores in other schemas of the database do not wait for each other.
const pgWritingKey = "7460222, 'ledger_seq'::regclass::oid::int"

// pgInsertRejectionsSQL remembers final refusals, in the write round trip.
const pgInsertRejectionsSQL = `INSERT INTO stock_rejections (idempotency_key, request_hash, code, message, created_at)
	SELECT k, h, c, m, $5 FROM unnest($1::text[], $2::text[], $3::text[], $4::text[]) AS r (k, h, c, m)
	ON CONFLICT (idempotency_key) DO NOTHING`

func pgRejectionArgs(rs []inventory.Rejection, now time.Time) []any {
	keys, hashes, codes, messages := make([]string, len(rs)), make([]string, len(rs)), make([]string, len(rs)), make([]string, len(rs))
	for i, r := range rs {
		keys[i], hashes[i], codes[i], messages[i] = r.Key, r.RequestHash, string(r.Code), r.Message
	}
	return []any{keys, hashes, codes, messages, now.UTC()}
}

// pgLevelWriteSQL is levelWriteSQL over typed arrays.
var pgLevelWriteSQL = fmt.Sprintf(levelWriteSQL, `unnest(?::bigint[], ?::bigint[], ?::bigint[], ?::bigint[], ?::bigint[], ?::boolean[],
			?::bigint[], ?::bigint[], ?::timestamptz[], ?::timestamptz[])
			AS v (pid, lid, stock, reserved, readver, fenced, epoch, token, at, next)`)

// pgWriteSQL writes a stock transaction: it takes n sequences from
// ledger_seq (the ord-th smallest is the ord-th movement's), updates the
// existing levels (compare-and-set on the version read, fenced unless the
// write is unfenced), inserts the new ones, saves the product totals (and
// each product's last sequence: its last movement's) and inserts the
// movements. It returns the sequences in movement order, and fails
// (SQLSTATE IV001) if a level was not updated or inserted as expected. It
// runs after pgWritingSQL, in the same transaction. Placeholders are GORM's; pgNumbered turns them
// into pgx's.
var pgWriteSQL = `WITH sq AS (
		SELECT row_number() OVER (ORDER BY s) AS ord, s AS seq
		FROM (SELECT nextval('ledger_seq') AS s FROM generate_series(1, ?::bigint)) AS g
	), lv AS (
		` + pgLevelWriteSQL + `
		RETURNING 1
	), nl AS (
		` + fmt.Sprintf(levelInsertSQL, `unnest(?::bigint[], ?::bigint[], ?::bigint[], ?::bigint[], ?::bigint[], ?::bigint[],
			?::timestamptz[], ?::timestamptz[]) AS v (pid, lid, stock, reserved, epoch, token, at, next)`) + `
		RETURNING 1
	), pr AS (
		` + fmt.Sprintf(productTotalsSQL, `(SELECT v.id, v.stock, v.reserved, v.alerted, sq.seq
			FROM unnest(?::bigint[], ?::bigint[], ?::bigint[], ?::boolean[], ?::bigint[]) AS v (id, stock, reserved, alerted, ord)
			LEFT JOIN sq ON sq.ord = v.ord) AS v`) + `
	), mv AS (
		` + fmt.Sprintf(movementInsertSQL, `(SELECT sq.seq, m.* FROM unnest(?::bigint[], ?::bigint[], ?::text[], ?::bigint[], ?::bigint[],
			?::bigint[], ?::boolean[], ?::text[], ?::text[], ?::text[], ?::text[], ?::text[], ?::bigint[], ?::bigint[], ?::text[],
			?::timestamptz[], ?::bigint[], ?::bigint[])
			WITH ORDINALITY AS m (product_id, location_id, type, delta, quantity_after, available_after, low_stock_alert,
				reason, reference, actor, idempotency_key, request_hash, lease_epoch, lease_token, trace_id, created_at,
				reserved_delta, reservation_id, ord)
			JOIN sq ON sq.ord = m.ord) AS m`) + `
	), rn AS (
		INSERT INTO reservations (id, status, expires_at, reference, actor, idempotency_key, request_hash, version, created_at, updated_at)
		SELECT id, 'ACTIVE', exp, ref, actor, key, hash, 1, at, at
		FROM unnest(?::bigint[], ?::timestamptz[], ?::text[], ?::text[], ?::text[], ?::text[], ?::timestamptz[])
			AS v (id, exp, ref, actor, key, hash, at)
	), rin AS (
		INSERT INTO reservation_items (reservation_id, product_id, location_id, quantity, expires_at, active)
		SELECT rid, pid, lid, qty, exp, TRUE
		FROM unnest(?::bigint[], ?::bigint[], ?::bigint[], ?::bigint[], ?::timestamptz[]) AS v (rid, pid, lid, qty, exp)
	), rio AS (
		` + fmt.Sprintf(itemsClosedSQL, "unnest(?::bigint[], ?::bigint[], ?::bigint[]) AS v (rid, pid, lid)") + `
	), rs AS (
		` + fmt.Sprintf(reservationsClosedSQL, `(SELECT DISTINCT ON (rid) rid, status, at
			FROM unnest(?::bigint[], ?::text[], ?::timestamptz[]) AS u (rid, status, at) ORDER BY rid) AS v`) + `
	), re AS (
		` + fmt.Sprintf(reservationsExtendedSQL, "unnest(?::bigint[], ?::timestamptz[], ?::timestamptz[]) AS v (rid, exp, at)") + `
	), rie AS (
		` + fmt.Sprintf(itemsExtendedSQL, "unnest(?::bigint[], ?::timestamptz[]) AS v (rid, exp)") + `
	)
	SELECT (SELECT coalesce(array_agg(seq ORDER BY ord), '{}') FROM sq) AS seqs,
		stock_write_check((SELECT count(*) FROM lv) = ?::bigint AND (SELECT count(*) FROM nl) = ?::bigint) AS ok`

// pgWrite returns pgWriteSQL and its arguments for the changed items,
// which hold n movements in all, and the reservation writes.
func pgWrite(items []stockItem, n int, rw reservationWrites) (string, []any) {
	var upd struct {
		pid, lid, stock, reserved, readver, epoch, token []int64
		fenced                                           []bool
		at                                               []time.Time
		next                                             []*time.Time
	}
	var ins struct {
		pid, lid, stock, reserved, epoch, token []int64
		at                                      []time.Time
		next                                    []*time.Time
	}
	var prod struct {
		id, stock, reserved, ord []int64
		alerted                  []bool
	}
	lastOrd := map[int64]int64{} // product -> ordinal of its last movement
	var mv struct {
		pid, lid, delta, qty, avail, epoch, token, rdelta []int64
		typ, reason, ref, actor, trace                    []string
		key, hash                                         []*string
		resv                                              []*int64
		alert                                             []bool
		at                                                []time.Time
	}
	for _, it := range items {
		l, f, at := it.st.Level, it.fence, it.lastAt()
		if it.exists {
			upd.pid, upd.lid, upd.stock, upd.reserved = append(upd.pid, l.ProductID), append(upd.lid, l.LocationID), append(upd.stock, l.Stock), append(upd.reserved, l.Reserved)
			upd.readver, upd.fenced = append(upd.readver, it.readVersion), append(upd.fenced, f != (inventory.Fence{}))
			upd.epoch, upd.token, upd.at = append(upd.epoch, f.Epoch), append(upd.token, f.Token), append(upd.at, at)
			upd.next = append(upd.next, timePtr(l.NextExpiry))
		} else {
			ins.pid, ins.lid, ins.stock, ins.reserved = append(ins.pid, l.ProductID), append(ins.lid, l.LocationID), append(ins.stock, l.Stock), append(ins.reserved, l.Reserved)
			ins.epoch, ins.token, ins.at = append(ins.epoch, f.Epoch), append(ins.token, f.Token), append(ins.at, at)
			ins.next = append(ins.next, timePtr(l.NextExpiry))
		}
		for _, m := range it.st.Movements() {
			mv.pid, mv.lid, mv.delta, mv.qty, mv.avail = append(mv.pid, l.ProductID), append(mv.lid, l.LocationID), append(mv.delta, m.Delta), append(mv.qty, m.QuantityAfter), append(mv.avail, m.AvailableAfter)
			mv.epoch, mv.token, mv.alert = append(mv.epoch, m.Fence.Epoch), append(mv.token, m.Fence.Token), append(mv.alert, m.LowStockAlert)
			mv.typ, mv.reason, mv.ref, mv.actor, mv.trace = append(mv.typ, string(m.Type)), append(mv.reason, m.Reason), append(mv.ref, m.Reference), append(mv.actor, m.Actor), append(mv.trace, m.TraceID)
			mv.key, mv.hash = append(mv.key, nullPtr(nullable(m.IdempotencyKey))), append(mv.hash, nullPtr(nullableHash(m)))
			mv.at = append(mv.at, m.CreatedAt.UTC())
			mv.rdelta, mv.resv = append(mv.rdelta, m.ReservedDelta), append(mv.resv, idPtr(m.ReservationID))
			lastOrd[l.ProductID] = int64(len(mv.pid))
		}
	}
	for _, p := range distinctProducts(items) {
		prod.id, prod.stock, prod.reserved, prod.alerted = append(prod.id, p.ID), append(prod.stock, p.Stock), append(prod.reserved, p.Reserved), append(prod.alerted, p.LowStockAlerted)
		prod.ord = append(prod.ord, lastOrd[p.ID])
	}
	r := pgReservationArgs(rw)
	return pgWriteSQL, append([]any{n,
		a(upd.pid), a(upd.lid), a(upd.stock), a(upd.reserved), a(upd.readver), a(upd.fenced), a(upd.epoch), a(upd.token), a(upd.at), a(upd.next),
		a(ins.pid), a(ins.lid), a(ins.stock), a(ins.reserved), a(ins.epoch), a(ins.token), a(ins.at), a(ins.next),
		a(prod.id), a(prod.stock), a(prod.reserved), a(prod.alerted), a(prod.ord),
		a(mv.pid), a(mv.lid), a(mv.typ), a(mv.delta), a(mv.qty), a(mv.avail), a(mv.alert), a(mv.reason), a(mv.ref), a(mv.actor),
		a(mv.key), a(mv.hash), a(mv.epoch), a(mv.token), a(mv.trace), a(mv.at), a(mv.rdelta), a(mv.resv),
	}, append(r, len(upd.pid), len(ins.pid))...)
}

// pgReservationArgs returns the arguments of pgWriteSQL's reservation
// statements, in order.
func pgReservationArgs(rw reservationWrites) []any {
	var rn struct {
		id                     []int64
		exp, at                []time.Time
		ref, actor             []string
		key, hash              []*string
		rid, pid, lid, qty     []int64
		iexp                   []time.Time
		orid, opid, olid, srid []int64
		sstatus                []string
		sat                    []time.Time
		erid                   []int64
		eexp, eat              []time.Time
	}
	for _, r := range rw.created {
		rn.id, rn.exp, rn.at = append(rn.id, r.ID), append(rn.exp, r.ExpiresAt.UTC()), append(rn.at, r.CreatedAt.UTC())
		rn.ref, rn.actor = append(rn.ref, r.Reference), append(rn.actor, r.Actor)
		key := nullable(r.IdempotencyKey)
		hash := sql.NullString{String: r.RequestHash, Valid: r.IdempotencyKey != ""}
		rn.key, rn.hash = append(rn.key, nullPtr(key)), append(rn.hash, nullPtr(hash))
		for _, it := range r.Items {
			rn.rid, rn.pid, rn.lid, rn.qty = append(rn.rid, r.ID), append(rn.pid, it.ProductID), append(rn.lid, it.LocationID), append(rn.qty, it.Quantity)
			rn.iexp = append(rn.iexp, r.ExpiresAt.UTC())
		}
	}
	for _, c := range rw.closed {
		rn.orid, rn.opid, rn.olid = append(rn.orid, c.reservationID), append(rn.opid, c.productID), append(rn.olid, c.locationID)
		rn.srid, rn.sstatus, rn.sat = append(rn.srid, c.reservationID), append(rn.sstatus, string(c.status)), append(rn.sat, c.at)
	}
	for id, until := range rw.extended {
		rn.erid, rn.eexp, rn.eat = append(rn.erid, id), append(rn.eexp, until.UTC()), append(rn.eat, rw.now)
	}
	return []any{
		a(rn.id), a(rn.exp), a(rn.ref), a(rn.actor), a(rn.key), a(rn.hash), a(rn.at),
		a(rn.rid), a(rn.pid), a(rn.lid), a(rn.qty), a(rn.iexp),
		a(rn.orid), a(rn.opid), a(rn.olid),
		a(rn.srid), a(rn.sstatus), a(rn.sat),
		a(rn.erid), a(rn.eexp), a(rn.eat),
		a(rn.erid), a(rn.eexp),
	}
}

// pgNumbered rewrites GORM's ? placeholders as pgx's $1, $2, ….
func pgNumbered(sql string) string {
	var b strings.Builder
	n := 0
	for _, r := range sql {
		if r == '?' {
			n++
			b.WriteString("$" + strconv.Itoa(n))
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

// pgArray passes a slice as one array parameter: GORM would expand a bare
// slice into a list of parameters.
type pgArray[T any] []T

// Value returns the slice, which pgx encodes as an array.
func (a pgArray[T]) Value() (driver.Value, error) { return []T(a), nil }

// a wraps a column's values as one array parameter.
func a[T any](v []T) pgArray[T] { return pgArray[T](v) }

// timePtr is nil for the zero time (stored as NULL).
func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	u := t.UTC()
	return &u
}

// idPtr is nil for the zero ID (stored as NULL).
func idPtr(id int64) *int64 {
	if id == 0 {
		return nil
	}
	return &id
}

func nullPtr(s sql.NullString) *string {
	if !s.Valid {
		return nil
	}
	return &s.String
}
