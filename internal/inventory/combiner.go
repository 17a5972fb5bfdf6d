package inventory

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/shopstack/inventory/internal/lock"
)

// combiner is StrategyCombine, in two stages.
//
// Each level with requests waiting has one worker goroutine, started on
// demand and ended when its queue is empty. It takes up to maxBatch
// requests at a time as a level job, under a lease it keeps while its queue
// stays busy (up to maxHold, so that other replicas get their turn).
//
// Level workers hand their jobs to the committer, which runs the jobs
// waiting for it, one per product, in one transaction: one commit, and one
// update of the ledger sequence, for many levels. The busier the service,
// the larger the batches and groups, so the cost per request falls with
// load.
type combiner struct {
	s          *Service
	maxBatch   int
	maxWaiting int64
	waiting    atomic.Int64 // requests queued or in a job, all levels

	mu      sync.Mutex
	queues  map[LevelKey]*levelQueue
	workers sync.WaitGroup

	commit committer
}

type levelQueue struct {
	reqs []*pending
}

// pending is one request in a queue. The level worker takes it, or its
// caller cancels it, whichever comes first.
type pending struct {
	op stockOp
	// sc is the request's span, which the batch that serves it links to.
	sc    trace.SpanContext
	state atomic.Int32
	done  chan opResult // buffered: the worker never blocks on it
}

const (
	queued int32 = iota
	taken
	cancelled
)

const (
	// combinerBusyRetry is the retry hint of a request turned away because
	// too many are waiting.
	combinerBusyRetry = 100 * time.Millisecond
	// maxHold bounds how long a level worker keeps its lease across jobs.
	maxHold = 20 * time.Millisecond
)

func newCombiner(s *Service, maxBatch, maxWaiting int) *combiner {
	c := &combiner{s: s, maxBatch: maxBatch, maxWaiting: int64(maxWaiting), queues: make(map[LevelKey]*levelQueue)}
	c.commit = committer{s: s, maxOps: MaxBatchLimit}
	return c
}

// submit queues op behind the other requests for its level and waits for
// its outcome. A request cancelled while still queued leaves without side
// effects; once a worker has taken it, its outcome is awaited, since its
// transaction may commit.
func (c *combiner) submit(ctx context.Context, op stockOp) opResult {
	if c.waiting.Add(1) > c.maxWaiting {
		c.waiting.Add(-1)
		return opResult{err: &Error{Code: CodeUnavailable, RetryAfter: combinerBusyRetry,
			Message: "too many stock requests are waiting; retry shortly"}}
	}
	p := &pending{op: op, sc: trace.SpanContextFromContext(ctx), done: make(chan opResult, 1)}
	c.mu.Lock()
	q := c.queues[op.key]
	if q == nil {
		q = &levelQueue{}
		c.queues[op.key] = q
		c.workers.Add(1)
		go c.work(op.key, q)
	}
	q.reqs = append(q.reqs, p)
	c.mu.Unlock()

	select {
	case r := <-p.done:
		return r
	case <-ctx.Done():
		if p.state.CompareAndSwap(queued, cancelled) {
			return opResult{err: &Error{Code: CodeUnavailable, Message: "request cancelled while waiting for its turn", Err: ctx.Err()}}
		}
		return <-p.done
	}
}

// runLevels runs a levelsOp. On one level it is combined with the level's
// other requests; over several it takes their leases itself (in the
// order lockLevels takes them in, so that no two such requests deadlock)
// and is committed, alone in its job, with the next group.
func (s *Service) runLevels(ctx context.Context, op stockOp) opResult {
	keys := op.levels.keys
	if len(keys) == 1 {
		return s.combiner.submit(ctx, op)
	}
	leases, held, err := s.lockLevels(ctx, keys)
	if err != nil {
		return opResult{err: err}
	}
	defer s.unlockAll(ctx, leases)
	job := &levelJob{levels: make([]jobLevel, len(keys)), ops: []stockOp{op}, sc: trace.SpanContextFromContext(ctx)}
	for i, k := range keys {
		job.levels[i] = held[k]
	}
	s.combiner.commit.run(job)
	return job.results[0]
}

// work serves the queue of key until it is empty.
func (c *combiner) work(key LevelKey, q *levelQueue) {
	defer c.workers.Done()
	ctx := context.Background()
	var lease lock.Lease
	var since time.Time
	release := func() {
		if lease != nil {
			c.s.unlock(ctx, key, lease)
			lease = nil
		}
	}
	defer release()
	for {
		batch := c.take(key, q)
		if batch == nil {
			return
		}
		if lease != nil && (closed(lease.Done()) || time.Since(since) > maxHold) {
			release()
		}
		bctx, span := c.startBatch(ctx, key, batch, lease != nil)
		if lease == nil {
			l, err := c.s.lock(bctx, key)
			if err != nil {
				endSpan(span, err)
				c.answer(batch, fail(len(batch), err))
				continue
			}
			if c.s.afterLock != nil {
				c.s.afterLock(ctx, key, l)
			}
			lease, since = l, time.Now()
		}
		span.SetAttributes(attrFenceToken.Int64(lease.Token()))
		job := &levelJob{levels: []jobLevel{c.s.leased(key, lease)}, ops: make([]stockOp, len(batch)), sc: span.SpanContext()}
		for i, p := range batch {
			job.ops[i] = p.op
		}
		c.commit.run(job)
		span.End()
		c.answer(batch, job.results)
	}
}

