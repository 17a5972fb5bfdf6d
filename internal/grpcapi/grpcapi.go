// Package grpcapi serves the inventory over gRPC, gRPC-Web and Connect
// (proto/inventory/v1), for the services that call us: a thin transport
// over the same app.Service as GraphQL and REST, with the same roles,
// flow control, tracing and error codes.
//
// It is one net/http handler (connect-go), mounted on the server's main
// port beside GraphQL: gRPC needs HTTP/2, which the server speaks without
// TLS too (h2c), so one port serves browsers, curl and gRPC clients alike,
// and the same middleware (deadlines, tracing) applies. Standard health
// (grpc.health.v1) and server reflection come with it, so grpcurl can list
// and call everything.
package grpcapi

//go:generate sh -c "cd ../.. && go tool buf lint && go tool buf generate"

import (
	"context"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"connectrpc.com/connect"
	"connectrpc.com/grpchealth"
	"connectrpc.com/grpcreflect"
	"connectrpc.com/otelconnect"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/shopstack/inventory/internal/app"
	"github.com/shopstack/inventory/internal/grpcapi/gen/inventory/v1/inventoryv1connect"
	"github.com/shopstack/inventory/internal/inventory"
)

// MaxMessageBytes bounds a request message, as MaxBodyBytes bounds a
// GraphQL request.
const MaxMessageBytes = 1 << 20

// Options are the handler's optional parts.
type Options struct {
	// Gate authorizes every call by its caller's role, as the GraphQL
	// field it runs, and then admits each call that runs an operation by
	// flow control; the change stream passes no flow control. Nil
	// authorizes as any Gate does, and admits everything authorized.
	Gate *inventory.Gate
	// Authenticate turns a call's authorization header into a context with
	// its principal; an error refuses the call with its code. Nil leaves
	// the context as it is: without a principal, every call is refused
	// UNAUTHENTICATED.
	Authenticate func(ctx context.Context, authorization string) (context.Context, error)
	// Ready reports readiness for grpc.health.v1 (as /readyz); nil: always
	// serving.
	Ready func(ctx context.Context) error
	// TracerProvider and Propagator make a server span per call that
	// continues the caller's trace; nil: no spans.
	TracerProvider trace.TracerProvider
	Propagator     propagation.TextMapPropagator
	Log            *slog.Logger
}

// NewHandler returns the gRPC endpoints: the inventory service, health
// and reflection. Its Paths are the URL prefixes to route to it.
func NewHandler(svc *app.Service, opts Options) (*Handler, error) {
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	interceptors := []connect.Interceptor{refuseUndecoded{opts.Log}}
	if opts.TracerProvider != nil {
		o := []otelconnect.Option{otelconnect.WithTracerProvider(opts.TracerProvider), otelconnect.WithoutMetrics(),
			otelconnect.WithTrustRemote()}
		if opts.Propagator != nil {
			o = append(o, otelconnect.WithPropagator(opts.Propagator))
		}
		otel, err := otelconnect.NewInterceptor(o...)
		if err != nil {
			return nil, err
		}
		interceptors = append(interceptors, otel)
	}
	if opts.Authenticate != nil {
		interceptors = append(interceptors, authInterceptor{opts.Authenticate, opts.Log})
	}
	handlerOpts := append(codecs(),
		connect.WithInterceptors(interceptors...),
		connect.WithReadMaxBytes(MaxMessageBytes),
	)
	mux := http.NewServeMux()
	s := &server{svc: svc, opts: opts}
	mux.Handle(inventoryv1connect.NewInventoryServiceHandler(s, handlerOpts...))
	// Health and reflection need no token, as /readyz does not.
	mux.Handle(grpchealth.NewHandler(&checker{ready: opts.Ready}, connect.WithReadMaxBytes(MaxMessageBytes)))
	reflector := grpcreflect.NewStaticReflector(inventoryv1connect.InventoryServiceName, grpchealth.HealthV1ServiceName,
		"grpc.reflection.v1.ServerReflection")
	mux.Handle(grpcreflect.NewHandlerV1(reflector))
	mux.Handle(grpcreflect.NewHandlerV1Alpha(reflector))
	return &Handler{mux: mux}, nil
}

// Handler serves the gRPC endpoints.
type Handler struct {
	mux *http.ServeMux
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.mux.ServeHTTP(w, r.WithContext(inventory.WithTransport(r.Context(), "grpc")))
}

// Paths are the URL path prefixes the handler serves.
var Paths = []string{
	"/" + inventoryv1connect.InventoryServiceName + "/",
	"/" + grpchealth.HealthV1ServiceName + "/",
	"/grpc.reflection.v1.ServerReflection/",
	"/grpc.reflection.v1alpha.ServerReflection/",
}

// IsGRPC reports whether r is a call for this handler: a path it serves.
func IsGRPC(r *http.Request) bool {
	for _, p := range Paths {
		if strings.HasPrefix(r.URL.Path, p) {
			return true
		}
	}
	return false
}

// checker answers grpc.health.v1 with the server's readiness, for the
// whole server ("") and for the inventory service. Readiness pings the
// database and the lock backend, so an answer is reused for up to
// healthTTL: health checks, however frequent, cost the backends at most
// one round of pings each.
type checker struct {
	ready func(context.Context) error

	mu      sync.Mutex
	at      time.Time
	serving bool
}

const healthTTL = time.Second

func (c *checker) Check(ctx context.Context, req *grpchealth.CheckRequest) (*grpchealth.CheckResponse, error) {
	switch req.Service {
	case "", inventoryv1connect.InventoryServiceName:
	default:
		return nil, connect.NewError(connect.CodeNotFound, nil)
	}
	if c.isServing(ctx) {
		return &grpchealth.CheckResponse{Status: grpchealth.StatusServing}, nil
	}
	return &grpchealth.CheckResponse{Status: grpchealth.StatusNotServing}, nil
}

func (c *checker) isServing(ctx context.Context) bool {
	if c.ready == nil {
		return true
	}
	c.mu.Lock()
	defer c.mu.Unlock() // one caller checks; the others wait for its answer
	if time.Since(c.at) < healthTTL {
		return c.serving
	}
	c.serving, c.at = c.ready(ctx) == nil, time.Now()
	return c.serving
}

// authInterceptor authenticates every call by its authorization header.
type authInterceptor struct {
	authenticate func(context.Context, string) (context.Context, error)
	log          *slog.Logger
}

func (a authInterceptor) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc {
	return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
		if req.Spec().IsClient {
			return next(ctx, req)
		}
		ctx, err := a.authenticate(ctx, req.Header().Get("Authorization"))
		if err != nil {
			return nil, toStatus(ctx, a.log, err)
		}
		return next(ctx, req)
	}
}

func (a authInterceptor) WrapStreamingClient(next connect.StreamingClientFunc) connect.StreamingClientFunc {
	return next
}

func (a authInterceptor) WrapStreamingHandler(next connect.StreamingHandlerFunc) connect.StreamingHandlerFunc {
	return func(ctx context.Context, conn connect.StreamingHandlerConn) error {
		ctx, err := a.authenticate(ctx, conn.RequestHeader().Get("Authorization"))
		if err != nil {
			return toStatus(ctx, a.log, err)
		}
		return next(ctx, conn)
	}
}
