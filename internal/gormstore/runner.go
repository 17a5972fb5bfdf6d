package gormstore

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	"gorm.io/gorm"

	"github.com/shopstack/inventory/internal/inventory"
)

// stmt is one statement of a list a runner runs: its text and arguments;
// for a statement that returns rows, where each row is scanned to, what is
// done with it then, and (if set) what is done after the last row; and for
// a compare-and-set on SQLite, the rows it must affect (see
// dialect.checked).
type stmt struct {
	sql  string
	args []any
	dest []any
	row  func() error
	end  func()
	want int
}

// runner runs a transaction's statements, list by list, in order.
type runner interface {
	// run runs qs.
	run(qs []stmt) error
	// commit runs qs and commits the transaction: the runner's last call.
	commit(qs []stmt) error
}

// inTx runs fn in a read-write transaction, with a runner for its
// statements. On PostgreSQL it runs on a pool connection through pgx
// directly, which pipelines each list in one round trip (database/sql, and
// so GORM, cannot): BEGIN and the first list go together, and the last
// list with COMMIT. On SQLite it runs through GORM in the store's
// immediate transaction, one statement at a time (SQLite runs in process:
// a statement costs no round trip).
func (s *Store) inTx(ctx context.Context, fn func(r runner) error) error {
	if s.driver != Postgres {
		return s.write(ctx, func(tx *gorm.DB) error { return fn(gormRunner{tx}) })
	}
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
		r := &pgRunner{ctx: ctx, c: c}
		err := fn(r)
		if err == nil && !r.committed {
			err = errors.New("gormstore: transaction ended without a commit")
		}
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

// pgPlanSettings steer the planner for the store's transactions on
// PostgreSQL. Their statements, and the foreign-key checks of the rows
// they insert, are key lookups: they are planned once per connection (a
// custom plan each time cost more than running the statement; with three
// foreign keys per ledger row it was most of PostgreSQL's time), and never
// as sequential scans, so a plan made while a table was small stays right
// as it grows. The session default stays force_custom_plan (see
// postgresConfig) for every other query.
var pgPlanSettings = []string{"SET LOCAL plan_cache_mode = force_generic_plan", "SET LOCAL enable_seqscan = off"}

// pgRunner runs lists on a pgx connection, each in one round trip. The
// statements' texts are the same for every transaction (rows travel as
// typed arrays), so pgx prepares each once per connection.
type pgRunner struct {
	ctx       context.Context
	c         *pgx.Conn
	begun     bool
	committed bool
}

func (r *pgRunner) run(qs []stmt) error { return r.send(qs, false) }

func (r *pgRunner) commit(qs []stmt) error {
	if err := r.send(qs, true); err != nil {
		return err
	}
	r.committed = true
	return nil
}

// send runs qs in one round trip: after BEGIN and the plan settings if the
// transaction is not open yet, and before COMMIT if commit is set. The
// server runs them in order, so a statement sees what the ones before it
// did and locked (in READ COMMITTED a statement sees the new version only
// of rows it locked itself; a later statement sees all of them).
func (r *pgRunner) send(qs []stmt, commit bool) error {
	if len(qs) == 0 && !commit {
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
	if commit {
		b.Queue("COMMIT")
	}
	br := r.c.SendBatch(r.ctx, b)
	err := func() error {
		for range prefix {
			if _, err := br.Exec(); err != nil {
				return err
			}
		}
		for _, q := range qs {
			if q.dest == nil {
				if _, err := br.Exec(); err != nil {
					return err
				}
				continue
			}
			rows, _ := br.Query()
			if _, err := pgx.ForEachRow(rows, q.dest, q.row); err != nil {
				return err
			}
			if q.end != nil {
				q.end()
			}
		}
		if !commit {
			return nil
		}
		// A failed statement aborts the transaction, and COMMIT then
		// answers ROLLBACK.
		tag, err := br.Exec()
		if err == nil && tag.String() != "COMMIT" {
			err = fmt.Errorf("gormstore: COMMIT answered %q", tag.String())
		}
		return err
	}()
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	return err
}

// gormRunner runs lists through GORM in its transaction, one statement at
// a time; the transaction commits when the function inTx runs returns.
type gormRunner struct {
	tx *gorm.DB
}

func (r gormRunner) commit(qs []stmt) error { return r.run(qs) }

func (r gormRunner) run(qs []stmt) error {
	for _, q := range qs {
		if err := r.stmt(q); err != nil {
			return err
		}
	}
	return nil
}

func (r gormRunner) stmt(q stmt) error {
	if q.dest == nil {
		res := r.tx.Exec(q.sql, q.args...)
		if res.Error != nil {
			return res.Error
		}
		if q.want > 0 && res.RowsAffected != int64(q.want) {
			return inventory.ErrVersionConflict
		}
		return nil
	}
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

// pgNumbered rewrites ? placeholders as pgx's $1, $2, ….
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
