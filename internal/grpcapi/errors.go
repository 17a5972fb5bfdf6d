package grpcapi

import (
	"context"
	"errors"
	"log/slog"
	"strings"

	"connectrpc.com/connect"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/shopstack/inventory/internal/inventory"
)

// grpcCodes is the one table from domain error codes to gRPC status codes.
// A code missing here is an internal error.
var grpcCodes = map[inventory.Code]connect.Code{
	inventory.CodeBadInput:           connect.CodeInvalidArgument,
	inventory.CodeNotFound:           connect.CodeNotFound,
	inventory.CodeConflict:           connect.CodeAborted,
	inventory.CodeInsufficientStock:  connect.CodeFailedPrecondition,
	inventory.CodeStaleLease:         connect.CodeAborted,
	inventory.CodeReservationExpired: connect.CodeFailedPrecondition,
	inventory.CodeRateLimited:        connect.CodeResourceExhausted,
	inventory.CodeUnavailable:        connect.CodeUnavailable,
	inventory.CodeUnauthenticated:    connect.CodeUnauthenticated,
	inventory.CodeForbidden:          connect.CodePermissionDenied,
}

// ErrorDomain is the domain of the ErrorInfo detail every error carries.
const ErrorDomain = "inventory"

// toStatus turns err into the caller's status: a domain error keeps its
// message, with its code as the ErrorInfo reason (and the field by the
// proto's names, and a
// RetryInfo for a retry hint); anything else is logged with the trace id
// and answered as INTERNAL with no detail of its cause.
func toStatus(ctx context.Context, log *slog.Logger, err error) error {
	if err == nil {
		return nil
	}
	if ce, ok := errors.AsType[*connect.Error](err); ok {
		return ce // ours already
	}
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		// The caller's deadline passed: what it was told is what it asked.
		return withInfo(connect.NewError(connect.CodeDeadlineExceeded, errors.New("the call's deadline passed")),
			string(inventory.ErrorCode(err)), nil)
	}
	de, ok := errors.AsType[*inventory.Error](err)
	code, known := connect.Code(0), false
	if ok {
		code, known = grpcCodes[de.Code]
	}
	if !known {
		switch {
		case errors.Is(err, context.Canceled):
			return connect.NewError(connect.CodeCanceled, errors.New("the call was cancelled"))
		case errors.Is(err, context.DeadlineExceeded):
			return connect.NewError(connect.CodeDeadlineExceeded, errors.New("the call's deadline passed"))
		}
		log.ErrorContext(ctx, "internal error", "err", err, "traceId", trace.SpanContextFromContext(ctx).TraceID().String())
		return withInfo(connect.NewError(connect.CodeInternal, errors.New("Internal error.")), string(inventory.CodeInternal), nil)
	}
	ce := connect.NewError(code, errors.New(de.Message))
	var meta map[string]string
	if de.Field != "" {
		meta = map[string]string{"field": protoPath(de.Field)}
	}
	ce = withInfo(ce, string(de.Code), meta)
	if de.RetryAfter > 0 {
		if d, err := connect.NewErrorDetail(&errdetails.RetryInfo{RetryDelay: durationpb.New(de.RetryAfter)}); err == nil {
			ce.AddDetail(d)
		}
	}
	return ce
}

// rowError is toStatus for one failed item of a bulk call, whose error is
// told in its row: the code, the message and the field by the proto's
// names; a code missing from grpcCodes is logged with the trace id and
// told as an internal error.
func rowError(ctx context.Context, log *slog.Logger, e *inventory.Error) (code, message, field string) {
	if _, known := grpcCodes[e.Code]; !known {
		log.ErrorContext(ctx, "internal error in a bulk item", "err", e, "traceId", trace.SpanContextFromContext(ctx).TraceID().String())
		return string(inventory.CodeInternal), "Internal error.", ""
	}
	return string(e.Code), e.Message, protoPath(e.Field)
}

func withInfo(ce *connect.Error, reason string, meta map[string]string) *connect.Error {
	if d, err := connect.NewErrorDetail(&errdetails.ErrorInfo{Reason: reason, Domain: ErrorDomain, Metadata: meta}); err == nil {
		ce.AddDetail(d)
	}
	return ce
}

// protoPath names a field path as the proto does: the service names fields
// in camelCase (GraphQL's names, items[0].locationId), the proto in
// snake_case (items[0].location_id). It is the one rule from one to the
// other; a test holds it to every field of the proto's messages.
func protoPath(path string) string {
	var b strings.Builder
	for _, r := range path {
		if 'A' <= r && r <= 'Z' {
			b.WriteByte('_')
			r += 'a' - 'A'
		}
		b.WriteRune(r)
	}
	return b.String()
}
