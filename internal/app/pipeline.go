package app

import (
	"cmp"
	"context"
	"errors"
	"slices"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/shopstack/inventory/internal/inventory"
	"github.com/shopstack/inventory/internal/lock"
	"github.com/shopstack/inventory/internal/pipeline"
)

// StrategyCombine runs stock requests through the write pipeline
// (internal/pipeline): queued per level, combined under one lease per
// batch, and group-committed with other levels' batches. This file is what
// the pipeline needs from the service: machinery only (leases, the
// transaction and its retries, lost leases); what each request meets in
// the transaction is stockrules.go's.

// levelJob is the requests for one level in a stock transaction (or one
// request over several levels: a LevelsOp's, its levels in its order), and
// then their outcomes.
type levelJob = pipeline.Job[inventory.LevelKey, inventory.StockOp, inventory.Outcome]

// jobLevel is one level of a job and the lease it is written under.
type jobLevel = pipeline.Held[inventory.LevelKey]

// stockPipeline is the service's pipeline, run by a pipeBackend.
type stockPipeline = pipeline.Pipeline[inventory.LevelKey, inventory.StockOp, inventory.Outcome]

// pipeBackend runs the pipeline's leases and transactions for a Service.
type pipeBackend struct{ s *Service }

var _ pipeline.Backend[inventory.LevelKey, inventory.StockOp, inventory.Outcome] = pipeBackend{}

// pipelineBusyRetry is the retry hint of a request turned away because too
// many are waiting.
const pipelineBusyRetry = 100 * time.Millisecond

func newPipeline(s *Service, maxBatch, maxWaiting int, idle time.Duration) *stockPipeline {
	return pipeline.New(pipeBackend{s}, pipeline.Config{
		MaxBatch: maxBatch, MaxWaiting: maxWaiting, MaxGroup: inventory.MaxBatchLimit, CommitTimeout: s.lockTimeout,
		Idle: idle,
	})
}

// submit queues op behind the other requests for its level and waits for
// its outcome.
func (s *Service) submit(ctx context.Context, op inventory.StockOp) inventory.Outcome {
	r, err := s.pipe.Submit(ctx, op.Key, op)
	return s.outcome(ctx, r, err)
}

// outcome is a pipeline request's outcome, its error the client's.
func (s *Service) outcome(ctx context.Context, r inventory.Outcome, err error) inventory.Outcome {
	switch {
	case errors.Is(err, pipeline.ErrFull):
		return inventory.Outcome{Err: &inventory.Error{Code: inventory.CodeUnavailable, RetryAfter: pipelineBusyRetry,
			Message: "too many stock requests are waiting; retry shortly"}}
	case errors.Is(err, pipeline.ErrCancelled):
		return inventory.Outcome{Err: &inventory.Error{Code: inventory.CodeUnavailable, Message: "request cancelled while waiting for its turn", Err: ctx.Err()}}
	case err != nil:
		return inventory.Outcome{Err: err} // the lock's, an *Error already
	}
	return r
}

// maxAcross is the most levels of a request that joins the queue of one
// of them (pipeline.SubmitAcross) rather than taking all their leases
// itself: a transfer's shipment, a small cart.
const maxAcross = 8

// runLevels runs a LevelsOp. On one level it is combined with the level's
// other requests. Over a few, it joins the queue of one of them (a busy
// one if there is one), whose worker takes the others' leases for its
// batch if they are free: a shipment from a hot level is combined with
// the level's sales instead of taking its lease away from them. Otherwise
// it takes their leases itself (lockLevels: all or none, holding none
// while it waits for one, so that it neither deadlocks with another such
// request nor keeps a level from the batches that would take it) and is
// committed, alone in its job, with the next group.
func (s *Service) runLevels(ctx context.Context, op inventory.StockOp) inventory.Outcome {
	keys := op.Levels.Keys
	if len(keys) == 1 {
		return s.submit(ctx, op)
	}
	if len(keys) <= maxAcross && op.Levels.Parts == nil {
		r, err := s.pipe.SubmitAcross(ctx, keys, op)
		if !errors.Is(err, pipeline.ErrAcross) {
			return s.outcome(ctx, r, err)
		}
	}
	// The pipeline may keep some of these leases for their levels' next
	// requests: it lets them go, and keeps none of them while this waits.
	wanted := s.pipe.Release(ctx, keys)
	leases, held, err := s.lockLevels(ctx, keys)
	wanted()
	if err != nil {
		return inventory.Outcome{Err: err}
	}
	defer s.unlockAll(ctx, leases)
	job := &levelJob{Levels: make([]jobLevel, len(keys)), Ops: []inventory.StockOp{op}, SC: trace.SpanContextFromContext(ctx)}
	for i, k := range keys {
		job.Levels[i] = jobLevel{Key: k, Lease: held[k]}
	}
	s.pipe.Run(job)
	return job.Results[0]
}

