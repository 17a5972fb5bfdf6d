package app

import (
	"context"
	"maps"
	"slices"

	"github.com/shopstack/inventory/internal/inventory"
)

// Strategy is how stock mutations are applied. Production binaries know
// one, StrategyCombine. The designs the project is measured against
// (lock-per-request, rowlock and unsafe, which oversells) are built only
// with the benchstrategies build tag (strategy_bench.go), which invbench's
// comparison uses: no configuration of a shipped binary can oversell.
type Strategy string

// StrategyCombine queues concurrent requests per level; one worker per
// level applies up to a batch of them in arrival order under one lease and
// in one transaction, each with its own result and ledger row.
const StrategyCombine Strategy = "combine"

// benchStrategy runs one stock request another way than combining.
type benchStrategy func(s *Service, ctx context.Context, op inventory.StockOp) inventory.Outcome

// Valid reports whether st names a strategy this binary knows.
func (st Strategy) Valid() bool { return st == StrategyCombine || benchStrategies[st] != nil }

// Strategies lists the strategies this binary knows.
func Strategies() []Strategy {
	out := []Strategy{StrategyCombine}
	for _, st := range slices.Sorted(maps.Keys(benchStrategies)) {
		out = append(out, st)
	}
	return out
}

// stockSpanNames names the span of a stock request by its movement type,
// after the Service method that made it.
var stockSpanNames = map[inventory.MovementType]string{
	inventory.MovementIn:     "inventory.StockIn",
	inventory.MovementOut:    "inventory.StockOut",
	inventory.MovementAdjust: "inventory.AdjustStock",
	inventory.MovementMove:   "inventory.MoveStock",
	inventory.MovementExpect: "inventory.ExpectStock",
	inventory.MovementExpire: "inventory.ReleaseExpired", // the reaper's touch of a level
}

// applyStock runs one stock request with the service's strategy.
func (s *Service) applyStock(ctx context.Context, op inventory.StockOp) (inventory.StockResult, error) {
	ctx, span := s.startSpan(ctx, stockSpanNames[op.Type], attrProduct.Int64(op.Key.ProductID), attrLocation.Int64(op.Key.LocationID))
	var r inventory.Outcome
	defer func() {
		if span.IsRecording() && r.Err == nil {
			span.SetAttributes(attrReplayed.Bool(r.Result.Replayed), attrFenceToken.Int64(r.Result.Movement.Fence.Token))
		}
		endSpan(span, r.Err)
	}()
	op.Unlocked = s.untracked.has(op.Key.ProductID)
	if run := benchStrategies[s.strategy]; run != nil {
		r = run(s, ctx, op)
	} else {
		r = s.submit(ctx, op)
	}
	return r.Result, r.Err
}
