package gormstore_test

import (
	"cmp"
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/shopstack/inventory/internal/gormstore"
	"github.com/shopstack/inventory/internal/inventory"
	"github.com/shopstack/inventory/internal/testenv/gormstoretest"
)

// stocked inserts a product with units at the default location.
func stocked(t *testing.T, s *gormstore.Store, sku string, units int64) inventory.Product {
	t.Helper()
	p := newProduct(t, s, sku)
	if units > 0 {
		p = receiveAt(t, s, inventory.LevelKey{ProductID: p.ID, LocationID: inventory.DefaultLocationID}, units)
	}
	return p
}

// receiveAt adds units to a level, unfenced, and returns its product after.
func receiveAt(t *testing.T, s *gormstore.Store, key inventory.LevelKey, units int64) inventory.Product {
	t.Helper()
	var st *inventory.StockTx
	err := s.UpdateStocks(context.Background(), []inventory.LevelWork{{Key: key}}, inventory.StockOptions{Now: time.Now().UTC()},
		inventory.StockCallbacks{Apply: func(set *inventory.StockSet) error {
			st = set.Levels[0]
			return cmp.Or(st.Err, receive(st, units))
		}})
	if err != nil {
		t.Fatal(err)
	}
	return *st.Product
}

func TestProductStocks(t *testing.T) {
	gormstoretest.ForEachDriver(t, func(t *testing.T, driver string) {
		s := gormstoretest.Open(t, driver)
		ctx := context.Background()
		loc := inventory.Location{Code: "B", Name: "b", CreatedAt: time.Now().UTC()}
		if err := s.CreateLocation(ctx, &loc); err != nil {
			t.Fatal(err)
		}
		a := stocked(t, s, "A", 5)
		b := stocked(t, s, "B", 0)
		c := stocked(t, s, "C", 7)
		if a.LastSeq != 1 || b.LastSeq != 0 || c.LastSeq != 2 {
			t.Fatalf("last seqs after create: %d %d %d, want 1 0 2", a.LastSeq, b.LastSeq, c.LastSeq)
		}
		after := receiveAt(t, s, inventory.LevelKey{ProductID: a.ID, LocationID: loc.ID}, 3)
		if after.LastSeq != 3 {
			t.Fatalf("LastSeq after a receipt = %d, want 3", after.LastSeq)
		}

		got, err := s.ProductStocks(ctx, []int64{c.ID, 999, a.ID, b.ID})
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 3 || got[0].Product.ID != a.ID || got[1].Product.ID != b.ID || got[2].Product.ID != c.ID {
			t.Fatalf("ProductStocks = %+v, want a, b, c", got)
		}
		pa := got[0]
		if pa.Product.SKU != "A" || pa.Product.Stock != 8 || pa.Product.LastSeq != 3 || len(pa.Levels) != 2 ||
			pa.Levels[0].LocationID != inventory.DefaultLocationID || pa.Levels[0].Stock != 5 ||
			pa.Levels[1].LocationID != loc.ID || pa.Levels[1].Stock != 3 || pa.Levels[1].Version != 1 {
			t.Fatalf("a = %+v", pa)
		}
		if len(got[1].Levels) != 0 || got[2].Levels[0].Stock != 7 {
			t.Fatalf("b = %+v, c = %+v", got[1], got[2])
		}

		bySKU, err := s.ProductStockBySKU(ctx, "A")
		if err != nil || bySKU.Product.ID != a.ID || len(bySKU.Levels) != 2 {
			t.Fatalf("ProductStockBySKU(A) = %+v, %v", bySKU, err)
		}
		if _, err := s.ProductStockBySKU(ctx, "NOPE"); inventory.ErrorCode(err) != inventory.CodeNotFound {
			t.Fatalf("unknown SKU: %v", err)
		}

		page, err := s.ProductIDs(ctx, inventory.ProductFilter{}, a.ID, 1)
		if err != nil || len(page.IDs) != 1 || page.IDs[0] != b.ID || !page.HasNext {
			t.Fatalf("ProductIDs = %+v, %v", page, err)
		}
	})
}

func TestMovementsByProducts(t *testing.T) {
	gormstoretest.ForEachDriver(t, func(t *testing.T, driver string) {
		s := gormstoretest.Open(t, driver)
		ctx := context.Background()
		var ids []int64
		for i := range 3 {
			p := stocked(t, s, fmt.Sprintf("P%d", i), 1)
			ids = append(ids, p.ID)
			for range i * 2 {
				receiveAt(t, s, inventory.LevelKey{ProductID: p.ID, LocationID: inventory.DefaultLocationID}, 1)
			}
		}
		// Product i has 1 + 2i movements.
		pages, err := s.MovementsByProducts(ctx, ids, inventory.MovementQuery{Limit: 2, Descending: true})
		if err != nil {
			t.Fatal(err)
		}
		for i, id := range ids {
			pg := pages[id]
			want := min(1+2*i, 2)
			if len(pg.Movements) != want || pg.HasNext != (1+2*i > 2) {
				t.Fatalf("product %d: %d movements, hasNext %v", i, len(pg.Movements), pg.HasNext)
			}
			for j, m := range pg.Movements {
				if m.ProductID != id || (j > 0 && m.Seq >= pg.Movements[j-1].Seq) {
					t.Fatalf("product %d: movements %+v not its own, newest first", i, pg.Movements)
				}
			}
		}
		// The same page as Movements gives, after a cursor, in ascending order.
		last := ids[2]
		one, err := s.Movements(ctx, inventory.MovementQuery{ProductID: last, Limit: 2, After: 1, HasAfter: true})
		if err != nil {
			t.Fatal(err)
		}
		pages, err = s.MovementsByProducts(ctx, []int64{last}, inventory.MovementQuery{Limit: 2, After: 1, HasAfter: true})
		if err != nil || fmt.Sprint(pages[last]) != fmt.Sprint(one) {
			t.Fatalf("MovementsByProducts = %+v (%v), Movements = %+v", pages[last], err, one)
		}
	})
}

func TestChanges(t *testing.T) {
	gormstoretest.ForEachDriver(t, func(t *testing.T, driver string) {
		s := gormstoretest.Open(t, driver)
		ctx := context.Background()
		a := stocked(t, s, "A", 1)
		b := stocked(t, s, "B", 0)
		receiveAt(t, s, inventory.LevelKey{ProductID: b.ID, LocationID: inventory.DefaultLocationID}, 2)
		ledger, err := s.LedgerChanges(ctx, 0, 10)
		if err != nil || fmt.Sprint(ledger) != fmt.Sprint([]inventory.Change{{Pos: 1, ProductID: a.ID}, {Pos: 2, ProductID: b.ID}}) {
			t.Fatalf("LedgerChanges = %+v, %v", ledger, err)
		}
		rev, err := s.LastRevision(ctx)
		if err != nil || rev != 2 {
			t.Fatalf("LastRevision = %d, %v; want 2", rev, err)
		}
		name := "renamed"
		if _, err := s.UpdateProduct(ctx, a.ID, inventory.IdempotencyRecord{}, func(p *inventory.Product) (bool, error) {
			p.Name, p.Version = name, p.Version+1
			return true, nil
		}); err != nil {
			t.Fatal(err)
		}
		catalog, err := s.CatalogChanges(ctx, 1, 10)
		if err != nil || fmt.Sprint(catalog) != fmt.Sprint([]inventory.Change{{Pos: 2, ProductID: b.ID}, {Pos: 3, ProductID: a.ID}}) {
			t.Fatalf("CatalogChanges = %+v, %v", catalog, err)
		}
	})
}
