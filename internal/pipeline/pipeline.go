// Package pipeline is the write pipeline every stock change goes through,
// in two stages.
//
// Requests queue by the key they write (a stock level). Each key with
// requests waiting has one worker goroutine, started on demand and ended
// when its queue is empty. It takes up to MaxBatch requests at a time as a
// job, under the key's lease. The lease is kept while the key keeps
// getting work: when the queue empties it is kept for Idle, and the next
// worker of the key takes it over, so a key at a few requests a second
// does not pay an acquisition per request. It is released once the key
// got no work for Idle, and when someone else wants it: a kept lease at
// once, a busy one once its worker has held it through MaxHold of
// continuous work. Someone else is another replica (the lock backend
// tells, lock.Contended; from a backend that does not, a busy lease is
// let go after MaxHold whether or not one waits) or a request here that
// takes the key's lease itself (Release). MaxKeep bounds a lease's keep in
// all, in case a backend's signal was lost.
// Workers that need a lease at once ask
// for theirs together: one TryLock, one round trip per lock server, for
// all of them; a key refused there is waited for with Lock.
//
// A request that writes several keys may join the queue of one of them
// (SubmitAcross): the worker serving it takes the others' leases for the
// batch, without waiting for them, so a request that also writes a hot
// key is combined with that key's other requests rather than taking the
// key's lease away from them.
//
// Workers hand their jobs to the committer, which runs the jobs waiting for
// it, no two on one row, in one transaction: one commit for many keys. The
// busier the service, the larger the batches and groups, so the cost per
// request falls with load. A job whose row another transaction holds runs
// alone, so that it waits and nothing else does.
//
// The package knows nothing of stock: what a request does, how a group
// commits and how a lease is taken come from its Backend.
package pipeline

import (
	"context"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/shopstack/inventory/internal/lock"
)

// Backend is what the pipeline needs from its user. K is the key requests
// queue by, O a request, R its outcome.
type Backend[K comparable, O, R any] interface {
	// Lock takes key's lease for a batch, waiting while it is held;
	// Unlock returns it.
	Lock(ctx context.Context, key K) (lock.Lease, error)
	// TryLock takes the leases of keys that are free, waiting for none:
	// each granted or refused on its own (lock.Locker.TryLock).
	TryLock(ctx context.Context, keys []K) []lock.Grant
	Unlock(ctx context.Context, key K, lease lock.Lease)
	// StartBatch starts the span of a batch on key, a child of ctx's span
	// linked to the other requests' (links). held is the lease the batch
	// reuses, or nil when it takes one.
	StartBatch(ctx context.Context, key K, links []trace.SpanContext, held lock.Lease) (context.Context, trace.Span)
	// Commit runs jobs in one transaction and sets each job's Results. With
	// skipLocked it does not wait for a row another transaction holds: it
	// marks the jobs on such a row Busy instead, without results.
	Commit(ctx context.Context, jobs []*Job[K, O, R], skipLocked bool)
	// Row is the row a key's writes lock: a group holds no two jobs that
	// share one.
	Row(key K) int64
	// Serial returns a nonzero ID for a request that must see the outcome
	// of any earlier request with the same ID: the two never share a batch.
	Serial(op O) int64
	// Unlocked reports whether op needs no lease: a batch of such requests
	// runs without one (unless its worker holds one already).
	Unlocked(op O) bool
}

// Job is a batch of requests on its levels, and then their outcomes.
type Job[K comparable, O, R any] struct {
	Levels []Held[K]
	Ops    []O
	// Results are the Ops' outcomes, in Ops order.
	Results []R
	// SC is the span of the batch, which the transaction that commits it
	// links to.
	SC trace.SpanContext
	// Busy says the transaction skipped the job: another holds its row.
	Busy bool
	// Stale says the database holds a newer fence than one of the job's
	// leases: they are released after the job rather than kept.
	Stale bool
}

// Held is a key a job writes and the lease it writes it under (nil for a
// write made without one).
type Held[K comparable] struct {
	Key   K
	Lease lock.Lease
}

// LeaseLost reports whether the lease of one of j's levels is lost, so
// that its writes may no longer be made.
func (j *Job[K, O, R]) LeaseLost() bool {
	for _, l := range j.Levels {
		if l.Lease != nil && lock.Closed(l.Lease.Done()) {
			return true
		}
	}
	return false
}

