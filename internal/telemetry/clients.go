package telemetry

import (
	"context"

	"github.com/redis/go-redis/extra/redisotel/v9"
	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/embedded"
	"google.golang.org/grpc"
)

// InstrumentRedis returns what adds a span per Redis command (and
// pipeline) to a client, for the commands made on behalf of a traced
// request: the lock backend's renewals and the event fan-out's background
// traffic start no traces of their own.
func InstrumentRedis(tp trace.TracerProvider) func(redis.UniversalClient) error {
	return func(c redis.UniversalClient) error {
		return redisotel.InstrumentTracing(c, redisotel.WithTracerProvider(ChildrenOnly(tp)), redisotel.WithDialFilter(true))
	}
}

// GRPCDialOption returns the dial option that adds a span per gRPC call
// (etcd) made on behalf of a traced request.
func GRPCDialOption(tp trace.TracerProvider) grpc.DialOption {
	return grpc.WithStatsHandler(otelgrpc.NewClientHandler(otelgrpc.WithTracerProvider(ChildrenOnly(tp))))
}

// ChildrenOnly returns tp restricted to spans with a parent: Start on a
// context without a span starts none. Client libraries instrumented with
// it trace the calls a request makes, not their own keep-alives.
func ChildrenOnly(tp trace.TracerProvider) trace.TracerProvider {
	return childrenOnly{tp: tp}
}

type childrenOnly struct {
	embedded.TracerProvider
	tp trace.TracerProvider
}

func (p childrenOnly) Tracer(name string, opts ...trace.TracerOption) trace.Tracer {
	return childTracer{t: p.tp.Tracer(name, opts...)}
}

type childTracer struct {
	embedded.Tracer
	t trace.Tracer
}

func (t childTracer) Start(ctx context.Context, name string, opts ...trace.SpanStartOption) (context.Context, trace.Span) {
	if !trace.SpanContextFromContext(ctx).IsValid() {
		return ctx, trace.SpanFromContext(ctx)
	}
	return t.t.Start(ctx, name, opts...)
}
