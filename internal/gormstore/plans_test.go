package gormstore_test

import (
	"context"
	"strings"
	"testing"

	"github.com/shopstack/inventory/internal/gormstore"
	"github.com/shopstack/inventory/internal/testenv/gormstoretest"
)

// TestHotPathPlansUseIndexes checks, on a new and nearly empty schema
// where a sequential scan looks cheapest, that the stock transaction's
// statements get no sequential scan in the generic plans cached for a
// connection's lifetime: such a plan would read a whole table on every
// transaction as it grows.
func TestHotPathPlansUseIndexes(t *testing.T) {
	s := gormstoretest.Open(t, gormstore.Postgres)
	plans, err := gormstore.HotPathPlans(context.Background(), s)
	if err != nil {
		t.Fatal(err)
	}
	if want := gormstore.HotPathStatementCount(); len(plans) != want {
		t.Fatalf("%d plans, want %d", len(plans), want)
	}
	for name, plan := range plans {
		if strings.Contains(plan, "Seq Scan") {
			t.Errorf("%s: the cached plan has a sequential scan:\n%s", name, plan)
		}
	}
}
