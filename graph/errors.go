package graph

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"slices"
	"strings"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/errcode"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"
	"go.opentelemetry.io/otel/trace"

	"github.com/shopstack/inventory/graph/model"
	"github.com/shopstack/inventory/internal/inventory"
)

// extensionCodes is the one table from domain error codes to GraphQL
// extensions.code. A code missing here is presented as an internal error.
var extensionCodes = map[inventory.Code]string{
	inventory.CodeBadInput:           "BAD_USER_INPUT",
	inventory.CodeNotFound:           "NOT_FOUND",
	inventory.CodeConflict:           "CONFLICT",
	inventory.CodeInsufficientStock:  "INSUFFICIENT_STOCK",
	inventory.CodeStaleLease:         "STALE_LEASE",
	inventory.CodeReservationExpired: "RESERVATION_EXPIRED",
	inventory.CodeRateLimited:        "RATE_LIMITED",
	inventory.CodeUnavailable:        "UNAVAILABLE",
	inventory.CodeUnauthenticated:    "UNAUTHENTICATED",
	inventory.CodeForbidden:          "FORBIDDEN",
}

const (
	internalCode   = "INTERNAL_SERVER_ERROR"
	badRequestCode = "BAD_REQUEST"
)

// fieldOutcome returns the error the field of ctx's field context answered
// with, as a domain error of its code (nil if it answered without one), so
// outcomes are counted by code.
func fieldOutcome(ctx context.Context) error {
	errs := graphql.GetFieldErrors(ctx, graphql.GetFieldContext(ctx))
	if len(errs) == 0 {
		return nil
	}
	for code, ext := range extensionCodes {
		if errs[0].Extensions["code"] == ext {
			return &inventory.Error{Code: code, Message: errs[0].Message}
		}
	}
	return &inventory.Error{Code: inventory.CodeInternal, Message: errs[0].Message}
}

// requestErrorCodes are gqlgen's codes for a request refused before it
// ran: presented as they are.
var requestErrorCodes = map[string]bool{
	errcode.ParseFailed: true, errcode.ValidationFailed: true,
	complexityLimitCode: true, depthLimitCode: true,
	PersistedQueryNotFound: true, PersistedQueryNotInList: true, badRequestCode: true,
}

// rowError presents the error of one item of a bulk call as presentError
// would present it as a whole.
func rowError(ctx context.Context, log *slog.Logger, e *inventory.Error) *model.BulkRowError {
	code, known := extensionCodes[e.Code]
	if !known {
		log.ErrorContext(ctx, "internal error in a bulk item", "err", e, "traceId", traceIDOf(ctx))
		return &model.BulkRowError{Code: internalCode, Message: "Internal error."}
	}
	out := &model.BulkRowError{Code: code, Message: e.Message}
	if e.Field != "" {
		out.Field = &e.Field
	}
	return out
}

