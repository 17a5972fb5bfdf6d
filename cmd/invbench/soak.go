package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/shopstack/inventory/cmd/invbench/internal/load"
	"github.com/shopstack/inventory/cmd/invbench/internal/metrics"
	"github.com/shopstack/inventory/cmd/invbench/internal/transport"
)

// soakSample is the server's state at one moment of a soak.
type soakSample struct {
	at                    time.Duration
	requests, errors      int64 // in the window before it
	goroutines, rss, heap float64
}

// soak measures the server's peak (-duration at full concurrency, at most
// 10 s), then holds cfg.soakLoad of it for cfg.soak, reading the server's
// /metrics every cfg.soakSample: its goroutines and memory must stay flat.
func soak(ctx context.Context, cfg config, stdout, stderr io.Writer) error {
	c := transport.New(cfg.clients, cfg.timeout)
	c.Use(cfg.url)
	c.Bearer(cfg.token)
	w, err := load.Prepare(ctx, c, cfg.scenario, cfg.products, cfg.stock, cfg.clients, cfg.writers)
	if err != nil {
		return fmt.Errorf("prepare %s: %w", cfg.scenario, err)
	}
	peak := runLoad(ctx, c, w, load.Config{Clients: cfg.clients, Duration: min(cfg.duration, 10*time.Second)}, "peak", progressTo(cfg, stderr))
	peakRate := float64(peak.Tally.Requests()) / peak.Elapsed.Seconds()
	target := cfg.soakLoad * peakRate
	fmt.Fprintf(stdout, "peak %s ops/s over %s; soaking at %.0f%%: %s ops/s for %s\n",
		thousands(int64(peakRate)), peak.Elapsed.Round(time.Second), 100*cfg.soakLoad, thousands(int64(target)), cfg.soak)

	metricsURL := strings.TrimSuffix(cfg.url, "/") + "/metrics"
	var samples []soakSample
	var cnt load.Counters
	first, err := readServer(ctx, metricsURL)
	if err != nil {
		return err
	}
	samples = append(samples, first)
	start := time.Now()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(cfg.soakSample)
		defer t.Stop()
		var lastReq, lastErr int64
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				s, err := readServer(ctx, metricsURL)
				if err != nil {
					fmt.Fprintf(stderr, "soak: %v\n", err)
					continue
				}
				s.at = time.Since(start)
				req, errs := cnt.Requests.Load(), cnt.Errors.Load()
				s.requests, s.errors = req-lastReq, errs-lastErr
				lastReq, lastErr = req, errs
				samples = append(samples, s)
				fmt.Fprintf(stderr, "soak %6s %10s req %6s err %6.0f goroutines %7.1f MiB RSS %7.1f MiB heap\n",
					s.at.Round(time.Second), thousands(s.requests), thousands(s.errors), s.goroutines, s.rss/(1<<20), s.heap/(1<<20))
			}
		}
	})
	res := runLoad(ctx, c, w, load.Config{Clients: cfg.clients, Duration: cfg.soak, Rate: target, Counters: &cnt}, "soak", nil)
	close(stop)
	wg.Wait()
	return soakReport(stdout, samples, res, cfg)
}

func progressTo(cfg config, stderr io.Writer) io.Writer {
	if cfg.quiet {
		return nil
	}
	return stderr
}

// soakReport prints the samples and the verdict: after the first quarter,
// goroutines and heap may not grow by more than a quarter (plus room for
// the requests in flight).
func soakReport(out io.Writer, samples []soakSample, res load.Result, cfg config) error {
	fmt.Fprintf(out, "| at | ops/s | errors | goroutines | RSS MiB | heap MiB |\n|---|---|---|---|---|---|\n")
	for _, s := range samples[1:] {
		fmt.Fprintf(out, "| %s | %s | %d | %.0f | %.1f | %.1f |\n", s.at.Round(100*time.Millisecond),
			thousands(int64(float64(s.requests)/cfg.soakSample.Seconds())), s.errors, s.goroutines, s.rss/(1<<20), s.heap/(1<<20))
	}
	p := load.Percentiles(res.Tally.Latencies, 50, 99)
	fmt.Fprintf(out, "\n%s requests in %s (%s ops/s), p50 %s, p99 %s, outcomes %v\n", thousands(res.Tally.Requests()),
		res.Elapsed.Round(time.Second), thousands(int64(float64(res.Tally.Requests())/res.Elapsed.Seconds())),
		p[0].Round(10*time.Microsecond), p[1].Round(10*time.Microsecond), res.Tally.Outcomes)
	if len(samples) < 5 {
		return fmt.Errorf("soak: %d samples are too few to judge; run longer or sample more often", len(samples)-1)
	}
	// Compare the first and the last third of the samples after the first
	// quarter (the warm-up): in-flight requests make single samples noisy.
	settled := samples[1+len(samples[1:])/4:]
	third := max(1, len(settled)/3)
	mean := func(ss []soakSample, f func(soakSample) float64) float64 {
		sum := 0.0
		for _, s := range ss {
			sum += f(s)
		}
		return sum / float64(len(ss))
	}
	goroutines := func(s soakSample) float64 { return s.goroutines }
	g0, g1 := mean(settled[:third], goroutines), mean(settled[len(settled)-third:], goroutines)
	// The heap is judged by its floor in each half: between collections
	// it grows up to GOGC% over what is live (400% by default here), so
	// one sample says more about the collector's phase than about a leak,
	// which raises the floor.
	floor := func(ss []soakSample) float64 {
		m := ss[0].heap
		for _, s := range ss[1:] {
			m = min(m, s.heap)
		}
		return m
	}
	half := len(settled) / 2
	h0, h1 := floor(settled[:half]), floor(settled[half:])
	// Goroutines follow the requests in flight and the levels being
	// worked on: up to two per client, whatever the time.
	flat := g1 <= g0*1.25+float64(2*cfg.clients)+10 && h1 <= h0*1.25+(8<<20)
	fmt.Fprintf(out, "after warm-up: goroutines %.0f -> %.0f (first and last third), heap floor %.1f -> %.1f MiB (first and second half): %s\n",
		g0, g1, h0/(1<<20), h1/(1<<20), map[bool]string{true: "flat", false: "GROWING"}[flat])
	if !flat {
		return fmt.Errorf("soak: the server's goroutines or heap grew")
	}
	return nil
}

// readServer reads goroutines, resident memory and heap in use from a
// server's /metrics.
func readServer(ctx context.Context, url string) (soakSample, error) {
	g, err := metrics.Read(ctx, url, "go_goroutines", "process_resident_memory_bytes", "go_memstats_heap_inuse_bytes")
	if err != nil {
		return soakSample{}, err
	}
	return soakSample{goroutines: g["go_goroutines"], rss: g["process_resident_memory_bytes"], heap: g["go_memstats_heap_inuse_bytes"]}, nil
}
