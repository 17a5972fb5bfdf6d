package graph

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"time"

	"github.com/99designs/gqlgen/graphql/handler"
	"github.com/99designs/gqlgen/graphql/handler/lru"
	"github.com/99designs/gqlgen/graphql/handler/transport"
	"github.com/coder/websocket"
	"github.com/vektah/gqlparser/v2/ast"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/shopstack/inventory/internal/app"
	"github.com/shopstack/inventory/internal/inventory"
)

// NewHandler returns the GraphQL endpoint: POST and GET (queries only) over
// HTTP, and subscriptions over WebSocket (graphql-transport-ws, and the
// older graphql-ws protocol) or over server-sent events (a POST with
// Accept: text/event-stream, which curl can watch).
func NewHandler(svc *app.Service, log *slog.Logger, opts Options) http.Handler {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	wait := opts.LoaderWait
	if wait <= 0 {
		wait = DefaultLoaderWait
	}
	srv := handler.New(NewExecutableSchema(Config{Resolvers: &Resolver{Service: svc, Log: log, Flow: opts.Flow, loaderWait: wait},
		Complexity: complexity()}))
	ws := transport.Websocket{KeepAlivePingInterval: 15 * time.Second, InitFunc: wsInit(opts),
		// Pages of other origins may subscribe only if listed: a
		// browser sends its cookies and tokens with any page's socket.
		Implementation: transport.CoderWebsocketImplementation{AcceptOptions: websocket.AcceptOptions{OriginPatterns: opts.WebSocketOrigins}}}
	sockets := opts.Sockets
	if sockets == nil {
		sockets = &Sockets{} // for the connections' ends at their tokens' expiry
	}
	ws.Implementation = sockets.wrap(ws.Implementation)
	srv.AddTransport(ws)
	srv.AddTransport(transport.Options{})
	srv.AddTransport(transport.SSE{KeepAlivePingInterval: 15 * time.Second}) // before POST, which would take the request too
	srv.AddTransport(transport.GET{})
	srv.AddTransport(transport.POST{})
	srv.SetQueryCache(lru.New[*ast.QueryDocument](1000))
	useLimits(srv, opts.Limits)
	persisted := opts.PersistedQueries
	if persisted == nil {
		persisted = AutomaticPersistedQueries(DefaultPersistedQueries)
	}
	srv.Use(persisted)
	srv.Use(requireQuery{}) // after the persisted queries, which may fill the query in
	if opts.TracerProvider != nil {
		srv.Use(tracing{tracer: opts.TracerProvider.Tracer(tracerName)})
	}
	srv.AroundRootFields(admit(opts.Gate))
	srv.Use(subscriptionAuth{gate: opts.Gate, present: presentError(log)})
	// Root field interceptors run in the order they are added: answers are
	// served after authorization and admission, and before any loading.
	srv.Use(cacheGate{}) // before the answers, which may not run what follows
	if opts.Answers != nil {
		srv.Use(opts.Answers)
	}
	srv.Use(loading{svc: svc, wait: wait})
	srv.SetErrorPresenter(presentError(log))
	srv.SetRecoverFunc(recoverPanic(log))
	var h http.Handler = httpCache(opts.HTTPCacheMaxAge, srv)
	if opts.Propagator != nil {
		h = extractTrace(opts.Propagator, h)
	}
	return limitBody(codeTransportErrors(byGraphQL(withConnSlot(h))))
}

// byGraphQL names GraphQL as the requests' transport, for the metrics.
func byGraphQL(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		next.ServeHTTP(w, r.WithContext(inventory.WithTransport(r.Context(), "graphql")))
	})
}

// Options are the endpoint's optional parts.
type Options struct {
	// Gate authorizes every root field, subscriptions' included, by the
	// principal the HTTP layer or AuthenticateInit put in the context, and
	// then admits each root query and mutation field by flow control; nil
	// authorizes as any Gate does, and admits everything authorized.
	Gate *inventory.Gate
	// Flow answers the flowControl query; nil makes it fail with
	// UNAVAILABLE.
	Flow FlowReporter
	// TracerProvider makes a server span per operation and a span per
	// resolver that does I/O; nil makes none.
	TracerProvider trace.TracerProvider
	// Propagator continues callers' traces: from HTTP headers, and from
	// a WebSocket's connection_init payload. Nil starts every trace anew.
	Propagator propagation.TextMapPropagator
	// Limits bound what one request may ask.
	Limits Limits
	// LoaderWait is how long the loaders of nested fields collect keys
	// before they load; zero means DefaultLoaderWait.
	LoaderWait time.Duration
	// Answers, if set, caches the answers of root fields served from the
	// read model.
	Answers *Answers
	// WebSocketOrigins are the host patterns of other origins whose pages
	// may open WebSocket subscriptions; none: same origin only.
	WebSocketOrigins []string
	// AuthenticateInit authenticates a WebSocket connection from its
	// connection_init payload; an error refuses the connection. Nil
	// accepts every connection as it is.
	AuthenticateInit func(ctx context.Context, payload map[string]any) (context.Context, error)
	// Sockets, if set, tracks the WebSocket connections, so that they can
	// be closed with Going Away at shutdown.
	Sockets *Sockets
	// PersistedQueries are automatic persisted queries or a trusted
	// documents list; nil: automatic, DefaultPersistedQueries of them.
	PersistedQueries *PersistedQueries
	// HTTPCacheMaxAge is the max-age of GET answers that may be cached
	// (see httpCache); zero: none may.
	HTTPCacheMaxAge time.Duration
}

// DefaultPersistedQueries is how many automatic persisted queries a
// server learns by default.
const DefaultPersistedQueries = 1000

// wsInit is the WebSocket connection_init handling: the trace context the
// payload carries, then its authentication.
func wsInit(opts Options) transport.WebsocketInitFunc {
	return func(ctx context.Context, payload transport.InitPayload) (context.Context, *transport.InitPayload, error) {
		if opts.Propagator != nil {
			ctx, _, _ = wsTraceInit(opts.Propagator)(ctx, payload)
		}
		if opts.AuthenticateInit != nil {
			var err error
			if ctx, err = opts.AuthenticateInit(ctx, payload); err != nil {
				return refuseInit(ctx, err)
			}
		}
		endAtExpiry(ctx)
		return ctx, nil, nil
	}
}

// refuseInit refuses a connection_init with the graphql-ws close code for
// err (4401 without valid credentials, else 4403), and its client message
// as both the connection_error and the close reason, so that a client sees
// why and does not reconnect in a loop.
func refuseInit(ctx context.Context, err error) (context.Context, *transport.InitPayload, error) {
	code, msg := closeForbidden, "forbidden"
	if e, ok := errors.AsType[*inventory.Error](err); ok {
		msg = e.Message
		if e.Code == inventory.CodeUnauthenticated {
			code = closeUnauthorized
		}
	}
	reason := msg
	if len(reason) > 123 { // the most a close frame carries
		reason = reason[:120] + "..."
	}
	ctx = transport.WithWebsocketCloseCode(transport.AppendCloseReason(ctx, reason), code)
	return ctx, nil, errors.New(msg)
}
