package dialect

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/shopstack/inventory/internal/inventory"
)

// Package dialect is what differs between PostgreSQL and SQLite for the
// store's statements, and how a list of statements runs on each.
//
// A stock transaction is written once, for both databases: its reads and
// its writes (internal/gormstore's stockread.go and stockwrite.go) are
// lists of statements whose texts are built once per database from one
// template each, and a Runner runs a list. The texts differ only where the
// databases do, and Dialect is all of it:
//
//   - How a list of values, or a table of rows, travels as a parameter:
//     typed arrays read with unnest on PostgreSQL; JSON read with json_each
//     on SQLite.
//   - Placeholders: $n for pgx on PostgreSQL, ? for GORM on SQLite.
//   - Row locks: FOR UPDATE (SKIP LOCKED) on PostgreSQL; SQLite's
//     immediate transaction holds the whole database already.
//   - Where numbers come from (by nature): on PostgreSQL, sequences, and a
//     ledger writer holds an advisory lock from just before it takes its
//     ledger sequences to its end, which readers of the ledger wait for
//     (watermark.go); on SQLite, whose writers take turns, the ledger's
//     one-row counter and the largest reservation ID.
//   - How a failed compare-and-set aborts (by nature): PostgreSQL's writes
//     and its COMMIT go in one round trip, so the write statement itself
//     raises (stock_write_check, migration 0003) and the COMMIT rolls back;
//     SQLite's runner sees the rows a statement affected and returns the
//     conflict before anything commits. And so how many statements the
//     writes are: PostgreSQL's are one (gormstore's stockwrite.go).
type Dialect struct {
	// PG is set for PostgreSQL.
	PG bool
}

// The two dialects.
var (
	Postgres = Dialect{PG: true}
	SQLite   = Dialect{}
)

// Text returns a statement written with ? placeholders as the dialect's
// runner takes it.
func (d Dialect) Text(sql string) string {
	if d.PG {
		return pgNumbered(sql)
	}
	return sql
}

// In is the predicate "col is one of the list" of SQL type typ, passed as
// one parameter made by list.
func (d Dialect) In(col, typ string) string {
	if d.PG {
		return col + " = ANY(?::" + typ + "[])"
	}
	return col + " IN (SELECT value FROM json_each(?))"
}

// List is the parameter of in for vals ([]int64 or []string).
func (d Dialect) List(vals any) any {
	if d.PG {
		return vals
	}
	b, _ := json.Marshal(vals) // slices of ints or strings always marshal
	return string(b)
}

// Pairs is a table k (pid, lid) of levels, passed as pairArgs.
func (d Dialect) Pairs() string {
	if d.PG {
		return "unnest(?::bigint[], ?::bigint[]) AS k (pid, lid)"
	}
	return "(SELECT value ->> 0 AS pid, value ->> 1 AS lid FROM json_each(?)) AS k"
}

func (d Dialect) PairArgs(keys []inventory.LevelKey) []any {
	pids, lids := make([]int64, len(keys)), make([]int64, len(keys))
	for i, k := range keys {
		pids[i], lids[i] = k.ProductID, k.LocationID
	}
	if d.PG {
		return []any{pids, lids}
	}
	pairs := make([][2]int64, len(keys))
	for i := range keys {
		pairs[i] = [2]int64{pids[i], lids[i]}
	}
	b, _ := json.Marshal(pairs)
	return []any{string(b)}
}

// ForUpdate locks the rows read until the transaction ends.
func (d Dialect) ForUpdate() string {
	if d.PG {
		return " FOR UPDATE"
	}
	return ""
}

// Table is a table of rows named alias with the columns of cols, passed
// as tableArgs. With ordinal it has one more column, ord: the row's
// position, from 1.
func (d Dialect) Table(alias string, cols []Column, ordinal bool) string {
	var b strings.Builder
	if d.PG {
		names := make([]string, len(cols))
		b.WriteString("unnest(")
		for i, c := range cols {
			name, typ := c.Decl()
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString("?::" + typ + "[]")
			names[i] = name
		}
		b.WriteString(")")
		if ordinal {
			b.WriteString(" WITH ORDINALITY")
			names = append(names, "ord")
		}
		b.WriteString(" AS " + alias + " (" + strings.Join(names, ", ") + ")")
		return b.String()
	}
	b.WriteString("(SELECT ")
	if ordinal {
		b.WriteString("key + 1 AS ord, ")
	}
	for i, c := range cols {
		name, _ := c.Decl()
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString("value ->> " + strconv.Itoa(i) + " AS " + name)
	}
	b.WriteString(" FROM json_each(?)) AS " + alias)
	return b.String()
}

// tableArgs are the parameters of table for cols, whose rows are filled.
func (d Dialect) TableArgs(cols []Column) []any {
	if d.PG {
		args := make([]any, len(cols))
		for i, c := range cols {
			args[i] = c.PGArray()
		}
		return args
	}
	n := 0
	if len(cols) > 0 {
		n = cols[0].Rows()
	}
	b := make([]byte, 0, 64*n*len(cols))
	b = append(b, '[')
	for r := range n {
		if r > 0 {
			b = append(b, ',')
		}
		b = append(b, '[')
		for i, c := range cols {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendJSON(b, c.At(r))
		}
		b = append(b, ']')
	}
	b = append(b, ']')
	return []any{string(b)}
}

