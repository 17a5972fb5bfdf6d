package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime/debug"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"google.golang.org/grpc"

	"github.com/shopstack/inventory/graph"
	"github.com/shopstack/inventory/internal/app"
	"github.com/shopstack/inventory/internal/auth"
	"github.com/shopstack/inventory/internal/config"
	"github.com/shopstack/inventory/internal/flow"
	"github.com/shopstack/inventory/internal/gormstore"
	"github.com/shopstack/inventory/internal/grpcapi"
	"github.com/shopstack/inventory/internal/inventory"
	"github.com/shopstack/inventory/internal/readmodel"
	"github.com/shopstack/inventory/internal/telemetry"
)

// drain waits d with the server still serving and /readyz answering 503;
// a second SIGINT or SIGTERM ends it early.
func drain(d time.Duration, log *slog.Logger) {
	if d <= 0 {
		return
	}
	again := make(chan os.Signal, 1)
	signal.Notify(again, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(again)
	log.Info("draining: not ready, still serving (a second signal stops at once)", "drain", d.String())
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-again:
	}
}

// errShuttingDown is the serving check's error once shutdown has begun.
var errShuttingDown = errors.New("shutting down")

// run starts the service and serves until ctx is done or SIGINT/SIGTERM
// arrives, then shuts down gracefully: it stops accepting, lets in-flight
// requests finish, ends subscriptions, and closes the database. Logs are
// JSON lines on stdout.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()

	if len(args) == 2 && (args[1] == "-version" || args[1] == "--version") {
		_, err := fmt.Fprintln(stdout, "inventoryd", buildVersion())
		return err
	}
	cfg, err := config.Load(args[1:], getenv, stdout)
	if errors.Is(err, config.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	log := slog.New(slog.NewJSONHandler(stdout, &slog.HandlerOptions{Level: cfg.LogLevel}))
	if getenv("GOGC") == "" {
		defer debug.SetGCPercent(debug.SetGCPercent(cfg.GCPercent))
	}

	tokens, err := auth.Parse(cfg.AuthTokens)
	if err != nil {
		return err
	}
	for _, a := range []*string{&cfg.Addr, &cfg.GRPCAddr} {
		if *a == "" {
			continue
		}
		switch addr, changed := loopbackOnly(*a); {
		case tokens != nil || cfg.OIDCIssuer != "" || !changed:
		case cfg.AllowAnonymous:
			log.Warn("no INVENTORY_AUTH_TOKENS and INVENTORY_ALLOW_ANONYMOUS=true: every caller who can reach the address is admin", "addr", *a)
		default:
			log.Warn("no INVENTORY_AUTH_TOKENS or INVENTORY_OIDC_ISSUER: every caller would be admin, so the server listens on loopback only; "+
				"set tokens or a provider, or INVENTORY_ALLOW_ANONYMOUS=true on a private network", "asked", *a, "addr", addr)
			*a = addr
		}
	}
	obs, err := openTelemetry(ctx, cfg, getenv, log)
	if err != nil {
		return err
	}
	defer obs.shutdown(log)
	store, err := gormstore.Open(ctx, gormstore.Config{Driver: cfg.DBDriver, DSN: cfg.DBDSN, MaxOpenConns: cfg.DBMaxConns,
		Logger: log, TracerProvider: obs.traced})
	if err != nil {
		return err
	}
	defer store.Close()

	clock, err := newDBClock(ctx, store.Clock, cfg.ClockSkew, log)
	if err != nil {
		return fmt.Errorf("read the database's clock: %w", err)
	}
	defer clock.Close()
	authn, err := openAuth(ctx, cfg, tokens, clock.Now, log)
	if err != nil {
		return err
	}
	defer authn.Close()
	locker, err := openLocker(ctx, cfg, store, obs.traced, log)
	if err != nil {
		return err
	}
	defer locker.Close()
	fanout, err := openFanout(ctx, cfg, log)
	if err != nil {
		return err
	}
	if fanout != nil {
		defer fanout.Close()
	}
	fc, err := openFlow(ctx, cfg, store, log)
	if err != nil {
		return err
	}
	defer fc.Close()
	reads, err := openReadModel(ctx, cfg, store, log)
	if err != nil {
		return err
	}
	if reads != nil {
		defer reads.Close()
	}
	svc := app.New(app.Config{
		Writer:            fc.GuardWriter(store),
		Catalog:           store,
		Ledger:            store,
		Reservations:      store,
		Transfers:         store,
		Audit:             store,
		Now:               clock.Now,
		Locker:            telemetry.Locker(fc.GuardLocker(locker), cfg.LockBackend, obs.traced, obs.metrics),
		Elector:           elector(locker),
		Advancer:          advancer(locker),
		Logger:            log,
		LockTimeout:       cfg.LockTimeout,
		LeaseIdle:         cfg.LeaseIdle,
		PollInterval:      cfg.EventPollInterval,
		Strategy:          app.Strategy(cfg.StockStrategy),
		MaxBatch:          cfg.CombineMaxBatch,
		MaxWaiting:        cfg.CombineMaxWaiting,
		MaxReservationTTL: cfg.ReservationMaxTTL,
		ReapInterval:      cfg.ReapInterval,
		Fanout:            fanoutOrNil(fanout),
		TracerProvider:    obs.traced,
		Observer:          obs.metrics,
		ReadModel:         readModelOrNil(reads),
	})
	obs.metrics.WatchService(svc)
	var answers *graph.Answers
	if reads != nil {
		obs.metrics.WatchReadModel(reads)
		if cfg.AnswerCacheMB > 0 {
			answers = graph.NewAnswers(svc, cfg.AnswerCacheMB<<20)
			obs.metrics.WatchAnswers(func() telemetry.CacheStats {
				s := answers.Stats()
				return telemetry.CacheStats{Hits: s.Hits, Misses: s.Misses, Entries: s.Answers, Bytes: s.Bytes}
			})
		}
	}
	if cfg.StockStrategy != string(app.StrategyCombine) {
		log.Warn("benchmark-only stock strategy (a benchstrategies build): not for production", "strategy", cfg.StockStrategy)
	}
	if err := svc.Start(ctx); err != nil {
		return fmt.Errorf("start event feed: %w", err)
	}
	defer svc.Close()

	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	// Requests run on a context that outlives the shutdown signal, so
	// in-flight mutations finish; it is cancelled after the HTTP server has
	// drained, which ends WebSocket connections.
	baseCtx, cancelBase := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelBase()
	sockets := &graph.Sockets{}
	// One admission chain for every transport: each operation is authorized,
	// then flow-controlled (and counted) the same way whatever it came by.
	persisted := graph.AutomaticPersistedQueries(cfg.PersistedQueries)
	if cfg.TrustedDocuments != "" {
		if persisted, err = graph.LoadTrustedDocuments(cfg.TrustedDocuments); err != nil {
			return fmt.Errorf("INVENTORY_TRUSTED_DOCUMENTS: %w", err)
		}
		log.Info("trusted documents: only their operations run", "file", cfg.TrustedDocuments, "operations", persisted.Trusted())
	}
	deps := handlerDeps{svc: svc, flow: fc, gate: inventory.NewGate(obs.metrics.Admission(fc)), registry: newRegistry(fc, obs.metrics),
		checks: readiness(store, locker), tracer: obs.traced, propagator: obs.tel.Propagator, authn: authn, log: log,
		introspection: cfg.Introspection, maxDepth: cfg.MaxQueryDepth, maxComplexity: cfg.MaxQueryComplexity, wsOrigins: cfg.WSOrigins,
		answers: answers, sockets: sockets, httpCacheMaxAge: cfg.HTTPCacheMaxAge, persisted: persisted}
	deps.registry.MustRegister(dutyLeading("reaper", svc.Leading))
	// From the shutdown signal on, /readyz says so, while requests are
	// still served for INVENTORY_SHUTDOWN_DRAIN: load balancers that watch
	// readiness stop sending before the listener closes.
	var stopping atomic.Bool
	deps.checks = append(deps.checks, check{name: "serving", fn: func(context.Context) error {
		if stopping.Load() {
			return errShuttingDown
		}
		return nil
	}})
	stopEvents, brokerReady, err := startBroker(ctx, cfg, store, svc, deps.gate, authn, elector(locker), deps.registry, log)
	if err != nil {
		return fmt.Errorf("broker: %w", err)
	}
	defer stopEvents()
	if brokerReady != nil {
		deps.checks = append(deps.checks, *brokerReady)
	}
	handler, err := newHandler(deps)
	if err != nil {
		return err
	}
	// HTTP/2 without TLS (h2c) beside HTTP/1.1 on the one port: gRPC
	// needs HTTP/2; browsers and curl keep HTTP/1.1.
	protocols := new(http.Protocols)
	protocols.SetHTTP1(true)
	protocols.SetUnencryptedHTTP2(true)
	srv := &http.Server{
		Handler:           handler,
		Protocols:         protocols,
		ReadHeaderTimeout: 10 * time.Second,
		MaxHeaderBytes:    64 << 10,
		IdleTimeout:       2 * time.Minute,
		BaseContext:       func(net.Listener) context.Context { return baseCtx },
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	// Streaming responses (SSE subscriptions) would hold the shutdown to its
	// timeout: they end when it starts. WebSockets, which Shutdown does not
	// wait for, are closed with Going Away, so clients reconnect elsewhere.
	srv.RegisterOnShutdown(func() {
		svc.EndSubscriptions()
		sockets.GoAway()
	})
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	var gs *grpc.Server
	if cfg.GRPCAddr != "" {
		gln, err := net.Listen("tcp", cfg.GRPCAddr)
		if err != nil {
			return fmt.Errorf("listen (gRPC): %w", err)
		}
		gs = grpcapi.NewGRPCServer(svc, grpcOptions(deps))
		go func() {
			if err := gs.Serve(gln); err != nil {
				serveErr <- fmt.Errorf("gRPC: %w", err)
			}
		}()
		defer gs.Stop()
		log.Info("gRPC listening", "addr", gln.Addr().String())
	}
	if cfg.PprofAddr != "" {
		stopPprof, err := servePprof(cfg.PprofAddr, log)
		if err != nil {
			return err
		}
		defer stopPprof()
	}
	log.Info("listening", "addr", ln.Addr().String(), "url", "http://"+ln.Addr().String()+"/",
		"db", cfg.DBDriver, "lock", cfg.LockBackend, "auth", authMode(authn, cfg.AllowAnonymous), "lockDomain", locker.Domain(), "lockEpoch", svc.LockEpoch(), "flowRules", fc.Status().Source)

	select {
	case err := <-serveErr:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	stopping.Store(true)
	drain(cfg.ShutdownDrain, log)
	log.Info("shutting down", "timeout", cfg.ShutdownTimeout.String())
	shutdownCtx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	grpcDone := make(chan struct{})
	go func() {
		defer close(grpcDone)
		if gs != nil {
			gs.GracefulStop() // streams end with the subscriptions, at Shutdown's start
		}
	}()
	err = srv.Shutdown(shutdownCtx)
	select {
	case <-grpcDone:
	case <-shutdownCtx.Done():
		if gs != nil {
			gs.Stop()
		}
	}
	svc.Close()
	cancelBase()
	if err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	log.Info("stopped")
	return nil
}

// openReadModel starts the read model, unless it is turned off (nil).
func openReadModel(ctx context.Context, cfg config.Config, store *gormstore.Store, log *slog.Logger) (*readmodel.View, error) {
	if cfg.ReadModelProducts == 0 {
		return nil, nil
	}
	view := readmodel.New(readmodel.Config{Source: store, Capacity: cfg.ReadModelProducts, Logger: log})
	if err := view.Start(ctx); err != nil {
		return nil, fmt.Errorf("start the read model: %w", err)
	}
	return view, nil
}

// readModelOrNil keeps a nil view a nil interface.
func readModelOrNil(v *readmodel.View) inventory.ReadModel {
	if v == nil {
		return nil
	}
	return v
}

// loopbackOnly returns addr with its host made a loopback address if it
// is not one, and whether it changed.
func loopbackOnly(addr string) (string, bool) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr, false
	}
	if host == "localhost" {
		return addr, false
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return addr, false
	}
	return net.JoinHostPort("127.0.0.1", port), true
}

