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

// admit asks the admission control before each root query and mutation
// field runs; the field's name is the operation, and its outcome is the
// code of its error, if any. Subscriptions and introspection pass.
func admit(a inventory.Admission) graphql.RootFieldMiddleware {
	return func(ctx context.Context, next graphql.RootResolver) graphql.Marshaler {
		rc, oc := graphql.GetRootFieldContext(ctx), graphql.GetOperationContext(ctx)
		if rc == nil || strings.HasPrefix(rc.Field.Name, "__") {
			return next(ctx)
		}
		done, err := a.Admit(ctx, rc.Field.Name, productKeys(rc.Field.ArgumentMap(oc.Variables)["input"]))
		if err != nil {
			return refuse(ctx, err)
		}
		res := next(ctx)
		done(fieldOutcome(rootFieldContext(ctx)))
		return res
	}
}

// productKeys returns the products whose stock a mutation's input moves,
// for per-product flow control: its productId, or its items' (a
// reservation's). Other inputs name none.
func productKeys(input any) []int64 {
	in, _ := input.(map[string]any)
	if id, err := model.UnmarshalID(in["productId"]); in["productId"] != nil && err == nil {
		return []int64{id}
	}
	items, _ := in["items"].([]any)
	var ids []int64
	for _, it := range items {
		item, _ := it.(map[string]any)
		if id, err := model.UnmarshalID(item["productId"]); item["productId"] != nil && err == nil {
			ids = append(ids, id)
		}
	}
	return ids
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
