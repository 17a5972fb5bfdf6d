package main

import (
	"bytes"
	"cmp"
	"context"
	"maps"
	neturl "net/url"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/shopstack/inventory/cmd/invbench/internal/audit"
	"github.com/shopstack/inventory/cmd/invbench/internal/load"
	"github.com/shopstack/inventory/cmd/invbench/internal/server"
	"github.com/shopstack/inventory/cmd/invbench/internal/transport"
	"github.com/shopstack/inventory/internal/testenv"
	"github.com/shopstack/inventory/internal/testenv/kafkatest"
	"github.com/shopstack/inventory/internal/testenv/natstest"
	"github.com/shopstack/inventory/internal/testenv/redistest"
)

// TestEndToEnd builds ./cmd/inventoryd and drives it through the tool's own
// code: a compare row on SQLite with the local lock (a fresh server and
// database, the flash scenario, the audit with SQL, the report), then the
// other scenarios against a running server, audited through GraphQL.
func TestEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the server")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	bin, err := server.Build(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}

	t.Run("compare", func(t *testing.T) {
		cfg, err := parseConfig([]string{"-compare", "-rows", "flash/combine/sqlite", "-duration", "2s",
			"-clients", "8", "-server-bin", bin}, func(string) string { return "" }, &bytes.Buffer{})
		if err != nil {
			t.Fatal(err)
		}
		var progress bytes.Buffer
		results, err := compare(ctx, cfg, &progress)
		if err != nil || len(results) != 1 {
			t.Fatalf("compare: %d results, err %v", len(results), err)
		}
		if !strings.Contains(progress.String(), "flash/combine/sqlite") || !strings.Contains(progress.String(), " ops/s ") {
			t.Errorf("no progress line on stderr:\n%s", progress.String())
		}
		r := results[0]
		if r.err != nil {
			t.Fatalf("row failed: %v", r.err)
		}
		a := r.audit
		if a == nil {
			t.Fatal("no audit")
		}
		t.Logf("%d requests in %v: sold %d, stock %d -> %d, ledger %d, errors %v",
			r.requests, r.elapsed, a.Sold, a.Initial, a.Final, a.Ledger, r.errors)
		if a.Sold == 0 || a.Oversold() != 0 || a.Ledger != a.Sold || a.Initial != 10_000_000 || r.failed() {
			t.Errorf("audit %+v: want sold > 0, oversold 0, ledger == sold", *a)
		}
		if r.p50 <= 0 || r.p99 < r.p50 {
			t.Errorf("p50 %v, p99 %v", r.p50, r.p99)
		}
		for _, format := range []string{"text", "markdown"} {
			var out bytes.Buffer
			if err := render(&out, format, header(cfg, time.Now()), results); err != nil {
				t.Fatal(err)
			}
			t.Logf("%s report:\n%s", format, out.String())
			for _, want := range []string{"GOMAXPROCS", "flash/combine/sqlite", "oversold", thousands(a.Sold)} {
				if !strings.Contains(out.String(), want) {
					t.Errorf("%s report lacks %q", format, want)
				}
			}
		}
	})

	// The bundle row as -compare runs it: PostgreSQL (the ledger counted
	// with SQL there) and a Redis of the test's own.
	t.Run("compare/bundle", func(t *testing.T) {
		cfg := postgresCompare(ctx, t, bin, "-rows", "bundle")
		results, err := compare(ctx, cfg, &bytes.Buffer{})
		if err != nil || len(results) != 1 || results[0].err != nil {
			t.Fatalf("compare: %d results, err %v", len(results), err)
		}
		r := results[0]
		a, s := r.audit, r.bundle
		if a == nil || a.Bundle == nil || s == nil || s.sold == 0 || r.failed() || len(a.Problems()) > 0 {
			t.Fatalf("audit %+v, bundle sales %+v: want bundles sold, audited", a, s)
		}
		for _, p := range a.Bundle.Parts {
			if p.BundleRows < s.sold || p.Audit.Ledger != p.Audit.Lost() {
				t.Errorf("product %s: %+v, %d rows naming the bundle; want the ledger explaining the stock, %d rows", p.ID, p.Audit, p.BundleRows, s.sold)
			}
		}
		var out bytes.Buffer
		if err := render(&out, "markdown", header(cfg, time.Now()), results); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(out.String(), "| bundle |") || !strings.Contains(out.String(), "bundles sold a second") {
			t.Errorf("report lacks the bundle row or its note:\n%s", out.String())
		}
		t.Logf("bundle:\n%s", out.String())
	})

	// The kafka rows as -compare runs them without -kafka-brokers: on kfake
	// in the tool's process, started and closed for each row.
	t.Run("compare/kafka", func(t *testing.T) {
		cfg := postgresCompare(ctx, t, bin, "-rows", "flash/combine/events/kafka,flash/combine/kafka")
		results, err := compare(ctx, cfg, &bytes.Buffer{})
		if err != nil || len(results) != 2 {
			t.Fatalf("compare: %d results, err %v", len(results), err)
		}
		for _, r := range results {
			a, l := r.audit, r.lag
			if r.err != nil || r.skipped != "" || r.failed() || a == nil || a.Sold == 0 || a.Ledger != a.Sold || len(r.errors) > 0 {
				t.Errorf("%s: err %v, skipped %q, errors %v, audit %+v: want units sold, audited, no error", r.row.name, r.err, r.skipped, r.errors, a)
				continue
			}
			if l == nil || l.Samples == 0 || l.CaughtErr != nil || l.Behind {
				t.Errorf("%s: lag %+v: want sampled and caught up", r.row.name, l)
			}
			if !r.emulated {
				t.Errorf("%s: not marked as run on kfake", r.row.name)
			}
		}
		var out bytes.Buffer
		if err := render(&out, "markdown", header(cfg, time.Now()), results); err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{"| flash/combine/kafka |", "flash/combine/events/kafka, flash/combine/kafka: Kafka here is kfake", "flash/combine/kafka: publisher lag "} {
			if !strings.Contains(out.String(), want) {
				t.Errorf("report lacks %q:\n%s", want, out.String())
			}
		}
		t.Logf("kafka:\n%s", out.String())
	})

	t.Run("url", func(t *testing.T) {
		dbPath := t.TempDir() + "/inventory.db"
		srv, err := server.Start(ctx, bin, map[string]string{
			"INVENTORY_DB_DRIVER": "sqlite", "INVENTORY_DB_DSN": dbPath,
		})
		if err != nil {
			t.Fatal(err)
		}
		defer func() {
			if err := srv.Stop(); err != nil {
				t.Error(err)
			}
		}()
		for _, args := range [][]string{
			{"-scenario", "flash", "-duration", "1s"},
			{"-scenario", "mixed", "-requests", "400", "-products", "20", "-format", "markdown"},
			{"-scenario", "ceiling", "-requests", "200"},
			{"-scenario", "product", "-requests", "200", "-products", "10"},
			{"-scenario", "storefront", "-requests", "50"},
			{"-scenario", "flash-reads", "-duration", "1s", "-writers", "2"},
			{"-scenario", "transfer", "-duration", "1s"},
			{"-scenario", "bundle", "-duration", "1s"},
			{"-scenario", "bundle-hot-last", "-duration", "1s"},
		} {
			var stdout, stderr bytes.Buffer
			args = append([]string{"invbench", "-url", srv.URL, "-clients", "8"}, args...)
			if err := run(ctx, args, func(string) string { return "" }, &stdout, &stderr); err != nil {
				t.Fatalf("run %q: %v\n%s\n%s", args, err, stdout.String(), stderr.String())
			}
			if !strings.Contains(stdout.String(), "ops/s") || !strings.Contains(stdout.String(), " ok ") && load.Sells(args[6]) {
				t.Errorf("run %q printed:\n%s\nstderr:\n%s", args, stdout.String(), stderr.String())
			}
			t.Logf("%q:\n%s", args[5:], stdout.String())
		}

		// Every request of the read and reservation scenarios succeeds,
		// and the reservation scenarios pass their audit.
		for _, scenario := range []string{"product", "storefront", "flash-reads", "reserve", "checkout"} {
			cfg, err := parseConfig([]string{"-url", srv.URL, "-clients", "4", "-writers", "1", "-scenario", scenario, "-requests", "100", "-quiet"},
				func(string) string { return "" }, &bytes.Buffer{})
			if err != nil {
				t.Fatal(err)
			}
			r, err := against(ctx, cfg, &bytes.Buffer{})
			reads := !slices.Contains([]string{"reserve", "checkout"}, scenario)
			writes := !slices.Contains([]string{"product", "storefront"}, scenario)
			if err != nil || r.err != nil || len(r.errors) > 0 || (r.reads > 0) != reads || (r.writes > 0) != writes || r.failed() {
				t.Errorf("%s: %d reads, %d writes, errors %v, err %v / %v, audit %+v", scenario, r.reads, r.writes, r.errors, err, r.err, r.audit)
			}
			if a := r.audit; scenario == "checkout" && (a == nil || a.Sold == 0 || a.Lost() != a.Sold) {
				t.Errorf("checkout: audit %+v: want units sold, each out of stock", a)
			}
			if a := r.audit; scenario == "reserve" && (a == nil || a.Held != 100 || a.ReservedAfter-a.ReservedBefore != 100) {
				t.Errorf("reserve: audit %+v: want 100 units held", a)
			}
		}

		t.Run("transfer", func(t *testing.T) { testTransfer(ctx, t, srv.URL) })
		for _, scenario := range []string{"bundle", "bundle-hot-last"} {
			t.Run(scenario, func(t *testing.T) { testBundle(ctx, t, srv.URL, dbPath, scenario) })
		}

		// A short soak: peak for 1s, then half of it for 3s, sampled
		// every 500ms; the server stays flat.
		var stdout, stderr bytes.Buffer
		args := []string{"invbench", "-url", srv.URL, "-clients", "8", "-scenario", "mixed", "-products", "20",
			"-duration", "1s", "-soak", "3s", "-soak-load", "0.5", "-soak-sample", "500ms", "-quiet"}
		if err := run(ctx, args, func(string) string { return "" }, &stdout, &stderr); err != nil {
			t.Fatalf("soak: %v\n%s\n%s", err, stdout.String(), stderr.String())
		}
		for _, want := range []string{"soaking at 50%", "| goroutines |", ": flat"} {
			if !strings.Contains(stdout.String(), want) {
				t.Errorf("soak report lacks %q:\n%s", want, stdout.String())
			}
		}
		t.Logf("soak:\n%s", stdout.String())
	})

	// Stock-outs as commands through each broker, against a server that
	// publishes its events there too.
	for _, kind := range transport.Brokers() {
		t.Run(kind, func(t *testing.T) { testCommandTransport(ctx, t, bin, kind) })
	}

	t.Run("token", func(t *testing.T) {
		const token = "bench-admin-token-0123"
		srv, err := server.Start(ctx, bin, map[string]string{
			"INVENTORY_DB_DRIVER": "sqlite", "INVENTORY_DB_DSN": t.TempDir() + "/inventory.db",
			"INVENTORY_AUTH_TOKENS": "bench:admin:" + token,
		})
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = srv.Stop() }()
		args := []string{"invbench", "-url", srv.URL, "-clients", "4", "-scenario", "flash", "-requests", "100"}
		var stdout, stderr bytes.Buffer
		if err := run(ctx, args, func(string) string { return "" }, &stdout, &stderr); err == nil {
			t.Error("a run without the token succeeded against a server that needs one")
		}
		env := func(k string) string { return map[string]string{"INVENTORY_TOKEN": token}[k] }
		if err := run(ctx, args, env, &stdout, &stderr); err != nil {
			t.Errorf("with INVENTORY_TOKEN: %v\n%s", err, stdout.String())
		}
	})
}

