// Package gormstore implements the inventory's store interfaces (Writer,
// Catalog, Ledger, Reservations, Audit) on SQLite (the zero-setup default)
// or PostgreSQL.
//
// What GORM does here: it opens both databases (its SQLite driver is pure
// Go, so `make run` needs no C toolchain), runs transactions (s.write;
// SQLite's are IMMEDIATE, its writers queued in Go), maps result rows onto
// the row structs (rows.go) with Raw(...).Scan, and carries the tracing
// callbacks (package sqltrace) that give every statement a span.
//
// What runs outside it, and why:
//   - Every statement is SQL text of ours, through Raw and Exec, not GORM's
//     query builder or models: the rules the schema enforces (a version
//     compare-and-set, the fence predicate, the ledger numbering, the
//     reservation transitions) are in that text, and a builder would hide
//     them.
//   - A stock transaction is one list of reads (stockread.go) and one list
//     of writes (stockwrite.go), each statement written once for both
//     databases; package dialect says everything that differs: how rows
//     travel (typed arrays through unnest on PostgreSQL, JSON through
//     json_each on SQLite), placeholders, row locks, and, by nature, where
//     numbers come from (sequences, or counters whose writers take turns)
//     and how a failed compare-and-set aborts (the statement raises, or the
//     runner counts the rows it affected). A new product's first stock goes
//     through the same writer.
//   - On PostgreSQL the transaction runs on a pool connection through pgx
//     directly (inTx, with dialect's runners): BEGIN and the reads go in
//     one round trip, the writes and COMMIT in a second, which
//     database/sql, and so GORM, cannot do. On SQLite the same lists run
//     through GORM, statement by statement.
//   - Migrations (package migrations) are versioned SQL files, not
//     AutoMigrate: the schema's CHECK constraints and indexes are part of
//     the correctness model and are reviewed as SQL.
package gormstore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"time"

	"github.com/glebarez/sqlite"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	"go.opentelemetry.io/otel/trace"
	"gorm.io/driver/postgres"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"

	"github.com/shopstack/inventory/internal/gormstore/dialect"
	"github.com/shopstack/inventory/internal/gormstore/migrations"
	"github.com/shopstack/inventory/internal/gormstore/sqltrace"
	"github.com/shopstack/inventory/internal/inventory"
	"github.com/shopstack/inventory/internal/retry"
)

// Drivers.
const (
	SQLite   = "sqlite"
	Postgres = "postgres"
)

// Config says which database to open.
type Config struct {
	// Driver is SQLite or Postgres.
	Driver string
	// DSN is a SQLite file path (or "file:" URI) or a PostgreSQL DSN.
	DSN string
	// MaxOpenConns bounds the connection pool; zero picks a default.
	MaxOpenConns int
	Logger       *slog.Logger
	// TracerProvider makes a span per SQL statement (and per pipelined
	// batch on PostgreSQL), without bound values; nil makes none.
	TracerProvider trace.TracerProvider
}

// Store is an inventory.Store backed by GORM.
type Store struct {
	db      *gorm.DB
	driver  string
	log     *slog.Logger
	writers chan struct{} // SQLite only: one writer at a time, queued in Go
	// d is the database's dialect, and reads and writes the stock
	// transaction's statements in it.
	d      dialect.Dialect
	reads  *stockSQL
	writes *writeSQL
}

var (
	_ inventory.Writer       = (*Store)(nil)
	_ inventory.Catalog      = (*Store)(nil)
	_ inventory.Ledger       = (*Store)(nil)
	_ inventory.Reservations = (*Store)(nil)
	_ inventory.Transfers    = (*Store)(nil)
	_ inventory.Audit        = (*Store)(nil)
)

