package main

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/shopstack/inventory/cmd/invbench/internal/audit"
)

// database is a fresh database for one row, and how to get rid of it.
type database struct {
	driver string // the server's INVENTORY_DB_DRIVER
	dsn    string
	ref    audit.DB // how the tool reads it
	drop   func(context.Context) error
}

// createPostgres creates an empty database invbench_<random> through the
// admin DSN (a URL) and returns its DSN.
func createPostgres(ctx context.Context, adminDSN string) (*database, error) {
	u, err := url.Parse(adminDSN)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return nil, fmt.Errorf("-pg-admin-dsn must be a postgres:// URL, got %q", adminDSN)
	}
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	name := "invbench_" + hex.EncodeToString(b)
	admin, err := sql.Open("pgx", adminDSN)
	if err != nil {
		return nil, fmt.Errorf("open PostgreSQL: %w", err)
	}
	defer admin.Close()
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if _, err := admin.ExecContext(cctx, "CREATE DATABASE "+name); err != nil {
		return nil, fmt.Errorf("create database on %s: %w", u.Redacted(), err)
	}
	u.Path = "/" + name
	dsn := u.String()
	return &database{
		driver: "postgres",
		dsn:    dsn,
		ref:    audit.DB{Driver: "pgx", DSN: dsn},
		drop: func(ctx context.Context) error {
			admin, err := sql.Open("pgx", adminDSN)
			if err != nil {
				return err
			}
			defer admin.Close()
			ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
			defer cancel()
			if _, err := admin.ExecContext(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
				return fmt.Errorf("drop database %s: %w", name, err)
			}
			return nil
		},
	}, nil
}

// createSQLite returns a database file in a new temporary directory.
func createSQLite() (*database, error) {
	dir, err := os.MkdirTemp("", "invbench-sqlite-")
	if err != nil {
		return nil, err
	}
	path := filepath.Join(dir, "inventory.db")
	return &database{
		driver: "sqlite",
		dsn:    path,
		ref:    audit.DB{Driver: "sqlite", DSN: "file:" + path + "?_pragma=busy_timeout(10000)"},
		drop:   func(context.Context) error { return os.RemoveAll(dir) },
	}, nil
}

// reachable reports whether any of the comma-separated host:port endpoints
// (optionally http:// URLs) accepts a TCP connection.
func reachable(ctx context.Context, endpoints string) bool {
	d := net.Dialer{Timeout: time.Second}
	for _, ep := range strings.Split(endpoints, ",") {
		ep = strings.TrimPrefix(strings.TrimPrefix(strings.TrimSpace(ep), "http://"), "https://")
		if conn, err := d.DialContext(ctx, "tcp", ep); err == nil {
			conn.Close()
			return true
		}
	}
	return false
}
