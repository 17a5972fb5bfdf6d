// Package inventorytest starts inventory services for tests: one way to
// build a Service on a real store, so a test says only what differs.
package inventorytest

import (
	"context"
	"testing"

	"github.com/shopstack/inventory/internal/app"
	"github.com/shopstack/inventory/internal/gormstore"
	"github.com/shopstack/inventory/internal/lock/memlock"
	"github.com/shopstack/inventory/internal/testenv/gormstoretest"
)

// Config returns cfg with st as every store cfg leaves unset, and the
// in-process lock if cfg has no Locker.
func Config(st *gormstore.Store, cfg app.Config) app.Config {
	if cfg.Writer == nil {
		cfg.Writer = st
	}
	if cfg.Catalog == nil {
		cfg.Catalog = st
	}
	if cfg.Ledger == nil {
		cfg.Ledger = st
	}
	if cfg.Reservations == nil {
		cfg.Reservations = st
	}
	if cfg.Transfers == nil {
		cfg.Transfers = st
	}
	if cfg.Audit == nil {
		cfg.Audit = st
	}
	if cfg.Locker == nil {
		cfg.Locker = memlock.New(0)
	}
	return cfg
}

// Start starts a Service of Config(st, cfg) and closes it when tb ends.
func Start(tb testing.TB, st *gormstore.Store, cfg app.Config) *app.Service {
	tb.Helper()
	svc := app.New(Config(st, cfg))
	if err := svc.Start(context.Background()); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(svc.Close)
	return svc
}

// Open starts a Service of cfg on a new database of driver (see
// gormstoretest.Open) and returns it with its store.
func Open(tb testing.TB, driver string, cfg app.Config) (*app.Service, *gormstore.Store) {
	tb.Helper()
	st := gormstoretest.Open(tb, driver)
	return Start(tb, st, cfg), st
}
