package inventory

import (
	"cmp"
	"context"
)

// Strategy is how stock mutations are applied. Only StrategyCombine is for
// production; the others exist to reproduce, on the same server and under
// the same load, the designs the project is measured against.
type Strategy string

const (
	// StrategyCombine queues concurrent requests per level; one worker per
	// level applies up to a batch of them in arrival order under one lease
	// and in one transaction, each with its own result and ledger row.
	StrategyCombine Strategy = "combine"
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
	// the stock loses. Benchmark-only: it shows the oversell.
	StrategyUnsafe Strategy = "unsafe"
)

// Valid reports whether st names a strategy.
func (st Strategy) Valid() bool {
	switch st {
	case StrategyCombine, StrategyLockPerRequest, StrategyRowLock, StrategyUnsafe:
		return true
	}
	return false
}

// stockSpanNames names the span of a stock request by its movement type,
// after the Service method that made it.
var stockSpanNames = map[MovementType]string{
	MovementIn:     "inventory.StockIn",
	MovementOut:    "inventory.StockOut",
	MovementAdjust: "inventory.AdjustStock",
	MovementExpire: "inventory.ReleaseExpired", // the reaper's touch of a level
}

// applyStock runs one stock request with the service's strategy.
func (s *Service) applyStock(ctx context.Context, op stockOp) (StockResult, error) {
	ctx, span := s.startSpan(ctx, stockSpanNames[op.typ], attrProduct.Int64(op.key.ProductID), attrLocation.Int64(op.key.LocationID))
	var r opResult
	defer func() {
		if span.IsRecording() && r.err == nil {
			span.SetAttributes(attrReplayed.Bool(r.res.Replayed), attrFenceToken.Int64(r.res.Movement.Fence.Token))
		}
		endSpan(span, r.err)
	}()
	switch s.strategy {
	case StrategyLockPerRequest:
		r = s.lockAndRun(ctx, op.key, []stockOp{op})[0]
	case StrategyRowLock:
		r = s.runUnlocked(ctx, op)
	case StrategyUnsafe:
		r = s.runUnsafe(ctx, op)
	default:
		r = s.combiner.submit(ctx, op)
	}
	return r.res, r.err
}

// runUnlocked runs op in a transaction of its own, without a lease.
func (s *Service) runUnlocked(ctx context.Context, op stockOp) opResult {
	job := &levelJob{key: op.key, ops: []stockOp{op}}
	s.runJobs(ctx, []*levelJob{job})
	return job.results[0]
}

// runUnsafe is StrategyUnsafe: the level and product read before the
// transaction replace what the transaction read, as in a read-then-write
// without a lock.
func (s *Service) runUnsafe(ctx context.Context, op stockOp) opResult {
	stocks, err := s.store.ProductStocks(ctx, []int64{op.key.ProductID})
	if err != nil || len(stocks) == 0 {
		return opResult{err: cmp.Or(err, error(Errorf(CodeNotFound, "product %d not found", op.key.ProductID)))}
	}
	p := stocks[0].Product
	var lvl Level
	for _, l := range stocks[0].Levels {
		if l.LocationID == op.key.LocationID {
			lvl = l
		}
	}
	stale := op
	stale.movement = func(tx *StockTx) (Movement, error) {
		tx.Product.Stock, tx.Product.Reserved = p.Stock, p.Reserved
		tx.Level.Stock, tx.Level.Reserved = lvl.Stock, lvl.Reserved
		return op.movement(tx)
	}
	return s.runUnlocked(ctx, stale)
}
