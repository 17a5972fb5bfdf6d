package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/pprof"
	"strings"
	"syscall"
	"time"
)

// run parses the flags, runs the benchmark, prints the report on stdout and
// fails if a row failed or a safe strategy oversold or lost track of a sale.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	cfg, err := parseConfig(args[1:], getenv, stderr)
	if errors.Is(err, errHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	if cfg.check {
		return describe(stdout, cfg)
	}
	if cfg.cpuProfile != "" {
		f, err := os.Create(cfg.cpuProfile)
		if err != nil {
			return fmt.Errorf("cpu profile: %w", err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return fmt.Errorf("cpu profile: %w", err)
		}
		defer pprof.StopCPUProfile()
	}
	if cfg.soak > 0 {
		return soak(ctx, cfg, stdout, stderr)
	}
	started := time.Now()
	var results []result
	if cfg.compare {
		results, err = compare(ctx, cfg, stderr)
	} else {
		var r result
		r, err = against(ctx, cfg, stderr)
		if r.requests > 0 || r.err != nil {
			results = append(results, r)
		}
	}
	if len(results) > 0 {
		if rerr := render(stdout, cfg.format, header(cfg, started), results); rerr != nil {
			return fmt.Errorf("write report: %w", rerr)
		}
		fmt.Fprintf(stdout, "whole run: %.0fs\n", time.Since(started).Seconds())
	}
	if err != nil {
		return err
	}
	var failed []string
	for _, r := range results {
		if r.failed() {
			failed = append(failed, r.row.name)
		}
	}
	if len(failed) > 0 {
		return fmt.Errorf("failed rows: %s", strings.Join(failed, ", "))
	}
	return nil
}

// describe says what cfg would run, for -check.
func describe(w io.Writer, cfg config) error {
	switch {
	case cfg.soak > 0:
		_, err := fmt.Fprintf(w, "invbench: would soak %s for %s\n", cfg.url, cfg.soak)
		return err
	case cfg.compare:
		rows, err := selectRows(compareRows(), cfg.rows)
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(w, "invbench: would compare %d rows (%s), %s each, %d clients\n", len(rows), strings.Join(rowNames(rows), ","), cfg.duration, cfg.clients)
		return err
	default:
		_, err := fmt.Fprintf(w, "invbench: would run %s against %s for %s, %d clients\n", cfg.scenario, cfg.url, cfg.duration, cfg.clients)
		return err
	}
}
