package metrics

import (
	"context"
	"errors"
	"time"

	"github.com/shopstack/inventory/cmd/invbench/internal/load"
)

// The server's publisher gauges (cmd/inventoryd/broker.go). GaugeLag is
// the one the report names.
const (
	GaugeLag       = "inventory_events_lag_seconds"
	gaugePublished = "inventory_events_published_sequence"
	gaugeBehind    = "inventory_events_lag_sequences"
)

// Publisher lag sampling: how often during the timed run (LagEvery, which
// the report names), and how long after it the tool waits for the broker
// to confirm the ledger's end.
const (
	LagEvery     = 100 * time.Millisecond
	catchUpLimit = 10 * time.Second
)

// Lag is what the server's event publisher did during a run.
type Lag struct {
	// Samples of inventory_events_lag_seconds read during the timed run
	// (the last published change's wait from commit to the broker's
	// confirmation), and their P99 and Max.
	Samples  int
	P99, Max time.Duration
	// CaughtUp is how long after the run the broker had confirmed the
	// ledger's last sequence; Behind says it had not within catchUpLimit,
	// and CaughtErr why the tool could not tell.
	CaughtUp  time.Duration
	Behind    bool
	CaughtErr error
}

// LagSampler reads the publisher's lag from a server's /metrics until
// finished.
type LagSampler struct {
	stop chan struct{}
	done chan struct{}
	lags []time.Duration
}

// SampleLag starts reading metricsURL every LagEvery.
func SampleLag(ctx context.Context, metricsURL string) *LagSampler {
	s := &LagSampler{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		t := time.NewTicker(LagEvery)
		defer t.Stop()
		for {
			select {
			case <-s.stop:
				return
			case <-ctx.Done():
				return
			case <-t.C:
				g, err := Read(ctx, metricsURL, GaugeLag)
				if v, ok := g[GaugeLag]; err == nil && ok {
					s.lags = append(s.lags, time.Duration(v*float64(time.Second)))
				}
			}
		}
	}()
	return s
}

// Finish stops the sampler and sums up its samples.
func (s *LagSampler) Finish() *Lag {
	close(s.stop)
	<-s.done
	l := &Lag{Samples: len(s.lags)}
	if len(s.lags) > 0 {
		ps := load.Percentiles(s.lags, 99, 100)
		l.P99, l.Max = ps[0], ps[1]
	}
	return l
}

// CatchUp waits, up to catchUpLimit from end, until the server's broker has
// confirmed the ledger's last sequence: until the server's own gauge of
// the sequences it has committed and not published (which reads the
// ledger's watermark as its relay does) says none.
func (l *Lag) CatchUp(ctx context.Context, metricsURL string, end time.Time) {
	for {
		g, err := Read(ctx, metricsURL, gaugePublished, gaugeBehind)
		if err != nil {
			l.CaughtErr = err
			return
		}
		// The gauge of the sequences behind is 0 too before the first
		// publication, and on a replica that does not publish.
		if g[gaugePublished] > 0 && g[gaugeBehind] == 0 {
			l.CaughtUp = time.Since(end)
			return
		}
		if time.Since(end) > catchUpLimit {
			l.CaughtUp, l.Behind = time.Since(end), true
			if g[gaugePublished] == 0 {
				l.CaughtErr = errors.New("the server published nothing (is it the replica that publishes?)")
			}
			return
		}
		select {
		case <-ctx.Done():
			l.CaughtErr = ctx.Err()
			return
		case <-time.After(5 * time.Millisecond):
		}
	}
}
