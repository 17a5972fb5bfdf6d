package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/shopstack/inventory/graph"
	"github.com/shopstack/inventory/internal/app"
	"github.com/shopstack/inventory/internal/auth"
	"github.com/shopstack/inventory/internal/flow"
	"github.com/shopstack/inventory/internal/gormstore"
	"github.com/shopstack/inventory/internal/grpcapi"
	"github.com/shopstack/inventory/internal/inventory"
	"github.com/shopstack/inventory/internal/lock"
	"github.com/shopstack/inventory/internal/rest"
)

// check is one readiness check: a dependency the service cannot serve
// mutations without.
type check struct {
	name string
	fn   func(context.Context) error
	// optional checks are reported but do not make the replica unready:
	// what they check is not on the request path (the event broker).
	optional bool
}

// readiness lists the checks /readyz runs: the database, and the lock
// backend if it can report its health.
func readiness(store *gormstore.Store, locker lock.Locker) []check {
	checks := []check{{name: "database", fn: store.Ping}}
	if c, ok := locker.(lock.Checker); ok {
		checks = append(checks, check{name: "lock", fn: c.Check})
	}
	return checks
}

// handlerDeps are what the endpoints are built from.
type handlerDeps struct {
	svc  *app.Service
	flow *flow.Controller
	// gate is the admission chain every transport runs operations
	// through: authorization, then flow control with its outcomes counted.
	gate       *inventory.Gate
	registry   *prometheus.Registry
	checks     []check
	tracer     trace.TracerProvider // nil: tracing off
	propagator propagation.TextMapPropagator
	authn      *auth.Authenticator // not Enabled: no authentication (loopback only)
	log        *slog.Logger
	// GraphQL request limits.
	introspection           bool
	maxDepth, maxComplexity int
	wsOrigins               []string
	answers                 *graph.Answers // nil: no answer cache
	sockets                 *graph.Sockets // WebSocket connections, closed at shutdown
	persisted               *graph.PersistedQueries
	httpCacheMaxAge         time.Duration
}

// newHandler routes every endpoint of the service.
func newHandler(d handlerDeps) (http.Handler, error) {
	svc, checks, log := d.svc, d.checks, d.log
	mux := http.NewServeMux()
	gql := graph.NewHandler(svc, log, graph.Options{Gate: d.gate, Flow: flowReporter{d.flow},
		TracerProvider: d.tracer, Propagator: d.propagator, WebSocketOrigins: d.wsOrigins, Answers: d.answers,
		Limits:           graph.Limits{MaxDepth: d.maxDepth, MaxComplexity: d.maxComplexity, NoIntrospection: !d.introspection},
		AuthenticateInit: d.authn.FromInitPayload, Sockets: d.sockets, PersistedQueries: d.persisted, HTTPCacheMaxAge: d.httpCacheMaxAge})
	mux.Handle("/query", gql)
	graphiql := graph.NewGraphiQL("/query")
	mux.Handle("GET /{$}", graphiql)
	mux.Handle("GET /graphiql/", graphiql)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		status, code, results := "ready", http.StatusOK, map[string]string{}
		for _, c := range checks {
			results[c.name] = "ok"
			switch err := c.fn(ctx); {
			case err == nil:
			case c.optional:
				results[c.name] = "unreachable (not required)"
			case errors.Is(err, errShuttingDown):
				results[c.name] = "shutting down"
				status, code = "shutting down", http.StatusServiceUnavailable
			default:
				log.Warn("not ready", "check", c.name, "err", err)
				results[c.name] = "unreachable"
				status, code = "unavailable", http.StatusServiceUnavailable
			}
		}
		writeJSON(w, code, map[string]any{"status": status, "checks": results})
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(d.registry, promhttp.HandlerOpts{ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}))
	restAPI := rest.NewHandler(svc, d.gate, log)
	mux.Handle("/product", restAPI)
	mux.Handle("/product/", restAPI)
	mux.Handle("/stock/", restAPI)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusNotFound, map[string]any{"error": map[string]string{"code": "NOT_FOUND", "message": "no such endpoint; GraphQL is at /query"}})
	})
	grpcH, err := grpcapi.NewHandler(svc, grpcOptions(d))
	if err != nil {
		return nil, fmt.Errorf("grpc: %w", err)
	}
	web := deadlines(d.authn.Middleware("/query", public, mux))
	// gRPC calls authenticate per call (a refusal is a gRPC status) and
	// are bounded by their callers' deadlines; streams last.
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if grpcapi.IsGRPC(r) {
			grpcH.ServeHTTP(w, r)
			return
		}
		web.ServeHTTP(w, r)
	}), nil
}

// grpcOptions are the gRPC API's options, for the main port's handler and
// grpc-go's server alike.
func grpcOptions(d handlerDeps) grpcapi.Options {
	return grpcapi.Options{Gate: d.gate, Log: d.log,
		TracerProvider: d.tracer, Propagator: d.propagator, Ready: ready(d.checks),
		Authenticate: d.authn.FromHeader}
}

// ready is the readiness of checks as one error, for grpc.health.v1.
func ready(checks []check) func(context.Context) error {
	return func(ctx context.Context) error {
		for _, c := range checks {
			if err := c.fn(ctx); err != nil && !c.optional {
				return fmt.Errorf("%s: %w", c.name, err)
			}
		}
		return nil
	}
}

// Per-request I/O deadlines: a client gets this long to send its request
// and to take the answer. Subscriptions (WebSocket and server-sent
// events) live as long as they like.
const (
	readDeadline  = 30 * time.Second
	writeDeadline = 2 * time.Minute
)

func deadlines(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		streaming := strings.EqualFold(r.Header.Get("Upgrade"), "websocket") || strings.Contains(r.Header.Get("Accept"), "text/event-stream")
		if !streaming {
			rc := http.NewResponseController(w)
			now := time.Now()
			_ = rc.SetReadDeadline(now.Add(readDeadline))
			_ = rc.SetWriteDeadline(now.Add(writeDeadline))
		}
		next.ServeHTTP(w, r)
	})
}

// public are the requests that need no token: the GraphiQL page and its
// assets, health, readiness and metrics.
func public(r *http.Request) bool {
	switch r.URL.Path {
	case "/healthz", "/readyz", "/metrics":
		return r.Method == http.MethodGet
	case "/":
		return r.Method == http.MethodGet
	}
	return r.Method == http.MethodGet && strings.HasPrefix(r.URL.Path, "/graphiql/")
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