// presentError returns the error presenter: domain errors keep their
// client-facing message and get their code from extensionCodes; gqlgen's
// parse and validation errors pass through; anything else is logged with
// the trace id and shown as "Internal error.".
func presentError(log *slog.Logger) graphql.ErrorPresenterFunc {
	return func(ctx context.Context, err error) *gqlerror.Error {
		gqlErr := graphql.DefaultErrorPresenter(ctx, err)
		ext := map[string]any{}
		traceID := traceIDOf(ctx)
		if traceID != "" {
			ext["traceId"] = traceID
		}
		path, field := gqlErr.Path, ""
		if own, arg := argumentError(ctx, gqlErr.Path); arg != "" {
			// An argument's value refused: at the field's own path,
			// naming the input.
			path, field = own, arg
		}
		if de, ok := errors.AsType[*inventory.Error](err); ok {
			if code, known := extensionCodes[de.Code]; known {
				ext["code"] = code
				if field == "" {
					// Not an argument's value: the field the service
					// names, if any.
					field = de.Field
				}
				if field != "" && de.Code == inventory.CodeBadInput {
					ext["field"] = field
				}
				if de.Retryable() {
					ext["retryable"] = true
				}
				if de.RetryAfter > 0 {
					ext["retryAfterMs"] = de.RetryAfter.Milliseconds()
				}
				if de.Err != nil && de.Code == inventory.CodeUnavailable {
					log.WarnContext(ctx, "request failed (retryable)", "err", err, "traceId", traceID, "path", gqlErr.Path.String())
				}
				return &gqlerror.Error{Message: de.Message, Path: path, Locations: gqlErr.Locations, Extensions: ext}
			}
		}
		if field != "" {
			// gqlgen's own scalars' refusals (an Int64 that is not a
			// number): its text names Go's parsers, not the input.
			ext["code"], ext["field"] = extensionCodes[inventory.CodeBadInput], field
			return &gqlerror.Error{Message: field + " is not a valid " + argumentType(ctx, gqlErr.Path), Path: path,
				Locations: gqlErr.Locations, Extensions: ext}
		}
		if ge, ok := err.(*gqlerror.Error); ok && ge.Err == nil && len(ge.Path) == 0 && ge.Extensions["code"] == nil {
			// The transport's own complaint about the request (its text
			// echoes the body and Go's decoder): a generic answer.
			ext["code"] = badRequestCode
			msg := "the request is not a GraphQL request: send JSON {\"query\": …, \"variables\": {…}}"
			if strings.Contains(ge.Message, "request body too large") {
				msg = fmt.Sprintf("request body is larger than %d bytes", MaxBodyBytes)
			}
			return &gqlerror.Error{Message: msg, Extensions: ext}
		}
		if code, ok := gqlErr.Extensions["code"].(string); ok && requestErrorCodes[code] {
			if traceID != "" {
				gqlErr.Extensions["traceId"] = traceID
			}
			return gqlErr
		}
		log.ErrorContext(ctx, "internal error", "err", err, "traceId", traceID, "path", gqlErr.Path.String())
		ext["code"] = internalCode
		return &gqlerror.Error{Message: "Internal error.", Path: gqlErr.Path, Locations: gqlErr.Locations, Extensions: ext}
	}
}

// argumentError reports whether path, an error's, is within the arguments
// of the field of ctx (gqlgen puts an argument's refusal at the field's
// path followed by the argument's): then it returns the field's own path,
// and the input at fault by its model.FieldPath.
func argumentError(ctx context.Context, path ast.Path) (own ast.Path, field string) {
	fc := graphql.GetFieldContext(ctx)
	if fc == nil {
		return nil, ""
	}
	own = fc.Path()
	if len(path) <= len(own) || !slices.Equal(path[:len(own)], own) {
		return nil, ""
	}
	rest := path[len(own):]
	// An argument's, not an item's of the field's list result.
	if name, ok := rest[0].(ast.PathName); !ok || fc.Field.Definition == nil || fc.Field.Definition.Arguments.ForName(string(name)) == nil {
		return nil, ""
	}
	return own, model.FieldPath(rest)
}

// argumentType names the type of the argument an argumentError is about,
// or "value" for a field of an input object.
func argumentType(ctx context.Context, path ast.Path) string {
	fc := graphql.GetFieldContext(ctx)
	own := fc.Path()
	if name, ok := path[len(own)].(ast.PathName); ok && len(path) == len(own)+1 && fc.Field.Definition != nil {
		if arg := fc.Field.Definition.Arguments.ForName(string(name)); arg != nil {
			return arg.Type.Name()
		}
	}
	return "value"
}

// recoverPanic turns a resolver panic into an internal error, logging the
// stack once.
func recoverPanic(log *slog.Logger) graphql.RecoverFunc {
	return func(ctx context.Context, p any) error {
		log.ErrorContext(ctx, "panic in resolver", "panic", fmt.Sprint(p), "traceId", traceIDOf(ctx), "stack", string(debug.Stack()))
		return errors.New("panic in resolver")
	}
}

func traceIDOf(ctx context.Context) string {
	if sc := trace.SpanContextFromContext(ctx); sc.HasTraceID() {
		return sc.TraceID().String()
	}
	return ""
}
