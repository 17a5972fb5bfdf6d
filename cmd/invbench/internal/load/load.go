package load

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/shopstack/inventory/cmd/invbench/internal/transport"
)

// Config says how hard and how long to push.
type Config struct {
	Clients  int
	Duration time.Duration
	// Requests, if positive, replaces Duration: that many requests in all.
	Requests int
	// Rate, if positive, paces the requests to this many a second, all
	// workers together.
	Rate float64
	// Counters, if set, are counted into (by a caller that samples them).
	Counters *Counters
}

// Result is one timed run.
type Result struct {
	Tally   Tally
	Elapsed time.Duration
}

// Counters feed a progress line; workers only add to them.
type Counters struct {
	Requests, Errors atomic.Int64
}

// Run runs the workload with cfg.Clients workers, each with one request
// in flight, until the duration is over or the requests are sent. A
// request in flight at the deadline is waited for, not cancelled:
// cancelling a stock-out would leave its outcome unknown and blur the
// audit. Only ctx (the tool being interrupted) cancels requests.
func Run(ctx context.Context, c *transport.Client, w *Workload, cfg Config) Result {
	var (
		cnt     = cfg.Counters
		tickets atomic.Int64
		paced   atomic.Int64
		wg      sync.WaitGroup
	)
	if cnt == nil {
		cnt = new(Counters)
	}
	workers := make([]*worker, cfg.Clients)
	start := time.Now()
	deadline := start.Add(cfg.Duration)
	more := func() bool {
		if ctx.Err() != nil {
			return false
		}
		if cfg.Rate > 0 {
			at := start.Add(time.Duration(float64(paced.Add(1)) / cfg.Rate * float64(time.Second)))
			select {
			case <-time.After(time.Until(at)):
			case <-ctx.Done():
				return false
			}
		}
		if cfg.Requests > 0 {
			return tickets.Add(1) <= int64(cfg.Requests)
		}
		return time.Now().Before(deadline)
	}
	for i := range workers {
		wk := &worker{id: i, rng: uint64(i+1) * 0x9E3779B97F4A7C15}
		wk.tally.Latencies = make([]time.Duration, 0, 4096)
		workers[i] = wk
		wg.Go(func() { loop(ctx, c, w, wk, more, cnt) })
	}
	wg.Wait()
	var res Result
	res.Elapsed = time.Since(start)
	for _, wk := range workers {
		res.Tally.merge(&wk.tally)
	}
	return res
}

// loop is one client: send, wait for the answer, classify, repeat.
func loop(ctx context.Context, c *transport.Client, w *Workload, wk *worker, more func() bool, cnt *Counters) {
	for more() {
		body, kind := w.next(wk)
		start := time.Now()
		out := send(ctx, c, w, wk, body, kind)
		wk.tally.record(time.Since(start), kind, out)
		w.observe(wk, kind, out)
		cnt.Requests.Add(1)
		if out != transport.OK {
			cnt.Errors.Add(1)
		}
	}
}

// send runs one request of the loop over the client's transport and
// classifies its outcome. Over REST and gRPC the ceiling's read is their
// no-op; every other request there, and every request through a broker,
// is a stock-out.
func send(ctx context.Context, c *transport.Client, w *Workload, wk *worker, body []byte, kind reqKind) string {
	t := c.Transport()
	switch {
	case t == transport.GraphQL:
		return c.GraphQL(ctx, body, &wk.resp, &wk.gql, kind.want())
	case kind == kindRead && !transport.ViaBroker(t):
		return c.Ceiling(ctx, wk.id, &wk.resp)
	}
	return c.StockOut(ctx, wk.id, &wk.resp, w.productIDs[wk.product], w.key(wk))
}
