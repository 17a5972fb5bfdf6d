package gormstore

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/shopstack/inventory/internal/gormstore/dialect"
	"github.com/shopstack/inventory/internal/inventory"
)

// The writes of a stock transaction are one list of statements for both
// databases (see package dialect): each takes its rows as a table v (or m)
// filled from the transaction's levels and what the domain recorded, and
// writes them as the domain decided. The store decides nothing: which rows
// a statement writes, and to what values, come from the StockTx and the
// StockSet. In order:
//
//  1. the final refusals the domain recorded;
//  2. the levels that changed: a compare-and-set on the version each was
//     read at, and, for a write made under a lease, only if no newer lease
//     wrote the level, which then records the lease; new levels inserted,
//     unless a concurrent transaction created them first (a conflict);
//  3. the reservations created, closed and extended;
//  4. the ledger rows, numbered (see dialect.numbered) after the level and
//     reservation rows they refer to;
//  5. the product totals, with each product's last sequence: the largest
//     of its ledger rows (dialect.lastSeq).
//
// SQLite runs the list in order, a statement per write that has rows.
// PostgreSQL gets the same list as one statement, each write a part of a
// WITH, sent with COMMIT: a statement costs the server a round of executor
// start-up while the transaction holds its products' rows, so the next
// batch on them waits for every one (separate statements measured 5-20%
// fewer reservations and checkouts a second). The ledger rows' sequences
// and the products' last sequences are read back from the writes.

// A write is one statement of the list: its name (its part in
// PostgreSQL's one statement), its template (%s is its rows, the table v),
// its rows, and whether it is a compare-and-set that must write every row.
type write struct {
	name    string
	sql     string
	rows    func(w *stockWrites) []dialect.Column
	checked bool
}

var writes = []write{
	{"rj", rejectionsSQL, func(w *stockWrites) []dialect.Column { return w.rejections.columns() }, false},
	{"lv", levelUpdatesSQL, func(w *stockWrites) []dialect.Column { return w.updates.columns() }, true},
	{"nl", levelInsertsSQL, func(w *stockWrites) []dialect.Column { return w.inserts.columns() }, true},
	{"rn", reservationsSQL, func(w *stockWrites) []dialect.Column { return w.created.columns() }, false},
	{"ri", reservationItemsSQL, func(w *stockWrites) []dialect.Column { return w.createdItems.columns() }, false},
	{"ic", itemsClosedSQL, func(w *stockWrites) []dialect.Column { return w.closedItems.columns() }, false},
	{"rc", reservationsClosedSQL, func(w *stockWrites) []dialect.Column { return w.closed.columns() }, false},
	{"re", reservationsExtendedSQL, func(w *stockWrites) []dialect.Column { return w.extended.columns() }, false},
	{"ie", itemsExtendedSQL, func(w *stockWrites) []dialect.Column { return w.extended.columns() }, false},
	{"tr", transfersChangedSQL, func(w *stockWrites) []dialect.Column { return w.transfers.columns() }, false},
	{"ti", transferItemsChangedSQL, func(w *stockWrites) []dialect.Column { return w.transferItems.columns() }, false},
}

// writeSQL is the text of the stock writes in one dialect, built once.
type writeSQL struct {
	d dialect.Dialect
	// each is the text of each write on its own (SQLite), in writes order.
	each []string
	// takeSeqs precedes the ledger rows (dialect.takeSeqs).
	takeSeqs   string
	takesCount bool
	// movements and products write the ledger rows and the product totals
	// on their own (SQLite); all writes all of them in one statement
	// (PostgreSQL).
	movements, products, all string
	// A new product (CreateProduct).
	nextRevision, insertProduct, insertKey string
}

