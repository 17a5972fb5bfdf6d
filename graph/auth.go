package graph

import (
	"context"
	"strings"

	"github.com/99designs/gqlgen/graphql"

	"github.com/shopstack/inventory/internal/inventory"
)

// authorize checks, before each root field runs, that the caller's role
// may run it. Introspection needs only a caller.
func authorize(ctx context.Context, next graphql.Resolver) (any, error) {
	fc := graphql.GetFieldContext(ctx)
	if fc == nil || fc.Object != "Query" && fc.Object != "Mutation" && fc.Object != "Subscription" {
		return next(ctx)
	}
	op := fc.Field.Name
	if strings.HasPrefix(op, "__") {
		op = "products" // what a reader may do
	}
	if err := inventory.Authorize(ctx, op); err != nil {
		return nil, err
	}
	return next(ctx)
}
