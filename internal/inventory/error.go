package inventory

import (
	"errors"
	"fmt"
	"time"
)

// Code classifies an Error. The codes are part of the API contract: the
// transports map each one to a GraphQL extensions.code or an HTTP status.
type Code string

// Error codes. Their string values are what clients see.
const (
	CodeBadInput           Code = "BAD_USER_INPUT"
	CodeNotFound           Code = "NOT_FOUND"
	CodeConflict           Code = "CONFLICT"
	CodeInsufficientStock  Code = "INSUFFICIENT_STOCK"
	CodeStaleLease         Code = "STALE_LEASE"
	CodeReservationExpired Code = "RESERVATION_EXPIRED"
	CodeRateLimited        Code = "RATE_LIMITED"
	CodeUnavailable        Code = "UNAVAILABLE"
	CodeUnauthenticated    Code = "UNAUTHENTICATED"
	CodeForbidden          Code = "FORBIDDEN"
	CodeInternal           Code = "INTERNAL_SERVER_ERROR"
)

// Error is the one domain error type. Message is written for the client and
// must never contain internal text (SQL, driver or network errors); those go
// in Err, which is logged but not shown.
type Error struct {
	Code    Code
	Message string
	// Field names the offending input field for CodeBadInput, if known.
	Field string
	// RetryAfter is a hint for CodeRateLimited and CodeUnavailable.
	RetryAfter time.Duration
	// Err is the underlying cause, for logs only.
	Err error
}

// Errorf returns an Error with the given code and a client-facing message.
func Errorf(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// Unavailable returns a retryable CodeUnavailable error that keeps cause for
// the logs.
func Unavailable(message string, cause error) *Error {
	return &Error{Code: CodeUnavailable, Message: message, Err: cause}
}

// invalid returns a CodeBadInput error about one input field.
func Invalid(field, format string, args ...any) *Error {
	return &Error{Code: CodeBadInput, Field: field, Message: fmt.Sprintf(format, args...)}
}

// ItemField names field of item i of the list input list (items[2].quantity),
// as a CodeBadInput error's Field.
func ItemField(list string, i int, field string) string {
	return fmt.Sprintf("%s[%d].%s", list, i, field)
}

func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%s: %s: %v", e.Code, e.Message, e.Err)
	}
	return fmt.Sprintf("%s: %s", e.Code, e.Message)
}

func (e *Error) Unwrap() error { return e.Err }

// Retryable reports whether the same request may succeed if sent again.
// A stale lease is: the request changed nothing, and a retry runs under a
// new lease.
func (e *Error) Retryable() bool {
	return e.Code == CodeUnavailable || e.Code == CodeRateLimited || e.Code == CodeStaleLease
}

// ServerFault reports whether c is a failure of the service or its
// dependencies rather than an answer to the client's request: traces mark
// only those as errors.
func (c Code) ServerFault() bool {
	return c == CodeInternal || c == CodeUnavailable || c == CodeStaleLease
}

// ErrorCode returns the code of err, or CodeInternal if err is not an *Error.
func ErrorCode(err error) Code {
	if e, ok := errors.AsType[*Error](err); ok {
		return e.Code
	}
	return CodeInternal
}

// ErrorMessage returns the client-facing message of err. Errors that are not
// an *Error are internal and get a generic message.
func ErrorMessage(err error) string {
	if e, ok := errors.AsType[*Error](err); ok && e.Code != CodeInternal {
		return e.Message
	}
	return "Internal error."
}
