package main

import (
	"fmt"
	"io"
	"maps"
	"os"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/shopstack/inventory/cmd/invbench/internal/load"
	"github.com/shopstack/inventory/cmd/invbench/internal/metrics"
)

// header describes the machine and the run, for the top of the report.
func header(cfg config, now time.Time) string {
	load := cfg.duration.String() + " per row"
	if cfg.requests > 0 {
		load = thousands(int64(cfg.requests)) + " requests per row"
	}
	return fmt.Sprintf("invbench %s · %s %s/%s · GOMAXPROCS %d · %s · %d clients, %s",
		now.UTC().Format("2006-01-02 15:04 MST"), runtime.Version(), runtime.GOOS, runtime.GOARCH,
		runtime.GOMAXPROCS(0), cpuModel(), cfg.clients, load)
}

// cpuModel is the first "model name" of /proc/cpuinfo, with the CPU count.
func cpuModel() string {
	model := "unknown CPU"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				model = strings.TrimSpace(v)
				break
			}
		}
	}
	return fmt.Sprintf("%s × %d", model, runtime.NumCPU())
}

// columns names the report's columns; the first five describe the row.
func columns() []string {
	return []string{"row", "strategy", "db", "lock", "clients", "time", "requests", "ops/s", "reads/s", "writes/s",
		"p50 ms", "p95 ms", "p99 ms", "errors", "sold", "initial", "final", "ledger", "oversold", "audit",
		"×lock-per-request", "×ceiling", "cpu tool/server/all", "lag p99/max ms", "seed"}
}

// render writes the report: header, table, then notes on ratios, skipped
// and failed rows.
func render(w io.Writer, format, head string, results []result) error {
	cells := make([][]string, len(results))
	for i, r := range results {
		cells[i] = rowCells(r, results)
	}
	var err error
	if format == "markdown" {
		err = renderMarkdown(w, head, cells)
	} else {
		err = renderText(w, head, cells)
	}
	if err != nil {
		return err
	}
	_, err = io.WriteString(w, notes(results))
	return err
}

func renderText(w io.Writer, head string, cells [][]string) error {
	fmt.Fprintln(w, head)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, strings.Join(columns(), "\t"))
	for _, row := range cells {
		fmt.Fprintln(tw, strings.Join(row, "\t"))
	}
	return tw.Flush()
}

func renderMarkdown(w io.Writer, head string, cells [][]string) error {
	fmt.Fprintf(w, "%s\n\n| %s |\n|", head, strings.Join(columns(), " | "))
	for range columns() {
		io.WriteString(w, "---|")
	}
	io.WriteString(w, "\n")
	for _, row := range cells {
		esc := make([]string, len(row))
		for i, c := range row {
			esc[i] = strings.ReplaceAll(c, "|", `\|`)
		}
		if _, err := fmt.Fprintf(w, "| %s |\n", strings.Join(esc, " | ")); err != nil {
			return err
		}
	}
	return nil
}

// rowCells renders one result in the order of columns.
func rowCells(r result, all []result) []string {
	c := []string{r.row.name, r.row.strategy, r.row.db, r.row.lock, strconv.Itoa(r.clients)}
	seed := r.row.seed
	if seed == "" {
		seed = "-"
	}
	switch {
	case r.skipped != "":
		return append(append(c, dashes("skipped")...), seed)
	case r.requests == 0 && r.err != nil:
		return append(append(c, dashes("FAILED")...), seed)
	}
	c = append(c, fmt.Sprintf("%.1fs", r.elapsed.Seconds()), thousands(r.requests), thousands(int64(r.opsPerSec()+0.5)),
		thousands(int64(r.perSec(r.reads)+0.5)), thousands(int64(r.perSec(r.writes)+0.5)),
		ms(r.p50), ms(r.p95), ms(r.p99), formatCounts(r.errors))
	if a := r.audit; a != nil {
		c = append(c, thousands(a.Sold), thousands(a.Initial), thousands(a.Final), thousands(a.Ledger),
			strconv.FormatInt(a.Oversold(), 10), auditCell(r))
	} else {
		c = append(c, "-", "-", "-", "-", "-", auditCell(r))
	}
	lpr, ceil := "-", "-"
	if r.row.production() {
		if load.Sells(r.row.scenario) {
			lpr = ratio(r, find(all, func(o rowSpec) bool {
				return o.strategy == "lock-per-request" && o.scenario == "flash" && o.lock == r.row.lock
			}))
		}
		ceil = ratio(r, find(all, func(o rowSpec) bool { return o.scenario == "ceiling" }))
	}
	return append(c, lpr, ceil, r.cpu.String(), lagCell(r.lag), seed)
}

