package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/shopstack/inventory/cmd/invbench/internal/audit"
	"github.com/shopstack/inventory/cmd/invbench/internal/load"
	"github.com/shopstack/inventory/cmd/invbench/internal/server"
	"github.com/shopstack/inventory/cmd/invbench/internal/transport"
)

// compare runs each row against a fresh server on a fresh database, one
// after the other, and returns every row's result; a row that fails does
// not stop the others.
func compare(ctx context.Context, cfg config, stderr io.Writer) ([]result, error) {
	rows, err := selectRows(compareRows(), cfg.rows)
	if err != nil {
		return nil, err
	}
	logf := func(format string, args ...any) {
		if !cfg.quiet {
			fmt.Fprintf(stderr, format+"\n", args...)
		}
	}
	bin := cfg.serverBin
	if bin == "" {
		dir, err := os.MkdirTemp("", "invbench-")
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(dir)
		logf("building ./cmd/inventoryd")
		if bin, err = server.Build(ctx, dir); err != nil {
			return nil, err
		}
	}
	c := transport.New(cfg.clients, cfg.timeout)
	var results []result
	for _, row := range rows {
		res := compareRow(ctx, cfg, bin, row, c, logf, stderr)
		if res.err != nil {
			logf("%s: %v", row.name, res.err)
		}
		results = append(results, res)
		if ctx.Err() != nil {
			return results, ctx.Err()
		}
	}
	return results, nil
}

// compareRow provisions the row's database, starts its server, runs and
// audits the scenario, stops the server and drops the database.
func compareRow(ctx context.Context, cfg config, bin string, row rowSpec, c *transport.Client, logf func(string, ...any), stderr io.Writer) (res result) {
	res = result{row: row, clients: cfg.clients}
	if row.lock == "etcd" && !reachable(ctx, cfg.etcd) {
		res.skipped = "etcd does not answer at " + cfg.etcd
		logf("%s: skipped: %s", row.name, res.skipped)
		return res
	}
	var bt transport.Broker
	if row.broker != "" {
		var cleanup func() error
		var err error
		bt, cleanup, err = claimBroker(ctx, row.broker, cfg)
		if err != nil {
			res.skipped = fmt.Sprintf("%s does not answer at %s: %v", row.broker, bt.Where(), err)
			logf("%s: skipped: %s", row.name, res.skipped)
			return res
		}
		defer func() { // after the server stops
			if err := cleanup(); err != nil {
				logf("%s: clean-up: %v", row.name, err)
			}
		}()
	}
	var db *database
	var err error
	if row.db == "sqlite" {
		db, err = createSQLite()
	} else {
		db, err = createPostgres(ctx, cfg.pgAdminDSN)
	}
	if err != nil {
		res.err = err
		return res
	}
	defer func() {
		if err := db.drop(ctx); err != nil && res.err == nil {
			res.err = err
		}
	}()
	srv, err := server.Start(ctx, bin, row.serverEnv(db, cfg.redis, cfg.etcd, bt))
	if err != nil {
		res.err = err
		return res
	}
	defer func() {
		if err := srv.Stop(); err != nil && res.err == nil && ctx.Err() == nil {
			res.err = err
		}
	}()
	logf("%s: server %s (%s, lock %s, strategy %s)", row.name, srv.URL, row.db, row.lock, row.strategy)
	c.Use(srv.URL)
	grpcTarget := srv.URL
	if srv.GRPCAddr != "" {
		grpcTarget = "http://" + srv.GRPCAddr
	}
	if err := c.Speak(row.transport, grpcTarget, bt); err != nil {
		res.err = err
		return res
	}
	defer func() { _ = c.Speak(transport.GraphQL, "", transport.Broker{}) }()
	clients, writers := row.load(cfg.clients, cfg.writers)
	res.clients = clients
	products := cfg.products
	if row.products > 0 {
		products = row.products
	}
	w, err := load.Prepare(ctx, c, row.scenario, products, cfg.stock, cfg.clients, writers)
	if err != nil {
		res.err = fmt.Errorf("prepare %s: %w", row.scenario, err)
		return res
	}
	var progress io.Writer
	if !cfg.quiet {
		progress = stderr
	}
	lc := load.Config{Clients: clients, Duration: cfg.duration, Requests: cfg.requests}
	t := target{pid: srv.PID(), db: &db.ref}
	if row.broker != "" {
		t.metrics = srv.URL + "/metrics"
	}
	out, err := measure(ctx, c, w, lc, row, t, progress)
	out.err, out.emulated = err, bt.Emulated
	return out
}

// rowBroker names a broker target of the row run's own, so rows and runs
// never read each other's commands or events.
func rowBroker(kind string, cfg config) transport.Broker {
	return transport.Row(kind, cfg.brokerURL(kind))
}

// claimBroker names the row's broker target and claims it (see
// transport.Broker.Claim). Kafka without -kafka-brokers is kfake, started
// here for the row and closed by cleanup, after the claim's own clean-up.
func claimBroker(ctx context.Context, kind string, cfg config) (bt transport.Broker, cleanup func() error, err error) {
	stop := func() {}
	if kind == brokerKafka && cfg.kafkaBrokers == "" {
		if bt, stop, err = transport.EmulateKafka(); err != nil {
			return bt, nil, err
		}
	} else {
		bt = rowBroker(kind, cfg)
	}
	release, err := bt.Claim(ctx)
	if err != nil {
		stop()
		return bt, nil, err
	}
	return bt, func() error {
		defer stop()
		return release()
	}, nil
}

// against measures one scenario against a running server (-url).
func against(ctx context.Context, cfg config, stderr io.Writer) (result, error) {
	row := rowSpec{name: cfg.scenario, scenario: cfg.scenario, strategy: "-", db: "-", lock: "-", transport: cfg.transport}
	c := transport.New(cfg.clients, cfg.timeout)
	c.Use(cfg.url)
	c.Bearer(cfg.token)
	grpcTarget := cfg.url
	if cfg.grpcAddr != "" {
		grpcTarget = "http://" + cfg.grpcAddr
	}
	bt := transport.Broker{Kind: cfg.transport, URL: cfg.brokerURL(cfg.transport), Namespace: cfg.namespace}
	if err := c.Speak(cfg.transport, grpcTarget, bt); err != nil {
		return result{row: row}, err
	}
	defer func() { _ = c.Speak(transport.GraphQL, "", transport.Broker{}) }()
	w, err := load.Prepare(ctx, c, cfg.scenario, cfg.products, cfg.stock, cfg.clients, cfg.writers)
	if err != nil {
		return result{row: row}, fmt.Errorf("prepare %s: %w", cfg.scenario, err)
	}
	var t target
	if cfg.ledgerDSN != "" {
		t.db = &audit.DB{Driver: "pgx", DSN: cfg.ledgerDSN}
	}
	if cfg.eventsLag {
		t.metrics = strings.TrimSuffix(cfg.url, "/") + "/metrics"
	}
	var progress io.Writer
	if !cfg.quiet {
		progress = stderr
	}
	lc := load.Config{Clients: cfg.clients, Duration: cfg.duration, Requests: cfg.requests}
	res, err := measure(ctx, c, w, lc, row, t, progress)
	res.err = err
	return res, nil
}
