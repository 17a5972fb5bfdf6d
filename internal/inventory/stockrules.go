package inventory

import (
	"errors"
	"slices"
	"time"
)

// The rules every stock request meets inside its stock transaction,
// whatever machinery brought it there (the pipeline's batches, a request
// over several levels): a retry's key is replayed, or is a CONFLICT if
// reused for another input; a level written under a newer lease is
// STALE_LEASE; a request refused for good is remembered by its key, so a
// late duplicate is refused alike; a rejected request changes nothing.

// Outcome is the outcome of one stock request.
type Outcome struct {
	Result StockResult
	Err    error
}

// jobTxs is a job's levels in its transaction: their StockTx and the fences
// they are written under, in the job's order.
type jobTxs struct {
	txs    []*StockTx
	fences []Fence
	set    *StockSet
	// newIDs are the set's reservation IDs not yet taken.
	newIDs *[]int64
	byKey  map[LevelKey]int // for jobs of many levels
}

func newJobTxs(txs []*StockTx, fences []Fence, set *StockSet, newIDs *[]int64) jobTxs {
	jt := jobTxs{txs: txs, fences: fences, set: set, newIDs: newIDs}
	if len(txs) > 8 {
		jt.byKey = make(map[LevelKey]int, len(txs))
		for i, tx := range txs {
			jt.byKey[tx.Level.Key()] = i
		}
	}
	return jt
}

// index is the position of key's level in jt.
func (jt jobTxs) index(key LevelKey) int {
	if jt.byKey != nil {
		return jt.byKey[key]
	}
	for i, tx := range jt.txs {
		if tx.Level.Key() == key {
			return i
		}
	}
	panic("inventory: an op on a level outside its job")
}

// level returns the StockTx of key and the fence it is written under.
func (jt jobTxs) level(key LevelKey) (*StockTx, Fence) {
	i := jt.index(key)
	return jt.txs[i], jt.fences[i]
}

// replay returns the movement an earlier request made with key k at one
// of op's levels (a request over several may leave it at any).
func (jt jobTxs) replay(op StockOp, k string) (Movement, bool) {
	tx, _ := jt.level(op.Key)
	if m, ok := tx.Replays[k]; ok || op.Levels == nil {
		return m, ok
	}
	for _, key := range op.Levels.Keys {
		if tx, _ := jt.level(key); tx.Replays != nil {
			if m, ok := tx.Replays[k]; ok {
				return m, true
			}
		}
	}
	return Movement{}, false
}

// unusable is why one of op's levels cannot be changed (its product or
// location does not exist), or nil.
// A bundle's level is one: a bundle has no stock of its own.
func (jt jobTxs) unusable(op StockOp) error {
	if op.Levels == nil {
		tx, _ := jt.level(op.Key)
		return tx.unusable()
	}
	for _, k := range op.Levels.Keys {
		if tx, _ := jt.level(k); tx.unusable() != nil {
			return tx.unusable()
		}
	}
	return nil
}

func (tx *StockTx) unusable() error {
	if tx.Err == nil && tx.Product.Bundle {
		return bundleStockError(tx.Product)
	}
	return tx.Err
}

// stale returns the STALE_LEASE error if a newer lease wrote one of op's
// levels, or nil.
func (jt jobTxs) stale(op StockOp) error {
	if op.Levels == nil {
		return jt.staleAt(jt.index(op.Key))
	}
	for _, k := range op.Levels.Keys {
		if err := jt.staleAt(jt.index(k)); err != nil {
			return err
		}
	}
	return nil
}

// staleAt returns the STALE_LEASE error if a newer lease wrote the i-th
// level, or nil. A write made without a lease is never stale.
func (jt jobTxs) staleAt(i int) error {
	if f, tx := jt.fences[i], jt.txs[i]; f != (Fence{}) && f.Before(tx.Level.Fence) {
		return staleLease(f, tx.Level.Fence)
	}
	return nil
}