// lagCell is the publisher's lag p99/max in milliseconds, if sampled.
func lagCell(l *metrics.Lag) string {
	if l == nil || l.Samples == 0 {
		return "-"
	}
	return ms(l.P99) + "/" + ms(l.Max)
}

// auditCell sums up the audit: ok, FAIL for a safe strategy with a problem,
// or the flags (an unsafe strategy is expected to oversell).
func auditCell(r result) string {
	switch {
	case r.err != nil:
		return "FAILED"
	case r.audit == nil:
		return "-"
	case r.row.safe() && len(r.audit.Problems()) > 0:
		return "FAIL: " + r.audit.Flags()
	case !r.row.safe() && r.audit.Oversold() > 0:
		return r.audit.Flags() + " (expected)"
	}
	return r.audit.Flags()
}

// dashes fills the cells from time to cpu of a row that did not run, with
// mark in the audit column.
func dashes(mark string) []string {
	cols := columns()
	c := make([]string, len(cols)-6)
	for i := range c {
		c[i] = "-"
	}
	c[slices.Index(cols, "audit")-5] = mark
	return c
}

func find(all []result, match func(rowSpec) bool) *result {
	for i := range all {
		if match(all[i].row) && all[i].requests > 0 && all[i].err == nil {
			return &all[i]
		}
	}
	return nil
}

func ratio(r result, base *result) string {
	if base == nil || base.opsPerSec() == 0 {
		return "-"
	}
	return fmt.Sprintf("%.2f", r.opsPerSec()/base.opsPerSec())
}

// notes explains the columns and lists skipped and failed rows.
func notes(results []result) string {
	var b strings.Builder
	b.WriteString("\nops/s counts every answered request; errors are by extensions.code. oversold = sold − (initial − final − units in transit).\n")
	b.WriteString("×lock-per-request: ops/s over flash/lock-per-request on the same lock backend; ×ceiling: over { __typename }.\n")
	b.WriteString("cpu: % of one core during the timed run: this tool / the server / the whole machine (PostgreSQL, Redis, etcd included).\n")
	b.WriteString(flashReadsNote(results))
	b.WriteString(reservationNote(results))
	b.WriteString(transferNote(results))
	b.WriteString(bundleNote(results))
	b.WriteString(transportNote(results))
	b.WriteString(lagNote(results))
	b.WriteString(emulatedNote(results))
	for _, r := range results {
		switch {
		case r.skipped != "":
			fmt.Fprintf(&b, "- %s: skipped: %s\n", r.row.name, r.skipped)
		case r.err != nil:
			fmt.Fprintf(&b, "- %s: FAILED: %v\n", r.row.name, r.err)
		case r.audit == nil:
		case r.row.safe() && len(r.audit.Problems()) > 0:
			fmt.Fprintf(&b, "- %s: FAILED audit: %s\n", r.row.name, strings.Join(r.audit.Problems(), "; "))
		case !r.row.safe() && r.audit.Oversold() > 0:
			fmt.Fprintf(&b, "- %s: oversold %d units (%s is unsafe by design)\n", r.row.name, r.audit.Oversold(), r.row.strategy)
		}
	}
	return b.String()
}

// flashReadsNote compares flash-reads with its parts run alone: its reads
// with the readers alone, its sales with the writers alone.
func flashReadsNote(results []result) string {
	part := func(alone string) *result {
		return find(results, func(o rowSpec) bool { return o.scenario == "flash-reads" && o.alone == alone })
	}
	both, reads, writes := part(""), part("reads"), part("writes")
	if both == nil || reads == nil || writes == nil || reads.opsPerSec() == 0 || writes.opsPerSec() == 0 {
		return ""
	}
	return fmt.Sprintf("flash-reads: reads %.2f× the readers alone, sales %.2f× the writers alone.\n",
		both.perSec(both.reads)/reads.opsPerSec(), both.perSec(both.writes)/writes.opsPerSec())
}

