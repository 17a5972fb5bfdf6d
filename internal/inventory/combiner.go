package inventory

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/shopstack/inventory/internal/lock"
)

// combiner is StrategyCombine, in two stages.
//
// Each level with requests waiting has one worker goroutine, started on
// demand and ended when its queue is empty. It takes up to maxBatch
// requests at a time as a level job, under a lease it keeps while its queue
// stays busy (up to maxHold, so that other replicas get their turn), with
// up to maxJobsInFlight jobs in the committer at once.
//
// Level workers hand their jobs to the committer, which runs the jobs
// waiting for it, one per product, in one transaction: one commit, and one
// update of the ledger sequence, for many levels; up to maxGroupsInFlight
// transactions overlap. The busier the service, the larger the batches and
// groups, so the cost per request falls with load.
//
// Requests of a level are applied in arrival order: a job is submitted
// after the previous one, and its transaction starts once the previous one
// holds the product's lock. The exception is a transaction that must be
// retried (a lost race on a version or an idempotency key) while the next
// one already waits for the lock: the next one then commits first.
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
	op    stockOp
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
	p := &pending{op: op, done: make(chan opResult, 1)}
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

// maxJobsInFlight bounds the jobs of one level in the committer at once:
// while one commits, the next is already waiting for its products' locks in
// the database, so it starts the moment the first commits.
const maxJobsInFlight = 2

// flightJob is a level job handed to the committer.
type flightJob struct {
	batch []*pending
	job   *levelJob
	done  <-chan struct{}
}

// work serves the queue of key until it is empty.
func (c *combiner) work(key LevelKey, q *levelQueue) {
	defer c.workers.Done()
	ctx := context.Background()
	var lease lock.Lease
	var since time.Time
	var inFlight []flightJob
	finishOldest := func() {
		f := inFlight[0]
		<-f.done
		c.answer(f.batch, f.job.results)
		inFlight = inFlight[1:]
	}
	// release drains the jobs in flight first: they are written under the
	// lease, and a write after its release would be fenced off.
	release := func() {
		for len(inFlight) > 0 {
			finishOldest()
		}
		if lease != nil {
			c.s.unlock(ctx, key, lease)
			lease = nil
		}
	}
	defer release()
	for {
		if len(inFlight) == maxJobsInFlight {
			finishOldest()
		}
		batch := c.take(q)
		if len(batch) == 0 {
			if len(inFlight) > 0 {
				finishOldest()
				continue
			}
			if c.retire(key, q) {
				return
			}
			continue
		}
		if lease != nil && (closed(lease.Done()) || time.Since(since) > maxHold) {
			release()
		}
		if lease == nil {
			l, err := c.s.lock(ctx, key)
			if err != nil {
				c.answer(batch, fail(len(batch), err))
				continue
			}
			if c.s.afterLock != nil {
				c.s.afterLock(ctx, key, l)
			}
			lease, since = l, time.Now()
		}
		job := &levelJob{key: key, ops: make([]stockOp, len(batch)), fence: Fence{Epoch: c.s.epoch, Token: lease.Token()}, lost: lease.Done()}
		for i, p := range batch {
			job.ops[i] = p.op
		}
		inFlight = append(inFlight, flightJob{batch: batch, job: job, done: c.commit.submit(job)})
	}
}

func (c *combiner) answer(batch []*pending, results []opResult) {
	for i, p := range batch {
		p.done <- results[i]
	}
	c.waiting.Add(-int64(len(batch)))
}

// take removes up to maxBatch live requests from the head of q, dropping
// the cancelled ones.
func (c *combiner) take(q *levelQueue) []*pending {
	c.mu.Lock()
	defer c.mu.Unlock()
	var batch []*pending
	n := 0
	for n < len(q.reqs) && len(batch) < c.maxBatch {
		p := q.reqs[n]
		n++
		if p.state.CompareAndSwap(queued, taken) {
			batch = append(batch, p)
		} else {
			c.waiting.Add(-1)
		}
	}
	clear(q.reqs[:n])
	q.reqs = q.reqs[n:]
	return batch
}

// retire removes q if it is still empty, and reports whether it did: the
// worker then ends, and the next request for key starts a new one.
func (c *combiner) retire(key LevelKey, q *levelQueue) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(q.reqs) > 0 {
		return false
	}
	delete(c.queues, key)
	return true
}

// wait waits for the workers to finish the requests they have.
func (c *combiner) wait() {
	c.workers.Wait()
	c.commit.wg.Wait()
}