// openAuth is the authenticator of every transport: the static tokens,
// and the OpenID provider's access tokens if one is configured.
func openAuth(ctx context.Context, cfg config.Config, tokens *auth.Tokens, now func() time.Time, log *slog.Logger) (*auth.Authenticator, error) {
	ac := auth.Config{Tokens: tokens, Now: now, Log: log}
	if cfg.OIDCIssuer != "" {
		ac.OIDC = &auth.OIDC{Issuer: cfg.OIDCIssuer, Audience: cfg.OIDCAudience, RolesClaim: cfg.OIDCRolesClaim}
	}
	return auth.New(ctx, ac)
}

// authMode says how callers are authenticated, for the start-up log.
func authMode(a *auth.Authenticator, anonymous bool) string {
	switch {
	case !a.Enabled() && anonymous:
		return "none (INVENTORY_ALLOW_ANONYMOUS)"
	case !a.Enabled():
		return "none (loopback only)"
	}
	return a.Mode()
}

// newRegistry is the registry /metrics serves.
func newRegistry(fc *flow.Controller, m *telemetry.Metrics) *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(metricCollectors(fc, m)...)
	return reg
}

// dutyLeading reports whether this replica leads an elected duty ("reaper",
// "events"): summed over replicas it is 1 while the duty is done, 0 when no
// replica leads it.
func dutyLeading(duty string, leading func() bool) prometheus.Collector {
	return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "inventory_duty_leading",
		Help:        "1 on the replica that leads the duty (reaper: expiring reservations; events: publishing the ledger), 0 on the others.",
		ConstLabels: prometheus.Labels{"duty": duty}},
		func() float64 {
			if leading() {
				return 1
			}
			return 0
		})
}

// metricCollectors are what /metrics reports: the Go runtime, the process,
// flow control and the service.
func metricCollectors(fc *flow.Controller, m *telemetry.Metrics) []prometheus.Collector {
	return []prometheus.Collector{collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), fc, m}
}