// ErrFull refuses a request when MaxWaiting requests are waiting already.
var ErrFull = errors.New("pipeline: too many requests waiting")

// ErrCancelled is the outcome of a request cancelled before a worker took
// it: it had no effect.
var ErrCancelled = errors.New("pipeline: request cancelled while queued")

// Config sizes a Pipeline.
type Config struct {
	// MaxBatch is the most requests in one job (default 256).
	MaxBatch int
	// MaxWaiting is the most requests queued or in a job; beyond it,
	// Submit refuses with ErrFull (default 10,000).
	MaxWaiting int
	// MaxGroup is the most requests in one group transaction; a job larger
	// than that runs alone (default 1,024).
	MaxGroup int
	// MaxHold is how long a worker keeps a lease someone else wants
	// across jobs while its queue stays busy (default 20ms).
	MaxHold time.Duration
	// Idle is how long a key's lease is kept after its queue emptied, for
	// the key's next requests, unless someone else wants it; then it is
	// released (default 5s).
	Idle time.Duration
	// MaxKeep bounds how long a lease is kept in all, across its key's
	// busy and idle stretches: another replica whose wait the backend did
	// not tell of gets the key within about MaxKeep (default 10s).
	MaxKeep time.Duration
	// CommitTimeout bounds a group transaction, which serves many requests
	// and so is bounded by no request's context (default 5s).
	CommitTimeout time.Duration
	// AcrossWait bounds how long a worker waits for the lease of another
	// key a request of its batch writes (SubmitAcross; default 5ms): it
	// holds its own key's lease meanwhile, so it must not wait for a
	// holder that may be waiting for it.
	AcrossWait time.Duration
}

// Pipeline queues, combines and group-commits requests. Its zero value is
// not usable; call New.
type Pipeline[K comparable, O, R any] struct {
	b       Backend[K, O, R]
	cfg     Config
	waiting atomic.Int64 // requests queued or in a job, all keys

	mu      sync.Mutex
	queues  map[K]*queue[K, O, R]
	workers sync.WaitGroup

	commit *committer[K, O, R]
	acq    *acquirer[K]
	// kept are the leases of keys without a worker, kept for Idle; p.mu
	// guards it. releasing counts the releases of kept leases under way.
	kept      map[K]*held
	releasing sync.WaitGroup
	// wanted counts, by key, the callers here waiting to take the key's
	// lease themselves (Release); p.mu guards it.
	wanted map[K]int
}

// held is a lease, when it was acquired, and when its worker took it.
type held struct {
	lease lock.Lease
	at    time.Time
	since time.Time
	idle  *time.Timer // while kept: releases it
	// watched says a goroutine waits for the lease's key to be wanted
	// elsewhere (watch); p.mu guards it.
	watched bool
	// ownAt is its queue's ownAt, kept with the lease while the key has
	// no queue: a busy key's queue empties between batches, and a request
	// across keys should still join it there.
	ownAt time.Time
}

func newHeld(l lock.Lease) *held {
	now := time.Now()
	return &held{lease: l, at: now, since: now}
}

// spent reports whether h may no longer be used: it lapsed, it was kept
// for MaxKeep, or its worker held it for MaxHold while someone else wants
// it (wantedHere: a caller here, see Release).
func (p *Pipeline[K, O, R]) spent(h *held, wantedHere bool) bool {
	if lock.Closed(h.lease.Done()) || time.Since(h.at) > p.cfg.MaxKeep {
		return true
	}
	if time.Since(h.since) <= p.cfg.MaxHold {
		return false
	}
	w := lock.WantedOf(h.lease)
	return wantedHere || w == nil || lock.Closed(w)
}

type queue[K comparable, O, R any] struct {
	reqs []*pending[K, O, R]
	// ownAt is when a request that writes only the key last joined:
	// requests across keys join the queue their other keys' own requests
	// keep busy.
	ownAt time.Time
}

// pending is one request in a queue. A worker takes it, or its caller
// cancels it, whichever comes first.
type pending[K comparable, O, R any] struct {
	op O
	// across are the other keys op writes (SubmitAcross); moved says
	// it has moved once to the queue of a key whose lease its first
	// worker could not take.
	across []K
	moved  bool
	// sc is the request's span, which the batch that serves it links to.
	sc    trace.SpanContext
	state atomic.Int32
	done  chan outcome[R] // buffered: the worker never blocks on it
}

type outcome[R any] struct {
	r   R
	err error
}

