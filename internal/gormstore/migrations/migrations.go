// Package migrations holds the store's schema, as versioned SQL files per
// database (postgres/, sqlite/), and applies the pending ones. They are SQL,
// not GORM's AutoMigrate: the schema's CHECK constraints and indexes are
// part of the correctness model and are reviewed as SQL.
package migrations

import (
	"context"
	"embed"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"

	"gorm.io/gorm"
)

//go:embed postgres sqlite
var files embed.FS

// Migration is one versioned SQL file.
type Migration struct {
	Version int
	Name    string
	SQL     string
	// Rebuild marks a SQLite migration that rebuilds tables other tables
	// refer to (a line "-- migrate: rebuild"): SQLite changes a table's
	// constraints only by making it anew, and the one safe way is with
	// foreign keys off (Runners.Rebuild).
	Rebuild bool
}

// rebuildMark is the line that marks a Rebuild migration.
const rebuildMark = "-- migrate: rebuild"

// Tx runs fn in a read-write transaction of the store's.
type Tx func(ctx context.Context, fn func(tx *gorm.DB) error) error

// Runners run the migrations' transactions: Write runs each, but a
// Rebuild migration, which Rebuild runs on a connection of its own with
// foreign keys off (they cannot be switched inside a transaction), and
// whose transaction commits only if every reference still holds (PRAGMA
// foreign_key_check): the procedure of SQLite's ALTER TABLE documentation.
type Runners struct {
	Write, Rebuild Tx
}

// Apply applies the pending migrations of driver ("postgres" or "sqlite"),
// each in its own transaction run by run, recording them in
// schema_migrations. On PostgreSQL an advisory lock keeps replicas that
// start together from racing.
func Apply(ctx context.Context, driver string, run Runners) error {
	write := run.Write
	all, err := Load(driver)
	if err != nil {
		return err
	}
	// PostgreSQL's CREATE TABLE IF NOT EXISTS is not safe against itself
	// either, so it runs under the same lock as the migrations.
	err = write(ctx, func(tx *gorm.DB) error {
		if err := lock(tx, driver); err != nil {
			return err
		}
		return tx.Exec(`CREATE TABLE IF NOT EXISTS schema_migrations (
			version    INTEGER PRIMARY KEY,
			name       TEXT NOT NULL,
			applied_at TIMESTAMP NOT NULL)`).Error
	})
	if err != nil {
		return fmt.Errorf("create schema_migrations: %w", err)
	}
	for _, m := range all {
		tx := write
		if m.Rebuild {
			tx = run.Rebuild
		}
		err := tx(ctx, func(tx *gorm.DB) error {
			if err := lock(tx, driver); err != nil {
				return err
			}
			var n int64
			if err := tx.Raw("SELECT count(*) FROM schema_migrations WHERE version = ?", m.Version).Scan(&n).Error; err != nil {
				return err
			}
			if n > 0 {
				return nil
			}
			if err := tx.Exec(m.SQL).Error; err != nil {
				return err
			}
			return tx.Exec("INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
				m.Version, m.Name, time.Now().UTC()).Error
		})
		if err != nil {
			return fmt.Errorf("apply migration %04d_%s: %w", m.Version, m.Name, err)
		}
	}
	return nil
}

// lock serializes replicas that migrate at the same time, until tx ends.
// SQLite's immediate transactions already exclude each other.
func lock(tx *gorm.DB, driver string) error {
	if driver != "postgres" {
		return nil
	}
	return tx.Exec("SELECT pg_advisory_xact_lock(7460221)").Error
}

// Load returns driver's migrations in version order.
func Load(driver string) ([]Migration, error) {
	dir := driver
	entries, err := fs.ReadDir(files, dir)
	if err != nil {
		return nil, err
	}
	var out []Migration
	for _, e := range entries {
		name := strings.TrimSuffix(e.Name(), ".sql")
		num, rest, ok := strings.Cut(name, "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || !strings.HasSuffix(e.Name(), ".sql") {
			return nil, fmt.Errorf("migration file %s: want NNNN_name.sql", e.Name())
		}
		b, err := files.ReadFile(path.Join(dir, e.Name()))
		if err != nil {
			return nil, err
		}
		out = append(out, Migration{Version: v, Name: rest, SQL: string(b), Rebuild: strings.Contains(string(b), "\n"+rebuildMark+"\n")})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Version < out[j].Version })
	return out, nil
}