// reservationNote compares the reservation rows with flash/combine: holds
// a second for reserve, completed checkouts (commits) a second for
// checkout.
func reservationNote(results []result) string {
	flash := find(results, func(o rowSpec) bool { return o.name == "flash/combine" })
	if flash == nil || flash.opsPerSec() == 0 {
		return ""
	}
	var b strings.Builder
	for _, r := range results {
		if r.err != nil || r.requests == 0 || r.audit == nil {
			continue
		}
		switch r.row.scenario {
		case "reserve":
			fmt.Fprintf(&b, "%s: %s holds/s, %.2f× flash/combine.\n", r.row.name, thousands(int64(r.perSec(r.audit.Held)+0.5)),
				r.perSec(r.audit.Held)/flash.opsPerSec())
		case "checkout":
			fmt.Fprintf(&b, "%s: %s checkouts/s completed, %.2f× flash/combine.\n", r.row.name, thousands(int64(r.perSec(r.audit.Sold)+0.5)),
				r.perSec(r.audit.Sold)/flash.opsPerSec())
		}
	}
	return b.String()
}

// transferNote splits each transfer row's requests into sales and
// transfer steps, and compares the sales with flash/combine's.
func transferNote(results []result) string {
	flash := find(results, func(o rowSpec) bool { return o.name == "flash/combine" })
	var b strings.Builder
	for _, r := range results {
		m, a := r.moves, r.audit
		if r.err != nil || m == nil || a == nil || a.Transfers == nil {
			continue
		}
		sales := r.perSec(r.writes - m.steps)
		fmt.Fprintf(&b, "%s: %s sales/s beside %s transfer steps/s (%s transfers received in full a second, %s units; steps p50 %s ms, p99 %s ms)",
			r.row.name, thousands(int64(sales+0.5)), thousands(int64(r.perSec(m.steps)+0.5)),
			thousands(int64(r.perSec(m.transfers)+0.5)), thousands(int64(r.perSec(m.units)+0.5)), ms(m.p50), ms(m.p99))
		if flash != nil && flash.opsPerSec() > 0 {
			fmt.Fprintf(&b, "; sales %.2f× flash/combine", sales/flash.opsPerSec())
		}
		t := a.Transfers
		fmt.Fprintf(&b, ".\n  At the end: %s in transit; transfers %s; reconcile checked %d levels and %d transfer items.\n",
			thousands(a.InTransit), formatCounts(t.ByStatus), t.LevelsChecked, t.ItemsChecked)
	}
	return b.String()
}

// bundleNote splits each bundle row's requests into stock-outs of the
// bundle and direct sales of its component, compares them with
// flash/combine's, and gives each component's audit.
func bundleNote(results []result) string {
	flash := find(results, func(o rowSpec) bool { return o.name == "flash/combine" })
	var b strings.Builder
	for _, r := range results {
		s, a := r.bundle, r.audit
		if r.err != nil || s == nil || a == nil || a.Bundle == nil {
			continue
		}
		fmt.Fprintf(&b, "%s: %s bundle stock-outs/s (%s bundles sold a second; p50 %s ms, p99 %s ms) beside %s direct stock-outs/s of a component",
			r.row.name, thousands(int64(r.perSec(s.outs)+0.5)), thousands(int64(r.perSec(s.sold)+0.5)), ms(s.p50), ms(s.p99),
			thousands(int64(r.perSec(r.writes-s.outs)+0.5)))
		if flash != nil && flash.opsPerSec() > 0 {
			fmt.Fprintf(&b, "; %.2f× flash/combine in ops/s, bundle stock-outs %.2f×", r.opsPerSec()/flash.opsPerSec(), r.perSec(s.outs)/flash.opsPerSec())
		}
		b.WriteString(".\n  Components (sold: units of the bundles sold and of direct sales):")
		for _, p := range a.Bundle.Parts {
			pa := p.Audit
			fmt.Fprintf(&b, " product %s (%d a bundle): sold %s, stock %s → %s, ledger %s units, %s rows naming the bundle, %s;",
				p.ID, p.Quantity, thousands(pa.Sold), thousands(pa.Initial), thousands(pa.Final), thousands(pa.Ledger),
				thousands(p.BundleRows), pa.Flags())
		}
		b.WriteString("\n")
	}
	return b.String()
}

