package gormstore

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/shopstack/inventory/internal/inventory"
)

// A stock transaction is written once, for both databases: its reads
// (stockread.go) and its writes (stockwrite.go) are lists of statements
// whose texts are built once per database from one template each, and a
// runner (runner.go) runs a list. The texts differ only where the
// databases do, and dialect is all of it:
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
//     writes are: PostgreSQL's are one (stockwrite.go).
type dialect struct {
	pg bool
}

var (
	postgresDialect = dialect{pg: true}
	sqliteDialect   = dialect{}
)

// text returns a statement written with ? placeholders as the dialect's
// runner takes it.
func (d dialect) text(sql string) string {
	if d.pg {
		return pgNumbered(sql)
	}
	return sql
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

// forUpdate locks the rows read until the transaction ends.
func (d dialect) forUpdate() string {
	if d.pg {
		return " FOR UPDATE"
	}
	return ""
}

// table is a table of rows named alias with the columns of cols, passed
// as tableArgs. With ordinal it has one more column, ord: the row's
// position, from 1.
func (d dialect) table(alias string, cols []column, ordinal bool) string {
	var b strings.Builder
	if d.pg {
		names := make([]string, len(cols))
		b.WriteString("unnest(")
		for i, c := range cols {
			name, typ := c.decl()
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
		name, _ := c.decl()
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString("value ->> " + strconv.Itoa(i) + " AS " + name)
	}
	b.WriteString(" FROM json_each(?)) AS " + alias)
	return b.String()
}

// tableArgs are the parameters of table for cols, whose rows are filled.
func (d dialect) tableArgs(cols []column) []any {
	if d.pg {
		args := make([]any, len(cols))
		for i, c := range cols {
			args[i] = c.pgArray()
		}
		return args
	}
	n := 0
	if len(cols) > 0 {
		n = cols[0].rows()
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
			b = appendJSON(b, c.at(r))
		}
		b = append(b, ']')
	}
	b = append(b, ']')
	return []any{string(b)}
}

// numbered selects the rows of src (made by table, with ordinal, named
// m) with one more column, seq: the ledger sequence of each row,
// increasing with ord. It takes one more parameter after src's: the number
// of rows. PostgreSQL takes them from ledger_seq; SQLite from the counter,
// which takeSeqs has moved past them.
func (d dialect) numbered(src string) string {
	if d.pg {
		return `SELECT m.*, sq.seq FROM ` + src + ` JOIN (
			SELECT row_number() OVER (ORDER BY s) AS ord, s AS seq
			FROM (SELECT nextval('ledger_seq') AS s FROM generate_series(1, ?::bigint)) AS g) AS sq ON sq.ord = m.ord`
	}
	return `SELECT m.*, b.base + m.ord AS seq FROM ` + src + `
			CROSS JOIN (SELECT last - ? AS base FROM ledger_sequence WHERE id = 1) AS b`
}

// lastSeq is the last sequence of product p.id once the transaction's
// ledger rows are written: the largest of its rows. PostgreSQL, which
// writes them in the same statement, reads them from its part m (a
// statement does not see its own writes); SQLite from the ledger.
func (d dialect) lastSeq() string {
	if d.pg {
		return "(SELECT max(m.seq) FROM m WHERE m.product_id = p.id)"
	}
	return "(SELECT max(s.seq) FROM stock_movements s WHERE s.product_id = p.id)"
}

// takeSeqs is the statement a ledger writer runs just before it numbers
// its rows (numbered), and whether it takes their number as its parameter.
// On PostgreSQL it holds pgWritingKey, shared, to the transaction's end: a
// reader that wants every sequence up to the last one taken waits for the
// holders it sees (pgWatermark). The statements that follow it wait for no
// row lock (their rows are locked through their products by the reads), so
// holders are brief. On SQLite it moves the counter past the rows.
func (d dialect) takeSeqs() (sql string, takesCount bool) {
	if d.pg {
		return "SELECT pg_advisory_xact_lock_shared(" + pgWritingKey + ")", false
	}
	return "UPDATE ledger_sequence SET last = last + ? WHERE id = 1", true
}

// pgWritingKey is the advisory lock of ledger writers: a class of our own
// (the migrations' lock is 7460221), and the ledger sequence's OID, so that
// stores in other schemas of the database do not wait for each other.
const pgWritingKey = "7460222, 'ledger_seq'::regclass::oid::int"

// newIDs is a query for n new reservation IDs.
func (d dialect) newIDs() string {
	if d.pg {
		return "SELECT nextval(pg_get_serial_sequence('reservations', 'id')) FROM generate_series(1, ?::int)"
	}
	// The IDs after the largest ever used; the transaction holds the
	// database, so no one else takes them first.
	return `WITH RECURSIVE n (i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?)
			SELECT max(coalesce((SELECT max(id) FROM reservations), 0),
				coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'reservations'), 0)) + i FROM n`
}

// column is one column of a table of rows a statement reads (see
// dialect.table), filled row by row.
type column interface {
	// decl is the column's name and its PostgreSQL element type.
	decl() (name, typ string)
	rows() int
	// pgArray is the column as one array parameter.
	pgArray() any
	// at is the value of row i, for JSON.
	at(i int) any
}

// col is a column of values of type T; a pointer type holds NULLs.
type col[T any] struct {
	name, typ string
	v         []T
}

func newCol[T any](name, typ string) col[T] { return col[T]{name: name, typ: typ} }

func (c *col[T]) add(x T)                { c.v = append(c.v, x) }
func (c *col[T]) decl() (string, string) { return c.name, c.typ }
func (c *col[T]) rows() int              { return len(c.v) }
func (c *col[T]) pgArray() any           { return pgArray[T](c.v) }
func (c *col[T]) at(i int) any           { return c.v[i] }

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