// Open connects to the database and applies pending migrations.
func Open(ctx context.Context, cfg Config) (*Store, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	gormConfig := func() *gorm.Config {
		return &gorm.Config{
			SkipDefaultTransaction: true,
			Logger:                 logger.Discard,
			NowFunc:                func() time.Time { return time.Now().UTC() },
		}
	}
	var db *gorm.DB
	var err error
	switch cfg.Driver {
	case SQLite:
		db, err = openSQLite(ctx, sqliteDSN(cfg.DSN), gormConfig)
	case Postgres:
		pgCfg, cfgErr := postgresConfig(cfg.DSN)
		if cfgErr != nil {
			return nil, cfgErr
		}
		if cfg.TracerProvider != nil {
			pgCfg.Tracer = sqltrace.PGBatchTracer{Tracer: cfg.TracerProvider.Tracer(sqltrace.Scope)}
		}
		db, err = gorm.Open(postgres.New(postgres.Config{Conn: stdlib.OpenDB(*pgCfg)}), gormConfig())
	default:
		return nil, fmt.Errorf("unknown database driver %q (want %q or %q)", cfg.Driver, SQLite, Postgres)
	}
	if err != nil {
		return nil, fmt.Errorf("open %s database: %w", cfg.Driver, err)
	}
	if cfg.TracerProvider != nil {
		if err := sqltrace.Instrument(db, cfg.TracerProvider, sqltrace.System(cfg.Driver == Postgres)); err != nil {
			return nil, fmt.Errorf("trace SQL: %w", err)
		}
	}
	s := &Store{db: db, driver: cfg.Driver, log: cfg.Logger, d: dialect.SQLite, reads: sqliteStockSQL, writes: sqliteWriteSQL}
	if cfg.Driver == Postgres {
		s.d, s.reads, s.writes = dialect.Postgres, pgStockSQL, pgWriteSQL
	}
	sqlDB, err := db.DB()
	if err != nil {
		return nil, err
	}
	maxConns := cfg.MaxOpenConns
	if maxConns <= 0 {
		maxConns = 16
	}
	sqlDB.SetMaxOpenConns(maxConns)
	sqlDB.SetMaxIdleConns(maxConns)
	sqlDB.SetConnMaxIdleTime(5 * time.Minute)
	if cfg.Driver == SQLite {
		s.writers = make(chan struct{}, 1)
	}
	if err := s.Ping(ctx); err != nil {
		_ = s.Close()
		return nil, fmt.Errorf("connect to %s database: %w", cfg.Driver, err)
	}
	if err := migrations.Apply(ctx, cfg.Driver, migrations.Runners{Write: s.write, Rebuild: s.rebuild}); err != nil {
		_ = s.Close()
		return nil, err
	}
	return s, nil
}

// sqliteOpenWait bounds how long Open retries a SQLite database that is
// busy, as its busy timeout bounds a wait for its lock.
const sqliteOpenWait = 10 * time.Second

// openSQLite opens the SQLite database of dsn. Processes opening a new
// database at once each switch it to WAL, which takes its lock; two of them
// can deadlock on it, and SQLite then fails one at once (SQLITE_BUSY) rather
// than wait out the busy timeout. Such a failure is retried, for up to
// sqliteOpenWait.
func openSQLite(ctx context.Context, dsn string, conf func() *gorm.Config) (*gorm.DB, error) {
	deadline := time.Now().Add(sqliteOpenWait)
	b := retry.Doubling(5*time.Millisecond, 200*time.Millisecond)
	for {
		db, err := gorm.Open(sqlite.Open(dsn), conf())
		if err == nil || !transient(err) || time.Now().After(deadline) {
			return db, err
		}
		if db != nil {
			if sqlDB, dbErr := db.DB(); dbErr == nil {
				_ = sqlDB.Close()
			}
		}
		if !retry.Sleep(ctx, b.NextBackOff()) {
			return nil, err
		}
	}
}

// sqliteDSN adds the connection settings the store relies on to a file
// path: WAL for concurrent readers, full sync so an acknowledged change
// survives power loss, foreign keys, a busy timeout for other processes,
// and immediate transactions so a transaction that reads then writes never
// fails to upgrade its lock. The pragmas run in order on each new
// connection, so the busy timeout comes first: switching a new database
// to WAL takes a lock that another process opening it may hold.
func sqliteDSN(dsn string) string {
	if !strings.HasPrefix(dsn, "file:") {
		dsn = "file:" + dsn
	}
	q := url.Values{}
	for _, p := range []string{"busy_timeout(10000)", "journal_mode(WAL)", "synchronous(FULL)", "foreign_keys(1)"} {
		q.Add("_pragma", p)
	}
	q.Set("_txlock", "immediate")
	sep := "?"
	if strings.Contains(dsn, "?") {
		sep = "&"
	}
	return dsn + sep + q.Encode()
}

