package graph

import (
	"context"
	"strings"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/shopstack/inventory/internal/inventory"
)

// The admission chain (inventory.Gate) runs once per root field, around
// it, never as field middleware: a field middleware runs for every field of
// every answer (a page of 50 products is hundreds of fields), and each
// layer deepens the stack of every resolver goroutine.

// admit runs each root query and mutation field through the gate: the
// caller's role, then flow control, with the field's name as the operation
// and the products a stock mutation moves; the field's outcome is the code
// of its error, if any. Introspection needs only a caller and passes flow
// control.
func admit(gate *inventory.Gate) graphql.RootFieldMiddleware {
	return func(ctx context.Context, next graphql.RootResolver) graphql.Marshaler {
		rc := graphql.GetRootFieldContext(ctx)
		if rc == nil {
			return next(ctx)
		}
		pass, err := gate.Authorize(ctx, operation(rc.Field.Name))
		if err != nil {
			return refuse(ctx, err)
		}
		if isIntrospection(rc.Field.Name) {
			return next(ctx)
		}
		args := rc.Field.ArgumentMap(graphql.GetOperationContext(ctx).Variables)
		done, err := pass.Admit(ctx, productKeys(args["input"]))
		if err != nil {
			return refuse(ctx, err)
		}
		if ops := readsAs(rc.Field.Name, args); len(ops) > 0 {
			if done, err = admitAs(ctx, gate, ops, done); err != nil {
				return refuse(ctx, err)
			}
		}
		res := next(ctx)
		done(fieldOutcome(rootFieldContext(ctx)))
		return res
	}
}

// readsAs returns the operations a root field that reads objects by ID
// (node, nodes, _entities) reads them as: their types' own queries (nodeOperations),
// which it must pass as well as its own.
func readsAs(field string, args map[string]any) []string {
	if field == "_entities" {
		return entityOperations(args)
	}
	var ops []string
	for _, t := range nodeTypes(field, args) {
		ops = append(ops, nodeOperations[t])
	}
	return ops
}

// admitAs runs ops through the whole chain after the field itself was
// admitted (done): the field runs only if every one lets it, and its
// outcome is reported to each. On a refusal, those admitted are let go.
func admitAs(ctx context.Context, gate *inventory.Gate, ops []string, done func(error)) (func(error), error) {
	dones := []func(error){done}
	all := func(outcome error) {
		for _, d := range dones {
			d(outcome)
		}
	}
	for _, op := range ops {
		d, err := gate.Admit(ctx, op, nil)
		if err != nil {
			all(nil)
			return nil, err
		}
		dones = append(dones, d)
	}
	return all, nil
}

// operation is the name a root field is authorized as: its own, or, for
// introspection, what a reader may do.
func operation(field string) string {
	if isIntrospection(field) {
		return "products"
	}
	return field
}

func isIntrospection(field string) bool { return strings.HasPrefix(field, "__") }

// refuse reports err as the root field's error and resolves the field to
// null, as an error of its resolver would (a non-null field's null then
// makes its parent null).
func refuse(ctx context.Context, err error) graphql.Marshaler {
	graphql.AddError(rootFieldContext(ctx), err)
	return graphql.Null
}

// rootFieldContext gives ctx the field context of its root field, so that
// errors report the field's path and location.
func rootFieldContext(ctx context.Context) context.Context {
	rc := graphql.GetRootFieldContext(ctx)
	fc := &graphql.FieldContext{Object: rc.Object, Field: rc.Field}
	ctx = graphql.WithFieldContext(ctx, fc)
	return ctx
}

// subscriptionAuth authorizes a subscription's one root field through the
// gate when the operation starts: subscriptions run no root field
// interceptor, and pass no flow control.
type subscriptionAuth struct {
	gate    *inventory.Gate
	present graphql.ErrorPresenterFunc
}

var (
	_ graphql.HandlerExtension        = subscriptionAuth{}
	_ graphql.OperationContextMutator = subscriptionAuth{}
)

func (subscriptionAuth) ExtensionName() string                   { return "SubscriptionAuthorization" }
func (subscriptionAuth) Validate(graphql.ExecutableSchema) error { return nil }

func (a subscriptionAuth) MutateOperationContext(ctx context.Context, oc *graphql.OperationContext) *gqlerror.Error {
	if oc.Operation == nil || oc.Operation.Operation != ast.Subscription {
		return nil
	}
	for _, name := range rootFields(oc.Operation.SelectionSet) {
		if _, err := a.gate.Authorize(ctx, operation(name)); err != nil {
			// Presented here, as a WebSocket sends this error as it is;
			// the cause stays attached, as SSE presents it once more.
			ge := a.present(ctx, err)
			ge.Err = err
			return ge
		}
	}
	return nil
}
