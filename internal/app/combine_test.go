package app_test

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/shopstack/inventory/internal/app"
	"github.com/shopstack/inventory/internal/gormstore"
	"github.com/shopstack/inventory/internal/inventory"
	"github.com/shopstack/inventory/internal/lock/memlock"
	"github.com/shopstack/inventory/internal/testenv"
	"github.com/shopstack/inventory/internal/testenv/gormstoretest"
	"github.com/shopstack/inventory/internal/testenv/inventorytest"
)

// TestCombiningKeepsPerRequestResults sends 300 concurrent stock-outs of
// 1 to 3 units against 200 in stock. Requests are combined (several ledger
// rows share one lease), yet each gets its own movement, and in sequence
// order every movement starts where the previous one left the stock.
func TestCombiningKeepsPerRequestResults(t *testing.T) {
	gormstoretest.ForEachDriver(t, func(t *testing.T, driver string) {
		e := mustService(t, driver)
		p := mustProduct(t, e.svc, "COMBINE", 200, 0)
		const clients = 300
		results := make([]inventory.StockResult, clients)
		errs := make([]error, clients)
		var wg sync.WaitGroup
		for i := range clients {
			wg.Go(func() {
				results[i], errs[i] = e.svc.StockOut(context.Background(), inventory.StockChange{
					ProductID: p.ID, Quantity: int64(1 + i%3), IdempotencyKey: fmt.Sprintf("order-%d", i)})
			})
		}
		wg.Wait()
		var sold int64
		var ok []inventory.Movement
		for i, err := range errs {
			if err != nil {
				wantCode(t, err, inventory.CodeInsufficientStock)
				continue
			}
			m := results[i].Movement
			if m.Delta != -int64(1+i%3) || m.IdempotencyKey != fmt.Sprintf("order-%d", i) || results[i].Replayed {
				t.Fatalf("request %d got movement %+v", i, m)
			}
			if results[i].Level.Stock != m.QuantityAfter || results[i].Product.Stock != m.QuantityAfter {
				t.Fatalf("request %d: level %d / product %d after, movement says %d", i, results[i].Level.Stock, results[i].Product.Stock, m.QuantityAfter)
			}
			sold -= m.Delta
			ok = append(ok, m)
		}
		slices.SortFunc(ok, func(a, b inventory.Movement) int { return int(a.Seq - b.Seq) })
		stock, tokens := int64(200), map[int64]bool{}
		for _, m := range ok {
			stock += m.Delta
			if m.QuantityAfter != stock {
				t.Fatalf("movement %d leaves %d, want %d", m.Seq, m.QuantityAfter, stock)
			}
			tokens[m.Fence.Token] = true
		}
		got, _ := e.svc.Product(context.Background(), p.ID)
		t.Logf("%s: %d sales (%d units) in %d lock acquisitions, stock %d", driver, len(ok), sold, len(tokens), got.Stock)
		if got.Stock != 200-sold || sold > 200 || got.Stock > 2 {
			t.Fatalf("stock %d after selling %d of 200", got.Stock, sold)
		}
		if len(tokens) >= len(ok) {
			t.Errorf("%d sales took %d lock acquisitions: requests were not combined", len(ok), len(tokens))
		}
		checkLedgerExplainsStock(t, e.svc, p.ID)
	})
}

// blockFirstBatch makes the next stock transaction of w's service wait,
// its batch holding its level's lock, until release is called, so that
// requests pile up behind it. entered is closed once that batch is
// waiting: requests sent after it are not in it.
func blockFirstBatch(t *testing.T, w *hookedWriter) (entered <-chan struct{}, release func()) {
	gate, in := make(chan struct{}), make(chan struct{})
	var once sync.Once
	w.set(func(context.Context, []inventory.LevelWork) {
		once.Do(func() {
			close(in)
			<-gate
		})
	})
	var closeOnce sync.Once
	release = func() { closeOnce.Do(func() { close(gate) }) }
	t.Cleanup(release)
	return in, release
}

// waitWaiting polls until n stock requests are queued or in a batch.
func waitWaiting(t *testing.T, svc *app.Service, n int64) {
	t.Helper()
	if !testenv.Poll(testenv.Wait, func() bool { return app.Waiting(svc) == n }) {
		t.Fatalf("%d requests waiting, want %d", app.Waiting(svc), n)
	}
}

