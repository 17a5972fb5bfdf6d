package inventory

import "context"

// Admission is flow control in front of the service: the transports ask it
// before running an operation, named as its GraphQL field (stockOut,
// products, …). productIDs are the products the operation would move stock
// of, for per-product (hot-spot) limits; nil for the others.
//
// Admit may wait (throttling) before it answers. A refusal is an *Error with
// CodeRateLimited and a RetryAfter hint. An admitted operation must call
// done exactly once with its outcome. Admission never decides correctness:
// every admitted request is judged by the store as usual.
type Admission interface {
	Admit(ctx context.Context, op string, productIDs []int64) (done func(error), err error)
}

// AdmitAll is the Admission that refuses nothing.
type AdmitAll struct{}

// Admit admits every operation.
func (AdmitAll) Admit(context.Context, string, []int64) (func(error), error) { return admitted, nil }

func admitted(error) {}
