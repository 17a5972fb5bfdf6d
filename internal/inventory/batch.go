package inventory

import (
	"cmp"
	"context"
	"errors"
	"slices"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/shopstack/inventory/internal/lock"
)

// opResult is the outcome of one stock request.
type opResult struct {
	res StockResult
	err error
}

// fence is the fence of a write under lease; the zero Fence for a write
// made without one.
func (s *Service) fence(lease lock.Lease) Fence {
	if lease == nil {
		return Fence{}
	}
	return Fence{Epoch: s.epoch, Token: lease.Token()}
}

// runJobs runs jobs, of distinct products, in one stock transaction and
// sets each job's results: each op in arrival order with its own outcome (a
// rejected op changes nothing and does not affect the others). It retries
// the transaction when it lost a race it can recover from. A job whose
// lease is lost before the commit is not written and fails with a
// retryable UNAVAILABLE; errors of the transaction as a whole are every
// op's outcome. With skipLocked, a job whose product row another
// transaction holds is not waited for: it is left busy, without results.
func (s *Service) runJobs(ctx context.Context, jobs []*levelJob, skipLocked bool) {
	parent := trace.SpanContextFromContext(ctx)
	scs := make([]trace.SpanContext, 0, len(jobs))
	levels, requests := 0, 0
	for _, j := range jobs {
		if !j.SC.Equal(parent) {
			scs = append(scs, j.SC)
		}
		levels += len(j.Levels)
		requests += len(j.Ops)
	}
	ctx, span := s.tracer.Start(ctx, "inventory.transaction", trace.WithLinks(linksTo(scs)...),
		trace.WithAttributes(attrLevels.Int(levels), attrRequests.Int(requests)))
	attempts, err := s.runJobsTx(ctx, jobs, skipLocked)
	span.SetAttributes(attrTxAttempts.Int(attempts))
	endSpan(span, err)
}

// runJobsTx is runJobs in its span. It returns the attempts it made and
// the error of the transaction as a whole, if any.
func (s *Service) runJobsTx(ctx context.Context, jobs []*levelJob, skipLocked bool) (int, error) {
	attempt := 1
	for len(jobs) > 0 {
		lostAtCommit, err := s.jobsTx(ctx, jobs, skipLocked)
		if len(lostAtCommit) > 0 {
			// Rolled back: those jobs fail, the others run again.
			for _, j := range lostAtCommit {
				j.Results = fail(len(j.Ops), errLeaseLost(lock.ErrLeaseLost))
			}
			jobs = slices.DeleteFunc(jobs, func(j *levelJob) bool { return slices.Contains(lostAtCommit, j) })
			continue
		}
		retry := errors.Is(err, ErrVersionConflict) || errors.Is(err, ErrDuplicateKey)
		if retry && attempt < maxTxAttempts {
			attempt++
			continue
		}
		if retry {
			err = &Error{Code: CodeUnavailable, Message: "stock level is busy; retry", Err: err}
		}
		if err != nil {
			for _, j := range jobs {
				j.Results = fail(len(j.Ops), err)
			}
		}
		return attempt, err
	}
	return attempt, nil
}

// errLostAtCommit rolls back a transaction in which a lease was lost.
var errLostAtCommit = errors.New("inventory: lease lost before commit")

// jobsTx is one attempt at the transaction of jobs. On success it sets
// every job's results. If a lease was lost during the writes, it rolls back
// and returns the jobs that lost theirs.
func (s *Service) jobsTx(ctx context.Context, jobs []*levelJob, skipLocked bool) (lostAtCommit []*levelJob, err error) {
	var works []LevelWork
	first := make([]int, len(jobs)) // index in works of each job's first level
	opts := StockOptions{Now: s.now(), SkipLocked: skipLocked}
	for i, j := range jobs {
		j.Busy = false
		first[i] = len(works)
		for _, l := range j.Levels {
			works = append(works, LevelWork{Key: l.Key, Fence: s.fence(l.Lease)})
		}
		for _, op := range j.Ops {
			if op.idempotencyKey != "" {
				works[first[i]].ReplayKeys = append(works[first[i]].ReplayKeys, op.idempotencyKey)
			}
			if lo := op.levels; lo != nil {
				if lo.load != 0 {
					opts.Reservations = append(opts.Reservations, lo.load)
				}
				if lo.create {
					opts.NewReservations++
				}
			}
		}
	}
	var set *StockSet
	steps := make([][]batchStep, len(jobs))
	now, traceID := opts.Now, s.traceID(ctx)
	err = s.store.UpdateStocks(ctx, works, opts, StockCallbacks{
		Apply: func(st *StockSet) error {
			set = st
			ids := st.NewIDs
			for i, j := range jobs {
				steps[i] = nil
				jt := jobTxs{txs: st.Levels[first[i] : first[i]+len(j.Levels)], set: st, newIDs: &ids}
				if jt.err() == nil && !j.LeaseLost() {
					for _, l := range j.Levels {
						jt.fences = append(jt.fences, s.fence(l.Lease))
					}
					steps[i] = applyOps(jt, j.Ops, now, traceID)
				}
			}
			return nil
		},
		BeforeCommit: func() error {
			for _, j := range jobs {
				if j.LeaseLost() {
					lostAtCommit = append(lostAtCommit, j)
				}
			}
			if len(lostAtCommit) > 0 {
				return errLostAtCommit
			}
			return nil
		},
	})
	if errors.Is(err, errLostAtCommit) {
		return lostAtCommit, nil
	}
	if err != nil {
		return nil, err
	}
	requests := 0
	for i, j := range jobs {
		jt := jobTxs{txs: set.Levels[first[i] : first[i]+len(j.Levels)]}
		if errors.Is(jt.err(), ErrLevelBusy) {
			j.Busy = true
			continue
		}
		requests += len(j.Ops)
		switch {
		case jt.err() != nil:
			j.Results = fail(len(j.Ops), jt.err())
		case steps[i] == nil: // lost its lease before the writes
			j.Results = fail(len(j.Ops), errLeaseLost(lock.ErrLeaseLost))
		default:
			j.Results = finishSteps(jt.txs[0], steps[i])
		}
	}
	s.committed(requests, set.Levels)
	return nil, nil
}

