package load

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/shopstack/inventory/cmd/invbench/internal/transport"
)

// The bundle scenarios: a flash sale of a bundle (two units of one product
// and one of another) while every fourth client sells the bundle's first
// component on its own. A bundle's sale takes its components' units in
// one transaction, all or nothing, so the first component's level is hot
// from both sides at once. A bundle's levels are in product ID order; in
// bundle the hot component comes first (it has the lower ID), in
// bundle-hot-last last.
const (
	createBundleQuery = `mutation($sku: String!, $parts: [BundleComponentInput!]!) { createBundle(input: {sku: $sku, name: "invbench", price: "3.00", components: $parts}) { product { id isBundle } } }`
	// directEvery says which clients sell the first component directly:
	// the last of every four (3, 7, 11, …), so that a run of one client
	// still sells the bundle.
	directEvery = 4
)

// bundleParts are the bundle's units of each of the scenario's products.
var bundleParts = []int64{2, 1}

// bundleOrder says, per bundle scenario, whether its first product (the
// hot one) is created last, and so has the higher ID.
var bundleOrder = map[string]bool{"bundle": false, "bundle-hot-last": true}

// direct reports whether client id sells the bundle's first component in
// the bundle scenario; the others sell the bundle.
func direct(id int) bool { return id%directEvery == directEvery-1 }

// Part is a component of the bundle scenario's bundle.
type Part struct {
	ID string
	// Quantity is its units in one bundle.
	Quantity int64
	// Direct says that the clients that do not sell the bundle sell this
	// component, one unit a request.
	Direct bool
}

// Bundle returns the bundle scenario's bundle and its components; ""
// and nil in the other scenarios.
func (w *Workload) Bundle() (string, []Part) {
	if w.bundleID == "" {
		return "", nil
	}
	parts := make([]Part, len(w.productIDs))
	for i, id := range w.productIDs {
		parts[i] = Part{ID: id, Quantity: bundleParts[i], Direct: i == 0}
	}
	return w.bundleID, parts
}

// bundleProducts creates the bundle scenario's products one after the
// other, so that their IDs are in SKU order, and returns their IDs in the
// order of bundleParts: the hot one first.
func (w *Workload) bundleProducts(ctx context.Context, c *transport.Client, stock int) ([]string, error) {
	ids, err := createProducts(ctx, c, w.prefix(), len(bundleParts), stock, 1)
	if err == nil && bundleOrder[w.scenario] {
		slices.Reverse(ids)
	}
	return ids, err
}

// prepareBundle creates the bundle of the scenario's products, its SKU the
// run's prefix, and marshals its stock-out body around the key.
func (w *Workload) prepareBundle(ctx context.Context, c *transport.Client) error {
	parts := make([]map[string]any, len(w.productIDs))
	for i, id := range w.productIDs {
		parts[i] = map[string]any{"productId": id, "quantity": bundleParts[i]}
	}
	var out struct {
		CreateBundle struct {
			Product struct {
				ID       string
				IsBundle bool
			}
		}
	}
	if err := c.Query(ctx, createBundleQuery, map[string]any{"sku": w.prefix(), "parts": parts}, &out); err != nil {
		return fmt.Errorf("create bundle: %w", err)
	}
	if p := out.CreateBundle.Product; p.ID == "" || !p.IsBundle {
		return errors.New("create bundle: the answer is no bundle")
	}
	w.bundleID = out.CreateBundle.Product.ID
	var err error
	w.bundleHead, w.bundleTail, err = stockOutBody(w.bundleID)
	return err
}

// nextBundle returns a bundle scenario's next request: a stock-out of one
// bundle, or of one unit of its first component for a client that sells
// it directly.
func (w *Workload) nextBundle(wk *worker) ([]byte, reqKind) {
	if !direct(wk.id) {
		return w.keyed(wk, w.bundleHead, w.bundleTail), kindBundleOut
	}
	wk.product = 0
	return w.keyed(wk, w.outHead[0], w.outTail[0]), kindStockOut
}
