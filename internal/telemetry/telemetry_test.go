package telemetry_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	collectortrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/shopstack/inventory/internal/telemetry"
	"github.com/shopstack/inventory/internal/testenv/telemetrytest"
)

func env(vars map[string]string) func(string) string {
	return func(k string) string { return vars[k] }
}

// export sets up telemetry with cfg, ends one span, and shuts down (which
// flushes the batch).
func export(t *testing.T, cfg telemetry.Config) {
	t.Helper()
	cfg.ServiceName, cfg.ServiceVersion, cfg.Instance = "inventory", "v9.9.9", "replica-a"
	tel, err := telemetry.Setup(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if !tel.Tracing {
		t.Fatal("tracing is off")
	}
	_, span := tel.TracerProvider.Tracer("test").Start(context.Background(), "stockOut")
	span.End()
	if err := tel.Shutdown(context.Background()); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
}

func check(t *testing.T, r *telemetrytest.Receiver) {
	t.Helper()
	spans := r.Spans()
	if len(spans) != 1 || spans[0].Name != "stockOut" {
		t.Fatalf("spans received: %+v", spans)
	}
	for k, want := range map[string]string{"service.name": "inventory", "service.version": "v9.9.9", "service.instance.id": "replica-a"} {
		if got := spans[0].Resource[k]; got != want {
			t.Errorf("resource %s = %q, want %q", k, got, want)
		}
	}
}

func TestExportOverGRPC(t *testing.T) {
	r := telemetrytest.NewReceiver(t)
	export(t, telemetry.Config{Endpoint: r.Addr()})
	check(t, r)
}

func TestExportOverHTTP(t *testing.T) {
	r := telemetrytest.NewReceiver(t)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		var in collectortrace.ExportTraceServiceRequest
		if req.URL.Path != "/v1/traces" || proto.Unmarshal(body, &in) != nil {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		r.Add(&in)
		out, _ := proto.Marshal(&collectortrace.ExportTraceServiceResponse{})
		w.Header().Set("Content-Type", "application/x-protobuf")
		_, _ = w.Write(out)
	}))
	t.Cleanup(srv.Close)

	export(t, telemetry.Config{Endpoint: srv.URL, Getenv: env(map[string]string{"OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf"})})
	check(t, r)
}

func TestOff(t *testing.T) {
	for name, cfg := range map[string]telemetry.Config{
		"no endpoint": {},
		"disabled":    {Endpoint: "127.0.0.1:4317", Getenv: env(map[string]string{"OTEL_SDK_DISABLED": "true"})},
	} {
		tel, err := telemetry.Setup(context.Background(), cfg)
		if err != nil || tel.Tracing {
			t.Errorf("%s: tracing %v, err %v", name, tel != nil && tel.Tracing, err)
			continue
		}
		_, span := tel.TracerProvider.Tracer("x").Start(context.Background(), "op")
		if span.SpanContext().IsValid() {
			t.Errorf("%s: a real span while tracing is off", name)
		}
	}
	_, err := telemetry.Setup(context.Background(), telemetry.Config{Endpoint: "x:1", Getenv: env(map[string]string{"OTEL_EXPORTER_OTLP_PROTOCOL": "http/json"})})
	if err == nil {
		t.Error("an unsupported protocol was accepted")
	}
}

// BenchmarkSpanOff is what a span costs with tracing off.
func BenchmarkSpanOff(b *testing.B) {
	tel, err := telemetry.Setup(context.Background(), telemetry.Config{})
	if err != nil {
		b.Fatal(err)
	}
	tr := tel.TracerProvider.Tracer("bench")
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		_, span := tr.Start(ctx, "op")
		span.End()
	}
}
