package graph

import (
	"context"
	"strings"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/shopstack/inventory/internal/inventory"
)

// Authorization and admission run once per root field, around it, never
// as field middleware: a field middleware runs for every field of every
// answer (a page of 50 products is hundreds of fields), and each layer
// deepens the stack of every resolver goroutine.

// authorize checks, before each root query and mutation field runs, that
// the caller's role may run it. Introspection needs only a caller.
func authorize(ctx context.Context, next graphql.RootResolver) graphql.Marshaler {
	rc := graphql.GetRootFieldContext(ctx)
	if rc == nil {
		return next(ctx)
	}
	if err := inventory.Authorize(ctx, operation(rc.Field.Name)); err != nil {
		return refuse(ctx, err)
	}
	return next(ctx)
}

// operation is the name a root field is authorized as: its own, or, for
// introspection, what a reader may do.
func operation(field string) string {
	if strings.HasPrefix(field, "__") {
		return "products"
	}
	return field
}

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

// subscriptionAuth authorizes a subscription's one root field when the
// operation starts: subscriptions run no root field interceptor.
type subscriptionAuth struct {
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
		if err := inventory.Authorize(ctx, operation(name)); err != nil {
			return a.present(ctx, err)
		}
	}
	return nil
}
