package inventory

import (
	"context"
	"errors"

	"github.com/shopstack/inventory/internal/lock"
)

// opResult is the outcome of one stock request.
type opResult struct {
	res StockResult
	err error
}

// applyBatch runs ops, all on one level, in arrival order under one lease
// and in one transaction, and returns each op's own outcome: a rejected op
// (insufficient stock, a reused idempotency key, a stale lease) changes
// nothing and does not affect the others. Errors of the lock or of the
// transaction as a whole are every op's outcome. lockCtx bounds the wait
// for the lock; the transaction runs on ctx.
func (s *Service) applyBatch(ctx, lockCtx context.Context, key LevelKey, ops []stockOp) []opResult {
	lease, err := s.lock(lockCtx, key)
	if err != nil {
		return fail(len(ops), err)
	}
	defer s.unlock(ctx, key, lease)
	if s.afterLock != nil {
		s.afterLock(ctx, key, lease)
	}
	txCtx, stop := leaseContext(ctx, lease)
	defer stop()
	return s.runBatch(ctx, txCtx, key, ops, lease.Done(), Fence{Epoch: s.epoch, Token: lease.Token()})
}

// runBatch runs the batch transaction, retrying it when it lost a race it
// can recover from. done is closed when the write may no longer be made
// (the lease was lost); nil if it may always be.
func (s *Service) runBatch(ctx, txCtx context.Context, key LevelKey, ops []stockOp, done <-chan struct{}, fence Fence) []opResult {
	for attempt := 1; ; attempt++ {
		results, wrote, err := s.batchTx(txCtx, key, ops, done, fence)
		if err != nil && ctx.Err() == nil && errors.Is(context.Cause(txCtx), lock.ErrLeaseLost) {
			err = errLeaseLost(err)
		}
		retry := errors.Is(err, ErrVersionConflict) || errors.Is(err, ErrDuplicateKey)
		if retry && attempt < maxTxAttempts {
			continue
		}
		if retry {
			err = &Error{Code: CodeUnavailable, Message: "stock level is busy; retry", Err: err}
		}
		if err != nil {
			return fail(len(ops), err)
		}
		if wrote {
			s.feed.notify()
		}
		return results
	}
}

// batchTx is one attempt at the batch transaction. wrote reports whether it
// committed movements.
func (s *Service) batchTx(ctx context.Context, key LevelKey, ops []stockOp, done <-chan struct{}, fence Fence) (results []opResult, wrote bool, err error) {
	keys := make([]string, 0, len(ops))
	for _, op := range ops {
		if op.idempotencyKey != "" {
			keys = append(keys, op.idempotencyKey)
		}
	}
	var state *StockTx
	var steps []batchStep
	err = s.store.UpdateStock(ctx, key, fence, keys, func(tx *StockTx) error {
		state = tx
		steps = applyOps(tx, ops, fence)
		if len(tx.Movements()) == 0 {
			return nil
		}
		// The last moment to give up before the store writes and commits;
		// a lease lost after this is caught by the fence of the next holder.
		select {
		case <-done:
			return errLeaseLost(lock.ErrLeaseLost)
		default:
			return nil
		}
	})
	if err != nil {
		return nil, false, err
	}
	return finishSteps(state, steps), len(state.Movements()) > 0, nil
}

// batchStep is what applyOps decided for one op.
type batchStep struct {
	res StockResult // Product and Level as this op left them
	err error
	// movement is the index in the transaction's movements of the movement
	// this op made, or -1.
	movement int
	// sameAs is the index of an earlier op of the batch with the same
	// idempotency key whose movement this op replays, or -1.
	sameAs int
}

// applyOps applies ops to tx in order, each under the rules a request alone
// would meet: a retry's key is replayed (or is a CONFLICT if reused for
// another input), a level written under a newer lease is STALE_LEASE, and
// a rejected movement changes nothing.
func applyOps(tx *StockTx, ops []stockOp, fence Fence) []batchStep {
	steps := make([]batchStep, len(ops))
	made := map[string]int{} // idempotency key -> op that made a movement
	stale := fence != (Fence{}) && fence.Before(tx.Level.Fence)
	for i, op := range ops {
		st := &steps[i]
		st.movement, st.sameAs = -1, -1
		k := op.idempotencyKey
		if old, ok := tx.Replays[k]; ok && k != "" {
			if old.RequestHash != op.hash {
				st.err = errKeyReused()
				continue
			}
			st.res = StockResult{Product: tx.Product, Level: tx.Level, Movement: old, Replayed: true}
			continue
		}
		if j, ok := made[k]; ok && k != "" {
			if ops[j].hash != op.hash {
				st.err = errKeyReused()
				continue
			}
			st.sameAs = j
			continue
		}
		if stale {
			st.err = staleLease(fence, tx.Level.Fence)
			continue
		}
		m, err := op.movement(tx)
		if err == nil {
			m.Fence = fence
			err = tx.Apply(&m)
		}
		if err != nil {
			st.err = err
			continue
		}
		st.movement = len(tx.Movements()) - 1
		st.res = StockResult{Product: tx.Product, Level: tx.Level}
		if k != "" {
			made[k] = i
		}
	}
	return steps
}

// finishSteps turns the steps of a committed transaction into results: the
// movements carry their sequences, and the levels their committed version.
func finishSteps(tx *StockTx, steps []batchStep) []opResult {
	results := make([]opResult, len(steps))
	for i, st := range steps {
		switch {
		case st.err != nil:
			results[i].err = st.err
		case st.movement >= 0:
			res := st.res
			res.Movement = tx.Movements()[st.movement]
			res.Level.Version, res.Level.Fence, res.Level.UpdatedAt = tx.Level.Version, tx.Level.Fence, tx.Level.UpdatedAt
			results[i].res = res
		case st.sameAs >= 0:
			results[i] = results[st.sameAs]
			results[i].res.Replayed = true
		default: // a replay of an earlier transaction
			results[i].res = st.res
		}
	}
	return results
}

func fail(n int, err error) []opResult {
	out := make([]opResult, n)
	for i := range out {
		out[i].err = err
	}
	return out
}