// Statement templates; %s is the table of rows (v or m), which
// dialect.table makes from the columns of the rows types below.
const (
	rejectionsSQL = `INSERT INTO stock_rejections (idempotency_key, request_hash, code, message, field, created_at)
		SELECT k, h, c, m, f, at FROM %s WHERE true ON CONFLICT (idempotency_key) DO NOTHING`
	levelUpdatesSQL = `UPDATE stock_levels AS l SET stock = v.stock, reserved = v.reserved, damaged = v.damaged,
			quality_control = v.qc, safety_stock = v.safety, incoming = v.incoming, backorder_limit = v.blimit, version = l.version + 1,
			lease_epoch = CASE WHEN v.fenced THEN v.epoch ELSE l.lease_epoch END,
			lease_token = CASE WHEN v.fenced THEN v.token ELSE l.lease_token END,
			updated_at = v.at, next_expiry = v.next
		FROM %s
		WHERE l.product_id = v.pid AND l.location_id = v.lid AND l.version = v.readver
		AND (NOT v.fenced OR l.lease_epoch < v.epoch OR (l.lease_epoch = v.epoch AND l.lease_token <= v.token))`
	// (WHERE true: SQLite's parser needs it before ON CONFLICT.)
	levelInsertsSQL = `INSERT INTO stock_levels (product_id, location_id, stock, reserved, version, lease_epoch, lease_token,
			updated_at, next_expiry, ` + stateColumns + `, backorder_limit)
		SELECT pid, lid, stock, reserved, 1, epoch, token, at, next, damaged, qc, safety, incoming, blimit FROM %s WHERE true
		ON CONFLICT (product_id, location_id) DO NOTHING`
	reservationsSQL = `INSERT INTO reservations (id, status, expires_at, reference, actor, idempotency_key, request_hash, version,
			created_at, updated_at)
		SELECT id, 'ACTIVE', exp, ref, actor, key, hash, 1, at, at FROM %s`
	reservationItemsSQL = `INSERT INTO reservation_items (reservation_id, product_id, location_id, quantity, expires_at, active, bundle_id)
		SELECT rid, pid, lid, qty, exp, TRUE, bid FROM %s`
	itemsClosedSQL = `UPDATE reservation_items AS i SET active = FALSE FROM %s
		WHERE i.reservation_id = v.rid AND i.product_id = v.pid AND i.location_id = v.lid`
	// A reservation closes only if it is ACTIVE: the items of an expired
	// reservation at other levels expire in later transactions, which find
	// it EXPIRED already.
	reservationsClosedSQL = `UPDATE reservations AS r SET status = v.status, updated_at = v.at, version = r.version + 1 FROM %s
		WHERE r.id = v.rid AND r.status = 'ACTIVE'`
	reservationsExtendedSQL = `UPDATE reservations AS r SET expires_at = v.exp, updated_at = v.at, version = r.version + 1 FROM %s
		WHERE r.id = v.rid`
	itemsExtendedSQL = `UPDATE reservation_items AS i SET expires_at = v.exp FROM %s
		WHERE i.reservation_id = v.rid AND i.active`
	// movementsSQL inserts the numbered ledger rows m (%s).
	movementsSQL = "INSERT INTO stock_movements (" + movementColumns + ") SELECT " + movementColumns + " FROM %s"
	// productsSQL saves the product totals v (%[1]s), and each product's
	// last sequence (%[2]s, dialect.lastSeq).
	productsSQL = `UPDATE products AS p SET stock = v.stock, reserved = v.reserved, low_stock_alerted = v.alerted,
			damaged = v.damaged, quality_control = v.qc, safety_stock = v.safety, incoming = v.incoming, backordered = v.backordered,
			last_seq = coalesce(%[2]s, p.last_seq)
		FROM %[1]s
		WHERE p.id = v.pid
		RETURNING id, last_seq`
)

func newWriteSQL(d dialect.Dialect) *writeSQL {
	var w stockWrites
	w.init()
	q := &writeSQL{d: d}
	q.takeSeqs, q.takesCount = d.TakeSeqs()
	q.nextRevision, q.insertProduct, q.insertKey = d.Text(nextRevisionSQL), d.Text(insertProductSQL), d.Text(insertKeySQL)
	rows := func(cols []dialect.Column) string { return d.Table("v", cols, false) }
	numbered := d.Numbered(d.Table("m", w.movements.columns(), true))
	products := fmt.Sprintf(productsSQL, rows(w.products.columns()), d.LastSeq())
	if !d.PG {
		for _, wr := range writes {
			q.each = append(q.each, d.Text(fmt.Sprintf(wr.sql, rows(wr.rows(&w)))))
		}
		q.movements = d.Text(fmt.Sprintf(movementsSQL, "("+numbered+") AS m") + " RETURNING seq")
		q.products = d.Text(products)
		return q
	}
	var parts []string
	for _, wr := range writes {
		part := fmt.Sprintf(wr.sql, rows(wr.rows(&w)))
		if wr.checked {
			part += " RETURNING 1"
		}
		parts = append(parts, wr.name+" AS ("+part+")")
	}
	parts = append(parts, "m AS ("+numbered+")", "mv AS ("+fmt.Sprintf(movementsSQL, "m")+")", "pr AS ("+products+")")
	q.all = d.Text("WITH " + strings.Join(parts, ",\n") + `
	SELECT (SELECT coalesce(array_agg(seq ORDER BY ord), '{}') FROM m),
		(SELECT coalesce(array_agg(id ORDER BY id), '{}') FROM pr), (SELECT coalesce(array_agg(last_seq ORDER BY id), '{}') FROM pr),
		stock_write_check((SELECT count(*) FROM lv) = ?::bigint AND (SELECT count(*) FROM nl) = ?::bigint)`)
	return q
}

