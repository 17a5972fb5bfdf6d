package app_test

import (
	"context"
	"slices"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/shopstack/inventory/internal/app"
	"github.com/shopstack/inventory/internal/gormstore"
	"github.com/shopstack/inventory/internal/inventory"
	"github.com/shopstack/inventory/internal/testenv/gormstoretest"
	"github.com/shopstack/inventory/internal/testenv/inventorytest"
)

// TestBatchLinksItsRequests queues three stock-outs behind a blocked batch:
// they are combined, and the batch's span is a child of the first one's
// request span and links to the other two, so each request's trace leads
// to the transaction that served it.
func TestBatchLinksItsRequests(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	st := gormstoretest.Open(t, gormstore.SQLite)
	hook := &hookedWriter{Writer: st}
	svc := inventorytest.Start(t, st, app.Config{Writer: hook, TracerProvider: tp, PollInterval: 50 * time.Millisecond})
	p := mustProduct(t, svc, "LINKED", 10, 0)
	entered, release := blockFirstBatch(t, hook)

	tracer := tp.Tracer("test")
	sell := func(name string) (trace.SpanContext, <-chan error) {
		ctx, span := tracer.Start(context.Background(), name)
		done := make(chan error, 1)
		go func() {
			defer span.End()
			_, err := svc.StockOut(ctx, inventory.StockChange{ProductID: p.ID, Quantity: 1})
			done <- err
		}()
		return span.SpanContext(), done
	}
	_, first := sell("first")
	<-entered
	var reqs []trace.SpanContext
	var dones []<-chan error
	for i, name := range []string{"a", "b", "c"} {
		sc, done := sell(name)
		reqs, dones = append(reqs, sc), append(dones, done)
		waitWaiting(t, svc, int64(i+2))
	}
	release()
	for _, done := range append(dones, first) {
		mustNoErr(t, <-done)
	}

	spans := exp.GetSpans()
	serviceSpan := map[trace.TraceID]sdktrace.ReadOnlySpan{} // request trace -> its inventory.StockOut span
	var batches, txs []tracetest.SpanStub
	for _, s := range spans {
		switch s.Name {
		case "inventory.StockOut":
			serviceSpan[s.SpanContext.TraceID()] = s.Snapshot()
		case "inventory.batch":
			batches = append(batches, s)
		case "inventory.transaction":
			txs = append(txs, s)
		}
	}
	var combined *tracetest.SpanStub
	for i, b := range batches {
		if b.Parent.TraceID() == reqs[0].TraceID() {
			combined = &batches[i]
		}
	}
	if len(batches) != 2 || combined == nil {
		t.Fatalf("%d batch spans, want 2: the blocked one and one combining a, b and c", len(batches))
	}
	if combined.Parent.SpanID() != serviceSpan[reqs[0].TraceID()].SpanContext().SpanID() {
		t.Error("the combined batch is not a child of its first request's service span")
	}
	var linked []trace.SpanID
	for _, l := range combined.Links {
		linked = append(linked, l.SpanContext.SpanID())
	}
	for _, r := range reqs[1:] {
		if !slices.Contains(linked, serviceSpan[r.TraceID()].SpanContext().SpanID()) {
			t.Errorf("the combined batch does not link to request %s", r.TraceID())
		}
	}
	if len(linked) != 2 {
		t.Errorf("the combined batch has %d links, want 2", len(linked))
	}
	for _, tx := range txs {
		if tx.Parent.TraceID() == reqs[0].TraceID() && tx.Parent.SpanID() != combined.SpanContext.SpanID() {
			t.Error("the transaction of the combined batch is not the batch's child")
		}
	}
}