// startBatch starts the span of a batch: a child of its first request's
// span, linked to the others', so each request's trace leads to the batch
// that served it. (A link to the parent too would make Jaeger drop the
// parent reference.)
func (c *combiner) startBatch(ctx context.Context, key LevelKey, batch []*pending, leaseHeld bool) (context.Context, trace.Span) {
	scs := make([]trace.SpanContext, len(batch)-1)
	for i, p := range batch[1:] {
		scs[i] = p.sc
	}
	return c.s.tracer.Start(trace.ContextWithSpanContext(ctx, batch[0].sc), "inventory.batch",
		trace.WithLinks(linksTo(scs)...),
		trace.WithAttributes(attrProduct.Int64(key.ProductID), attrLocation.Int64(key.LocationID),
			attrRequests.Int(len(batch)), attrLeaseReused.Bool(leaseHeld)))
}

func (c *combiner) answer(batch []*pending, results []opResult) {
	for i, p := range batch {
		p.done <- results[i]
	}
	c.waiting.Add(-int64(len(batch)))
}

// take removes up to maxBatch live requests from the head of q, dropping
// the cancelled ones. A request on a reservation that an earlier request
// of the batch changes stays queued for the next batch, so each sees the
// other's outcome. With none left it removes the queue and returns nil:
// the worker ends, and the next request starts a new one.
func (c *combiner) take(key LevelKey, q *levelQueue) []*pending {
	c.mu.Lock()
	defer c.mu.Unlock()
	var batch, later []*pending
	var loads []int64
	n := 0
	for n < len(q.reqs) && len(batch) < c.maxBatch {
		p := q.reqs[n]
		n++
		id := p.op.loads()
		if id != 0 && slices.Contains(loads, id) {
			later = append(later, p)
			continue
		}
		if p.state.CompareAndSwap(queued, taken) {
			batch = append(batch, p)
			if id != 0 {
				loads = append(loads, id)
			}
		} else {
			c.waiting.Add(-1)
		}
	}
	clear(q.reqs[:n])
	q.reqs = q.reqs[n:]
	if len(later) > 0 {
		q.reqs = append(later, q.reqs...)
	}
	if len(batch) == 0 {
		delete(c.queues, key)
		return nil
	}
	return batch
}

// wait waits for the workers to finish the requests they have.
func (c *combiner) wait() {
	c.workers.Wait()
	c.commit.wg.Wait()
}

// committer runs level jobs in group transactions. Its goroutine runs
// while jobs are waiting.
type committer struct {
	s      *Service
	maxOps int

	mu      sync.Mutex
	jobs    []*groupEntry
	running bool
	wg      sync.WaitGroup
}

type groupEntry struct {
	job  *levelJob
	done chan struct{}
}

// run has job committed in the next group and waits for its results.
func (g *committer) run(job *levelJob) {
	e := &groupEntry{job: job, done: make(chan struct{})}
	g.mu.Lock()
	g.jobs = append(g.jobs, e)
	if !g.running {
		g.running = true
		g.wg.Add(1)
		go g.loop()
	}
	g.mu.Unlock()
	<-e.done
}

func (g *committer) loop() {
	defer g.wg.Done()
	for {
		group := g.take()
		if group == nil {
			return
		}
		jobs := make([]*levelJob, len(group))
		for i, e := range group {
			jobs[i] = e.job
		}
		// The transaction serves many requests, so no request's context
		// bounds it: the lock timeout does, so a stalled database fails the
		// group with UNAVAILABLE rather than holding its requests. It
		// does not wait for a product row another transaction holds: the
		// jobs on one run alone, so that they wait, and nothing else does.
		ctx, cancel := context.WithTimeout(trace.ContextWithSpanContext(context.Background(), jobs[0].sc), g.s.lockTimeout)
		g.s.runJobs(ctx, jobs, true)
		cancel()
		for _, e := range group {
			if e.job.busy {
				g.wg.Add(1)
				go g.runAlone(e)
				continue
			}
			close(e.done)
		}
	}
}

// runAlone runs a job whose product row another transaction held, in a
// transaction of its own that waits for the row up to the lock timeout.
func (g *committer) runAlone(e *groupEntry) {
	defer g.wg.Done()
	ctx, cancel := context.WithTimeout(trace.ContextWithSpanContext(context.Background(), e.job.sc), g.s.lockTimeout)
	defer cancel()
	g.s.runJobs(ctx, []*levelJob{e.job}, false)
	close(e.done)
}

// take removes the next group from the waiting jobs: in arrival order, no
// two jobs on one product, up to maxOps requests (the first job always). With none
// waiting it ends the loop and returns nil.
func (g *committer) take() []*groupEntry {
	g.mu.Lock()
	defer g.mu.Unlock()
	var group []*groupEntry
	products := map[int64]bool{}
	ops := 0
	rest := g.jobs[:0]
	for _, e := range g.jobs {
		pids := e.job.products()
		if slices.ContainsFunc(pids, func(id int64) bool { return products[id] }) ||
			(len(group) > 0 && ops+len(e.job.ops) > g.maxOps) {
			rest = append(rest, e)
			continue
		}
		for _, id := range pids {
			products[id] = true
		}
		ops += len(e.job.ops)
		group = append(group, e)
	}
	clear(g.jobs[len(rest):])
	g.jobs = rest
	if len(group) == 0 {
		g.running = false
		return nil
	}
	return group
}
