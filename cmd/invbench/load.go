package main

import (
	"context"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"
)

// loadConfig says how hard and how long to push.
type loadConfig struct {
	clients  int
	duration time.Duration
	// requests, if positive, replaces duration: that many requests in all.
	requests int
	// rate, if positive, paces the requests to this many a second, all
	// workers together.
	rate float64
	// counters, if set, are counted into (by a caller that samples them).
	counters *counters
}

// loadResult is one timed run.
type loadResult struct {
	tally   tally
	elapsed time.Duration
}

// counters feed the progress line; workers only add to them.
type counters struct {
	requests, errors atomic.Int64
}

// runLoad runs the workload with cfg.clients workers, each with one request
// in flight, until the duration is over or the requests are sent. A request
// in flight at the deadline is waited for, not cancelled: cancelling a
// stock-out would leave its outcome unknown and blur the audit. Only ctx
// (the tool being interrupted) cancels requests. Progress goes to progress
// once a second, unless it is nil.
func runLoad(ctx context.Context, c *client, w *workload, cfg loadConfig, label string, progress io.Writer) loadResult {
	var (
		cnt     = cfg.counters
		tickets atomic.Int64
		paced   atomic.Int64
		wg      sync.WaitGroup
	)
	if cnt == nil {
		cnt = new(counters)
	}
	workers := make([]*worker, cfg.clients)
	start := time.Now()
	deadline := start.Add(cfg.duration)
	more := func() bool {
		if ctx.Err() != nil {
			return false
		}
		if cfg.rate > 0 {
			at := start.Add(time.Duration(float64(paced.Add(1)) / cfg.rate * float64(time.Second)))
			select {
			case <-time.After(time.Until(at)):
			case <-ctx.Done():
				return false
			}
		}
		if cfg.requests > 0 {
			return tickets.Add(1) <= int64(cfg.requests)
		}
		return time.Now().Before(deadline)
	}
	for i := range workers {
		wk := &worker{id: i, rng: uint64(i+1) * 0x9E3779B97F4A7C15}
		wk.tally.latencies = make([]time.Duration, 0, 4096)
		workers[i] = wk
		wg.Go(func() { loop(ctx, c, w, wk, more, cnt) })
	}
	stop := make(chan struct{})
	var pwg sync.WaitGroup
	if progress != nil {
		pwg.Go(func() { printProgress(progress, label, start, cnt, stop) })
	}
	wg.Wait()
	elapsed := time.Since(start)
	close(stop)
	pwg.Wait()
	var res loadResult
	res.elapsed = elapsed
	for _, wk := range workers {
		res.tally.merge(&wk.tally)
	}
	return res
}

// loop is one client: send, wait for the answer, classify, repeat.
func loop(ctx context.Context, c *client, w *workload, wk *worker, more func() bool, cnt *counters) {
	for more() {
		body, kind := w.next(wk)
		start := time.Now()
		out := c.send(ctx, w, wk, body, kind)
		wk.tally.record(time.Since(start), kind, out)
		w.observe(wk, kind, out)
		cnt.requests.Add(1)
		if out != outcomeOK {
			cnt.errors.Add(1)
		}
	}
}

// printProgress prints one progress line a second until stop is closed.
func printProgress(out io.Writer, label string, start time.Time, cnt *counters, stop <-chan struct{}) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	last, lastAt := int64(0), start
	for {
		select {
		case <-stop:
			return
		case now := <-t.C:
			n := cnt.requests.Load()
			rate := float64(n-last) / now.Sub(lastAt).Seconds()
			fmt.Fprintf(out, "%-28s %5.0fs %10s req %8s ops/s %8s err\n",
				label, now.Sub(start).Seconds(), thousands(n), thousands(int64(rate)), thousands(cnt.errors.Load()))
			last, lastAt = n, now
		}
	}
}