// Step is what the rules decided for one op.
type Step struct {
	res StockResult // Product and Level as this op left them
	err error
	// tx is the level the op was judged on, and movement the index in its
	// movements of the movement the op made, or -1.
	tx       *StockTx
	movement int
	// sameAs is the index of an earlier op of the list with the same
	// idempotency key whose movement this op replays, or -1.
	sameAs int
}

// Err is the op's error, if it failed.
func (st Step) Err() error { return st.err }

// ApplyOps applies ops to a job's levels in its transaction: txs, the
// fences they are written under, the transaction's set and the
// reservation IDs not yet taken. See applyOps.
func ApplyOps(txs []*StockTx, fences []Fence, set *StockSet, newIDs *[]int64, ops []StockOp, now time.Time, traceID string) []Step {
	return applyOps(newJobTxs(txs, fences, set, newIDs), ops, now, traceID)
}

// applyOps applies ops to jt in order, each under the rules. First it
// releases the expired reservation items of the levels it may write, so
// they stop counting before any op is judged. An op without a movement (a
// touch) only does that.
func applyOps(jt jobTxs, ops []StockOp, now time.Time, traceID string) []Step {
	for i, tx := range jt.txs {
		if tx.unusable() == nil && jt.staleAt(i) == nil {
			releaseExpired(jt.set, tx, jt.fences[i], now, traceID)
		}
	}
	return judge(jt, ops)
}

// judge applies ops in order, each on its levels, under the rules.
func judge(jt jobTxs, ops []StockOp) []Step {
	steps := make([]Step, len(ops))
	made := map[string]int{}    // idempotency key -> op that made a movement
	refused := map[string]int{} // idempotency key -> op finally refused
	for i, op := range ops {
		st := &steps[i]
		st.movement, st.sameAs = -1, -1
		tx, fence := jt.level(op.Key)
		st.tx = tx
		if op.Levels != nil && op.Levels.Parts != nil {
			// Its parts are judged each on its own.
			if st.err = applyParts(jt, op.Levels); st.err == nil {
				st.res.Product, st.res.Level = *tx.Product, tx.Level
			}
			continue
		}
		if err := jt.unusable(op); err != nil {
			st.err = err
			continue
		}
		k := op.IdempotencyKey
		if old, ok := jt.replay(op, k); ok && k != "" {
			if old.RequestHash != op.Hash {
				st.err = KeyReused()
				continue
			}
			st.res = StockResult{Product: *tx.Product, Level: tx.Level, Movement: old, Replayed: true}
			continue
		}
		if rj, ok := tx.Rejections[k]; ok && k != "" {
			st.err = KeyReused()
			if rj.RequestHash == op.Hash {
				st.err = &Error{Code: rj.Code, Message: rj.Message, Field: rj.Field}
			}
			continue
		}
		if j, ok := made[k]; ok && k != "" {
			if ops[j].Hash != op.Hash {
				st.err = KeyReused()
				continue
			}
			st.sameAs = j
			continue
		}
		if j, ok := refused[k]; ok && k != "" {
			st.err = KeyReused()
			if ops[j].Hash == op.Hash {
				st.err = steps[j].err
			}
			continue
		}
		if err := jt.stale(op); err != nil {
			st.err = err
			continue
		}
		var err error
		before := len(tx.Movements())
		switch {
		case op.Levels != nil:
			st.res.Replayed, err = applyLevelsOp(jt, op.Levels)
		case op.Movement != nil:
			var m Movement
			if m, err = op.Movement(tx); err == nil {
				m.Fence = fence
				err = tx.Apply(&m)
			}
		default:
			continue
		}
		if err != nil {
			st.err = err
			if e, ok := errors.AsType[*Error](err); ok && k != "" && final(e) {
				tx.Reject(Rejection{Key: k, RequestHash: op.Hash, Code: e.Code, Message: e.Message, Field: e.Field})
				refused[k] = i
			}
			continue
		}
		if len(tx.Movements()) > before {
			st.movement = before
		}
		st.res.Product, st.res.Level = *tx.Product, tx.Level
		if k != "" {
			made[k] = i
		}
	}
	return steps
}

