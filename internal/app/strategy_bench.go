//go:build benchstrategies

package app

import (
	"cmp"
	"context"

	"github.com/shopstack/inventory/internal/inventory"
	"go.opentelemetry.io/otel/trace"
)

// The strategies the project is measured against, built only with the
// benchstrategies tag (see Strategy).
const (
	// StrategyLockPerRequest is the seed's design: each request takes the
	// lock, runs its transaction and releases the lock.
	StrategyLockPerRequest Strategy = "lock-per-request"
	// StrategyRowLock takes no distributed lock: each request's transaction
	// relies on the database row lock alone (SELECT ... FOR UPDATE on
	// PostgreSQL). Its writes are not fenced.
	StrategyRowLock Strategy = "rowlock"
	// StrategyUnsafe decides each request on a level read before its
	// transaction, without a lock, and writes back values computed from
	// that read: concurrent changes are lost, so more units are sold than
	// the stock loses. It shows the oversell.
	StrategyUnsafe Strategy = "unsafe"
)

var benchStrategies = map[Strategy]benchStrategy{
	StrategyLockPerRequest: func(s *Service, ctx context.Context, op inventory.StockOp) inventory.Outcome {
		return s.lockAndRun(ctx, op.Key, []inventory.StockOp{op})[0]
	},
	StrategyRowLock: (*Service).runUnlocked,
	StrategyUnsafe:  (*Service).runUnsafe,
}

// lockAndRun runs ops, all on one level, under a lease of their own and in
// a transaction of their own.
func (s *Service) lockAndRun(ctx context.Context, key inventory.LevelKey, ops []inventory.StockOp) []inventory.Outcome {
	lease, err := s.lock(ctx, key)
	if err != nil {
		return fail(len(ops), err)
	}
	defer s.unlock(ctx, key, lease)
	job := &levelJob{Levels: []jobLevel{{Key: key, Lease: lease}}, Ops: ops, SC: trace.SpanContextFromContext(ctx)}
	s.runJobs(ctx, []*levelJob{job}, false)
	return job.Results
}

// runUnlocked runs op in a transaction of its own, without a lease.
func (s *Service) runUnlocked(ctx context.Context, op inventory.StockOp) inventory.Outcome {
	job := &levelJob{Levels: []jobLevel{{Key: op.Key}}, Ops: []inventory.StockOp{op}}
	s.runJobs(ctx, []*levelJob{job}, false)
	return job.Results[0]
}

// runUnsafe is StrategyUnsafe: the level and product read before the
// transaction replace what the transaction read, as in a read-then-write
// without a lock.
func (s *Service) runUnsafe(ctx context.Context, op inventory.StockOp) inventory.Outcome {
	stocks, err := s.catalog.ProductStocks(ctx, []int64{op.Key.ProductID})
	if err != nil || len(stocks) == 0 {
		return inventory.Outcome{Err: cmp.Or(err, error(inventory.Errorf(inventory.CodeNotFound, "product %d not found", op.Key.ProductID)))}
	}
	p := stocks[0].Product
	var lvl inventory.Level
	for _, l := range stocks[0].Levels {
		if l.LocationID == op.Key.LocationID {
			lvl = l
		}
	}
	stale := op
	stale.Movement = func(tx *inventory.StockTx) (inventory.Movement, error) {
		tx.Product.Stock, tx.Product.Reserved, tx.Product.States = p.Stock, p.Reserved, p.States
		tx.Level.Stock, tx.Level.Reserved, tx.Level.States = lvl.Stock, lvl.Reserved, lvl.States
		return op.Movement(tx)
	}
	return s.runUnlocked(ctx, stale)
}
