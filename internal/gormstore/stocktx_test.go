package gormstore_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/shopstack/inventory/internal/gormstore"
	"github.com/shopstack/inventory/internal/inventory"
	"github.com/shopstack/inventory/internal/testenv/gormstoretest"
)

func newProduct(t *testing.T, s *gormstore.Store, sku string) inventory.Product {
	t.Helper()
	now := time.Now().UTC().Truncate(time.Microsecond)
	p := inventory.Product{SKU: sku, Name: sku, Version: 1, CreatedAt: now, UpdatedAt: now}
	if err := s.CreateProduct(context.Background(), &p, nil, inventory.IdempotencyRecord{}); err != nil {
		t.Fatal(err)
	}
	return p
}

func receive(tx *inventory.StockTx, n int64) error {
	m := inventory.Movement{Type: inventory.MovementIn, Delta: n, CreatedAt: time.Now()}
	return tx.Apply(&m)
}

// TestUpdateStocksGroup writes several levels in one transaction: levels
// of unknown products or locations are reported on their own StockTx and
// left alone, the others are written, with consecutive sequences in order.
func TestUpdateStocksGroup(t *testing.T) {
	gormstoretest.ForEachDriver(t, func(t *testing.T, driver string) {
		s := gormstoretest.Open(t, driver)
		a, b := newProduct(t, s, "A"), newProduct(t, s, "B")
		fence := inventory.Fence{Epoch: 1, Token: 5}
		works := []inventory.LevelWork{
			{Key: inventory.LevelKey{ProductID: b.ID, LocationID: 1}, Fence: fence},
			{Key: inventory.LevelKey{ProductID: 999, LocationID: 1}, Fence: fence},
			{Key: inventory.LevelKey{ProductID: a.ID, LocationID: 77}, Fence: fence},
		}
		var got []*inventory.StockTx
		err := s.UpdateStocks(context.Background(), works, inventory.StockOptions{Now: time.Now()}, inventory.StockCallbacks{Apply: func(set *inventory.StockSet) error {
			txs := set.Levels
			got = txs
			if txs[0].Err != nil {
				return txs[0].Err
			}
			if err := receive(txs[0], 3); err != nil {
				return err
			}
			return receive(txs[0], 4)
		}})
		if err != nil {
			t.Fatal(err)
		}
		if inventory.ErrorCode(got[1].Err) != inventory.CodeNotFound || inventory.ErrorCode(got[2].Err) != inventory.CodeNotFound {
			t.Fatalf("unknown product / location: %v, %v; want NOT_FOUND each", got[1].Err, got[2].Err)
		}
		ms := got[0].Movements()
		if ms[0].Seq == 0 || ms[1].Seq <= ms[0].Seq || got[0].Level.Fence != fence || got[0].Level.Version != 1 {
			t.Fatalf("committed: %+v level %+v", ms, got[0].Level)
		}
		levels, _ := levelsOf(s, b.ID)
		if len(levels) != 1 || levels[0].Stock != 7 {
			t.Fatalf("levels of B: %+v", levels)
		}

		// A group with a conflicting level writes nothing at all.
		works = []inventory.LevelWork{
			{Key: inventory.LevelKey{ProductID: a.ID, LocationID: 1}, Fence: fence},
			{Key: inventory.LevelKey{ProductID: b.ID, LocationID: 1}, Fence: inventory.Fence{Epoch: 1, Token: 4}},
		}
		err = s.UpdateStocks(context.Background(), works, inventory.StockOptions{Now: time.Now()}, inventory.StockCallbacks{Apply: func(set *inventory.StockSet) error {
			txs := set.Levels
			for _, tx := range txs {
				if err := receive(tx, 1); err != nil {
					return err
				}
			}
			return nil
		}})
		if !errors.Is(err, inventory.ErrVersionConflict) {
			t.Fatalf("stale fence in a group: %v, want ErrVersionConflict", err)
		}
		if levels, _ := levelsOf(s, a.ID); len(levels) != 0 {
			t.Fatalf("a failed group wrote A's level: %+v", levels)
		}

		// beforeCommit can still roll everything back.
		stop := errors.New("stop")
		err = s.UpdateStocks(context.Background(), works[:1], inventory.StockOptions{Now: time.Now()}, inventory.StockCallbacks{
			Apply:        func(set *inventory.StockSet) error { return receive(set.Levels[0], 1) },
			BeforeCommit: func() error { return stop },
		})
		if !errors.Is(err, stop) {
			t.Fatalf("beforeCommit error: %v", err)
		}
		if page, err := s.Movements(context.Background(), inventory.MovementQuery{After: ms[1].Seq, HasAfter: true, Limit: 10}); err != nil || len(page.Movements) > 0 {
			t.Fatalf("ledger rows after rolled-back groups: %+v (%v)", page.Movements, err)
		}
	})
}

// TestUpdateStocksTwoLevelsOfOneProduct changes two locations of one
// product in one transaction: they share the product, whose totals are
// written once. The same level twice is refused.
func TestUpdateStocksTwoLevelsOfOneProduct(t *testing.T) {
	gormstoretest.ForEachDriver(t, func(t *testing.T, driver string) {
		s := gormstoretest.Open(t, driver)
		a := newProduct(t, s, "A")
		loc := inventory.Location{Code: "B", Name: "b", CreatedAt: time.Now()}
		if err := s.CreateLocation(context.Background(), &loc); err != nil {
			t.Fatal(err)
		}
		works := []inventory.LevelWork{{Key: inventory.LevelKey{ProductID: a.ID, LocationID: 1}}, {Key: inventory.LevelKey{ProductID: a.ID, LocationID: loc.ID}}}
		err := s.UpdateStocks(context.Background(), works, inventory.StockOptions{Now: time.Now()}, inventory.StockCallbacks{Apply: func(set *inventory.StockSet) error {
			txs := set.Levels
			if txs[0].Product != txs[1].Product {
				t.Error("two levels of one product got two products")
			}
			if err := receive(txs[0], 3); err != nil {
				return err
			}
			return receive(txs[1], 4)
		}})
		if err != nil {
			t.Fatal(err)
		}
		got, err := s.Product(context.Background(), a.ID)
		if err != nil || got.Stock != 7 {
			t.Fatalf("product stock %d (%v), want 7", got.Stock, err)
		}
		works[1] = works[0]
		if err := s.UpdateStocks(context.Background(), works, inventory.StockOptions{Now: time.Now()}, inventory.StockCallbacks{Apply: func(*inventory.StockSet) error { return nil }}); err == nil {
			t.Fatal("accepted one level twice in one transaction")
		}
	})
}