// Numbered selects the rows of src (made by table, with ordinal, named
// m) with one more column, seq: the ledger sequence of each row,
// increasing with ord. It takes one more parameter after src's: the number
// of rows. PostgreSQL takes them from ledger_seq; SQLite from the counter,
// which takeSeqs has moved past them.
func (d Dialect) Numbered(src string) string {
	if d.PG {
		return `SELECT m.*, sq.seq FROM ` + src + ` JOIN (
			SELECT row_number() OVER (ORDER BY s) AS ord, s AS seq
			FROM (SELECT nextval('ledger_seq') AS s FROM generate_series(1, ?::bigint)) AS g) AS sq ON sq.ord = m.ord`
	}
	return `SELECT m.*, b.base + m.ord AS seq FROM ` + src + `
			CROSS JOIN (SELECT last - ? AS base FROM ledger_sequence WHERE id = 1) AS b`
}

// LastSeq is the last sequence of product p.id once the transaction's
// ledger rows are written: the largest of its rows. PostgreSQL, which
// writes them in the same statement, reads them from its part m (a
// statement does not see its own writes); SQLite from the ledger.
func (d Dialect) LastSeq() string {
	if d.PG {
		return "(SELECT max(m.seq) FROM m WHERE m.product_id = p.id)"
	}
	return "(SELECT max(s.seq) FROM stock_movements s WHERE s.product_id = p.id)"
}

// TakeSeqs is the statement a ledger writer runs just before it numbers
// its rows (numbered), and whether it takes their number as its parameter.
// On PostgreSQL it holds pgWritingKey, shared, to the transaction's end: a
// reader that wants every sequence up to the last one taken waits for the
// holders it sees (pgWatermark). The statements that follow it wait for no
// row lock (their rows are locked through their products by the reads), so
// holders are brief. On SQLite it moves the counter past the rows.
func (d Dialect) TakeSeqs() (sql string, takesCount bool) {
	if d.PG {
		return "SELECT pg_advisory_xact_lock_shared(" + pgWritingKey + ")", false
	}
	return "UPDATE ledger_sequence SET last = last + ? WHERE id = 1", true
}

// pgWritingKey is the advisory lock of ledger writers: a class of our own
// (the migrations' lock is 7460221), and the ledger sequence's OID, so that
// stores in other schemas of the database do not wait for each other.
const pgWritingKey = "7460222, 'ledger_seq'::regclass::oid::int"

// NewIDs is a query for n new reservation IDs.
func (d Dialect) NewIDs() string {
	if d.PG {
		return "SELECT nextval(pg_get_serial_sequence('reservations', 'id')) FROM generate_series(1, ?::int)"
	}
	// The IDs after the largest ever used; the transaction holds the
	// database, so no one else takes them first.
	return `WITH RECURSIVE n (i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?)
			SELECT max(coalesce((SELECT max(id) FROM reservations), 0),
				coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'reservations'), 0)) + i FROM n`
}

// Column is one column of a table of rows a statement reads (see
// Dialect.Table), filled row by row.
type Column interface {
	// Decl is the column's name and its PostgreSQL element type.
	Decl() (name, typ string)
	// Rows is how many rows the column has.
	Rows() int
	// PGArray is the column as one array parameter.
	PGArray() any
	// At is the value of row i, for JSON.
	At(i int) any
}

// Col is a column of values of type T; a pointer type holds NULLs.
type Col[T any] struct {
	name, typ string
	v         []T
}

// NewCol returns an empty column named name, of PostgreSQL element type typ.
func NewCol[T any](name, typ string) Col[T] { return Col[T]{name: name, typ: typ} }

// Add appends a row's value.
func (c *Col[T]) Add(x T) { c.v = append(c.v, x) }

// Decl is the column's name and PostgreSQL element type.
func (c *Col[T]) Decl() (string, string) { return c.name, c.typ }

// Rows is how many rows the column has.
func (c *Col[T]) Rows() int { return len(c.v) }

// PGArray is the column as one array parameter.
func (c *Col[T]) PGArray() any { return Array(c.v) }

// At is the value of row i.
func (c *Col[T]) At(i int) any { return c.v[i] }

// sqliteTime is how the SQLite driver writes a time (its default
// _time_format), so that times written through JSON compare and read back
// like times bound as parameters.
const sqliteTime = "2006-01-02 15:04:05.999999999-07:00"

// appendJSON appends v, a column value, as JSON.
func appendJSON(b []byte, v any) []byte {
	switch v := v.(type) {
	case int64:
		return strconv.AppendInt(b, v, 10)
	case bool:
		return strconv.AppendBool(b, v)
	case string:
		s, _ := json.Marshal(v) // a string always marshals
		return append(b, s...)
	case time.Time:
		return strconv.AppendQuote(b, v.UTC().Format(sqliteTime))
	case *int64:
		if v == nil {
			return append(b, "null"...)
		}
		return strconv.AppendInt(b, *v, 10)
	case *string:
		if v == nil {
			return append(b, "null"...)
		}
		return appendJSON(b, *v)
	case *time.Time:
		if v == nil {
			return append(b, "null"...)
		}
		return appendJSON(b, *v)
	}
	panic(fmt.Sprintf("gormstore: no JSON for a column of %T", v))
}
