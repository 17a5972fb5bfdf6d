// Package sqltrace gives the store's SQL spans: one per statement GORM runs
// and one per batch pipelined over pgx directly, with the statements' text
// and never their bound values.
package sqltrace

import (
	"context"
	"errors"
	"strings"

	"github.com/jackc/pgx/v5"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	semconv "go.opentelemetry.io/otel/semconv/v1.40.0"
	"go.opentelemetry.io/otel/trace"
	"gorm.io/gorm"
)

// Scope is the instrumentation scope of the store's own spans.
const Scope = "github.com/shopstack/inventory/internal/gormstore"

// Instrument adds a span per SQL statement GORM runs: the statement text
// with its placeholders, never the bound values. It is a GORM plugin of our
// own rather than gorm.io/plugin/opentelemetry, which links the MySQL and
// ClickHouse drivers into the binary and moves a dependency
// sentinel-golang pins.
func Instrument(db *gorm.DB, tp trace.TracerProvider, system attribute.KeyValue) error {
	return db.Use(sqlTracer{tracer: tp.Tracer(Scope), system: system})
}

// System is the database system attribute of PostgreSQL (postgres) or
// SQLite.
func System(postgres bool) attribute.KeyValue {
	if postgres {
		return semconv.DBSystemNamePostgreSQL
	}
	return semconv.DBSystemNameSQLite
}

type sqlTracer struct {
	tracer trace.Tracer
	system attribute.KeyValue
}

func (sqlTracer) Name() string { return "inventory:trace" }

// Initialize registers the span's start and end around each kind of
// statement GORM runs.
func (t sqlTracer) Initialize(db *gorm.DB) error {
	cb := db.Callback()
	return errors.Join(
		cb.Create().Before("gorm:create").Register("trace:before_create", t.start),
		cb.Create().After("gorm:create").Register("trace:after_create", t.end),
		cb.Query().Before("gorm:query").Register("trace:before_query", t.start),
		cb.Query().After("gorm:query").Register("trace:after_query", t.end),
		cb.Update().Before("gorm:update").Register("trace:before_update", t.start),
		cb.Update().After("gorm:update").Register("trace:after_update", t.end),
		cb.Delete().Before("gorm:delete").Register("trace:before_delete", t.start),
		cb.Delete().After("gorm:delete").Register("trace:after_delete", t.end),
		cb.Row().Before("gorm:row").Register("trace:before_row", t.start),
		cb.Row().After("gorm:row").Register("trace:after_row", t.end),
		cb.Raw().Before("gorm:raw").Register("trace:before_raw", t.start),
		cb.Raw().After("gorm:raw").Register("trace:after_raw", t.end),
	)
}

// start begins a statement's span if the statement's context is traced.
func (t sqlTracer) start(db *gorm.DB) {
	ctx := db.Statement.Context
	if ctx == nil || !trace.SpanFromContext(ctx).SpanContext().IsValid() {
		return
	}
	sctx, _ := t.tracer.Start(ctx, "SQL", trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(t.system))
	db.Statement.Context = context.WithValue(sctx, sqlSpanKey{}, ctx)
}

// end names the span after its statement and ends it.
func (t sqlTracer) end(db *gorm.DB) {
	ctx := db.Statement.Context
	if ctx == nil {
		return
	}
	parent, ok := ctx.Value(sqlSpanKey{}).(context.Context)
	if !ok {
		return
	}
	span := trace.SpanFromContext(ctx)
	query := strings.TrimSpace(db.Statement.SQL.String())
	op := strings.ToUpper(strings.SplitN(query, " ", 2)[0])
	span.SetName(op)
	span.SetAttributes(semconv.DBQueryText(query), semconv.DBOperationName(op))
	if db.Statement.Table != "" {
		span.SetName(op + " " + db.Statement.Table)
		span.SetAttributes(semconv.DBCollectionName(db.Statement.Table))
	}
	switch err := db.Error; {
	case err == nil, errors.Is(err, gorm.ErrRecordNotFound):
	default:
		span.RecordError(err)
		span.SetStatus(codes.Error, op+" failed")
	}
	span.End()
	// The statement's context goes back to the caller's: the next statement
	// on this *gorm.DB must not nest in this one.
	db.Statement.Context = parent
}

// sqlSpanKey keys, in a statement context whose span this tracer started,
// the context it replaced.
type sqlSpanKey struct{}

// PGBatchTracer makes a span per pipelined batch the PostgreSQL stock
// transaction sends over pgx directly (GORM's plugin does not see those):
// its statements' text, never their arguments. Single queries are GORM's
// and traced there.
type PGBatchTracer struct {
	Tracer trace.Tracer
}

var (
	_ pgx.QueryTracer = PGBatchTracer{}
	_ pgx.BatchTracer = PGBatchTracer{}
)

func (PGBatchTracer) TraceQueryStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceQueryStartData) context.Context {
	return ctx
}

func (PGBatchTracer) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

func (t PGBatchTracer) TraceBatchStart(ctx context.Context, _ *pgx.Conn, data pgx.TraceBatchStartData) context.Context {
	if !trace.SpanFromContext(ctx).SpanContext().IsValid() {
		return ctx // no trace to join
	}
	stmts := make([]string, len(data.Batch.QueuedQueries))
	for i, q := range data.Batch.QueuedQueries {
		stmts[i] = strings.TrimSpace(q.SQL)
	}
	ctx, span := t.Tracer.Start(ctx, "BATCH", trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(
		semconv.DBSystemNamePostgreSQL,
		semconv.DBOperationName("BATCH"),
		semconv.DBOperationBatchSize(len(stmts)),
		semconv.DBQueryText(strings.Join(stmts, ";\n")),
	))
	return context.WithValue(ctx, batchSpanKey{}, span)
}

// batchSpanKey keys the batch span in the context pgx hands back, so that
// only a span this tracer started is ended.
type batchSpanKey struct{}

func (PGBatchTracer) TraceBatchQuery(ctx context.Context, _ *pgx.Conn, data pgx.TraceBatchQueryData) {
	if span, ok := ctx.Value(batchSpanKey{}).(trace.Span); ok && data.Err != nil {
		span.RecordError(data.Err, trace.WithAttributes(attribute.String("db.query.text", data.SQL)))
	}
}

func (PGBatchTracer) TraceBatchEnd(ctx context.Context, _ *pgx.Conn, data pgx.TraceBatchEndData) {
	span, ok := ctx.Value(batchSpanKey{}).(trace.Span)
	if !ok {
		return
	}
	if data.Err != nil {
		span.SetStatus(codes.Error, "batch failed")
	}
	span.End()
}
