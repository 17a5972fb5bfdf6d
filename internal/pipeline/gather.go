package pipeline

import (
	"context"
	"runtime/pprof"
	"sync"
)

// gatherer runs what callers add in groups: while one group runs, the next
// gathers, and the next group is taken from everything waiting. Its
// goroutine runs while something waits. The acquirer (leases asked for
// together) and the committer (group commits) are both gatherers.
type gatherer[T any] struct {
	// take splits what waits into the next group and the rest, under the
	// gatherer's lock; an empty group ends the goroutine.
	take func(waiting []T) (group, rest []T)
	// run runs a group, outside the lock.
	run func(group []T)
	// name labels the goroutine's CPU profile samples (pprof label
	// "pipeline"), so a profile tells the serial work of each stage.
	name string

	mu      sync.Mutex
	waiting []T
	running bool
	wg      sync.WaitGroup // the goroutine, and any work run adds to it
}

// add queues item for a coming group, starting the goroutine if it is not
// running.
func (g *gatherer[T]) add(item T) {
	g.mu.Lock()
	g.waiting = append(g.waiting, item)
	if !g.running {
		g.running = true
		g.wg.Add(1)
		go g.loop()
	}
	g.mu.Unlock()
}

func (g *gatherer[T]) loop() {
	defer g.wg.Done()
	pprof.SetGoroutineLabels(pprof.WithLabels(context.Background(), pprof.Labels("pipeline", g.name)))
	for {
		g.mu.Lock()
		group, rest := g.take(g.waiting)
		g.waiting = rest
		if len(group) == 0 {
			g.running = false
			g.mu.Unlock()
			return
		}
		g.mu.Unlock()
		g.run(group)
	}
}

// takeAll is a take that groups everything waiting.
func takeAll[T any](waiting []T) (group, rest []T) { return waiting, nil }