// ErrPartsRejected fails a LevelsOp with atomic parts one of which failed.
var ErrPartsRejected = errors.New("inventory: a part of the request failed")

// applyParts judges the parts of op, each as a request of its own, and
// keeps their steps in op. With op.Atomic, if one fails, the levels and
// products are as they were, and the op fails.
func applyParts(jt jobTxs, op *LevelsOp) error {
	marks := make([]txMark, len(op.Keys))
	for i, k := range op.Keys {
		tx, _ := jt.level(k)
		marks[i] = tx.mark()
	}
	op.Steps = judge(jt, op.Parts)
	if op.Atomic && slices.ContainsFunc(op.Steps, func(st Step) bool { return st.err != nil }) {
		for i, k := range op.Keys {
			tx, _ := jt.level(k)
			tx.restore(marks[i])
		}
		return ErrPartsRejected
	}
	return nil
}

// applyLevelsOp applies a LevelsOp to its levels in jt, all or nothing: if
// it fails, the levels and products are as they were.
func applyLevelsOp(jt jobTxs, op *LevelsOp) (replayed bool, err error) {
	lt := LevelsTx{Set: jt.set, Levels: make([]*StockTx, len(op.Keys)), Fences: make([]Fence, len(op.Keys))}
	marks := make([]txMark, len(op.Keys))
	for i, k := range op.Keys {
		lt.Levels[i], lt.Fences[i] = jt.level(k)
		marks[i] = lt.Levels[i].mark()
	}
	if op.Create {
		lt.NewID = (*jt.newIDs)[0]
		*jt.newIDs = (*jt.newIDs)[1:]
	}
	replayed, err = op.Apply(lt)
	if err != nil {
		for i, tx := range lt.Levels {
			tx.restore(marks[i])
		}
	}
	return replayed, err
}

// final reports whether a refusal stands for good: a retry of the same
// request could not succeed (a retryable error changed nothing and is
// judged again; an internal one is not the client's to remember).
func final(e *Error) bool { return !e.Retryable() && e.Code != CodeInternal }

// releaseExpired releases the level's reservation items that expired, with
// an EXPIRE movement each (recorded under traceID, the trace of the
// transaction that released them), closing them in set, and makes the
// level's NextExpiry exact again.
func releaseExpired(set *StockSet, tx *StockTx, fence Fence, now time.Time, traceID string) {
	for _, it := range tx.Expired {
		m := Movement{Type: MovementExpire, ReservedDelta: -it.Quantity, ReservationID: it.ReservationID, BundleID: it.BundleID,
			Reason: "reservation expired", Actor: systemActor, Fence: fence, TraceID: traceID, CreatedAt: now}
		if err := tx.Apply(&m); err != nil {
			// Releasing held units cannot fail while the level's reserved
			// is the sum of its active items; if it does, the level is
			// left for reconcile rather than failing its requests.
			continue
		}
		set.Close(it.ReservationID, ReservationExpired, now, tx.Level.Key())
	}
	if !tx.Level.NextExpiry.IsZero() && !now.Before(tx.Level.NextExpiry) {
		tx.Level.NextExpiry = tx.NextActiveExpiry
	}
}

// systemActor is the actor of changes no client asked for, such as
// expiry.
const systemActor = "system"

// FinishSteps turns the steps of a committed transaction into results: the
// movements carry their sequences, and the levels their committed version.
func FinishSteps(steps []Step) []Outcome {
	results := make([]Outcome, len(steps))
	for i, st := range steps {
		switch {
		case st.err != nil:
			results[i].Err = st.err
		case st.movement >= 0:
			res := st.res
			res.Movement = st.tx.Movements()[st.movement]
			res.Level.Version, res.Level.Fence, res.Level.UpdatedAt = st.tx.Level.Version, st.tx.Level.Fence, st.tx.Level.UpdatedAt
			results[i].Result = res
		case st.sameAs >= 0:
			results[i] = results[st.sameAs]
			results[i].Result.Replayed = true
		default: // a replay, or a request that made no movement
			results[i].Result = st.res
		}
	}
	return results
}