var (
	pgWriteSQL     = newWriteSQL(dialect.Postgres)
	sqliteWriteSQL = newWriteSQL(dialect.SQLite)
)

// stockWrites is the rows of one stock transaction's writes, by statement.
type stockWrites struct {
	rejections    rejectionRows
	updates       levelRows
	inserts       levelRows
	created       createdRows
	createdItems  createdItemRows
	closedItems   closedItemRows
	closed        closedRows
	extended      extendedRows
	transfers     transferRows
	transferItems transferItemRows
	movements     movementRows
	products      productRows

	// changed are the items written, in order; their movements are the
	// rows of movements, in order.
	changed []stockItem
}

func (w *stockWrites) init() {
	w.rejections.init()
	w.updates.init()
	w.inserts.init()
	w.created.init()
	w.createdItems.init()
	w.closedItems.init()
	w.closed.init()
	w.extended.init()
	w.transfers.init()
	w.transferItems.init()
	w.movements.init()
	w.products.init()
}

// writeStocks returns the statements that write items (the levels of a
// stock transaction, as the domain left them) and what set records (nil:
// none), and a function that, once they have committed, gives the
// movements their sequences, the levels their new version and fence, and
// the products their last sequence.
func writeStocks(q *writeSQL, items []stockItem, set *inventory.StockSet, now time.Time) (stmts []dialect.Stmt, committed func()) {
	var w stockWrites
	w.init()
	w.fill(items, set, now.UTC())
	n := w.movements.pid.Rows()
	var seqs, ids, lasts []int64
	if w.empty() {
		return nil, func() {}
	}
	d := q.d
	if n > 0 {
		take := dialect.Stmt{SQL: q.takeSeqs}
		if q.takesCount {
			take.Args = []any{n}
		}
		stmts = append(stmts, take)
	}
	if d.PG {
		var args []any
		for _, wr := range writes {
			args = append(args, d.TableArgs(wr.rows(&w))...)
		}
		args = append(args, d.TableArgs(w.movements.columns())...)
		args = append(args, n)
		args = append(args, d.TableArgs(w.products.columns())...)
		args = append(args, w.updates.pid.Rows(), w.inserts.pid.Rows())
		var ok bool
		stmts = append(stmts, dialect.Stmt{SQL: q.all, Args: args, Dest: []any{&seqs, &ids, &lasts, &ok}, Row: func() error { return nil }})
	} else {
		// The counter moves before the writes, so the ledger rows take
		// the numbers after it: SQLite's writers take turns.
		for k, wr := range writes {
			cols := wr.rows(&w)
			if rows := cols[0].Rows(); rows > 0 {
				st := dialect.Stmt{SQL: q.each[k], Args: d.TableArgs(cols)}
				if wr.checked {
					st.Want = rows
				}
				stmts = append(stmts, st)
			}
		}
		var seq, id, last int64
		if n > 0 {
			stmts = append(stmts, dialect.Stmt{SQL: q.movements, Args: append(d.TableArgs(w.movements.columns()), n),
				Dest: []any{&seq}, Row: func() error { seqs = append(seqs, seq); return nil }})
		}
		if w.products.id.Rows() > 0 {
			stmts = append(stmts, dialect.Stmt{SQL: q.products, Args: d.TableArgs(w.products.columns()),
				Dest: []any{&id, &last}, Row: func() error { ids, lasts = append(ids, id), append(lasts, last); return nil }})
		}
	}
	return stmts, func() {
		// Each row's sequence increases with its position (dialect.numbered).
		slices.Sort(seqs)
		lastSeq := make(map[int64]int64, len(ids))
		for i, id := range ids {
			lastSeq[id] = lasts[i]
		}
		for _, it := range w.changed {
			k := len(it.st.Movements())
			it.st.Committed(seqs[:k], it.fence, it.lastAt())
			seqs = seqs[k:]
			it.st.Product.LastSeq = lastSeq[it.st.Product.ID]
		}
	}
}

