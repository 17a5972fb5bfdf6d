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

// Gate is the admission chain every transport runs an operation through:
// the caller's role (Authorize), then flow control (an Admission). It is
// built once, in cmd, and every transport holds the same Gate, so that an
// operation is let in by the same rules whichever transport it came by.
// Flow control is reached only through a Pass, which only authorization
// gives: no transport can admit an operation it did not authorize.
//
// A nil *Gate authorizes like any other, and admits every operation it
// authorized.
type Gate struct {
	flow Admission
}

// NewGate returns the chain that authorizes, then asks flow; nil flow
// admits every operation authorized.
func NewGate(flow Admission) *Gate {
	if flow == nil {
		flow = AdmitAll{}
	}
	return &Gate{flow: flow}
}

// Admit runs the whole chain for operation op with the products it moves
// stock of: Authorize (UNAUTHENTICATED, FORBIDDEN), then flow control
// (RATE_LIMITED). An admitted operation calls done exactly once with its
// outcome.
func (g *Gate) Admit(ctx context.Context, op string, productIDs []int64) (done func(error), err error) {
	pass, err := g.Authorize(ctx, op)
	if err != nil {
		return nil, err
	}
	return pass.Admit(ctx, productIDs)
}

// Authorize is the chain's first step alone: it checks that ctx's
// principal may run op, and returns the Pass that takes op on to flow
// control. Operations that flow control does not see (subscriptions, the
// change stream, introspection) stop here; a transport that must know the
// caller may run op before it looks anything up for flow control (a
// product's ID from its SKU) admits the Pass afterwards.
func (g *Gate) Authorize(ctx context.Context, op string) (Pass, error) {
	if err := Authorize(ctx, op); err != nil {
		return Pass{}, err
	}
	flow := Admission(AdmitAll{})
	if g != nil {
		flow = g.flow
	}
	return Pass{op: op, flow: flow}, nil
}

// Pass is an operation authorized and not yet admitted by flow control.
type Pass struct {
	op   string
	flow Admission
}

// Admit asks flow control to admit the operation with the products it
// moves stock of; as Admission.Admit. A Pass that authorization did not
// give admits nothing.
func (p Pass) Admit(ctx context.Context, productIDs []int64) (done func(error), err error) {
	if p.flow == nil {
		return nil, Errorf(CodeInternal, "operation admitted without authorization")
	}
	return p.flow.Admit(ctx, p.op, productIDs)
}
