package graph

import (
	"context"
	"net/http"
	"strings"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/handler/transport"
	"github.com/vektah/gqlparser/v2/ast"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	semconv "go.opentelemetry.io/otel/semconv/v1.40.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/shopstack/inventory/internal/inventory"
)

// tracerName is the instrumentation scope of the endpoint's spans.
const tracerName = "github.com/shopstack/inventory/graph"

// Attributes of the endpoint's spans besides the semantic conventions'.
const (
	attrRootFields = attribute.Key("graphql.root_fields")
	attrFieldPath  = attribute.Key("graphql.field.path")
	attrErrorType  = attribute.Key("error.type")
	attrErrorCount = attribute.Key("graphql.errors")
)

// ioFields are the non-root fields whose resolvers read the database: they
// get a span each. The others only reshape what their parent loaded, and a
// span each would drown the trace. TestIOFieldsExist keeps the list true
// to the schema.
var ioFields = map[string]bool{
	"Product.levels":               true,
	"Product.movements":            true,
	"ProductConnection.totalCount": true,
	"HotProduct.product":           true,
	"LevelDrift.product":           true,
	"LowStockAlert.product":        true,
	"ReservationEvent.reservation": true,
	"ReservationItem.product":      true,
	"StockChangedEvent.product":    true,
	"StockMovement.product":        true,
	"StockMovement.reservation":    true,
}

// tracing is the gqlgen extension that makes a server span per operation
// (named "<type> <name>", the name being the operation's, or else its root
// fields') and a span per resolver that does I/O. Variables and arguments
// are never recorded: they carry customers' data.
type tracing struct {
	tracer trace.Tracer
}

var (
	_ graphql.HandlerExtension     = tracing{}
	_ graphql.OperationInterceptor = tracing{}
	_ graphql.FieldInterceptor     = tracing{}
)

func (tracing) ExtensionName() string                          { return "Tracing" }
func (tracing) Validate(schema graphql.ExecutableSchema) error { return nil }

func (t tracing) InterceptOperation(ctx context.Context, next graphql.OperationHandler) graphql.ResponseHandler {
	oc := graphql.GetOperationContext(ctx)
	if oc == nil || oc.Operation == nil {
		return next(ctx)
	}
	typ := string(oc.Operation.Operation)
	roots := rootFields(oc.Operation.SelectionSet)
	attrs := []attribute.KeyValue{semconv.GraphQLOperationTypeKey.String(typ), attrRootFields.StringSlice(roots)}
	name := oc.Operation.Name
	if name != "" {
		attrs = append(attrs, semconv.GraphQLOperationName(name))
	} else {
		name = strings.Join(roots, ",")
	}
	ctx, span := t.tracer.Start(ctx, strings.TrimSpace(typ+" "+name), trace.WithSpanKind(trace.SpanKindServer), trace.WithAttributes(attrs...))
	subscription := oc.Operation.Operation == ast.Subscription
	if subscription {
		// A subscription's span lasts as long as it does; the transport
		// ends its context when the client leaves.
		context.AfterFunc(ctx, func() { span.End() })
	}
	responses := next(ctx)
	return func(ctx context.Context) *graphql.Response {
		resp := responses(ctx)
		switch {
		case resp == nil:
			span.End()
		case subscription:
			span.AddEvent("event", trace.WithAttributes(attrErrorCount.Int(len(resp.Errors))))
			recordErrors(span, resp)
		default:
			recordErrors(span, resp)
			span.End()
		}
		return resp
	}
}

func (t tracing) InterceptField(ctx context.Context, next graphql.Resolver) (any, error) {
	fc := graphql.GetFieldContext(ctx)
	if fc == nil || !fc.IsResolver || !tracedField(fc) {
		return next(ctx)
	}
	ctx, span := t.tracer.Start(ctx, fc.Object+"."+fc.Field.Name, trace.WithAttributes(attrFieldPath.String(fc.Path().String())))
	res, err := next(ctx)
	if err != nil {
		code := inventory.ErrorCode(err)
		span.SetAttributes(attrErrorType.String(string(code)))
		if code.ServerFault() {
			span.SetStatus(codes.Error, string(code))
		}
	}
	span.End()
	return res, err
}

// tracedField reports whether the field gets a span: root fields, and the
// fields that read the database.
func tracedField(fc *graphql.FieldContext) bool {
	switch fc.Object {
	case "Query", "Mutation", "Subscription":
		return !strings.HasPrefix(fc.Field.Name, "__")
	}
	return ioFields[fc.Object+"."+fc.Field.Name]
}

// recordErrors marks span with the response's error codes: the first as
// error.type, and an Error status if any is a failure of the service.
func recordErrors(span trace.Span, resp *graphql.Response) {
	if len(resp.Errors) == 0 {
		return
	}
	span.SetAttributes(attrErrorCount.Int(len(resp.Errors)))
	for i, e := range resp.Errors {
		code, _ := e.Extensions["code"].(string)
		if i == 0 {
			span.SetAttributes(attrErrorType.String(code))
		}
		if inventory.Code(code).ServerFault() {
			span.SetStatus(codes.Error, code)
		}
	}
}

// rootFields returns the names of the operation's root fields.
func rootFields(set ast.SelectionSet) []string {
	var names []string
	for _, sel := range set {
		switch s := sel.(type) {
		case *ast.Field:
			names = append(names, s.Name)
		case *ast.InlineFragment:
			names = append(names, rootFields(s.SelectionSet)...)
		case *ast.FragmentSpread:
			if s.Definition != nil {
				names = append(names, rootFields(s.Definition.SelectionSet)...)
			}
		}
	}
	return names
}

// extractTrace continues the caller's trace: W3C traceparent (and
// baggage) headers on HTTP requests.
func extractTrace(p propagation.TextMapPropagator, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := p.Extract(r.Context(), propagation.HeaderCarrier(r.Header))
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

// wsTraceInit continues, for a WebSocket connection, the trace named in
// its connection_init payload ({"traceparent": "00-…"}): every
// subscription on the connection joins it.
func wsTraceInit(p propagation.TextMapPropagator) transport.WebsocketInitFunc {
	return func(ctx context.Context, payload transport.InitPayload) (context.Context, *transport.InitPayload, error) {
		carrier := propagation.MapCarrier{}
		for _, k := range p.Fields() {
			if v, ok := payload[k].(string); ok {
				carrier[k] = v
			}
		}
		return p.Extract(ctx, carrier), nil, nil
	}
}