// fill makes the rows of the writes of items and set.
func (w *stockWrites) fill(items []stockItem, set *inventory.StockSet, now time.Time) {
	for _, it := range items {
		for _, r := range it.st.NewRejections() {
			w.rejections.add(r, now)
		}
		if len(it.st.Movements()) == 0 && it.st.Level.NextExpiry.Equal(it.readExpiry) {
			continue
		}
		w.changed = append(w.changed, it)
		if it.exists {
			w.updates.add(it)
		} else {
			w.inserts.add(it)
		}
		for _, m := range it.st.Movements() {
			w.movements.add(it.st.Level.Key(), m)
		}
	}
	for _, p := range distinctProducts(w.changed) {
		w.products.add(p)
	}
	if set == nil {
		return
	}
	for _, r := range set.Created() {
		w.created.add(r)
		for _, it := range r.Items {
			w.createdItems.add(r.ID, it, r.ExpiresAt)
		}
	}
	for _, c := range set.Closed() {
		w.closed.add(c)
		for _, k := range c.Levels {
			w.closedItems.add(c.ReservationID, k)
		}
	}
	for _, e := range set.Extended() {
		w.extended.add(e)
	}
	for _, t := range set.ChangedTransfers() {
		w.transfers.add(t)
		for _, it := range t.Items {
			w.transferItems.add(t.ID, it)
		}
	}
}

// empty reports whether there is nothing to write.
func (w *stockWrites) empty() bool {
	if len(w.changed) > 0 {
		return false
	}
	for _, wr := range writes {
		if wr.rows(w)[0].Rows() > 0 {
			return false
		}
	}
	return true
}

// distinctProducts returns the products of items, each once.
func distinctProducts(items []stockItem) []*inventory.Product {
	seen := map[int64]bool{}
	var out []*inventory.Product
	for _, it := range items {
		if p := it.st.Product; !seen[p.ID] {
			seen[p.ID] = true
			out = append(out, p)
		}
	}
	return out
}

// The rows types below are the tables the statements read, one dialect.Column
// each: their columns method gives the order, which both the text
// (dialect.table) and the arguments (dialect.tableArgs) follow.

type rejectionRows struct {
	k, h, c, m, f dialect.Col[string]
	at            dialect.Col[time.Time]
}

func (r *rejectionRows) init() {
	r.k, r.h, r.c, r.m = dialect.NewCol[string]("k", "text"), dialect.NewCol[string]("h", "text"), dialect.NewCol[string]("c", "text"), dialect.NewCol[string]("m", "text")
	r.f = dialect.NewCol[string]("f", "text")
	r.at = dialect.NewCol[time.Time]("at", "timestamptz")
}

func (r *rejectionRows) columns() []dialect.Column {
	return []dialect.Column{&r.k, &r.h, &r.c, &r.m, &r.f, &r.at}
}

func (r *rejectionRows) add(x inventory.Rejection, at time.Time) {
	r.k.Add(x.Key)
	r.h.Add(x.RequestHash)
	r.c.Add(string(x.Code))
	r.m.Add(x.Message)
	r.f.Add(x.Field)
	r.at.Add(at)
}

// levelRows are the levels written: updated, or inserted (which reads no
// readver or fenced: a new level has no version, and its lease's fence is
// its first).
type levelRows struct {
	pid, lid, stock, reserved, readver dialect.Col[int64]
	// blimit is the level's copy of its product's backorder limit, which
	// the level's check holds it to (NULL, no limit: untracked).
	blimit       dialect.Col[*int64]
	states       stateRows
	fenced       dialect.Col[bool]
	epoch, token dialect.Col[int64]
	at           dialect.Col[time.Time]
	next         dialect.Col[*time.Time]
}

