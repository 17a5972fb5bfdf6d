package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/shopstack/inventory/cmd/invbench/internal/audit"
	"github.com/shopstack/inventory/cmd/invbench/internal/cpu"
	"github.com/shopstack/inventory/cmd/invbench/internal/load"
	"github.com/shopstack/inventory/cmd/invbench/internal/metrics"
	"github.com/shopstack/inventory/cmd/invbench/internal/transport"
)

// result is one row of the report.
type result struct {
	row           rowSpec
	clients       int
	elapsed       time.Duration
	requests      int64
	reads, writes int64
	errors        map[string]int64
	p50, p95, p99 time.Duration
	audit         *audit.Audit // nil unless the scenario sells
	cpu           cpu.Use
	lag           *metrics.Lag // nil unless the server's publisher was sampled
	moves         *moves       // nil unless the scenario moves stock
	bundle        *bundleSales // nil unless the scenario sells a bundle
	emulated      bool         // the row's broker was kfake, in this tool's process
	skipped       string       // why the row did not run
	err           error        // why the row failed
}

func (r result) opsPerSec() float64 { return r.perSec(r.requests) }

// perSec is n requests over the run's time.
func (r result) perSec(n int64) float64 {
	if r.elapsed <= 0 {
		return 0
	}
	return float64(n) / r.elapsed.Seconds()
}

// moves is what the clients that move stock between locations did: their
// requests (transfer steps), the transfers they received in full and
// those transfers' units, and the steps' latency.
type moves struct {
	steps, transfers, units int64
	p50, p99                time.Duration
}

// bundleSales is what the clients that sell a bundle did: their requests
// (stock-outs of one bundle), the bundles sold, and the requests' latency.
// The row's other writes sold one of its components directly.
type bundleSales struct {
	outs, sold int64
	p50, p99   time.Duration
}

// failed reports whether the row failed, or shows an oversell or a ledger
// mismatch although its strategy claims to be safe.
func (r result) failed() bool {
	return r.err != nil || (r.row.safe() && r.audit != nil && len(r.audit.Problems()) > 0)
}

// target is a server to measure: its process (pid 0 if not ours), if the
// tool knows it, its database, and, if its event publisher's lag is to be
// sampled, its /metrics.
type target struct {
	pid     int
	db      *audit.DB
	metrics string
}

// measure runs a prepared workload against the client's server, timed, and
// audits it: stock before and after through GraphQL, the ledger through SQL
// if t.db is known, for a run that moves stock its transfers, levels and
// reconcile's report through GraphQL, and for a run that sells a bundle
// each of its components on its own.
func measure(ctx context.Context, c *transport.Client, w *load.Workload, cfg load.Config, row rowSpec, t target, progress io.Writer) (result, error) {
	res := result{row: row, clients: cfg.Clients}
	var a audit.Audit
	var initial []audit.Held
	if w.Sells() {
		var err error
		if initial, err = audit.Stocks(ctx, c, w.ProductIDs()); err != nil {
			return res, fmt.Errorf("before the run: %w", err)
		}
		sum := audit.Sum(initial)
		a.Initial, a.ReservedBefore = sum.Stock, sum.Reserved
	}
	var lag *metrics.LagSampler
	if t.metrics != "" {
		lag = metrics.SampleLag(ctx, t.metrics)
	}
	before := cpu.Read(t.pid)
	lr := runLoad(ctx, c, w, cfg, row.name, progress)
	res.cpu = before.Until(cpu.Read(t.pid))
	if lag != nil {
		end := time.Now()
		res.lag = lag.Finish()
		res.lag.CatchUp(ctx, t.metrics, end)
	}
	res.elapsed, res.requests, res.errors = lr.Elapsed, lr.Tally.Requests(), lr.Tally.Errors()
	res.reads, res.writes = lr.Tally.Reads, lr.Tally.Writes
	ps := load.Percentiles(lr.Tally.Latencies, 50, 95, 99)
	res.p50, res.p95, res.p99 = ps[0], ps[1], ps[2]
	if lr.Tally.Steps > 0 {
		ps := load.Percentiles(lr.Tally.StepLatencies, 50, 99)
		res.moves = &moves{steps: lr.Tally.Steps, transfers: lr.Tally.Moved, units: lr.Tally.MovedUnits, p50: ps[0], p99: ps[1]}
	}
	if t := lr.Tally; t.BundleOuts > 0 {
		ps := load.Percentiles(t.BundleLatencies, 50, 99)
		res.bundle = &bundleSales{outs: t.BundleOuts, sold: t.Bundles, p50: ps[0], p99: ps[1]}
	}
	if err := ctx.Err(); err != nil {
		return res, fmt.Errorf("interrupted: %w", err)
	}
	if !w.Sells() {
		return res, nil
	}
	a.Sold, a.Unknown = lr.Tally.Sold, lr.Tally.Unknown
	if w.Scenario() == "reserve" {
		a.Holds, a.Held = true, lr.Tally.Held
	}
	final, err := audit.Stocks(ctx, c, w.ProductIDs())
	if err != nil {
		return res, fmt.Errorf("audit: %w", err)
	}
	sum := audit.Sum(final)
	a.Final, a.ReservedAfter = sum.Stock, sum.Reserved
	if dest := w.Destination(); dest != "" {
		inTransit, tr, err := audit.ReadTransfers(ctx, c, w.ProductIDs()[0], dest)
		if err != nil {
			return res, fmt.Errorf("audit: %w", err)
		}
		a.InTransit, a.Transfers = inTransit, &tr
	}
	if id, parts := w.Bundle(); id != "" {
		b, err := auditBundle(ctx, c, t.db, id, parts, &lr.Tally, initial, final)
		if err != nil {
			return res, fmt.Errorf("audit: %w", err)
		}
		total := b.Total()
		a.Sold, a.Unknown, a.Ledger, a.Bundle = total.Sold, total.Unknown, total.Ledger, b
	} else if a.Ledger, err = audit.LedgerOuts(ctx, c, t.db, w.ProductIDs()); err != nil {
		return res, fmt.Errorf("audit: %w", err)
	}
	res.audit = &a
	return res, nil
}

// auditBundle audits each component of a run's bundle on its own: its
// stock before and after (in the order of the parts, which is the
// workload's products'), the units promised of it by the bundles sold and
// its own sales, and its ledger.
func auditBundle(ctx context.Context, c *transport.Client, db *audit.DB, id string, parts []load.Part, t *load.Tally,
	initial, final []audit.Held) (*audit.Bundle, error) {
	ids := make([]string, len(parts))
	for i, p := range parts {
		ids[i] = p.ID
	}
	outs, err := audit.Ledger(ctx, c, db, ids, id)
	if err != nil {
		return nil, err
	}
	b := &audit.Bundle{ID: id, Sold: t.Bundles, Unknown: t.BundlesUnknown}
	for i, p := range parts {
		a := audit.Audit{Initial: initial[i].Stock, Final: final[i].Stock, Ledger: outs[i].Units,
			Sold: p.Quantity * t.Bundles, Unknown: p.Quantity * t.BundlesUnknown}
		if p.Direct {
			a.Sold, a.Unknown = a.Sold+t.Sold, a.Unknown+t.Unknown
		}
		b.Parts = append(b.Parts, audit.Part{ID: p.ID, Quantity: p.Quantity, Audit: a, BundleRows: outs[i].BundleRows})
	}
	return b, nil
}
