// Package gather runs what callers add in groups: while one group runs,
// the next gathers, and the next group is taken from everything waiting.
// The busier its callers, the larger the groups, so the cost of a round
// trip is shared by more of them. The write pipeline's acquirer (leases
// asked for together) and committer (group commits), and the releases of
// etcdlock and redislock, are gatherers.
package gather

import (
	"context"
	"runtime/pprof"
	"sync"
)

// Gatherer runs the items added to it in groups, one group at a time, on
// a goroutine that runs while something waits. Set Run (and Take, Labels)
// before the first Add.
type Gatherer[T any] struct {
	// Take splits what waits into the next group and the rest, under the
	// gatherer's lock; an empty group ends the goroutine. Nil takes all.
	Take func(waiting []T) (group, rest []T)
	// Run runs a group, outside the lock.
	Run func(group []T)
	// Labels are pprof label pairs for the goroutine's CPU profile
	// samples, so a profile tells the serial work of each gatherer.
	Labels []string

	mu      sync.Mutex
	waiting []T
	running bool
	wg      sync.WaitGroup // the goroutine, and work started with Go
}

// Add queues item for a coming group, starting the goroutine if it is not
// running.
func (g *Gatherer[T]) Add(item T) {
	g.mu.Lock()
	g.waiting = append(g.waiting, item)
	if !g.running {
		g.running = true
		g.wg.Add(1)
		go g.loop()
	}
	g.mu.Unlock()
}

// Go runs f on a goroutine of its own that Wait waits for.
func (g *Gatherer[T]) Go(f func()) { g.wg.Go(f) }

// Wait waits until nothing added is left to run.
func (g *Gatherer[T]) Wait() { g.wg.Wait() }

func (g *Gatherer[T]) loop() {
	defer g.wg.Done()
	if len(g.Labels) > 0 {
		pprof.SetGoroutineLabels(pprof.WithLabels(context.Background(), pprof.Labels(g.Labels...)))
	}
	for {
		g.mu.Lock()
		var group, rest []T
		if g.Take != nil {
			group, rest = g.Take(g.waiting)
		} else {
			group = g.waiting
		}
		g.waiting = rest
		if len(group) == 0 {
			g.running = false
			g.mu.Unlock()
			return
		}
		g.mu.Unlock()
		g.Run(group)
	}
}