func (r *levelRows) init() {
	r.pid, r.lid, r.stock, r.reserved, r.readver = bigint("pid"), bigint("lid"), bigint("stock"), bigint("reserved"), bigint("readver")
	r.fenced = dialect.NewCol[bool]("fenced", "boolean")
	r.epoch, r.token = bigint("epoch"), bigint("token")
	r.at, r.next = dialect.NewCol[time.Time]("at", "timestamptz"), dialect.NewCol[*time.Time]("next", "timestamptz")
	r.states.init()
	r.blimit = dialect.NewCol[*int64]("blimit", "bigint")
}

func (r *levelRows) columns() []dialect.Column {
	return append([]dialect.Column{&r.pid, &r.lid, &r.stock, &r.reserved, &r.readver, &r.fenced, &r.epoch, &r.token, &r.at, &r.next, &r.blimit},
		r.states.columns()...)
}

func (r *levelRows) add(it stockItem) {
	l, f := it.st.Level, it.fence
	r.pid.Add(l.ProductID)
	r.lid.Add(l.LocationID)
	r.stock.Add(l.Stock)
	r.reserved.Add(l.Reserved)
	r.readver.Add(it.readVersion)
	r.fenced.Add(f != (inventory.Fence{}))
	r.epoch.Add(f.Epoch)
	r.token.Add(f.Token)
	r.at.Add(it.lastAt())
	r.next.Add(timePtr(l.NextExpiry))
	r.states.add(l.States)
	r.blimit.Add(backorderLimit(it.st.Product))
}

// stateRows are the states of the levels or products written.
type stateRows struct {
	damaged, qc, safety, incoming dialect.Col[int64]
}

func (r *stateRows) init() {
	r.damaged, r.qc, r.safety, r.incoming = bigint("damaged"), bigint("qc"), bigint("safety"), bigint("incoming")
}

func (r *stateRows) columns() []dialect.Column {
	return []dialect.Column{&r.damaged, &r.qc, &r.safety, &r.incoming}
}

func (r *stateRows) add(s inventory.States) {
	r.damaged.Add(s.Damaged)
	r.qc.Add(s.QualityControl)
	r.safety.Add(s.SafetyStock)
	r.incoming.Add(s.Incoming)
}

type createdRows struct {
	id         dialect.Col[int64]
	exp        dialect.Col[time.Time]
	ref, actor dialect.Col[string]
	key, hash  dialect.Col[*string]
	at         dialect.Col[time.Time]
}

func (r *createdRows) init() {
	r.id, r.exp = bigint("id"), dialect.NewCol[time.Time]("exp", "timestamptz")
	r.ref, r.actor = dialect.NewCol[string]("ref", "text"), dialect.NewCol[string]("actor", "text")
	r.key, r.hash = dialect.NewCol[*string]("key", "text"), dialect.NewCol[*string]("hash", "text")
	r.at = dialect.NewCol[time.Time]("at", "timestamptz")
}

func (r *createdRows) columns() []dialect.Column {
	return []dialect.Column{&r.id, &r.exp, &r.ref, &r.actor, &r.key, &r.hash, &r.at}
}

func (r *createdRows) add(x *inventory.Reservation) {
	r.id.Add(x.ID)
	r.exp.Add(x.ExpiresAt.UTC())
	r.ref.Add(x.Reference)
	r.actor.Add(x.Actor)
	key, hash := keyAndHash(x.IdempotencyKey, x.RequestHash)
	r.key.Add(key)
	r.hash.Add(hash)
	r.at.Add(x.CreatedAt.UTC())
}

type createdItemRows struct {
	rid, pid, lid, qty, bid dialect.Col[int64]
	exp                     dialect.Col[time.Time]
}

func (r *createdItemRows) init() {
	r.rid, r.pid, r.lid, r.qty, r.bid = bigint("rid"), bigint("pid"), bigint("lid"), bigint("qty"), bigint("bid")
	r.exp = dialect.NewCol[time.Time]("exp", "timestamptz")
}

func (r *createdItemRows) columns() []dialect.Column {
	return []dialect.Column{&r.rid, &r.pid, &r.lid, &r.qty, &r.exp, &r.bid}
}

