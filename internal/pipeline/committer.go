package pipeline

import (
	"context"
	"slices"
	"sync"
	"time"

	"go.opentelemetry.io/otel/trace"
)

// committer runs jobs in group transactions. Its goroutine runs while jobs
// are waiting.
type committer[K comparable, O, R any] struct {
	b       Backend[K, O, R]
	maxOps  int
	timeout time.Duration

	mu      sync.Mutex
	jobs    []*entry[K, O, R]
	running bool
	wg      sync.WaitGroup
}

type entry[K comparable, O, R any] struct {
	job  *Job[K, O, R]
	done chan struct{}
}

// run has job committed in the next group and waits for its results.
func (g *committer[K, O, R]) run(job *Job[K, O, R]) {
	e := &entry[K, O, R]{job: job, done: make(chan struct{})}
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

func (g *committer[K, O, R]) loop() {
	defer g.wg.Done()
	for {
		group := g.take()
		if group == nil {
			return
		}
		jobs := make([]*Job[K, O, R], len(group))
		for i, e := range group {
			jobs[i] = e.job
		}
		// A stalled database fails the group when the timeout ends rather
		// than holding its requests. The group does not wait for a row
		// another transaction holds: the jobs on one run alone, so that
		// they wait, and nothing else does.
		ctx, cancel := context.WithTimeout(trace.ContextWithSpanContext(context.Background(), jobs[0].SC), g.timeout)
		g.b.Commit(ctx, jobs, true)
		cancel()
		for _, e := range group {
			if e.job.Busy {
				g.wg.Add(1)
				go g.runAlone(e)
				continue
			}
			close(e.done)
		}
	}
}

// runAlone runs a job whose row another transaction held, in a
// transaction of its own that waits for the row up to the timeout.
func (g *committer[K, O, R]) runAlone(e *entry[K, O, R]) {
	defer g.wg.Done()
	ctx, cancel := context.WithTimeout(trace.ContextWithSpanContext(context.Background(), e.job.SC), g.timeout)
	defer cancel()
	g.b.Commit(ctx, []*Job[K, O, R]{e.job}, false)
	close(e.done)
}

// take removes the next group from the waiting jobs: in arrival order, no
// two jobs on one row, up to maxOps requests (the first job always). With
// none waiting it ends the loop and returns nil.
func (g *committer[K, O, R]) take() []*entry[K, O, R] {
	g.mu.Lock()
	defer g.mu.Unlock()
	var group []*entry[K, O, R]
	rows := map[int64]bool{}
	ops := 0
	rest := g.jobs[:0]
	for _, e := range g.jobs {
		if slices.ContainsFunc(e.job.Levels, func(l Held[K]) bool { return rows[g.b.Row(l.Key)] }) ||
			(len(group) > 0 && ops+len(e.job.Ops) > g.maxOps) {
			rest = append(rest, e)
			continue
		}
		for _, l := range e.job.Levels {
			rows[g.b.Row(l.Key)] = true
		}
		ops += len(e.job.Ops)
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