const (
	queued int32 = iota
	taken
	cancelled
)

// New returns a pipeline that runs its requests with b.
func New[K comparable, O, R any](b Backend[K, O, R], cfg Config) *Pipeline[K, O, R] {
	if cfg.MaxBatch <= 0 {
		cfg.MaxBatch = 256
	}
	if cfg.MaxWaiting <= 0 {
		cfg.MaxWaiting = 10_000
	}
	if cfg.MaxGroup <= 0 {
		cfg.MaxGroup = 1024
	}
	if cfg.MaxHold <= 0 {
		cfg.MaxHold = 20 * time.Millisecond
	}
	if cfg.MaxKeep <= 0 {
		cfg.MaxKeep = 10 * time.Second
	}
	if cfg.Idle <= 0 {
		cfg.Idle = 5 * time.Second
	}
	if cfg.CommitTimeout <= 0 {
		cfg.CommitTimeout = 5 * time.Second
	}
	if cfg.AcrossWait <= 0 {
		cfg.AcrossWait = 5 * time.Millisecond
	}
	p := &Pipeline[K, O, R]{b: b, cfg: cfg, queues: make(map[K]*queue[K, O, R]), kept: make(map[K]*held),
		wanted: make(map[K]int)}
	p.commit = newCommitter(b, cfg.MaxGroup, cfg.CommitTimeout)
	p.acq = newAcquirer(b.TryLock)
	return p
}

// Submit queues op on key behind the other requests for key and waits for
// its outcome. The error is ErrFull, ErrCancelled, or the Backend's Lock
// error, none of which had any effect. A request cancelled once a worker
// has taken it still waits for its outcome, since its transaction may
// commit.
func (p *Pipeline[K, O, R]) Submit(ctx context.Context, key K, op O) (R, error) {
	return p.submit(ctx, func(map[K]*queue[K, O, R]) (K, []K) { return key, nil }, op)
}

// ErrAcross is the outcome of a request submitted across keys whose
// worker could not take the other keys' leases at once: it had no
// effect, and its caller takes the leases itself (Run).
var ErrAcross = errors.New("pipeline: the other keys' leases are held")

// SubmitAcross queues op, which writes every one of keys, behind the
// requests of one of them: the one whose own requests (those that write
// it alone) joined last, by its queue or the lease kept for it, or
// keys[0]. That worker takes the other keys'
// leases for the batch op runs in, waiting at most AcrossWait for each.
// If it cannot, op moves, once, to the queue of the key whose lease it
// did not get, whose worker is the one holding it; failing there too, op
// fails with ErrAcross. Otherwise it is as Submit.
func (p *Pipeline[K, O, R]) SubmitAcross(ctx context.Context, keys []K, op O) (R, error) {
	return p.submit(ctx, func(queues map[K]*queue[K, O, R]) (K, []K) {
		host := 0
		var latest time.Time
		for i, k := range keys {
			var at time.Time
			if q := queues[k]; q != nil {
				at = q.ownAt
			} else if h := p.kept[k]; h != nil {
				at = h.ownAt
			}
			if at.After(latest) {
				host, latest = i, at
			}
		}
		var across []K
		for i, k := range keys {
			if i != host {
				across = append(across, k)
			}
		}
		return keys[host], across
	}, op)
}

// submit queues op on the key host picks (with the queues locked) and
// waits for its outcome.
func (p *Pipeline[K, O, R]) submit(ctx context.Context, host func(map[K]*queue[K, O, R]) (K, []K), op O) (R, error) {
	if p.waiting.Add(1) > int64(p.cfg.MaxWaiting) {
		p.waiting.Add(-1)
		var zero R
		return zero, ErrFull
	}
	r := &pending[K, O, R]{op: op, sc: trace.SpanContextFromContext(ctx), done: make(chan outcome[R], 1)}
	p.mu.Lock()
	key, across := host(p.queues)
	r.across = across
	q := p.enqueue(key, r)
	if len(across) == 0 {
		q.ownAt = time.Now()
	}
	p.mu.Unlock()

	select {
	case o := <-r.done:
		return o.r, o.err
	case <-ctx.Done():
		if r.state.CompareAndSwap(queued, cancelled) {
			var zero R
			return zero, ErrCancelled
		}
		o := <-r.done
		return o.r, o.err
	}
}

