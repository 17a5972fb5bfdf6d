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

// TestFencedWrites bypasses the service's own fence check: the schema and
// the conditional UPDATE alone refuse a write under an older fence, and a
// newer epoch wins whatever its token.
func TestFencedWrites(t *testing.T) {
	gormstoretest.ForEachDriver(t, func(t *testing.T, driver string) {
		s := gormstoretest.Open(t, driver)
		p := product(t, s)
		key := inventory.LevelKey{ProductID: p.ID, LocationID: inventory.DefaultLocationID}
		write := func(f inventory.Fence) error {
			return updateOne(s, key, f, func(tx *inventory.StockTx) error {
				m := inventory.Movement{Type: inventory.MovementIn, Delta: 1, Fence: f, CreatedAt: time.Now()}
				return tx.Apply(&m)
			})
		}
		steps := []struct {
			fence inventory.Fence
			ok    bool
		}{
			{inventory.Fence{Epoch: 1, Token: 10}, true},
			{inventory.Fence{Epoch: 1, Token: 10}, true}, // the same lease may write again
			{inventory.Fence{Epoch: 1, Token: 9}, false},
			{inventory.Fence{Epoch: 2, Token: 1}, true}, // a new epoch starts its tokens anywhere
			{inventory.Fence{Epoch: 1, Token: 1_000_000}, false},
			{inventory.Fence{Epoch: 2, Token: 2}, true},
		}
		want := int64(10) // product() starts with 10 units
		for i, st := range steps {
			err := write(st.fence)
			switch {
			case st.ok && err != nil:
				t.Fatalf("step %d: write under %+v: %v", i, st.fence, err)
			case !st.ok && !errors.Is(err, inventory.ErrVersionConflict):
				t.Fatalf("step %d: write under %+v = %v, want ErrVersionConflict", i, st.fence, err)
			case st.ok:
				want++
			}
		}
		levels, err := levelsOf(s, p.ID)
		if err != nil || levels[0].Stock != want || levels[0].Fence != (inventory.Fence{Epoch: 2, Token: 2}) {
			t.Fatalf("level = %+v (%v), want stock %d under fence {2 2}", levels, err, want)
		}
	})
}

// TestLockEpochs: replicas with the same fencing domain share an epoch; a
// different domain starts the next one, and so does switching back.
// updateOne runs a stock transaction on one level.
func updateOne(s *gormstore.Store, key inventory.LevelKey, f inventory.Fence, fn func(*inventory.StockTx) error) error {
	return s.UpdateStocks(context.Background(), []inventory.LevelWork{{Key: key, Fence: f}}, inventory.StockOptions{Now: time.Now()},
		inventory.StockCallbacks{Apply: func(set *inventory.StockSet) error { return fn(set.Levels[0]) }})
}

func TestLockEpochs(t *testing.T) {
	gormstoretest.ForEachDriver(t, func(t *testing.T, driver string) {
		s := gormstoretest.Open(t, driver)
		ctx := context.Background()
		for i, step := range []struct {
			domain string
			want   int64
		}{{"local", 1}, {"local", 1}, {"etcd/1f2e", 2}, {"etcd/1f2e", 2}, {"redsync", 3}, {"local", 4}} {
			got, err := s.LockEpoch(ctx, step.domain)
			if err != nil || got != step.want {
				t.Fatalf("step %d: LockEpoch(%q) = %d, %v; want %d", i, step.domain, got, err, step.want)
			}
		}
	})
}