// jobTxs is a job's levels in its transaction: their StockTx and the fences
// they are written under, in the job's order.
type jobTxs struct {
	txs    []*StockTx
	fences []Fence
	// set and newIDs (the reservation IDs not yet taken) serve levelsOps.
	set    *StockSet
	newIDs *[]int64
}

// err is why the job's levels cannot be changed, if one cannot: busy
// first, since a busy level was not read.
func (jt jobTxs) err() error {
	var err error
	for _, tx := range jt.txs {
		if errors.Is(tx.Err, ErrLevelBusy) {
			return tx.Err
		}
		if err == nil {
			err = tx.Err
		}
	}
	return err
}

// stale returns the STALE_LEASE error if a newer lease wrote one of the
// levels, or nil. A write made without a lease is never stale.
func (jt jobTxs) stale() error {
	for i, tx := range jt.txs {
		if f := jt.fences[i]; f != (Fence{}) && f.Before(tx.Level.Fence) {
			return staleLease(f, tx.Level.Fence)
		}
	}
	return nil
}

// committed tells the read model of the transaction of txs, wakes the
// event feed if it wrote movements, and tells the observer. It runs before
// the transaction's requests are answered.
func (s *Service) committed(requests int, txs []*StockTx) {
	var ms []Movement
	written := txs[:0:0]
	for _, tx := range txs {
		if tx != nil && tx.Err == nil {
			ms = append(ms, tx.Movements()...)
			written = append(written, tx)
		}
	}
	if s.reads != nil && len(written) > 0 {
		s.reads.Committed(written)
	}
	if len(ms) > 0 {
		s.feed.notify(slices.MaxFunc(ms, func(a, b Movement) int { return cmp.Compare(a.Seq, b.Seq) }).Seq)
	}
	s.obs.Committed(requests, ms)
}

func closed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
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

// applyOps applies ops to jt in order, each under the rules a request alone
// would meet: a retry's key is replayed (or is a CONFLICT if reused for
// another input), a level written under a newer lease is STALE_LEASE, and
// a rejected request changes nothing. First it releases the levels' expired
// reservation items, so they stop counting before any op is judged. An op
// without a movement (a touch) only does that.
func applyOps(jt jobTxs, ops []stockOp, now time.Time, traceID string) []batchStep {
	steps := make([]batchStep, len(ops))
	made := map[string]int{}    // idempotency key -> op that made a movement
	refused := map[string]int{} // idempotency key -> op finally refused
	stale := jt.stale()
	if stale == nil {
		for i, tx := range jt.txs {
			releaseExpired(jt.set, tx, jt.fences[i], now, traceID)
		}
	}
	tx, fence := jt.txs[0], jt.fences[0]
	for i, op := range ops {
		st := &steps[i]
		st.movement, st.sameAs = -1, -1
		k := op.idempotencyKey
		if old, ok := tx.Replays[k]; ok && k != "" {
			if old.RequestHash != op.hash {
				st.err = errKeyReused()
				continue
			}
			st.res = StockResult{Product: *tx.Product, Level: tx.Level, Movement: old, Replayed: true}
			continue
		}
		if rj, ok := tx.Rejections[k]; ok && k != "" {
			st.err = errKeyReused()
			if rj.RequestHash == op.hash {
				st.err = &Error{Code: rj.Code, Message: rj.Message}
			}
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
		if j, ok := refused[k]; ok && k != "" {
			st.err = errKeyReused()
			if ops[j].hash == op.hash {
				st.err = steps[j].err
			}
			continue
		}
		if stale != nil {
			st.err = stale
			continue
		}
		var err error
		before := len(tx.Movements())
		switch {
		case op.levels != nil:
			st.res.Replayed, err = applyLevelsOp(jt, op.levels)
		case op.movement != nil:
			var m Movement
			if m, err = op.movement(tx); err == nil {
				m.Fence = fence
				err = tx.Apply(&m)
			}
		default:
			continue
		}
		if err != nil {
			st.err = err
			if e, ok := errors.AsType[*Error](err); ok && k != "" && final(e) {
				tx.Reject(Rejection{Key: k, RequestHash: op.hash, Code: e.Code, Message: e.Message})
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

// applyLevelsOp applies a levelsOp to all of jt's levels, all or nothing: if
// it fails, the levels and products are as they were.
func applyLevelsOp(jt jobTxs, op *levelsOp) (replayed bool, err error) {
	marks := make([]txMark, len(jt.txs))
	for i, tx := range jt.txs {
		marks[i] = tx.mark()
	}
	lt := levelsTx{set: jt.set, levels: jt.txs, fences: jt.fences}
	if op.create {
		lt.newID = (*jt.newIDs)[0]
		*jt.newIDs = (*jt.newIDs)[1:]
	}
	replayed, err = op.apply(lt)
	if err != nil {
		for i, tx := range jt.txs {
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
// transaction that released them), and makes the level's NextExpiry exact
// again.
func releaseExpired(set *StockSet, tx *StockTx, fence Fence, now time.Time, traceID string) {
	for _, it := range tx.Expired {
		m := Movement{Type: MovementExpire, ReservedDelta: -it.Quantity, ReservationID: it.ReservationID,
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
		default: // a replay, or a request that made no movement
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