// enqueue appends r to key's queue, starting its worker if it has none.
// p.mu must be held.
func (p *Pipeline[K, O, R]) enqueue(key K, r *pending[K, O, R]) *queue[K, O, R] {
	q := p.queues[key]
	if q == nil {
		q = &queue[K, O, R]{}
		p.queues[key] = q
		h := p.unkeep(key)
		if h != nil {
			q.ownAt = h.ownAt
		}
		p.workers.Add(1)
		go p.work(key, q, h)
	}
	q.reqs = append(q.reqs, r)
	return q
}

// Run has job, whose leases its caller holds, committed in the next group
// and waits until it has its Results.
func (p *Pipeline[K, O, R]) Run(job *Job[K, O, R]) { p.commit.run(job) }

// Waiting returns the number of requests queued or in a job.
func (p *Pipeline[K, O, R]) Waiting() int64 { return p.waiting.Load() }

// Wait waits for the workers and the committer to finish the requests
// they have, then releases the leases kept for idle keys.
func (p *Pipeline[K, O, R]) Wait() {
	p.workers.Wait()
	p.commit.Wait()
	p.acq.Wait()
	p.mu.Lock()
	kept := p.kept
	p.kept = make(map[K]*held)
	p.mu.Unlock()
	for key, h := range kept {
		if h.idle.Stop() {
			p.releasing.Done()
			p.b.Unlock(context.Background(), key, h.lease)
		}
	}
	p.releasing.Wait()
}

// Release is for a caller about to take the leases of keys itself: it
// releases now the leases kept for keys without work here, and until the
// returned func is called (once the caller has its leases, or gave up),
// the leases of keys are not kept after their batches, so the caller
// need not wait for Idle.
func (p *Pipeline[K, O, R]) Release(ctx context.Context, keys []K) (done func()) {
	for _, key := range keys {
		p.mu.Lock()
		p.wanted[key]++
		h := p.unkeep(key)
		p.mu.Unlock()
		if h != nil {
			p.b.Unlock(ctx, key, h.lease)
		}
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			p.mu.Lock()
			defer p.mu.Unlock()
			for _, key := range keys {
				if p.wanted[key]--; p.wanted[key] == 0 {
					delete(p.wanted, key)
				}
			}
		})
	}
}

// wantedHere reports whether a caller here waits to take key's lease
// itself (Release).
func (p *Pipeline[K, O, R]) wantedHere(key K) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.wanted[key] > 0
}

// keep keeps h, the lease of key, which has no worker now, for Idle; one
// spent or refused by the database, or one someone else wants, is
// released at once. p.mu must be held.
func (p *Pipeline[K, O, R]) keep(key K, h *held, stale bool) {
	if h == nil {
		return
	}
	if stale || p.spent(h, false) || p.kept[key] != nil || p.wanted[key] > 0 || lock.Closed(lock.WantedOf(h.lease)) {
		p.releasing.Add(1)
		go func() {
			defer p.releasing.Done()
			p.b.Unlock(context.Background(), key, h.lease)
		}()
		return
	}
	p.releasing.Add(1)
	h.idle = time.AfterFunc(p.cfg.Idle, func() {
		defer p.releasing.Done()
		p.release(key, h)
	})
	p.kept[key] = h
	if w := lock.WantedOf(h.lease); w != nil && !h.watched {
		h.watched = true
		go p.watch(key, h, w)
	}
}

// watch releases h, the lease of key, once another replica wants it, if
// it is kept then: a worker that has it lets it go itself (spent), and
// keeps it no more (keep). One goroutine per lease, not per keep: it ends
// with the lease.
func (p *Pipeline[K, O, R]) watch(key K, h *held, wanted <-chan struct{}) {
	select {
	case <-wanted:
	case <-h.lease.Done():
		return
	}
	p.mu.Lock()
	mine := p.kept[key] == h
	if mine {
		delete(p.kept, key)
		if h.idle.Stop() {
			p.releasing.Done()
		}
	}
	p.mu.Unlock()
	if mine {
		p.b.Unlock(context.Background(), key, h.lease)
	}
}

// release releases h, the lease kept for key, unless a worker took it
// over (or Wait released it) first.
func (p *Pipeline[K, O, R]) release(key K, h *held) {
	p.mu.Lock()
	mine := p.kept[key] == h
	if mine {
		delete(p.kept, key)
	}
	p.mu.Unlock()
	if mine {
		p.b.Unlock(context.Background(), key, h.lease)
	}
}