// TestBatchAppliesInArrivalOrder queues mixed requests behind a blocked
// batch: they are applied in arrival order in one transaction, and a
// rejected request in the middle neither changes anything nor stops the
// others.
func TestBatchAppliesInArrivalOrder(t *testing.T) {
	gormstoretest.ForEachDriver(t, func(t *testing.T, driver string) {
		e := mustService(t, driver)
		p := mustProduct(t, e.svc, "ORDER", 10, 0)
		entered, release := blockFirstBatch(t, e.hook)
		ctx := context.Background()
		first := make(chan error, 1)
		go func() {
			_, err := e.svc.StockIn(ctx, inventory.StockChange{ProductID: p.ID, Quantity: 1})
			first <- err
		}()
		<-entered

		ten := int64(10)
		steps := []func() (inventory.StockResult, error){
			func() (inventory.StockResult, error) { // 11 -> 6
				return e.svc.StockOut(ctx, inventory.StockChange{ProductID: p.ID, Quantity: 5, IdempotencyKey: "a"})
			},
			func() (inventory.StockResult, error) { // rejected
				return e.svc.StockOut(ctx, inventory.StockChange{ProductID: p.ID, Quantity: 100})
			},
			func() (inventory.StockResult, error) { // 6 -> 9
				return e.svc.StockIn(ctx, inventory.StockChange{ProductID: p.ID, Quantity: 3})
			},
			func() (inventory.StockResult, error) { // rejected: stock is 9, not 10
				return e.svc.AdjustStock(ctx, inventory.StockAdjustment{ProductID: p.ID, Quantity: 50, ChangeFromQuantity: &ten})
			},
			func() (inventory.StockResult, error) { // same key and input as the first: a replay
				return e.svc.StockOut(ctx, inventory.StockChange{ProductID: p.ID, Quantity: 5, IdempotencyKey: "a"})
			},
			func() (inventory.StockResult, error) { // same key, other input
				return e.svc.StockOut(ctx, inventory.StockChange{ProductID: p.ID, Quantity: 4, IdempotencyKey: "a"})
			},
			func() (inventory.StockResult, error) { // 9 -> 2
				return e.svc.AdjustStock(ctx, inventory.StockAdjustment{ProductID: p.ID, Quantity: 2})
			},
		}
		results := make([]inventory.StockResult, len(steps))
		errs := make([]error, len(steps))
		var wg sync.WaitGroup
		for i, step := range steps {
			wg.Go(func() { results[i], errs[i] = step() })
			waitWaiting(t, e.svc, int64(i+2)) // arrival order is submission order
		}
		release()
		wg.Wait()
		mustNoErr(t, <-first)

		wantAfter := map[int]int64{0: 6, 2: 9, 6: 2}
		for i, after := range wantAfter {
			mustNoErr(t, errs[i])
			if results[i].Movement.QuantityAfter != after || results[i].Replayed {
				t.Errorf("step %d: %+v, want stock %d after", i, results[i].Movement, after)
			}
		}
		wantCode(t, errs[1], inventory.CodeInsufficientStock)
		wantCode(t, errs[3], inventory.CodeConflict)
		wantCode(t, errs[5], inventory.CodeConflict)
		mustNoErr(t, errs[4])
		if !results[4].Replayed || results[4].Movement.Seq != results[0].Movement.Seq {
			t.Errorf("step 4: %+v, want a replay of step 0's movement", results[4])
		}
		s0, s2, s6 := results[0].Movement, results[2].Movement, results[6].Movement
		if s0.Seq >= s2.Seq || s2.Seq >= s6.Seq || s0.Fence != s6.Fence {
			t.Errorf("sequences %d, %d, %d under fences %+v, %+v: want increasing, one lease", s0.Seq, s2.Seq, s6.Seq, s0.Fence, s6.Fence)
		}
		checkLedgerExplainsStock(t, e.svc, p.ID)
	})
}

