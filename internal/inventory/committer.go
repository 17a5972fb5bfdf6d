package inventory

import (
	"context"
	"sync"
)

// maxGroupsInFlight bounds the group transactions running at once. A group
// starts only once the groups running have locked their products: one on
// the same products then runs after them (the database queues it), one on
// other products reads while they write.
const maxGroupsInFlight = 2

// committer runs level jobs in group transactions.
type committer struct {
	s      *Service
	maxOps int

	mu       sync.Mutex
	jobs     []*groupEntry
	running  int // groups in flight
	unlocked int // groups in flight that have not locked their products yet
	wg       sync.WaitGroup
}

type groupEntry struct {
	job  *levelJob
	done chan struct{}
}

// submit has job committed in a coming group; the returned channel is
// closed when the job's results are set.
func (g *committer) submit(job *levelJob) <-chan struct{} {
	e := &groupEntry{job: job, done: make(chan struct{})}
	g.mu.Lock()
	g.jobs = append(g.jobs, e)
	g.mu.Unlock()
	g.dispatch()
	return e.done
}

// dispatch starts a group if jobs are waiting, fewer than maxGroupsInFlight
// run, and none of those is still waiting for its locks.
func (g *committer) dispatch() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.running >= maxGroupsInFlight || g.unlocked > 0 || len(g.jobs) == 0 {
		return
	}
	group := g.take()
	g.running++
	g.unlocked++
	g.wg.Add(1)
	go g.run(group)
}

func (g *committer) run(group []*groupEntry) {
	defer g.wg.Done()
	locked := sync.OnceFunc(func() {
		g.mu.Lock()
		g.unlocked--
		g.mu.Unlock()
		g.dispatch()
	})
	jobs := make([]*levelJob, len(group))
	for i, e := range group {
		jobs[i] = e.job
	}
	g.s.runJobs(context.Background(), jobs, locked)
	locked() // if the transaction failed before locking
	for _, e := range group {
		close(e.done)
	}
	g.mu.Lock()
	g.running--
	g.mu.Unlock()
	g.dispatch()
}

// take removes the next group from the waiting jobs: in arrival order, one
// job per product, up to maxOps requests (the first job always). g.mu is
// held.
func (g *committer) take() []*groupEntry {
	var group []*groupEntry
	products := map[int64]bool{}
	ops := 0
	rest := g.jobs[:0]
	for _, e := range g.jobs {
		pid := e.job.key.ProductID
		if products[pid] || (len(group) > 0 && ops+len(e.job.ops) > g.maxOps) {
			rest = append(rest, e)
			continue
		}
		products[pid] = true
		ops += len(e.job.ops)
		group = append(group, e)
	}
	clear(g.jobs[len(rest):])
	g.jobs = rest
	return group
}
