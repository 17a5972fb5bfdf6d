package faults

import (
	"cmp"
	"fmt"
	"slices"

	"github.com/anishathalye/porcupine"
)

// A bundle has no units of its own: a sale of it takes its components'
// units in one transaction, all or nothing. So a bundle's sales cannot be
// checked on one product's history: they are checked with its
// components' own changes, in one partition that holds the units of all
// of them.

// Component is a product in a bundle, Qty units of it to a bundle.
type Component struct{ Product, Qty int64 }

// Part is a component as its bundle's model knows it: Qty units to a
// bundle, Initial units on hand at the start, and its backorder limit.
type Part struct{ Qty, Initial, Limit int64 }

// WholeBundle is the Part of a BundleInput on the bundle itself.
const WholeBundle = -1

// BundleInput is an op of a bundle's partition: In on its component Part
// (an index into the model's parts), or, with Part WholeBundle, a
// stock-out of In.Qty bundles. The Output of a bundle's stock-out is the
// on hand its first part's ledger row records (the row that carries the
// request's key).
type BundleInput struct {
	Part int
	In   Input
}

// units are the states of a bundle's components, by part.
type units []state

// BundleModel is a bundle's model: its parts' units, each as StockModel
// (BackorderModel) follows them, changed by their own ops, and a sale of
// n bundles, which succeeds only if every part has n×Qty units available
// (down to its backorder limit) and then takes them from each; a refusal
// changes none of them, and an unknown sale took all or none.
func BundleModel(parts ...Part) porcupine.Model {
	init := make(units, len(parts))
	for i, p := range parts {
		init[i] = state{stock: p.Initial, limit: p.Limit}
	}
	qty := make([]int64, len(parts))
	for i, p := range parts {
		qty[i] = p.Qty
	}
	m := porcupine.NondeterministicModel{
		Init: func() []any { return []any{init} },
		Step: func(st, input, output any) []any {
			return bundleStep(qty, st.(units), input.(BundleInput), output.(Output))
		},
		Equal: func(a, b any) bool { return slices.Equal(a.(units), b.(units)) },
		DescribeOperation: func(input, output any) string {
			in := input.(BundleInput)
			if in.Part == WholeBundle {
				return "bundle " + describe(in.In, output)
			}
			return fmt.Sprintf("part %d: %s", in.Part, describe(in.In, output))
		},
	}
	return m.ToModel()
}

func bundleStep(qty []int64, s units, in BundleInput, out Output) []any {
	if in.Part != WholeBundle {
		var next []any
		for _, p := range step(s[in.Part], in.In, out) {
			n := slices.Clone(s)
			n[in.Part] = p.(state)
			next = append(next, n)
		}
		return next
	}
	if in.In.Kind != OpOut {
		return nil // a bundle has no stock to add, reserve or read
	}
	next, applies := slices.Clone(s), true
	for i, q := range qty {
		applies = applies && s[i].available() >= q*in.In.Qty
		next[i].stock -= q * in.In.Qty
	}
	switch out.Kind {
	case OK:
		if applies && out.After == next[0].stock {
			return []any{next}
		}
	case Insufficient:
		if !applies {
			return []any{s}
		}
	case Unknown:
		if applies {
			return []any{s, next}
		}
		return []any{s}
	}
	return nil
}

// SetBundle records that bundle is made of comps, so that its stock-outs
// are checked with its components' ops, in one partition. A product may
// be a component of one such bundle.
func (h *History) SetBundle(bundle int64, comps ...Component) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.bundles == nil {
		h.bundles = map[int64][]Component{}
	}
	// The service writes a sale's rows in product order, the key on the
	// first.
	h.bundles[bundle] = slices.SortedFunc(slices.Values(comps), func(a, b Component) int { return cmp.Compare(a.Product, b.Product) })
}

// partition is the ops checked together, against one model.
type partition struct {
	product    int64 // the product, or the bundle
	components []int64
	ops        []porcupine.Operation
	model      porcupine.Model
}

// partitions splits the history: one partition per bundle with its
// components, one per other product. h.mu is held.
func (h *History) partitions(initial map[int64]int64) []partition {
	var out []partition
	inBundle := map[int64]bool{}
	for bundle, comps := range h.bundles {
		p := partition{product: bundle, ops: wrap(h.ops[bundle], WholeBundle)}
		parts := make([]Part, len(comps))
		for i, c := range comps {
			inBundle[c.Product] = true
			p.components = append(p.components, c.Product)
			p.ops = append(p.ops, wrap(h.ops[c.Product], i)...)
			parts[i] = Part{Qty: c.Qty, Initial: initial[c.Product], Limit: h.limits[c.Product]}
		}
		p.model = BundleModel(parts...)
		out = append(out, p)
	}
	for product, ops := range h.ops {
		if inBundle[product] || h.bundles[product] != nil {
			continue
		}
		out = append(out, partition{product: product, ops: ops, model: BackorderModel(initial[product], h.limits[product])})
	}
	return out
}

// wrap makes ops on a bundle's part ops of its partition.
func wrap(ops []porcupine.Operation, part int) []porcupine.Operation {
	out := make([]porcupine.Operation, len(ops))
	for i, op := range ops {
		op.Input = BundleInput{Part: part, In: op.Input.(Input)}
		out[i] = op
	}
	return out
}