// postgresCompare is the configuration of a -compare run of 1s rows of 8
// clients on bin, as -compare runs them: PostgreSQL (the ledger counted
// with SQL there) and a Redis of the test's own; args add to it.
func postgresCompare(ctx context.Context, t *testing.T, bin string, args ...string) config {
	t.Helper()
	redis := redistest.Start(t)
	cfg, err := parseConfig(append([]string{"-compare", "-duration", "1s", "-clients", "8", "-server-bin", bin,
		"-redis-addrs", redis.Addr, "-quiet"}, args...), os.Getenv, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if u, err := neturl.Parse(cfg.pgAdminDSN); err != nil || !reachable(ctx, u.Host) {
		testenv.SkipOrFail(t, "PostgreSQL is not reachable at "+cfg.pgAdminDSN)
	}
	return cfg
}

// testTransfer runs the transfer scenario against a running server and
// checks its audit: every unit is sold, on hand at one of the locations,
// or in transit.
func testTransfer(ctx context.Context, t *testing.T, url string) {
	// transfer runs the scenario with args and returns its result, failed
	// unless it ran, was audited and its audit holds.
	transfer := func(t *testing.T, args ...string) result {
		t.Helper()
		args = append([]string{"-url", url, "-scenario", "transfer", "-quiet"}, args...)
		cfg, err := parseConfig(args, func(string) string { return "" }, &bytes.Buffer{})
		if err != nil {
			t.Fatal(err)
		}
		r, err := against(ctx, cfg, &bytes.Buffer{})
		if err != nil || r.err != nil {
			t.Fatalf("against: %v / %v", err, r.err)
		}
		a, m := r.audit, r.moves
		if a == nil || a.Transfers == nil || m == nil {
			t.Fatalf("audit %+v, moves %+v: want a transfer audit", a, m)
		}
		t.Logf("sold %d, on hand %d, in transit %d of %d; %d steps, %d transfers received; transfers %v; errors %v",
			a.Sold, a.Final, a.InTransit, a.Initial, m.steps, m.transfers, a.Transfers.ByStatus, r.errors)
		if r.failed() || a.Unknown != 0 || a.Sold+a.Final+a.InTransit != a.Initial || a.Ledger != a.Sold {
			t.Fatalf("audit %+v, problems %v: want every unit sold, on hand or in transit", *a, a.Problems())
		}
		return r
	}
	t.Run("InTransit", func(t *testing.T) {
		// One client is one mover, so 29 steps are 9 transfers received
		// and a tenth shipped.
		r := transfer(t, "-clients", "1", "-requests", "29")
		a := r.audit
		want := map[string]int64{"RECEIVED": 9, "IN_TRANSIT": 1}
		if len(r.errors) > 0 || r.moves.transfers != 9 || !maps.Equal(a.Transfers.ByStatus, want) || a.InTransit < 1 || a.InTransit > 3 {
			t.Errorf("errors %v, %d received, transfers %v, %d in transit: want 9 received and 1..3 units in transit",
				r.errors, r.moves.transfers, a.Transfers.ByStatus, a.InTransit)
		}
	})
	t.Run("ErrInsufficientStock", func(t *testing.T) {
		// Seven sellers and a mover: the origin sells out, and sales and
		// shipments are refused as they should be.
		r := transfer(t, "-clients", "8", "-requests", "600", "-stock", "100")
		if n := r.errors["INSUFFICIENT_STOCK"]; n == 0 || len(r.errors) > 1 {
			t.Errorf("errors %v: want INSUFFICIENT_STOCK only", r.errors)
		}
	})
}

// testBundle runs a bundle scenario against a running server on SQLite
// (dbPath) and checks its audit: each component's stock fell by the units
// of the bundles sold and of its own sales, and its ledger, read through
// GraphQL and with SQL alike, says so, with one row naming the bundle per
// bundle sold. The hot component has the lower product ID in bundle, the
// higher in bundle-hot-last.
func testBundle(ctx context.Context, t *testing.T, url, dbPath, scenario string) {
	// bundle runs the scenario with args and returns its result, failed
	// unless it ran, was audited and its audit holds.
	bundle := func(t *testing.T, args ...string) result {
		t.Helper()
		args = append([]string{"-url", url, "-scenario", scenario, "-clients", "8", "-quiet"}, args...)
		cfg, err := parseConfig(args, func(string) string { return "" }, &bytes.Buffer{})
		if err != nil {
			t.Fatal(err)
		}
		r, err := against(ctx, cfg, &bytes.Buffer{})
		if err != nil || r.err != nil {
			t.Fatalf("against: %v / %v", err, r.err)
		}
		a, s := r.audit, r.bundle
		if a == nil || a.Bundle == nil || s == nil {
			t.Fatalf("audit %+v, bundle sales %+v: want a bundle audit", a, s)
		}
		b := a.Bundle
		t.Logf("%d bundle stock-outs, %d bundles sold, %d direct stock-outs; parts %+v; errors %v",
			s.outs, s.sold, r.writes-s.outs, b.Parts, r.errors)
		if r.failed() || a.Unknown != 0 || b.Sold != s.sold || s.sold == 0 || len(b.Parts) != 2 {
			t.Fatalf("audit %+v, problems %v: want bundles sold and the audit holding", *a, a.Problems())
		}
		hot, cold := b.Parts[0].ID, b.Parts[1].ID
		if last := len(hot) > len(cold) || len(hot) == len(cold) && hot > cold; last != (scenario == "bundle-hot-last") {
			t.Errorf("%s: the hot component is product %s, the other %s", scenario, hot, cold)
		}
		for _, p := range b.Parts {
			if p.Audit.Lost() != p.Audit.Sold || p.Audit.Ledger != p.Audit.Sold || p.BundleRows != s.sold {
				t.Errorf("product %s: %+v, %d rows naming the bundle; want its units sold lost and in the ledger, %d rows",
					p.ID, p.Audit, p.BundleRows, s.sold)
			}
		}
		// The ledger with SQL says what it said through GraphQL.
		ids := []string{b.Parts[0].ID, b.Parts[1].ID}
		outs, err := audit.Ledger(ctx, nil, &audit.DB{Driver: "sqlite", DSN: "file:" + dbPath + "?_pragma=busy_timeout(10000)"}, ids, b.ID)
		if err != nil {
			t.Fatal(err)
		}
		for i, p := range b.Parts {
			if outs[i] != (audit.Outs{Units: p.Audit.Ledger, BundleRows: p.BundleRows}) {
				t.Errorf("product %s: SQL %+v, GraphQL %d units, %d rows", p.ID, outs[i], p.Audit.Ledger, p.BundleRows)
			}
		}
		return r
	}
	t.Run("OK", func(t *testing.T) {
		r := bundle(t, "-requests", "200")
		s, parts := r.bundle, r.audit.Bundle.Parts
		direct := r.writes - s.outs
		if len(r.errors) > 0 || s.sold != s.outs || direct == 0 || r.writes != 200 {
			t.Errorf("errors %v, %d bundle stock-outs (%d sold) of %d: want no error, and direct sales beside them", r.errors, s.outs, s.sold, r.writes)
		}
		if parts[0].Audit.Sold != 2*s.sold+direct || parts[1].Audit.Sold != s.sold {
			t.Errorf("units sold %d and %d: want %d (2 a bundle, and %d on their own) and %d",
				parts[0].Audit.Sold, parts[1].Audit.Sold, 2*s.sold+direct, direct, s.sold)
		}
	})
	t.Run("ErrInsufficientStock", func(t *testing.T) {
		// 100 units of each component: the first sells out, between
		// bundles and its own sales, and then neither sells.
		r := bundle(t, "-requests", "600", "-stock", "100")
		if n := r.errors["INSUFFICIENT_STOCK"]; n == 0 || len(r.errors) > 1 {
			t.Errorf("errors %v: want INSUFFICIENT_STOCK only", r.errors)
		}
		if p := r.audit.Bundle.Parts[0].Audit; p.Final > 1 {
			t.Errorf("the first component ends at %d: want fewer than a bundle's 2", p.Final)
		}
	})
}

// testBroker is the broker of kind for a test, and the flag naming it:
// the tests' shared NATS (natstest.URL), the machine's RabbitMQ (or
// INVENTORY_TEST_RABBITMQ_URL), or a kfake cluster of the test's own.
func testBroker(t *testing.T, kind string) (url, flag string) {
	switch kind {
	case brokerRabbitMQ:
		return cmp.Or(os.Getenv("INVENTORY_TEST_RABBITMQ_URL"), "amqp://guest:guest@127.0.0.1:5672/"), "-rabbitmq-url"
	case brokerKafka:
		return strings.Join(kafkatest.Start(t).Addrs, ","), "-kafka-brokers"
	}
	return natstest.URL(), "-nats-url"
}

// testCommandTransport runs flash with -transport kind against a server
// taking commands from a broker of the test's own: the sale sells out (the
// rest answer INSUFFICIENT_STOCK), the audit holds, and the publisher's
// lag and catching up are in the report.
func testCommandTransport(ctx context.Context, t *testing.T, bin, kind string) {
	url, urlFlag := testBroker(t, kind)
	cfg := config{natsURL: url, rabbitURL: url, kafkaBrokers: url}
	bt := rowBroker(kind, cfg)
	cleanup, err := bt.Claim(ctx)
	if err != nil {
		testenv.SkipOrFail(t, kind+" is not reachable at "+url+": "+err.Error())
	}
	defer func() {
		if err := cleanup(); err != nil {
			t.Error(err)
		}
	}()
	// The compare rows' environment, on SQLite with the local lock.
	row := rowSpec{strategy: "combine", lock: "local", transport: kind, broker: kind}
	srv, err := server.Start(ctx, bin, row.serverEnv(&database{driver: "sqlite", dsn: t.TempDir() + "/inventory.db"}, "", "", bt))
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := srv.Stop(); err != nil {
			t.Error(err)
		}
	}()
	cfg, err = parseConfig([]string{"-url", srv.URL, "-transport", kind, urlFlag, url, "-namespace", bt.Namespace,
		"-events-lag", "-clients", "8", "-requests", "300", "-stock", "100", "-quiet"},
		func(string) string { return "" }, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	r, err := against(ctx, cfg, &bytes.Buffer{})
	if err != nil || r.err != nil {
		t.Fatalf("against: %v / %v", err, r.err)
	}
	a := r.audit
	if a == nil || a.Sold != 100 || a.Final != 0 || a.Ledger != 100 || r.failed() || r.errors["INSUFFICIENT_STOCK"] != 200 || len(r.errors) != 1 {
		t.Errorf("audit %+v, errors %v: want 100 sold, 200 INSUFFICIENT_STOCK", a, r.errors)
	}
	if l := r.lag; l == nil || l.CaughtErr != nil || l.Behind {
		t.Errorf("lag %+v: want sampled and caught up", l)
	}
	var out bytes.Buffer
	if err := render(&out, "text", header(cfg, time.Now()), []result{r}); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"lag p99/max ms", "flash: publisher lag ", "caught up in "} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, out.String())
		}
	}
	t.Logf("%s:\n%s", kind, out.String())
}