func (b pipeBackend) Lock(ctx context.Context, key inventory.LevelKey) (lock.Lease, error) {
	l, err := b.s.lock(ctx, key)
	if err != nil {
		return nil, err
	}
	trace.SpanFromContext(ctx).SetAttributes(attrFenceToken.Int64(l.Token()))
	return l, nil
}

// TryLock takes the leases of the free levels of keys in one call to the
// locker, each granted or refused on its own.
func (b pipeBackend) TryLock(ctx context.Context, keys []inventory.LevelKey) []lock.Grant {
	return b.s.tryLock(ctx, keys)
}

func (b pipeBackend) Unlock(ctx context.Context, key inventory.LevelKey, lease lock.Lease) {
	b.s.unlock(ctx, key, lease)
}

// StartBatch starts the span of a batch: a child of its first request's
// span, linked to the others', so each request's trace leads to the batch
// that served it. (A link to the parent too would make Jaeger drop the
// parent reference.)
func (b pipeBackend) StartBatch(ctx context.Context, key inventory.LevelKey, links []trace.SpanContext, held lock.Lease) (context.Context, trace.Span) {
	ctx, span := b.s.tracer.Start(ctx, "inventory.batch",
		trace.WithLinks(linksTo(links)...),
		trace.WithAttributes(attrProduct.Int64(key.ProductID), attrLocation.Int64(key.LocationID),
			attrRequests.Int(len(links)+1), attrLeaseReused.Bool(held != nil)))
	if held != nil {
		span.SetAttributes(attrFenceToken.Int64(held.Token()))
	}
	return ctx, span
}

func (b pipeBackend) Commit(ctx context.Context, jobs []*levelJob, skipLocked bool) {
	b.s.runJobs(ctx, jobs, skipLocked)
}

// Row is the product: a transaction locks a level's product row.
func (pipeBackend) Row(key inventory.LevelKey) int64 { return key.ProductID }

// Serial is the document op loads: two requests on one reservation or
// transfer never share a batch, so each sees the other's outcome.
func (pipeBackend) Serial(op inventory.StockOp) int64 { return op.Serial() }

// Unlocked: a request on an untracked product takes no lease.
func (pipeBackend) Unlocked(op inventory.StockOp) bool { return op.Unlocked }