// unkeep takes the lease kept for key, or nil, for a worker starting
// now. p.mu must be held.
func (p *Pipeline[K, O, R]) unkeep(key K) *held {
	h := p.kept[key]
	if h == nil {
		return nil
	}
	delete(p.kept, key)
	if h.idle.Stop() {
		p.releasing.Done()
	}
	h.since = time.Now()
	return h
}

// lock takes key's lease for a batch: with the other workers that need
// one at the same time (one TryLock), and, refused there, with Lock.
func (p *Pipeline[K, O, R]) lock(ctx context.Context, key K) (*held, error) {
	if g := p.acq.lock(ctx, key); g.Err == nil {
		return newHeld(g.Lease), nil
	}
	l, err := p.b.Lock(ctx, key)
	if err != nil {
		return nil, err
	}
	return newHeld(l), nil
}

// work serves the queue of key until it is empty, starting with the lease
// kept for key (h), if any.
func (p *Pipeline[K, O, R]) work(key K, q *queue[K, O, R], h *held) {
	defer p.workers.Done()
	ctx := context.Background()
	release := func() {
		if h != nil {
			p.b.Unlock(ctx, key, h.lease)
			h = nil
		}
	}
	stale := false
	for {
		// A spent lease is released here, before the queue may empty: the
		// key's next worker then finds it free at once.
		if h != nil && (stale || p.spent(h, p.wantedHere(key))) {
			release()
		}
		stale = false
		batch := p.take(key, q, h)
		if batch == nil {
			return // take kept h
		}
		var lease lock.Lease
		if h != nil {
			lease = h.lease
		}
		links := make([]trace.SpanContext, len(batch)-1)
		for i, r := range batch[1:] {
			links[i] = r.sc
		}
		bctx, span := p.b.StartBatch(trace.ContextWithSpanContext(ctx, batch[0].sc), key, links, lease)
		if lease == nil && !p.unlocked(batch) {
			nh, err := p.lock(bctx, key)
			if err != nil {
				span.End()
				p.answer(batch, nil, err)
				continue
			}
			h, lease = nh, nh.lease
		}
		batch, levels := p.takeAcross(bctx, key, batch)
		if len(batch) == 0 {
			span.End()
			p.putBack(levels, false)
			continue
		}
		job := &Job[K, O, R]{Levels: make([]Held[K], 0, 1+len(levels)), Ops: make([]O, len(batch)), SC: span.SpanContext()}
		job.Levels = append(job.Levels, Held[K]{Key: key, Lease: lease})
		for _, l := range levels {
			job.Levels = append(job.Levels, Held[K]{Key: l.key, Lease: l.lease})
		}
		for i, r := range batch {
			job.Ops[i] = r.op
		}
		p.commit.run(job)
		span.End()
		stale = job.Stale
		p.putBack(levels, job.Stale)
		p.answer(batch, job.Results, nil)
	}
}

// acrossLease is the lease of another key a batch writes.
type acrossLease[K comparable] struct {
	key K
	*held
}

// putBack keeps the leases a batch took for other keys, for those keys'
// next requests, or releases them where the key has a worker (which
// waits for it) or stale is set.
func (p *Pipeline[K, O, R]) putBack(levels []acrossLease[K], stale bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, l := range levels {
		if p.queues[l.key] != nil {
			stale = true
		}
		p.keep(l.key, l.held, stale)
	}
}

