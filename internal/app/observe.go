package app

import (
	"context"

	"github.com/shopstack/inventory/internal/inventory"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

type noObserver struct{}

func (noObserver) Committed(int, []inventory.Movement) {}

// tracerName names the service's spans' instrumentation scope.
const tracerName = "github.com/shopstack/inventory/internal/app"

// Span attribute keys of the service's spans.
const (
	attrProduct      = attribute.Key("inventory.product_id")
	attrLocation     = attribute.Key("inventory.location_id")
	attrReservation  = attribute.Key("inventory.reservation_id")
	attrTransfer     = attribute.Key("inventory.transfer_id")
	attrItems        = attribute.Key("inventory.items")
	attrRequests     = attribute.Key("inventory.batch.requests")
	attrLevels       = attribute.Key("inventory.batch.levels")
	attrLeaseReused  = attribute.Key("inventory.lease.reused")
	attrFenceToken   = attribute.Key("inventory.fence.token")
	attrErrorType    = attribute.Key("error.type")
	attrTxAttempts   = attribute.Key("inventory.tx.attempts")
	attrReplayed     = attribute.Key("inventory.replayed")
	attrMovementType = attribute.Key("inventory.movement.type")
)

func newTracer(tp trace.TracerProvider) trace.Tracer {
	if tp == nil {
		tp = noop.NewTracerProvider()
	}
	return tp.Tracer(tracerName)
}

// startSpan starts an internal span of the service.
func (s *Service) startSpan(ctx context.Context, name string, attrs ...attribute.KeyValue) (context.Context, trace.Span) {
	return s.tracer.Start(ctx, name, trace.WithAttributes(attrs...))
}

// endSpan ends span with the outcome err: every error's code is recorded
// as error.type, and the span's status is Error only for failures of the
// service (a client's mistake, such as insufficient stock, is an answer).
func endSpan(span trace.Span, err error) {
	if err != nil && span.IsRecording() {
		code := inventory.ErrorCode(err)
		span.SetAttributes(attrErrorType.String(string(code)))
		if code.ServerFault() {
			span.SetStatus(codes.Error, string(code))
		}
	}
	span.End()
}

// spanTraceID returns the trace id of ctx's span, or "" without one.
func spanTraceID(ctx context.Context) string {
	if sc := trace.SpanContextFromContext(ctx); sc.HasTraceID() {
		return sc.TraceID().String()
	}
	return ""
}

// linksTo returns a link to each valid span context in scs, for a span
// that serves several requests.
func linksTo(scs []trace.SpanContext) []trace.Link {
	links := make([]trace.Link, 0, len(scs))
	for _, sc := range scs {
		if sc.IsValid() {
			links = append(links, trace.Link{SpanContext: sc})
		}
	}
	return links
}
