// Package gormstoretest opens real databases for tests: SQLite in a
// temporary directory and PostgreSQL in a fresh schema of the database named
// by INVENTORY_TEST_POSTGRES_DSN.
//
// Without that variable PostgreSQL tests are skipped, unless
// INVENTORY_TEST_STRICT=1 (set by `make test` under CI), where a skip is a
// failure.
package gormstoretest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx"

	"github.com/shopstack/inventory/internal/gormstore"
	"github.com/shopstack/inventory/internal/testenv"
)

// Drivers lists the drivers every store test runs against.
var Drivers = []string{gormstore.SQLite, gormstore.Postgres}

// ForEachDriver runs fn as a subtest per database driver.
func ForEachDriver(t *testing.T, fn func(t *testing.T, driver string)) {
	for _, d := range Drivers {
		t.Run(d, func(t *testing.T) { fn(t, d) })
	}
}

// DSN returns a DSN for a new, empty database of the given driver, removed
// when the test ends: a file in a temporary directory for SQLite, a fresh
// schema for PostgreSQL.
func DSN(tb testing.TB, driver string) string {
	tb.Helper()
	switch driver {
	case gormstore.SQLite:
		return filepath.Join(tb.TempDir(), "inventory.db")
	case gormstore.Postgres:
		return postgresSchema(tb)
	}
	tb.Fatalf("unknown driver %q", driver)
	return ""
}

// Open returns a migrated store on a new, empty database.
func Open(tb testing.TB, driver string) *gormstore.Store {
	tb.Helper()
	s, err := gormstore.Open(context.Background(), gormstore.Config{Driver: driver, DSN: DSN(tb, driver)})
	if err != nil {
		tb.Fatalf("open %s store: %v", driver, err)
	}
	tb.Cleanup(func() { _ = s.Close() })
	return s
}

func postgresSchema(tb testing.TB) string {
	tb.Helper()
	base := os.Getenv("INVENTORY_TEST_POSTGRES_DSN")
	if base == "" {
		testenv.SkipOrFail(tb, "INVENTORY_TEST_POSTGRES_DSN is not set")
	}
	admin, err := sql.Open("pgx", base)
	if err != nil {
		tb.Fatalf("open postgres: %v", err)
	}
	defer admin.Close()
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	schema := "t_" + hex.EncodeToString(b)
	if _, err := admin.Exec("CREATE SCHEMA " + schema); err != nil {
		testenv.SkipOrFail(tb, "postgres at INVENTORY_TEST_POSTGRES_DSN is not usable: "+err.Error())
	}
	tb.Cleanup(func() {
		db, err := sql.Open("pgx", base)
		if err != nil {
			return
		}
		defer db.Close()
		_, _ = db.Exec("DROP SCHEMA " + schema + " CASCADE")
	})
	return withSearchPath(base, schema)
}

// withSearchPath adds a search_path run-time parameter to a URL or
// keyword/value DSN.
func withSearchPath(dsn, schema string) string {
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		u, err := url.Parse(dsn)
		if err == nil {
			q := u.Query()
			q.Set("search_path", schema)
			u.RawQuery = q.Encode()
			return u.String()
		}
	}
	return dsn + " search_path=" + schema
}