func (r *createdItemRows) add(id int64, it inventory.ReservationItem, exp time.Time) {
	r.rid.Add(id)
	r.pid.Add(it.ProductID)
	r.lid.Add(it.LocationID)
	r.qty.Add(it.Quantity)
	r.exp.Add(exp.UTC())
	r.bid.Add(it.BundleID)
}

type closedItemRows struct {
	rid, pid, lid dialect.Col[int64]
}

func (r *closedItemRows) init() { r.rid, r.pid, r.lid = bigint("rid"), bigint("pid"), bigint("lid") }

func (r *closedItemRows) columns() []dialect.Column { return []dialect.Column{&r.rid, &r.pid, &r.lid} }

func (r *closedItemRows) add(id int64, k inventory.LevelKey) {
	r.rid.Add(id)
	r.pid.Add(k.ProductID)
	r.lid.Add(k.LocationID)
}

type closedRows struct {
	rid    dialect.Col[int64]
	status dialect.Col[string]
	at     dialect.Col[time.Time]
}

func (r *closedRows) init() {
	r.rid, r.status, r.at = bigint("rid"), dialect.NewCol[string]("status", "text"), dialect.NewCol[time.Time]("at", "timestamptz")
}

func (r *closedRows) columns() []dialect.Column { return []dialect.Column{&r.rid, &r.status, &r.at} }

func (r *closedRows) add(c inventory.ReservationClosure) {
	r.rid.Add(c.ReservationID)
	r.status.Add(string(c.Status))
	r.at.Add(c.At.UTC())
}

type extendedRows struct {
	rid     dialect.Col[int64]
	exp, at dialect.Col[time.Time]
}

func (r *extendedRows) init() {
	r.rid, r.exp, r.at = bigint("rid"), dialect.NewCol[time.Time]("exp", "timestamptz"), dialect.NewCol[time.Time]("at", "timestamptz")
}

func (r *extendedRows) columns() []dialect.Column { return []dialect.Column{&r.rid, &r.exp, &r.at} }

func (r *extendedRows) add(e inventory.ReservationExtension) {
	r.rid.Add(e.ReservationID)
	r.exp.Add(e.ExpiresAt.UTC())
	r.at.Add(e.At.UTC())
}

// movementRows are the ledger rows, in movementColumns order but seq,
// which dialect.numbered adds.
type movementRows struct {
	pid, lid           dialect.Col[int64]
	typ                dialect.Col[string]
	delta, qty, avail  dialect.Col[int64]
	alert              dialect.Col[bool]
	reason, ref, actor dialect.Col[string]
	key, hash          dialect.Col[*string]
	epoch, token       dialect.Col[int64]
	trace              dialect.Col[string]
	at                 dialect.Col[time.Time]
	rdelta             dialect.Col[int64]
	resv               dialect.Col[*int64]
	sdelta             [4]dialect.Col[*int64] // the states' changes, in stateColumns order
	from, to           dialect.Col[*string]
	transfer, bundle   dialect.Col[*int64]
}

func (r *movementRows) init() {
	r.pid, r.lid, r.typ = bigint("product_id"), bigint("location_id"), dialect.NewCol[string]("type", "text")
	r.delta, r.qty, r.avail = bigint("delta"), bigint("quantity_after"), bigint("available_after")
	r.alert = dialect.NewCol[bool]("low_stock_alert", "boolean")
	r.reason, r.ref, r.actor = dialect.NewCol[string]("reason", "text"), dialect.NewCol[string]("reference", "text"), dialect.NewCol[string]("actor", "text")
	r.key, r.hash = dialect.NewCol[*string]("idempotency_key", "text"), dialect.NewCol[*string]("request_hash", "text")
	r.epoch, r.token, r.trace = bigint("lease_epoch"), bigint("lease_token"), dialect.NewCol[string]("trace_id", "text")
	r.at, r.rdelta, r.resv = dialect.NewCol[time.Time]("created_at", "timestamptz"), bigint("reserved_delta"), dialect.NewCol[*int64]("reservation_id", "bigint")
	for i, name := range strings.Split(stateColumns, ", ") {
		r.sdelta[i] = dialect.NewCol[*int64](name+"_delta", "bigint")
	}
	r.from, r.to = dialect.NewCol[*string]("from_state", "text"), dialect.NewCol[*string]("to_state", "text")
	r.transfer, r.bundle = dialect.NewCol[*int64]("transfer_id", "bigint"), dialect.NewCol[*int64]("bundle_id", "bigint")
}

