// Package telemetry sets up OpenTelemetry tracing: an OTLP exporter (gRPC or
// HTTP) configured from INVENTORY_OTLP_ENDPOINT and the standard OTEL_*
// variables, and the service's resource attributes. With tracing off it
// hands out a no-op tracer provider, which costs next to nothing.
package telemetry

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"go.opentelemetry.io/otel/exporters/otlp/otlptrace"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.40.0"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// Config says where traces go and how the service names itself.
type Config struct {
	// Endpoint is INVENTORY_OTLP_ENDPOINT: host:port (plain text), or a URL
	// (http:// or https://). Empty leaves tracing off unless a standard
	// OTEL_EXPORTER_OTLP_(TRACES_)ENDPOINT is set.
	Endpoint string
	// Getenv reads the OTEL_* variables that decide the protocol and
	// whether tracing is on; the exporters, the sampler and the resource
	// also read their own OTEL_* variables from the process environment.
	Getenv func(string) string

	ServiceName    string
	ServiceVersion string
	// Instance identifies this replica (service.instance.id).
	Instance string
}

// Telemetry is the set-up result.
type Telemetry struct {
	// Tracing reports whether spans are exported.
	Tracing        bool
	TracerProvider trace.TracerProvider
	// Propagator carries trace context in and out: W3C traceparent and
	// baggage.
	Propagator propagation.TextMapPropagator
	// Shutdown flushes the spans still queued and stops the exporter.
	Shutdown func(context.Context) error
}

// Protocols of OTEL_EXPORTER_OTLP_(TRACES_)PROTOCOL.
const (
	ProtocolGRPC = "grpc"
	ProtocolHTTP = "http/protobuf"
)

// Setup returns the tracer provider cfg asks for. An unsupported protocol
// or an unusable endpoint is an error; an unreachable collector is not
// (spans are dropped, the service serves on).
func Setup(ctx context.Context, cfg Config) (*Telemetry, error) {
	getenv := cfg.Getenv
	if getenv == nil {
		getenv = func(string) string { return "" }
	}
	t := &Telemetry{
		TracerProvider: noop.NewTracerProvider(),
		Propagator:     propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}),
		Shutdown:       func(context.Context) error { return nil },
	}
	standard := getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") + getenv("OTEL_EXPORTER_OTLP_ENDPOINT")
	if strings.EqualFold(getenv("OTEL_SDK_DISABLED"), "true") || cfg.Endpoint == "" && standard == "" {
		return t, nil
	}
	protocol := getenv("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
	if protocol == "" {
		protocol = getenv("OTEL_EXPORTER_OTLP_PROTOCOL")
	}
	if protocol == "" {
		protocol = ProtocolGRPC
	}
	exp, err := newExporter(ctx, protocol, cfg.Endpoint)
	if err != nil {
		return nil, err
	}
	res, err := resource.New(ctx,
		resource.WithAttributes(semconv.ServiceName(cfg.ServiceName), semconv.ServiceVersion(cfg.ServiceVersion),
			semconv.ServiceInstanceID(cfg.Instance)),
		resource.WithFromEnv(), // OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES win
		resource.WithTelemetrySDK(), resource.WithHost(), resource.WithProcessPID())
	if err != nil && !errors.Is(err, resource.ErrPartialResource) {
		return nil, fmt.Errorf("telemetry: resource: %w", err)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res))
	t.Tracing, t.TracerProvider, t.Shutdown = true, tp, tp.Shutdown
	return t, nil
}

// newExporter builds the OTLP exporter for protocol. endpoint overrides the
// standard variables; without a scheme it is host:port in plain text.
func newExporter(ctx context.Context, protocol, endpoint string) (*otlptrace.Exporter, error) {
	url := strings.HasPrefix(endpoint, "http://") || strings.HasPrefix(endpoint, "https://")
	switch protocol {
	case ProtocolGRPC:
		var opts []otlptracegrpc.Option
		switch {
		case url:
			opts = append(opts, otlptracegrpc.WithEndpointURL(endpoint))
		case endpoint != "":
			opts = append(opts, otlptracegrpc.WithEndpoint(endpoint), otlptracegrpc.WithInsecure())
		}
		return otlptracegrpc.New(ctx, opts...)
	case ProtocolHTTP:
		var opts []otlptracehttp.Option
		switch {
		case url:
			if !strings.HasSuffix(endpoint, "/v1/traces") {
				endpoint = strings.TrimSuffix(endpoint, "/") + "/v1/traces"
			}
			opts = append(opts, otlptracehttp.WithEndpointURL(endpoint))
		case endpoint != "":
			opts = append(opts, otlptracehttp.WithEndpoint(endpoint), otlptracehttp.WithInsecure())
		}
		return otlptracehttp.New(ctx, opts...)
	}
	return nil, fmt.Errorf("telemetry: OTLP protocol %q is not supported (want %s or %s)", protocol, ProtocolGRPC, ProtocolHTTP)
}