// takeAcross takes the leases of the other keys the requests of batch
// (on key) write (SubmitAcross): those kept here, then the rest in one
// TryLock, then those refused there with Lock, each waiting at most
// AcrossWait. It returns the requests that can run and the leases they
// write under besides the worker's own. The others move to the queue of a
// key whose lease they did not get, or, if they moved once already, are
// answered ErrAcross.
func (p *Pipeline[K, O, R]) takeAcross(ctx context.Context, key K, batch []*pending[K, O, R]) ([]*pending[K, O, R], []acrossLease[K]) {
	var keys []K
	for _, r := range batch {
		for _, k := range r.across {
			if !slices.Contains(keys, k) {
				keys = append(keys, k)
			}
		}
	}
	if len(keys) == 0 {
		return batch, nil
	}
	var levels []acrossLease[K]
	var rest []K
	p.mu.Lock()
	for _, k := range keys {
		if h := p.unkeep(k); h != nil {
			levels = append(levels, acrossLease[K]{k, h})
		} else {
			rest = append(rest, k)
		}
	}
	p.mu.Unlock()
	failed := map[K]bool{}
	if len(rest) > 0 {
		for i, g := range p.b.TryLock(ctx, rest) {
			if g.Err == nil {
				levels = append(levels, acrossLease[K]{rest[i], newHeld(g.Lease)})
				continue
			}
			lctx, cancel := context.WithTimeout(ctx, p.cfg.AcrossWait)
			l, err := p.b.Lock(lctx, rest[i])
			cancel()
			if err != nil {
				failed[rest[i]] = true
				continue
			}
			levels = append(levels, acrossLease[K]{rest[i], newHeld(l)})
		}
	}
	kept := batch[:0]
	var refused []*pending[K, O, R]
	for _, r := range batch {
		if slices.ContainsFunc(r.across, func(k K) bool { return failed[k] }) {
			refused = append(refused, r)
		} else {
			kept = append(kept, r)
		}
	}
	if len(refused) > 0 {
		refused = p.move(key, refused, failed)
		p.answer(refused, nil, ErrAcross)
		// A lease taken for a refused request only is kept for its key.
		var unused []acrossLease[K]
		levels = slices.DeleteFunc(levels, func(l acrossLease[K]) bool {
			used := slices.ContainsFunc(kept, func(r *pending[K, O, R]) bool { return slices.Contains(r.across, l.key) })
			if !used {
				unused = append(unused, l)
			}
			return !used
		})
		p.putBack(unused, false)
	}
	return kept, levels
}

// move moves the requests of refused (taken from key's queue) that have
// not moved yet to the queue of the first of their keys whose lease was
// refused (failed), where they write key instead of it, and returns the
// others.
func (p *Pipeline[K, O, R]) move(key K, refused []*pending[K, O, R], failed map[K]bool) []*pending[K, O, R] {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.DeleteFunc(refused, func(r *pending[K, O, R]) bool {
		if r.moved {
			return false
		}
		i := slices.IndexFunc(r.across, func(k K) bool { return failed[k] })
		to := r.across[i]
		r.across = append(slices.Delete(slices.Clone(r.across), i, i+1), key)
		r.moved = true
		r.state.Store(queued) // its caller may cancel it again
		p.enqueue(to, r)
		return true
	})
}

// unlocked reports whether no request of batch needs a lease.
func (p *Pipeline[K, O, R]) unlocked(batch []*pending[K, O, R]) bool {
	for _, r := range batch {
		if !p.b.Unlocked(r.op) || len(r.across) > 0 {
			return false
		}
	}
	return true
}

// answer gives each request of batch its result, or err.
func (p *Pipeline[K, O, R]) answer(batch []*pending[K, O, R], results []R, err error) {
	// They stop waiting before any of them hears: a caller that has its
	// answer never counts itself as waiting.
	p.waiting.Add(-int64(len(batch)))
	for i, r := range batch {
		if err != nil {
			r.done <- outcome[R]{err: err}
		} else {
			r.done <- outcome[R]{r: results[i]}
		}
	}
}

// take removes up to MaxBatch live requests from the head of q, dropping
// the cancelled ones. A request whose Serial an earlier request of the
// batch has stays queued for the next batch, so it sees the other's
// outcome. With none left it removes the queue, keeps the worker's lease h
// (see keep) and returns nil: the worker ends, and the next request starts
// a new one, which takes the lease over.
func (p *Pipeline[K, O, R]) take(key K, q *queue[K, O, R], h *held) []*pending[K, O, R] {
	p.mu.Lock()
	defer p.mu.Unlock()
	var batch, later []*pending[K, O, R]
	var serials []int64
	n := 0
	for n < len(q.reqs) && len(batch) < p.cfg.MaxBatch {
		r := q.reqs[n]
		n++
		id := p.b.Serial(r.op)
		if id != 0 && slices.Contains(serials, id) {
			later = append(later, r)
			continue
		}
		if r.state.CompareAndSwap(queued, taken) {
			batch = append(batch, r)
			if id != 0 {
				serials = append(serials, id)
			}
		} else {
			p.waiting.Add(-1)
		}
	}
	clear(q.reqs[:n])
	q.reqs = q.reqs[n:]
	if len(later) > 0 {
		q.reqs = append(later, q.reqs...)
	}
	if len(batch) == 0 {
		delete(p.queues, key)
		if h != nil {
			h.ownAt = q.ownAt
		}
		p.keep(key, h, false)
		return nil
	}
	return batch
}
