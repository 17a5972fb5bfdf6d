package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/shopstack/inventory/cmd/invbench/internal/load"
)

// The server's publisher gauges (cmd/inventoryd/broker.go).
const (
	gaugeLag       = "inventory_events_lag_seconds"
	gaugePublished = "inventory_events_published_sequence"
	gaugeBehind    = "inventory_events_lag_sequences"
)

// Publisher lag sampling: how often during the timed run, and how long
// after it the tool waits for the broker to confirm the ledger's end.
const (
	lagEvery     = 100 * time.Millisecond
	catchUpLimit = 10 * time.Second
)

// eventsLag is what the server's event publisher did during a run.
type eventsLag struct {
	// samples of inventory_events_lag_seconds read during the timed run
	// (the last published change's wait from commit to the broker's
	// confirmation), and their p99 and max.
	samples  int
	p99, max time.Duration
	// caughtUp is how long after the run the broker had confirmed the
	// ledger's last sequence; behind says it had not within catchUpLimit,
	// and caughtErr why the tool could not tell.
	caughtUp  time.Duration
	behind    bool
	caughtErr error
}

// lagSampler reads the publisher's lag from a server's /metrics until
// stopped.
type lagSampler struct {
	stop chan struct{}
	done chan struct{}
	lags []time.Duration
}

// sampleLag starts reading metricsURL every lagEvery.
func sampleLag(ctx context.Context, metricsURL string) *lagSampler {
	s := &lagSampler{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		t := time.NewTicker(lagEvery)
		defer t.Stop()
		for {
			select {
			case <-s.stop:
				return
			case <-ctx.Done():
				return
			case <-t.C:
				g, err := readGauges(ctx, metricsURL, gaugeLag)
				if v, ok := g[gaugeLag]; err == nil && ok {
					s.lags = append(s.lags, time.Duration(v*float64(time.Second)))
				}
			}
		}
	}()
	return s
}

// finish stops the sampler and sums up its samples.
func (s *lagSampler) finish() *eventsLag {
	close(s.stop)
	<-s.done
	l := &eventsLag{samples: len(s.lags)}
	if len(s.lags) > 0 {
		ps := load.Percentiles(s.lags, 99, 100)
		l.p99, l.max = ps[0], ps[1]
	}
	return l
}

// catchUp waits, up to catchUpLimit from end, until the server's broker has
// confirmed the ledger's last sequence: until the server's own gauge of
// the sequences it has committed and not published (which reads the
// ledger's watermark as its relay does) says none.
func (l *eventsLag) catchUp(ctx context.Context, metricsURL string, end time.Time) {
	for {
		g, err := readGauges(ctx, metricsURL, gaugePublished, gaugeBehind)
		if err != nil {
			l.caughtErr = err
			return
		}
		// The gauge of the sequences behind is 0 too before the first
		// publication, and on a replica that does not publish.
		if g[gaugePublished] > 0 && g[gaugeBehind] == 0 {
			l.caughtUp = time.Since(end)
			return
		}
		if time.Since(end) > catchUpLimit {
			l.caughtUp, l.behind = time.Since(end), true
			if g[gaugePublished] == 0 {
				l.caughtErr = errors.New("the server published nothing (is it the replica that publishes?)")
			}
			return
		}
		select {
		case <-ctx.Done():
			l.caughtErr = ctx.Err()
			return
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// readGauges reads the named unlabelled samples from a server's /metrics;
// a name the server does not export is absent from the map.
func readGauges(ctx context.Context, url string, names ...string) (map[string]float64, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("read %s: HTTP %d", url, resp.StatusCode)
	}
	out := make(map[string]float64, len(names))
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		name, value, ok := strings.Cut(sc.Text(), " ")
		if !ok || !slices.Contains(names, name) {
			continue
		}
		if v, err := strconv.ParseFloat(value, 64); err == nil {
			out[name] = v
		}
	}
	return out, sc.Err()
}
