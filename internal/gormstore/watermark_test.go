package gormstore_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/shopstack/inventory/internal/gormstore"
	"github.com/shopstack/inventory/internal/inventory"
	"github.com/shopstack/inventory/internal/testenv/gormstoretest"
)

// TestWatermarkWaitsForLowerSequences makes a ledger writer take a
// sequence and stay open (as a transaction between its write and its
// commit would), while a later one commits a higher sequence: readers that
// follow the ledger must not return the higher one while the lower one
// may still commit, and return it once the lower one is settled.
func TestWatermarkWaitsForLowerSequences(t *testing.T) {
	dsn := gormstoretest.DSN(t, gormstore.Postgres)
	s := open(t, gormstore.Postgres, dsn)
	p := product(t, s)
	key := inventory.LevelKey{ProductID: p.ID, LocationID: inventory.DefaultLocationID}
	stockIn := func() error {
		return updateOne(s, key, inventory.Fence{}, func(tx *inventory.StockTx) error {
			m := inventory.Movement{Type: inventory.MovementIn, Delta: 1, CreatedAt: time.Now()}
			return tx.Apply(&m)
		})
	}
	if err := stockIn(); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	base, err := s.LastSeq(ctx)
	if err != nil {
		t.Fatal(err)
	}

	// The open writer: it holds the writers' lock and a sequence.
	db := sqlDB(t, gormstore.Postgres, dsn)
	tx, err := db.Begin()
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	var held int64
	if _, err := tx.Exec("SELECT pg_advisory_xact_lock_shared(7460222, 'ledger_seq'::regclass::oid::int)"); err != nil {
		t.Fatal(err)
	}
	if err := tx.QueryRow("SELECT nextval('ledger_seq')").Scan(&held); err != nil {
		t.Fatal(err)
	}
	if err := stockIn(); err != nil {
		t.Fatal(err)
	}
	page, err := s.Movements(ctx, inventory.MovementQuery{ProductID: p.ID, Descending: true, Limit: 1})
	if err != nil || len(page.Movements) != 1 {
		t.Fatalf("latest movement: %+v %v", page, err)
	}
	later := page.Movements[0].Seq
	if later <= held {
		t.Fatalf("the committed movement has seq %d, not above the open writer's %d", later, held)
	}

	type answer struct {
		seqs []int64
		err  error
	}
	readers := map[string]func() ([]int64, error){
		"LastSeq": func() ([]int64, error) {
			w, err := s.LastSeq(ctx)
			return []int64{w}, err
		},
		"LedgerChanges": func() ([]int64, error) {
			cs, err := s.LedgerChanges(ctx, base, 10)
			var seqs []int64
			for _, c := range cs {
				seqs = append(seqs, c.Pos)
			}
			return seqs, err
		},
		"Movements": func() ([]int64, error) {
			page, err := s.Movements(ctx, inventory.MovementQuery{After: base, HasAfter: true, Limit: 10})
			var seqs []int64
			for _, m := range page.Movements {
				seqs = append(seqs, m.Seq)
			}
			return seqs, err
		},
	}
	answers := map[string]chan answer{}
	for name, read := range readers {
		answers[name] = make(chan answer, 1)
		go func() {
			seqs, err := read()
			answers[name] <- answer{seqs, err}
		}()
	}
	time.Sleep(100 * time.Millisecond) // time for a wrong reader to answer
	for name, ch := range answers {
		select {
		case a := <-ch:
			if a.err != nil || slices.ContainsFunc(a.seqs, func(seq int64) bool { return seq >= later }) {
				t.Errorf("%s answered %v (%v) while sequence %d could still commit", name, a.seqs, a.err, held)
			}
			ch <- answer{} // answered early and right: nothing more to check
		default:
		}
	}
	if err := tx.Rollback(); err != nil {
		t.Fatal(err)
	}
	for name, ch := range answers {
		a := <-ch
		if a.seqs == nil && a.err == nil {
			continue
		}
		if a.err != nil || !slices.Contains(a.seqs, later) {
			t.Errorf("%s answered %v (%v) once sequence %d was settled, want %d in it", name, a.seqs, a.err, held, later)
		}
	}
}

// TestSessionSettings: a store's PostgreSQL sessions end a transaction
// left idle by a silent client (so that its locks, which ledger readers may
// wait for, do not outlive it), unless the DSN says otherwise.
func TestSessionSettings(t *testing.T) {
	dsn := gormstoretest.DSN(t, gormstore.Postgres)
	for _, c := range []struct{ dsn, want string }{
		{dsn, "30s"},
		{dsn + "&idle_in_transaction_session_timeout=5s", "5s"},
	} {
		s := open(t, gormstore.Postgres, c.dsn)
		got, err := gormstore.Setting(context.Background(), s, "idle_in_transaction_session_timeout")
		if err != nil || got != c.want {
			t.Errorf("idle_in_transaction_session_timeout = %q (%v), want %q", got, err, c.want)
		}
		if mode, _ := gormstore.Setting(context.Background(), s, "plan_cache_mode"); mode != "force_custom_plan" {
			t.Errorf("plan_cache_mode = %q, want force_custom_plan", mode)
		}
	}
}