func (r *movementRows) columns() []dialect.Column {
	return []dialect.Column{&r.pid, &r.lid, &r.typ, &r.delta, &r.qty, &r.avail, &r.alert, &r.reason, &r.ref, &r.actor,
		&r.key, &r.hash, &r.epoch, &r.token, &r.trace, &r.at, &r.rdelta, &r.resv,
		&r.sdelta[0], &r.sdelta[1], &r.sdelta[2], &r.sdelta[3], &r.from, &r.to, &r.transfer, &r.bundle}
}

// add adds m, a movement of the level k (a new product's first movement
// was made before the product had its ID).
func (r *movementRows) add(k inventory.LevelKey, m inventory.Movement) {
	r.pid.Add(k.ProductID)
	r.lid.Add(k.LocationID)
	r.typ.Add(string(m.Type))
	r.delta.Add(m.Delta)
	r.qty.Add(m.QuantityAfter)
	r.avail.Add(m.AvailableAfter)
	r.alert.Add(m.LowStockAlert)
	r.reason.Add(m.Reason)
	r.ref.Add(m.Reference)
	r.actor.Add(m.Actor)
	key, hash := keyAndHash(m.IdempotencyKey, m.RequestHash)
	r.key.Add(key)
	r.hash.Add(hash)
	r.epoch.Add(m.Fence.Epoch)
	r.token.Add(m.Fence.Token)
	r.trace.Add(m.TraceID)
	r.at.Add(m.CreatedAt.UTC())
	r.rdelta.Add(m.ReservedDelta)
	r.resv.Add(idPtr(m.ReservationID))
	d := m.StatesDelta
	for i, v := range [4]int64{d.Damaged, d.QualityControl, d.SafetyStock, d.Incoming} {
		r.sdelta[i].Add(idPtr(v))
	}
	r.from.Add(statePtr(m.FromState))
	r.to.Add(statePtr(m.ToState))
	r.transfer.Add(idPtr(m.TransferID))
	r.bundle.Add(idPtr(m.BundleID))
}

// statePtr is nil for no state (stored as NULL).
func statePtr(s inventory.StockState) *string {
	if s == "" {
		return nil
	}
	str := string(s)
	return &str
}

type productRows struct {
	id, stock, reserved, backordered dialect.Col[int64]
	alerted                          dialect.Col[bool]
	states                           stateRows
}

func (r *productRows) init() {
	r.id, r.stock, r.reserved, r.alerted = bigint("pid"), bigint("stock"), bigint("reserved"), dialect.NewCol[bool]("alerted", "boolean")
	r.backordered = bigint("backordered")
	r.states.init()
}

func (r *productRows) columns() []dialect.Column {
	return append([]dialect.Column{&r.id, &r.stock, &r.reserved, &r.alerted, &r.backordered}, r.states.columns()...)
}

func (r *productRows) add(p *inventory.Product) {
	r.id.Add(p.ID)
	r.stock.Add(p.Stock)
	r.reserved.Add(p.Reserved)
	r.alerted.Add(p.LowStockAlerted)
	r.backordered.Add(p.Backordered)
	r.states.add(p.States)
}

func bigint(name string) dialect.Col[int64] { return dialect.NewCol[int64](name, "bigint") }

// timePtr is nil for the zero time (stored as NULL).
func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	u := t.UTC()
	return &u
}

// idPtr is nil for zero (stored as NULL): an ID, or a state's change.
func idPtr(id int64) *int64 {
	if id == 0 {
		return nil
	}
	return &id
}

// keyAndHash are an idempotency key and its request hash as stored: NULL
// without a key, and the hash only with its key (without one there is
// nothing to compare it to).
func keyAndHash(key, hash string) (*string, *string) {
	if key == "" {
		return nil, nil
	}
	return &key, &hash
}

// backorderLimit is the limit a level of p is held to: none (NULL) for an
// untracked product.
func backorderLimit(p *inventory.Product) *int64 {
	if p.Untracked {
		return nil
	}
	l := p.BackorderLimit
	return &l
}
