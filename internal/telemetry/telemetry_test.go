package telemetry_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	collectortrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"

	"github.com/shopstack/inventory/internal/telemetry"
)

// receiver is an OTLP trace receiver: what a collector does with the
// exporter's requests, minus the forwarding.
type receiver struct {
	collectortrace.UnimplementedTraceServiceServer
	mu   sync.Mutex
	reqs []*collectortrace.ExportTraceServiceRequest
}

func (r *receiver) Export(_ context.Context, req *collectortrace.ExportTraceServiceRequest) (*collectortrace.ExportTraceServiceResponse, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.reqs = append(r.reqs, req)
	return &collectortrace.ExportTraceServiceResponse{}, nil
}

// spans returns the names of the spans received and the resource
// attributes they came with.
func (r *receiver) spans() ([]string, map[string]string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var names []string
	attrs := map[string]string{}
	for _, req := range r.reqs {
		for _, rs := range req.GetResourceSpans() {
			for _, kv := range rs.GetResource().GetAttributes() {
				attrs[kv.GetKey()] = stringValue(kv.GetValue())
			}
			for _, ss := range rs.GetScopeSpans() {
				for _, s := range ss.GetSpans() {
					names = append(names, s.GetName())
				}
			}
		}
	}
	return names, attrs
}

func stringValue(v *commonpb.AnyValue) string { return v.GetStringValue() }

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

func check(t *testing.T, r *receiver) {
	t.Helper()
	names, attrs := r.spans()
	if len(names) != 1 || names[0] != "stockOut" {
		t.Errorf("spans received: %v", names)
	}
	for k, want := range map[string]string{"service.name": "inventory", "service.version": "v9.9.9", "service.instance.id": "replica-a"} {
		if attrs[k] != want {
			t.Errorf("resource %s = %q, want %q", k, attrs[k], want)
		}
	}
}

func TestExportOverGRPC(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &receiver{}
	srv := grpc.NewServer()
	collectortrace.RegisterTraceServiceServer(srv, r)
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(srv.Stop)

	export(t, telemetry.Config{Endpoint: ln.Addr().String()})
	check(t, r)
}

func TestExportOverHTTP(t *testing.T) {
	r := &receiver{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		var in collectortrace.ExportTraceServiceRequest
		if req.URL.Path != "/v1/traces" || proto.Unmarshal(body, &in) != nil {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		_, _ = r.Export(req.Context(), &in)
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
