package graph

import (
	"strings"

	"github.com/vektah/gqlparser/v2/ast"

	"github.com/shopstack/inventory/graph/model"
)

// FlowReporter answers the flowControl query.
type FlowReporter interface {
	// FlowControl reports flow control on this replica with up to
	// hotProducts hot products.
	FlowControl(hotProducts int) *model.FlowControl
}

// productKeys returns the products whose stock a mutation's input moves,
// for per-product flow control: its productId, or its items' (a
// reservation's). Other inputs name none.
func productKeys(input any) []int64 {
	in, _ := input.(map[string]any)
	if id, ok := productKey(in["productId"]); ok {
		return []int64{id}
	}
	items, _ := in["items"].([]any)
	var ids []int64
	for _, it := range items {
		item, _ := it.(map[string]any)
		if id, ok := productKey(item["productId"]); ok {
			ids = append(ids, id)
		}
	}
	return ids
}

// productKey reads a raw productId as the field will (model.ParseID): an
// ID that does not name a product is left to the field, which refuses it.
func productKey(v any) (int64, bool) {
	if v == nil {
		return 0, false
	}
	id, err := model.ParseID(v, "productId")
	if err != nil {
		return 0, false
	}
	n, err := id.Of(model.ProductNode)
	return n, err == nil
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
