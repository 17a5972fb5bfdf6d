package graph

import (
	"context"
	"strings"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"

	"github.com/shopstack/inventory/graph/model"
	"github.com/shopstack/inventory/internal/inventory"
)

// FlowReporter answers the flowControl query.
type FlowReporter interface {
	// FlowControl reports flow control on this replica with up to
	// hotProducts hot products.
	FlowControl(hotProducts int) *model.FlowControl
}

// productKeyed is an input naming the products whose stock it moves, for
// per-product flow control.
type productKeyed interface {
	ProductIDs() []int64
}

// admit asks the admission control before each root query and mutation
// field runs; the field's name is the operation. Subscriptions and
// introspection pass.
func admit(a inventory.Admission) graphql.FieldMiddleware {
	return func(ctx context.Context, next graphql.Resolver) (any, error) {
		fc := graphql.GetFieldContext(ctx)
		if fc == nil || fc.Object != "Query" && fc.Object != "Mutation" || strings.HasPrefix(fc.Field.Name, "__") {
			return next(ctx)
		}
		var ids []int64
		if in, ok := fc.Args["input"].(productKeyed); ok {
			ids = in.ProductIDs()
		}
		done, err := a.Admit(ctx, fc.Field.Name, ids)
		if err != nil {
			return nil, err
		}
		res, err := next(ctx)
		done(err)
		return res, err
	}
}

// Operations returns the names flow-control rules may limit: every root
// query and mutation field.
func Operations() []string {
	s := NewExecutableSchema(Config{}).Schema()
	var ops []string
	for _, t := range []*ast.Definition{s.Query, s.Mutation} {
		for _, f := range t.Fields {
			if !strings.HasPrefix(f.Name, "__") {
				ops = append(ops, f.Name)
			}
		}
	}
	return ops
}