// TestCancelledRequestLeavesTheQueue cancels queued requests: they return
// at once and change nothing; the others are applied.
func TestCancelledRequestLeavesTheQueue(t *testing.T) {
	gormstoretest.ForEachDriver(t, func(t *testing.T, driver string) {
		e := mustService(t, driver)
		p := mustProduct(t, e.svc, "CANCEL", 100, 0)
		entered, release := blockFirstBatch(t, e.hook)
		ctx := context.Background()
		go func() { _, _ = e.svc.StockOut(ctx, inventory.StockChange{ProductID: p.ID, Quantity: 1}) }()
		<-entered

		const n = 10
		errs := make([]chan error, n)
		cancels := make([]context.CancelFunc, n)
		for i := range n {
			rctx, cancel := context.WithCancel(ctx)
			cancels[i], errs[i] = cancel, make(chan error, 1)
			go func() {
				_, err := e.svc.StockOut(rctx, inventory.StockChange{ProductID: p.ID, Quantity: 1, IdempotencyKey: fmt.Sprintf("c-%d", i)})
				errs[i] <- err
			}()
		}
		waitWaiting(t, e.svc, n+1)
		for i := 0; i < n; i += 2 {
			cancels[i]()
		}
		for i := 0; i < n; i += 2 { // cancelled requests return while the batch still blocks
			wantCode(t, <-errs[i], inventory.CodeUnavailable)
		}
		release()
		for i := 1; i < n; i += 2 {
			mustNoErr(t, <-errs[i])
		}
		for _, m := range ledger(t, e.svc, p.ID) {
			var i int
			if _, err := fmt.Sscanf(m.IdempotencyKey, "c-%d", &i); err == nil && i%2 == 0 {
				t.Errorf("cancelled request %d made movement %d", i, m.Seq)
			}
		}
		got, _ := e.svc.Product(ctx, p.ID)
		if got.Stock != 100-1-n/2 {
			t.Errorf("stock %d, want %d", got.Stock, 100-1-n/2)
		}
		for _, c := range cancels {
			c()
		}
	})
}

// TestQueueIsBounded fills the replica's queue: requests beyond the bound
// are turned away at once with a retryable UNAVAILABLE and a retry hint.
func TestQueueIsBounded(t *testing.T) {
	st := gormstoretest.Open(t, "sqlite")
	hook := &hookedWriter{Writer: st}
	svc := inventorytest.Start(t, st, app.Config{Writer: hook, MaxWaiting: 5})
	p := mustProduct(t, svc, "BOUND", 100, 0)
	_, release := blockFirstBatch(t, hook)
	ctx := context.Background()
	var wg sync.WaitGroup
	for range 5 {
		wg.Go(func() { mustNoErr(t, stockOutErr(svc, p.ID)) })
	}
	waitWaiting(t, svc, 5)
	err := stockOutErr(svc, p.ID)
	wantCode(t, err, inventory.CodeUnavailable)
	if e := err.(*inventory.Error); !e.Retryable() || e.RetryAfter <= 0 {
		t.Fatalf("queue full: %+v, want retryable with a retry hint", e)
	}
	release()
	wg.Wait()
	mustNoErr(t, stockOutErr(svc, p.ID))
	if got, _ := svc.Product(ctx, p.ID); got.Stock != 94 {
		t.Fatalf("stock %d, want 94", got.Stock)
	}
}

func stockOutErr(svc *app.Service, productID int64) error {
	_, err := svc.StockOut(context.Background(), inventory.StockChange{ProductID: productID, Quantity: 1})
	return err
}

// TestStalledDatabaseFailsTheGroup stalls the database under a combined
// transaction (another session holds the product's row lock): its requests
// get a retryable UNAVAILABLE after about the lock timeout instead of
// waiting for the database. (On SQLite a lock held by another process is
// bounded by SQLite's busy timeout instead: its driver does not stop
// waiting when the context ends.)
func TestStalledDatabaseFailsTheGroup(t *testing.T) {
	dsn := gormstoretest.DSN(t, gormstore.Postgres)
	st := mustOpen(t, gormstore.Postgres, dsn)
	svc := inventorytest.Start(t, st, app.Config{LockTimeout: 300 * time.Millisecond})
	p := mustProduct(t, svc, "STALL", 10, 0)

	tx, _, _ := holdProductRow(t, dsn, p.ID)

	start := time.Now()
	err := stockOutErr(svc, p.ID)
	wantCode(t, err, inventory.CodeUnavailable)
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("a stalled database held the request %v (lock timeout 300ms)", took)
	}
	mustNoErr(t, tx.Rollback())
	mustNoErr(t, stockOutErr(svc, p.ID))
	if got, _ := svc.Product(context.Background(), p.ID); got.Stock != 9 {
		t.Fatalf("stock %d, want 9: the timed-out request must change nothing", got.Stock)
	}
}