// transportNote compares the same stock-out over REST and gRPC with
// GraphQL's flash/combine: throughput and p99.
func transportNote(results []result) string {
	flash := find(results, func(o rowSpec) bool { return o.name == "flash/combine" })
	if flash == nil || flash.opsPerSec() == 0 || flash.err != nil {
		return ""
	}
	var b strings.Builder
	for _, r := range results {
		if r.err != nil || r.requests == 0 || r.row.scenario != "flash" || r.row.transport == "" {
			continue
		}
		fmt.Fprintf(&b, "%s: %.2f× flash/combine (GraphQL) in ops/s; p99 %s ms against %s ms.\n", r.row.name,
			r.opsPerSec()/flash.opsPerSec(), ms(r.p99), ms(flash.p99))
	}
	return b.String()
}

// lagNote explains the lag column and gives each sampled row's publisher
// lag and how long the broker took to catch up after the run; a row over
// GraphQL is compared with flash/combine, which publishes nothing.
func lagNote(results []result) string {
	var b strings.Builder
	flash := find(results, func(o rowSpec) bool { return o.name == "flash/combine" })
	for _, r := range results {
		l := r.lag
		if l == nil || r.requests == 0 {
			continue
		}
		if b.Len() == 0 {
			fmt.Fprintf(&b, "lag p99/max: the server's %s (the last published change's wait from commit to the broker's confirmation), read every %v during the run;\n"+
				"  caught up: from the run's end until the broker confirmed the ledger's last sequence.\n", metrics.GaugeLag, metrics.LagEvery)
		}
		fmt.Fprintf(&b, "%s: publisher lag ", r.row.name)
		if l.Samples == 0 {
			b.WriteString("not sampled (no " + metrics.GaugeLag + " on the server's /metrics)")
		} else {
			fmt.Fprintf(&b, "p99 %s ms, max %s ms (%d samples)", ms(l.P99), ms(l.Max), l.Samples)
		}
		switch {
		case l.CaughtErr != nil:
			fmt.Fprintf(&b, "; caught up: unknown (%v)", l.CaughtErr)
		case l.Behind:
			fmt.Fprintf(&b, "; NOT caught up %s ms after the run", ms(l.CaughtUp))
		default:
			fmt.Fprintf(&b, "; caught up in %s ms", ms(l.CaughtUp))
		}
		if r.row.transport == "" && r.row.scenario == "flash" && flash != nil && flash.opsPerSec() > 0 {
			fmt.Fprintf(&b, "; %.2f× flash/combine (no broker) in ops/s, p99 %s ms against %s ms", r.opsPerSec()/flash.opsPerSec(), ms(r.p99), ms(flash.p99))
		}
		b.WriteString(".\n")
	}
	return b.String()
}

// emulatedNote names the rows whose broker was an emulation in the tool's
// process (kfake for Kafka), whose figures are not the real broker's.
func emulatedNote(results []result) string {
	var rows []string
	for _, r := range results {
		if r.emulated && r.requests > 0 {
			rows = append(rows, r.row.name)
		}
	}
	if len(rows) == 0 {
		return ""
	}
	return strings.Join(rows, ", ") + ": Kafka here is kfake, franz-go's in-process emulation of the Kafka protocol, run in this tool's process\n" +
		"  (its CPU is in the tool's column): the rows measure the server's side of Kafka, not Kafka's performance; -kafka-brokers names a real cluster.\n"
}

// formatCounts renders outcome counts as "CODE n, CODE n", most frequent
// first, or "-" if there are none.
func formatCounts(m map[string]int64) string {
	if len(m) == 0 {
		return "-"
	}
	keys := slices.Collect(maps.Keys(m))
	sort.Slice(keys, func(i, j int) bool {
		if m[keys[i]] != m[keys[j]] {
			return m[keys[i]] > m[keys[j]]
		}
		return keys[i] < keys[j]
	})
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + " " + thousands(m[k])
	}
	return strings.Join(parts, ", ")
}

// ms renders a duration in milliseconds.
func ms(d time.Duration) string {
	return strconv.FormatFloat(float64(d)/float64(time.Millisecond), 'f', 1, 64)
}

// thousands renders n with comma separators.
func thousands(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	if neg {
		s = "-" + s
	}
	return s
}