// postgresConfig parses a PostgreSQL DSN and sets plan_cache_mode to
// force_custom_plan unless the DSN sets it: prepared statements are then
// planned for their parameters and the tables' current size. A generic
// plan cached while a table was small (a new ledger) keeps scanning it
// whole as it grows, until an ANALYZE happens to replace it: the replay
// check of a 32-request batch was seen taking 3-6ms instead of 0.05ms.
//
// It also sets idle_in_transaction_session_timeout (30s unless the DSN
// sets it): a transaction of ours whose client went silent mid-way (a
// partition between its round trips) is ended by the server, so that its
// row locks, and the ledger writers' lock that readers of the ledger wait
// for (pgWatermark), do not outlive it until TCP notices.
func postgresConfig(dsn string) (*pgx.ConnConfig, error) {
	c, err := pgx.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("INVENTORY_DB_DSN: %w", err)
	}
	for k, v := range map[string]string{"plan_cache_mode": "force_custom_plan", "idle_in_transaction_session_timeout": "30s"} {
		if _, ok := c.RuntimeParams[k]; !ok {
			c.RuntimeParams[k] = v
		}
	}
	return c, nil
}

// Close closes the database.
func (s *Store) Close() error {
	sqlDB, err := s.db.DB()
	if err != nil {
		return err
	}
	return sqlDB.Close()
}

// Driver returns SQLite or Postgres.
func (s *Store) Driver() string { return s.driver }

// Ping checks that the database answers a query.
func (s *Store) Ping(ctx context.Context) error {
	var one int
	if err := s.db.WithContext(ctx).Raw("SELECT 1").Scan(&one).Error; err != nil {
		return translate(err)
	}
	return nil
}

// Clock returns the database's clock reading. SQLite's is this host's.
func (s *Store) Clock(ctx context.Context) (time.Time, error) {
	if s.driver != Postgres {
		return time.Now(), nil
	}
	var now time.Time
	if err := s.db.WithContext(ctx).Raw("SELECT clock_timestamp()").Scan(&now).Error; err != nil {
		return time.Time{}, translate(err)
	}
	return now, nil
}

// rebuild runs fn in a read-write transaction on one SQLite connection
// with foreign keys off (migrations.Runners), and commits only if every
// reference still holds. The connection gets its foreign keys back before
// it returns to the pool; if that fails, so does rebuild.
func (s *Store) rebuild(ctx context.Context, fn func(tx *gorm.DB) error) error {
	release, err := s.queueWriter(ctx)
	if err != nil {
		return err
	}
	defer release()
	err = s.db.WithContext(ctx).Connection(func(conn *gorm.DB) (err error) {
		if err := conn.Exec("PRAGMA foreign_keys = OFF").Error; err != nil {
			return err
		}
		defer func() {
			c := conn.WithContext(context.WithoutCancel(ctx))
			var on int
			if e := c.Exec("PRAGMA foreign_keys = ON").Error; e != nil || c.Raw("PRAGMA foreign_keys").Scan(&on).Error != nil || on != 1 {
				err = errors.Join(err, fmt.Errorf("turn foreign keys back on: %v", e))
			}
		}()
		return conn.Transaction(func(tx *gorm.DB) error {
			if err := fn(tx); err != nil {
				return err
			}
			var broken []struct{ Table, Parent string }
			if err := tx.Raw("PRAGMA foreign_key_check").Scan(&broken).Error; err != nil {
				return err
			}
			if len(broken) > 0 {
				return fmt.Errorf("%d rows refer to rows that do not exist (the first: %s to %s)", len(broken), broken[0].Table, broken[0].Parent)
			}
			return nil
		})
	})
	return translate(err)
}

// queueWriter waits for the writer's turn (SQLite: writers queue in Go
// rather than in SQLite's busy handler, which sleeps in steps of up to
// 100ms) and returns its release.
func (s *Store) queueWriter(ctx context.Context) (release func(), err error) {
	if s.writers == nil {
		return func() {}, nil
	}
	select {
	case s.writers <- struct{}{}:
		return func() { <-s.writers }, nil
	case <-ctx.Done():
		return nil, translate(ctx.Err())
	}
}

// write runs fn in a read-write transaction, in the writers' turn.
func (s *Store) write(ctx context.Context, fn func(tx *gorm.DB) error) error {
	release, err := s.queueWriter(ctx)
	if err != nil {
		return err
	}
	defer release()
	return translate(s.db.WithContext(ctx).Transaction(fn))
}