// holdProductRow locks a product's row from a connection of its own, as a
// slow transaction elsewhere would, until tx ends (at the latest when the
// test does). It returns the transaction, its database, and its backend's
// process ID.
func holdProductRow(t *testing.T, dsn string, productID int64) (tx *sql.Tx, db *sql.DB, pid int) {
	t.Helper()
	db, err := sql.Open("pgx", dsn)
	mustNoErr(t, err)
	t.Cleanup(func() { db.Close() })
	tx, err = db.Begin()
	mustNoErr(t, err)
	t.Cleanup(func() { _ = tx.Rollback() })
	mustNoErr(t, tx.QueryRow("SELECT pg_backend_pid() FROM products WHERE id = $1 FOR UPDATE", productID).Scan(&pid))
	return tx, db, pid
}

// TestHeldRowStallsNoOtherLevel holds a product's row from another
// connection, as a slow transaction elsewhere would: a stock-out of that
// product waits for it, and a stock-out of another product, sent after,
// is committed meanwhile. (On SQLite every writer takes the database's
// one write lock, so there is nothing to tell apart.)
func TestHeldRowStallsNoOtherLevel(t *testing.T) {
	dsn := gormstoretest.DSN(t, gormstore.Postgres)
	st := mustOpen(t, gormstore.Postgres, dsn)
	// A lock timeout longer than the test: the held request must not give
	// up before the row is let go.
	svc := inventorytest.Start(t, st, app.Config{LockTimeout: time.Minute})
	held, free := mustProduct(t, svc, "HELD", 10, 0), mustProduct(t, svc, "FREE", 10, 0)

	tx, other, holder := holdProductRow(t, dsn, held.ID)

	heldDone := make(chan error, 1)
	go func() { heldDone <- stockOutErr(svc, held.ID) }()
	// Wait until a transaction of the service waits for the row.
	for waiting := 0; waiting == 0; {
		mustNoErr(t, other.QueryRow("SELECT count(*) FROM pg_stat_activity WHERE $1 = ANY(pg_blocking_pids(pid))", holder).Scan(&waiting))
		select {
		case err := <-heldDone:
			t.Fatalf("the stock-out of the held product returned while its row was held: %v", err)
		case <-time.After(5 * time.Millisecond):
		}
	}

	mustNoErr(t, stockOutErr(svc, free.ID))
	select {
	case err := <-heldDone:
		t.Fatalf("the held product's stock-out returned (%v) before its row was let go", err)
	default:
	}
	mustNoErr(t, tx.Rollback())
	mustNoErr(t, <-heldDone)
	for _, p := range []inventory.Product{held, free} {
		if got, _ := svc.Product(context.Background(), p.ID); got.Stock != 9 {
			t.Errorf("%s: stock %d, want 9", p.SKU, got.Stock)
		}
		checkLedgerExplainsStock(t, svc, p.ID)
	}
}

// TestHeldLockStallsNoOtherLevel holds a level's lock, as another replica
// would: a stock-out of that level waits for it, and one of another
// level, sent after, is committed meanwhile.
func TestHeldLockStallsNoOtherLevel(t *testing.T) {
	gormstoretest.ForEachDriver(t, func(t *testing.T, driver string) {
		locker := memlock.New(0)
		st := gormstoretest.Open(t, driver)
		svc := inventorytest.Start(t, st, app.Config{Locker: locker, LockTimeout: time.Minute})
		held, free := mustProduct(t, svc, "LOCKED", 10, 0), mustProduct(t, svc, "UNLOCKED", 10, 0)

		key := inventory.LevelKey{ProductID: held.ID, LocationID: inventory.DefaultLocationID}
		lease, err := locker.Lock(context.Background(), key.LockName())
		mustNoErr(t, err)
		heldDone := make(chan error, 1)
		go func() { heldDone <- stockOutErr(svc, held.ID) }()
		waitWaiting(t, svc, 1)

		mustNoErr(t, stockOutErr(svc, free.ID))
		select {
		case err := <-heldDone:
			t.Fatalf("the held level's stock-out returned (%v) before its lock was let go", err)
		default:
		}
		mustNoErr(t, lease.Unlock(context.Background()))
		mustNoErr(t, <-heldDone)
		for _, p := range []inventory.Product{held, free} {
			if got, _ := svc.Product(context.Background(), p.ID); got.Stock != 9 {
				t.Errorf("%s: stock %d, want 9", p.SKU, got.Stock)
			}
		}
	})
}
