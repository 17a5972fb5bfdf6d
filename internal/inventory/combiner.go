package inventory

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// combiner is StrategyCombine. Each level with requests waiting has one
// worker goroutine, started on demand and ended when its queue is empty,
// that takes up to maxBatch requests at a time and applies them with
// applyBatch: one lock acquisition and one transaction for the whole batch.
// The busier a level, the larger its batches, so the cost per request falls
// with load.
type combiner struct {
	s          *Service
	maxBatch   int
	maxWaiting int64
	waiting    atomic.Int64 // requests queued or in a batch, all levels

	mu      sync.Mutex
	queues  map[LevelKey]*levelQueue
	workers sync.WaitGroup
}

type levelQueue struct {
	reqs []*pending
}

// pending is one request in a queue. The worker takes it, or its caller
// cancels it, whichever comes first.
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

// combinerBusyRetry is the retry hint of a request turned away because too
// many are waiting.
const combinerBusyRetry = 100 * time.Millisecond

func newCombiner(s *Service, maxBatch, maxWaiting int) *combiner {
	return &combiner{s: s, maxBatch: maxBatch, maxWaiting: int64(maxWaiting), queues: make(map[LevelKey]*levelQueue)}
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

// work serves the queue of key until it is empty.
func (c *combiner) work(key LevelKey, q *levelQueue) {
	defer c.workers.Done()
	for {
		batch := c.take(key, q)
		if batch == nil {
			return
		}
		ops := make([]stockOp, len(batch))
		for i, p := range batch {
			ops[i] = p.op
		}
		results := c.s.applyBatch(context.Background(), context.Background(), key, ops)
		for i, p := range batch {
			p.done <- results[i]
		}
		c.waiting.Add(-int64(len(batch)))
	}
}

// take removes up to maxBatch live requests from the head of q, dropping
// the cancelled ones. With none left it removes the queue and returns nil:
// the worker ends, and the next request starts a new one.
func (c *combiner) take(key LevelKey, q *levelQueue) []*pending {
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
	if len(batch) == 0 {
		delete(c.queues, key)
		return nil
	}
	return batch
}

// wait waits for the workers to finish the requests they have.
func (c *combiner) wait() { c.workers.Wait() }
