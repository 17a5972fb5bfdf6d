package dialect

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"gorm.io/gorm"
)

// Stmt is one statement of a list a Runner runs: its text and arguments;
// for a statement that returns rows, where each row is scanned to (Dest),
// what is done with it then (Row), and (if set) what is done after the last
// row (End); and for a compare-and-set on SQLite, the rows it must affect
// (Want): fewer is ErrNotWritten.
type Stmt struct {
	SQL  string
	Args []any
	Dest []any
	Row  func() error
	End  func()
	Want int
}

// Runner runs a transaction's statements, list by list, in order.
type Runner interface {
	// Run runs qs.
	Run(qs []Stmt) error
	// Commit runs qs and commits the transaction: the runner's last call.
	Commit(qs []Stmt) error
}

// ErrNotWritten is a compare-and-set on SQLite that wrote fewer rows than
// it must (Stmt.Want): another writer changed one first.
var ErrNotWritten = errors.New("dialect: a compare-and-set wrote fewer rows than it must")

// PlanSettings steer the planner for the store's transactions on
// PostgreSQL. Their statements, and the foreign-key checks of the rows
// they insert, are key lookups: they are planned once per connection (a
// custom plan each time cost more than running the statement; with three
// foreign keys per ledger row it was most of PostgreSQL's time), and never
// as sequential scans, so a plan made while a table was small stays right
// as it grows. The session default stays force_custom_plan (see
// postgresConfig) for every other query.
var PlanSettings = []string{"SET LOCAL plan_cache_mode = force_generic_plan", "SET LOCAL enable_seqscan = off"}

// PGRunner runs lists on a pgx connection, each in one round trip. The
// statements' texts are the same for every transaction (rows travel as
// typed arrays), so pgx prepares each once per connection.
type PGRunner struct {
	ctx       context.Context
	c         *pgx.Conn
	begun     bool
	committed bool
}

// NewPGRunner returns a runner of a transaction on c, which the first list
// begins.
func NewPGRunner(ctx context.Context, c *pgx.Conn) *PGRunner { return &PGRunner{ctx: ctx, c: c} }

// Run runs qs in one round trip.
func (r *PGRunner) Run(qs []Stmt) error { return r.send(qs, false) }

// Commit runs qs and COMMIT in one round trip.
func (r *PGRunner) Commit(qs []Stmt) error {
	if err := r.send(qs, true); err != nil {
		return err
	}
	r.committed = true
	return nil
}

// Committed reports whether the transaction committed.
func (r *PGRunner) Committed() bool { return r.committed }

// send runs qs in one round trip: after BEGIN and the plan settings if the
// transaction is not open yet, and before COMMIT if commit is set. The
// server runs them in order, so a statement sees what the ones before it
// did and locked (in READ COMMITTED a statement sees the new version only
// of rows it locked itself; a later statement sees all of them).
func (r *PGRunner) send(qs []Stmt, commit bool) error {
	if len(qs) == 0 && !commit {
		return nil
	}
	b := &pgx.Batch{}
	var prefix []string
	if !r.begun {
		prefix = append([]string{"BEGIN"}, PlanSettings...)
		r.begun = true
	}
	for _, s := range prefix {
		b.Queue(s)
	}
	for _, q := range qs {
		b.Queue(q.SQL, q.Args...)
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
			if q.Dest == nil {
				if _, err := br.Exec(); err != nil {
					return err
				}
				continue
			}
			rows, _ := br.Query()
			if _, err := pgx.ForEachRow(rows, q.Dest, q.Row); err != nil {
				return err
			}
			if q.End != nil {
				q.End()
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

// GormRunner runs lists through GORM in its transaction Tx, one statement
// at a time; the transaction commits when its caller's function returns.
type GormRunner struct {
	Tx *gorm.DB
}

// Commit runs qs; the caller commits.
func (r GormRunner) Commit(qs []Stmt) error { return r.Run(qs) }

// Run runs qs in order.
func (r GormRunner) Run(qs []Stmt) error {
	for _, q := range qs {
		if err := r.stmt(q); err != nil {
			return err
		}
	}
	return nil
}

func (r GormRunner) stmt(q Stmt) error {
	if q.Dest == nil {
		res := r.Tx.Exec(q.SQL, q.Args...)
		if res.Error != nil {
			return res.Error
		}
		if q.Want > 0 && res.RowsAffected != int64(q.Want) {
			return ErrNotWritten
		}
		return nil
	}
	rows, err := r.Tx.Raw(q.SQL, q.Args...).Rows()
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		if err := rows.Scan(q.Dest...); err != nil {
			return err
		}
		if err := q.Row(); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return err
	}
	if q.End != nil {
		q.End()
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

// PGArray passes a slice as one array parameter: GORM would expand a bare
// slice into a list of parameters.
type PGArray[T any] []T

// Value returns the slice, which pgx encodes as an array.
func (a PGArray[T]) Value() (driver.Value, error) { return []T(a), nil }

// Array wraps a column's values as one array parameter.
func Array[T any](v []T) PGArray[T] { return PGArray[T](v) }
