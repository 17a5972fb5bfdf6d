package pipeline

import (
	"context"
	"slices"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/shopstack/inventory/internal/gather"
)

// committer runs jobs in group transactions.
type committer[K comparable, O, R any] struct {
	gather.Gatherer[*entry[K, O, R]]
	b       Backend[K, O, R]
	maxOps  int
	timeout time.Duration
}

type entry[K comparable, O, R any] struct {
	job  *Job[K, O, R]
	done chan struct{}
}

func newCommitter[K comparable, O, R any](b Backend[K, O, R], maxOps int, timeout time.Duration) *committer[K, O, R] {
	g := &committer[K, O, R]{b: b, maxOps: maxOps, timeout: timeout}
	g.Take, g.Run, g.Labels = g.takeGroup, g.commit, []string{"pipeline", "committer"}
	return g
}

// run has job committed in the next group and waits for its results.
func (g *committer[K, O, R]) run(job *Job[K, O, R]) {
	e := &entry[K, O, R]{job: job, done: make(chan struct{})}
	g.Add(e)
	<-e.done
}

// commit runs a group in one transaction.
func (g *committer[K, O, R]) commit(group []*entry[K, O, R]) {
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
			g.Go(func() { g.runAlone(e) })
			continue
		}
		close(e.done)
	}
}

// runAlone runs a job whose row another transaction held, in a
// transaction of its own that waits for the row up to the timeout.
func (g *committer[K, O, R]) runAlone(e *entry[K, O, R]) {
	ctx, cancel := context.WithTimeout(trace.ContextWithSpanContext(context.Background(), e.job.SC), g.timeout)
	defer cancel()
	g.b.Commit(ctx, []*Job[K, O, R]{e.job}, false)
	close(e.done)
}

// takeGroup takes the next group from the waiting jobs: in arrival order,
// no two jobs on one row, up to maxOps requests (the first job always).
func (g *committer[K, O, R]) takeGroup(waiting []*entry[K, O, R]) (group, rest []*entry[K, O, R]) {
	rows := map[int64]bool{}
	ops := 0
	rest = waiting[:0] // in place: the rest never passes the one being read
	for _, e := range waiting {
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
	clear(waiting[len(rest):])
	return group, rest
}
