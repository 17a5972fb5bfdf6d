package grpcapi_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"google.golang.org/grpc/metadata"

	"github.com/shopstack/inventory/internal/app"
	"github.com/shopstack/inventory/internal/gormstore"
	"github.com/shopstack/inventory/internal/grpcapi"
	v1 "github.com/shopstack/inventory/internal/grpcapi/gen/inventory/v1"
	"github.com/shopstack/inventory/internal/grpcapi/gen/inventory/v1/inventoryv1connect"
	"github.com/shopstack/inventory/internal/inventory"
	"github.com/shopstack/inventory/internal/telemetry"
	"github.com/shopstack/inventory/internal/testenv/gormstoretest"
	"github.com/shopstack/inventory/internal/testenv/inventorytest"
)

// TestCallContinuesCallersTrace: a call carrying a W3C traceparent gets a
// server span in the caller's trace, whose child is the service's span.
func TestCallContinuesCallersTrace(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	st := gormstoretest.Open(t, gormstore.SQLite)
	svc := inventorytest.Start(t, st, app.Config{TracerProvider: tp, PollInterval: 50 * time.Millisecond})
	p, err := svc.CreateProduct(context.Background(), inventory.NewProduct{SKU: "TRACED", Name: "T", Price: 1, InitialStock: 5})
	if err != nil {
		t.Fatal(err)
	}
	opts := options(nil)
	opts.TracerProvider, opts.Propagator = tp, propagation.TraceContext{}
	conn := serveWith(t, svc, opts).conn

	const traceID, callerSpan = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
	ctx := metadata.AppendToOutgoingContext(context.Background(), "traceparent", "00-"+traceID+"-"+callerSpan+"-01")
	if err := conn.Invoke(ctx, "/inventory.v1.InventoryService/StockOut", &v1.StockOutRequest{ProductId: p.Product.ID, Quantity: 1},
		&v1.StockOutResponse{}); err != nil {
		t.Fatal(err)
	}
	var server, service *tracetest.SpanStub
	spans := exp.GetSpans()
	for i := range spans {
		s := &spans[i]
		switch s.Name {
		case "inventory.v1.InventoryService/StockOut":
			server = s
		case "inventory.StockOut":
			service = s
		}
	}
	if server == nil || service == nil {
		t.Fatalf("spans %v: want the call's server span and the service's", names(spans))
	}
	if server.SpanContext.TraceID().String() != traceID || server.Parent.SpanID().String() != callerSpan {
		t.Errorf("server span in trace %s under %s, want %s under the caller's %s",
			server.SpanContext.TraceID(), server.Parent.SpanID(), traceID, callerSpan)
	}
	if service.Parent.SpanID() != server.SpanContext.SpanID() {
		t.Errorf("the service's span is not the server span's child")
	}
}

func names(spans tracetest.SpanStubs) []string {
	var out []string
	for _, s := range spans {
		out = append(out, s.Name)
	}
	return out
}

// TestCallsAreCounted: a gRPC call is counted as the operation it runs,
// with transport grpc.
func TestCallsAreCounted(t *testing.T) {
	m := telemetry.NewMetrics()
	st := gormstoretest.Open(t, gormstore.SQLite)
	svc := inventorytest.Start(t, st, app.Config{})
	p, err := svc.CreateProduct(context.Background(), inventory.NewProduct{SKU: "COUNTED", Name: "C", Price: 1, InitialStock: 1})
	if err != nil {
		t.Fatal(err)
	}
	opts := options(nil)
	opts.Gate = inventory.NewGate(m.Admission(inventory.AdmitAll{}))
	h, err := grpcapi.NewHandler(svc, opts)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	client := inventoryv1connect.NewInventoryServiceClient(http.DefaultClient, srv.URL)
	for range 2 { // one sale, one refusal
		_, _ = client.StockOut(context.Background(), connect.NewRequest(&v1.StockOutRequest{ProductId: p.Product.ID, Quantity: 1}))
	}
	want := `
# HELP inventory_requests_total API operations (GraphQL root fields, REST routes and gRPC methods, named as the GraphQL field) by the transport they came by and outcome: OK or the error code.
# TYPE inventory_requests_total counter
inventory_requests_total{code="INSUFFICIENT_STOCK",operation="stockOut",transport="grpc"} 1
inventory_requests_total{code="OK",operation="stockOut",transport="grpc"} 1
`
	if err := testutil.CollectAndCompare(m, strings.NewReader(want), "inventory_requests_total"); err != nil {
		t.Error(err)
	}
}
