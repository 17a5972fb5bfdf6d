package inventory

import (
	"context"
	"errors"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/shopstack/inventory/internal/lock"
	"github.com/shopstack/inventory/internal/pipeline"
)

// StrategyCombine runs stock requests through the write pipeline
// (internal/pipeline): queued per level, combined under one lease per
// batch, and group-committed with other levels' batches. This file is what
// the pipeline needs from the service.

// levelJob is the requests for one level in a stock transaction (or one
// request over several levels: a levelsOp's, its levels in its order), and
// then their outcomes.
type levelJob = pipeline.Job[LevelKey, stockOp, opResult]

// jobLevel is one level of a job and the lease it is written under.
type jobLevel = pipeline.Held[LevelKey]

// stockPipeline is the service's pipeline, run by a pipeBackend.
type stockPipeline = pipeline.Pipeline[LevelKey, stockOp, opResult]

// pipeBackend runs the pipeline's leases and transactions for a Service.
type pipeBackend struct{ s *Service }

var _ pipeline.Backend[LevelKey, stockOp, opResult] = pipeBackend{}

// pipelineBusyRetry is the retry hint of a request turned away because too
// many are waiting.
const pipelineBusyRetry = 100 * time.Millisecond

func newPipeline(s *Service, maxBatch, maxWaiting int) *stockPipeline {
	return pipeline.New(pipeBackend{s}, pipeline.Config{
		MaxBatch: maxBatch, MaxWaiting: maxWaiting, MaxGroup: MaxBatchLimit, CommitTimeout: s.lockTimeout,
	})
}

// submit queues op behind the other requests for its level and waits for
// its outcome.
func (s *Service) submit(ctx context.Context, op stockOp) opResult {
	r, err := s.pipe.Submit(ctx, op.key, op)
	switch {
	case errors.Is(err, pipeline.ErrFull):
		return opResult{err: &Error{Code: CodeUnavailable, RetryAfter: pipelineBusyRetry,
			Message: "too many stock requests are waiting; retry shortly"}}
	case errors.Is(err, pipeline.ErrCancelled):
		return opResult{err: &Error{Code: CodeUnavailable, Message: "request cancelled while waiting for its turn", Err: ctx.Err()}}
	case err != nil:
		return opResult{err: err} // the lock's, an *Error already
	}
	return r
}

// runLevels runs a levelsOp. On one level it is combined with the level's
// other requests; over several it takes their leases itself (in the
// order lockLevels takes them in, so that no two such requests deadlock)
// and is committed, alone in its job, with the next group.
func (s *Service) runLevels(ctx context.Context, op stockOp) opResult {
	keys := op.levels.keys
	if len(keys) == 1 {
		return s.submit(ctx, op)
	}
	leases, held, err := s.lockLevels(ctx, keys)
	if err != nil {
		return opResult{err: err}
	}
	defer s.unlockAll(ctx, leases)
	job := &levelJob{Levels: make([]jobLevel, len(keys)), Ops: []stockOp{op}, SC: trace.SpanContextFromContext(ctx)}
	for i, k := range keys {
		job.Levels[i] = jobLevel{Key: k, Lease: held[k]}
	}
	s.pipe.Run(job)
	return job.Results[0]
}

func (b pipeBackend) Lock(ctx context.Context, key LevelKey) (lock.Lease, error) {
	l, err := b.s.lock(ctx, key)
	if err != nil {
		return nil, err
	}
	trace.SpanFromContext(ctx).SetAttributes(attrFenceToken.Int64(l.Token()))
	return l, nil
}

func (b pipeBackend) Unlock(ctx context.Context, key LevelKey, lease lock.Lease) {
	b.s.unlock(ctx, key, lease)
}

// StartBatch starts the span of a batch: a child of its first request's
// span, linked to the others', so each request's trace leads to the batch
// that served it. (A link to the parent too would make Jaeger drop the
// parent reference.)
func (b pipeBackend) StartBatch(ctx context.Context, key LevelKey, links []trace.SpanContext, held lock.Lease) (context.Context, trace.Span) {
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
	if b.s.afterLock != nil {
		for _, j := range jobs {
			for _, l := range j.Levels {
				if l.Lease != nil {
					b.s.afterLock(ctx, l.Key, l.Lease)
				}
			}
		}
	}
	b.s.runJobs(ctx, jobs, skipLocked)
}

// Row is the product: a transaction locks a level's product row.
func (pipeBackend) Row(key LevelKey) int64 { return key.ProductID }

// Serial is the reservation op loads: two requests on one reservation
// never share a batch, so each sees the other's outcome.
func (pipeBackend) Serial(op stockOp) int64 { return op.loads() }