// fence is the fence of a write under lease; the zero Fence for a write
// made without one.
func (s *Service) fence(lease lock.Lease) inventory.Fence {
	if lease == nil {
		return inventory.Fence{}
	}
	return inventory.Fence{Epoch: s.epoch, Token: lease.Token()}
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
		retry := errors.Is(err, inventory.ErrVersionConflict) || errors.Is(err, inventory.ErrDuplicateKey)
		if retry && attempt < maxTxAttempts {
			attempt++
			continue
		}
		if retry {
			err = &inventory.Error{Code: inventory.CodeUnavailable, Message: "stock level is busy; retry", Err: err}
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
	var works []inventory.LevelWork
	first := make([]int, len(jobs)) // index in works of each job's first level
	opts := inventory.StockOptions{Now: s.now(), SkipLocked: skipLocked}
	for i, j := range jobs {
		j.Busy = false
		first[i] = len(works)
		for _, l := range j.Levels {
			works = append(works, inventory.LevelWork{Key: l.Key, Fence: s.fence(l.Lease)})
		}
		jw := newJobWorks(works[first[i]:])
		for _, op := range j.Ops {
			jw.add(op, &opts)
		}
	}
	var set *inventory.StockSet
	steps := make([][]inventory.Step, len(jobs))
	now, traceID := opts.Now, s.traceID(ctx)
	err = s.writer.UpdateStocks(ctx, works, opts, inventory.StockCallbacks{
		Apply: func(st *inventory.StockSet) error {
			set = st
			ids := st.NewIDs
			for i, j := range jobs {
				steps[i] = nil
				txs := st.Levels[first[i] : first[i]+len(j.Levels)]
				if !errors.Is(busy(txs), inventory.ErrLevelBusy) && !j.LeaseLost() {
					fences := make([]inventory.Fence, len(j.Levels))
					for k, l := range j.Levels {
						fences[k] = s.fence(l.Lease)
					}
					steps[i] = inventory.ApplyOps(txs, fences, st, &ids, j.Ops, now, traceID)
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
		for k, l := range j.Levels {
			if tx := set.Levels[first[i]+k]; tx != nil {
				f := s.fence(l.Lease)
				s.stale.refused(l.Key, f, tx.Level.Fence)
				// A lease the database refused is not kept for the
				// level's next requests.
				j.Stale = j.Stale || (f != inventory.Fence{} && f.Before(tx.Level.Fence))
			}
		}
		if busy(set.Levels[first[i]:first[i]+len(j.Levels)]) != nil {
			j.Busy = true
			continue
		}
		requests += len(j.Ops)
		if steps[i] == nil { // lost its lease before the writes
			j.Results = fail(len(j.Ops), errLeaseLost(lock.ErrLeaseLost))
			continue
		}
		j.Results = inventory.FinishSteps(steps[i])
	}
	s.committed(requests, set.Levels)
	return nil, nil
}

// busy returns ErrLevelBusy if one of txs was not read because another
// transaction holds it (StockOptions.SkipLocked), or nil.
func busy(txs []*inventory.StockTx) error {
	for _, tx := range txs {
		if errors.Is(tx.Err, inventory.ErrLevelBusy) {
			return tx.Err
		}
	}
	return nil
}

// jobWorks is a job's LevelWork, by level.
type jobWorks struct {
	works []inventory.LevelWork
	byKey map[inventory.LevelKey]int // for jobs of many levels
}

func newJobWorks(works []inventory.LevelWork) jobWorks {
	jw := jobWorks{works: works}
	if len(works) > 8 {
		jw.byKey = make(map[inventory.LevelKey]int, len(works))
		for i, w := range works {
			jw.byKey[w.Key] = i
		}
	}
	return jw
}

func (jw jobWorks) work(key inventory.LevelKey) *inventory.LevelWork {
	if jw.byKey != nil {
		return &jw.works[jw.byKey[key]]
	}
	for i := range jw.works {
		if jw.works[i].Key == key {
			return &jw.works[i]
		}
	}
	panic("inventory: an op on a level outside its job")
}

// add asks the transaction for what op needs loaded: its keys' movements
// and refusals, its levels' audits, its reservation, a new reservation ID.
func (jw jobWorks) add(op inventory.StockOp, opts *inventory.StockOptions) {
	lo := op.Levels
	if op.IdempotencyKey != "" {
		// A request over several levels may leave its keyed movement at any
		// of them: each loads the key's movement.
		keys := []inventory.LevelKey{op.Key}
		if lo != nil && lo.Parts == nil {
			keys = lo.Keys
		}
		for _, k := range keys {
			w := jw.work(k)
			w.ReplayKeys = append(w.ReplayKeys, op.IdempotencyKey)
		}
	}
	if lo == nil {
		return
	}
	for _, part := range lo.Parts {
		jw.add(part, opts)
	}
	if lo.Audit {
		for _, k := range lo.Keys {
			jw.work(k).Audit = true
		}
	}
	if lo.Load != 0 {
		opts.Reservations = append(opts.Reservations, lo.Load)
	}
	if lo.Create {
		opts.NewReservations++
	}
	if lo.Transfer != 0 {
		opts.Transfers = append(opts.Transfers, lo.Transfer)
	}
}

// committed tells the read model of the transaction of txs, wakes the
// event feed if it wrote movements, and tells the observer. It runs before
// the transaction's requests are answered.
func (s *Service) committed(requests int, txs []*inventory.StockTx) {
	var ms []inventory.Movement
	written := txs[:0:0]
	for _, tx := range txs {
		if tx != nil && tx.Err == nil {
			ms = append(ms, tx.Movements()...)
			written = append(written, tx)
			s.untracked.saw(tx.Product)
		}
	}
	if s.reads != nil && len(written) > 0 {
		s.reads.Committed(written)
	}
	if len(ms) > 0 {
		s.feed.Notify(slices.MaxFunc(ms, func(a, b inventory.Movement) int { return cmp.Compare(a.Seq, b.Seq) }).Seq)
	}
	s.obs.Committed(requests, ms)
}

func fail(n int, err error) []inventory.Outcome {
	out := make([]inventory.Outcome, n)
	for i := range out {
		out[i].Err = err
	}
	return out
}
