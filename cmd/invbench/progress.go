package main

import (
	"context"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/shopstack/inventory/cmd/invbench/internal/load"
	"github.com/shopstack/inventory/cmd/invbench/internal/transport"
)

// runLoad runs the workload (see load.Run), printing a progress line
// labelled label to progress once a second, unless progress is nil.
func runLoad(ctx context.Context, c *transport.Client, w *load.Workload, cfg load.Config, label string, progress io.Writer) load.Result {
	if progress == nil {
		return load.Run(ctx, c, w, cfg)
	}
	if cfg.Counters == nil {
		cfg.Counters = new(load.Counters)
	}
	start := time.Now()
	stop := make(chan struct{})
	var pwg sync.WaitGroup
	pwg.Go(func() { printProgress(progress, label, start, cfg.Counters, stop) })
	res := load.Run(ctx, c, w, cfg)
	close(stop)
	pwg.Wait()
	return res
}

// printProgress prints one progress line a second until stop is closed.
func printProgress(out io.Writer, label string, start time.Time, cnt *load.Counters, stop <-chan struct{}) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	last, lastAt := int64(0), start
	for {
		select {
		case <-stop:
			return
		case now := <-t.C:
			n := cnt.Requests.Load()
			rate := float64(n-last) / now.Sub(lastAt).Seconds()
			fmt.Fprintf(out, "%-28s %5.0fs %10s req %8s ops/s %8s err\n",
				label, now.Sub(start).Seconds(), thousands(n), thousands(int64(rate)), thousands(cnt.Errors.Load()))
			last, lastAt = n, now
		}
	}
}
