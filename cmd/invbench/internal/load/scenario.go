// Package load is invbench's load engine: the scenarios (what the clients
// send, prepared once with their products and request bodies), the
// workers that send them, each with one request in flight, over the
// transport the run measures, and the tally of what they saw.
package load

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"sync"

	"github.com/shopstack/inventory/cmd/invbench/internal/transport"
)

// reqKind says what a request does, for the tally and the audit.
type reqKind uint8

const (
	kindRead reqKind = iota
	kindStockOut
	kindReserve
	kindCommit
	kindRelease
	// kindTransfer is a step of a transfer: create, ship, receive or
	// cancel.
	kindTransfer
	// kindBundleOut is a stock-out of one bundle.
	kindBundleOut
)

// want is what an OK answer of a kind must contain, so that OK means the
// change was made; nil for reads.
func (k reqKind) want() []byte {
	switch k {
	case kindStockOut, kindBundleOut:
		return movementField
	case kindReserve:
		return reservationField
	case kindCommit, kindRelease, kindTransfer:
		return statusField
	}
	return nil
}

// Queries. A stock-out asks for its movement, so OK means a ledger row.
const (
	stockOutQuery = `mutation($id: ID!, $key: String!) { stockOut(input: {productId: $id, quantity: 1, idempotencyKey: $key}) { movement { sequence } } }`
	productQuery  = `query($id: ID!) { product(id: $id) { id stock available } }`
	listQuery     = `{ products(first: 20) { edges { node { id stock } } } }`
	ceilingQuery  = `{ __typename }`
	// pageQuery is a shopper's product page, and storefrontQuery a category
	// page of 50 products with their stock per location.
	pageQuery       = `query($id: ID!) { product(id: $id) { id sku name price available lowStock } }`
	storefrontQuery = `{ products(first: 50) { edges { node { id sku name price available lowStock levels { location { code } available } } } } }`
	keyMark         = "__INVBENCH_KEY__"
)

// Scenarios lists the workloads the tool knows.
func Scenarios() []string {
	return []string{"flash", "spread", "mixed", "ceiling", "product", "storefront", "flash-reads", "reserve", "checkout", "transfer", "bundle", "bundle-hot-last"}
}

// movementField is what an OK stock-out response must contain.
var movementField = []byte(`"sequence"`)

// Sells reports whether a scenario sells, and so has an audit.
func Sells(scenario string) bool {
	switch scenario {
	case "flash", "spread", "mixed", "flash-reads", "reserve", "checkout", "transfer", "bundle", "bundle-hot-last":
		return true
	}
	return false
}

// productCount is how many products a scenario creates; override, if
// positive, replaces the default of spread and mixed.
func productCount(scenario string, override int) int {
	switch scenario {
	case "flash", "flash-reads", "transfer":
		return 1
	case "storefront":
		return 50
	case "spread":
		if override > 0 {
			return override
		}
		return 1000
	case "mixed", "product":
		if override > 0 {
			return override
		}
		return 100
	case "reserve", "checkout":
		return max(override, 1)
	}
	return 0
}

// Workload is a prepared scenario: its products exist and every request
// body is marshalled but for the idempotency key.
type Workload struct {
	scenario   string
	runID      string
	productIDs []string
	// outHead and outTail surround the idempotency key of a stock-out body,
	// per product; read and page hold product(id) bodies, per product.
	outHead, outTail          [][]byte
	read, page                [][]byte
	list, ceiling, storefront []byte
	// writers is how many workers sell in flash-reads; the others read.
	writers int
	// resHead and resTail surround the idempotency key of a reserve body,
	// per product; the commit and release bodies surround a reservation ID.
	resHead, resTail         [][]byte
	commitHead, commitTail   []byte
	releaseHead, releaseTail []byte
	// origin and destination are the transfer scenario's locations (the
	// default one and one of the run's own), and transfer its bodies.
	origin, destination string
	transfer            transferBodies
	// bundleID is the bundle scenario's bundle, made of its products
	// (bundleParts), and bundleHead and bundleTail surround the
	// idempotency key of its stock-out body.
	bundleID               string
	bundleHead, bundleTail []byte
}

// Sells reports whether the scenario sells, and so has an audit.
func (w *Workload) Sells() bool { return Sells(w.scenario) }

// Scenario is the workload's scenario.
func (w *Workload) Scenario() string { return w.scenario }

// ProductIDs are the IDs of the products the scenario created.
func (w *Workload) ProductIDs() []string { return w.productIDs }

// Destination is the ID of the location the transfer scenario created and
// moves units to; empty in the other scenarios.
func (w *Workload) Destination() string { return w.destination }

// worker is one client's state: its own random source, scratch buffers and
// tally, so the loop shares nothing but the progress counters.
type worker struct {
	id    int
	seq   int
	rng   uint64
	body  []byte
	resp  bytes.Buffer
	gql   transport.Response
	tally Tally
	// pending is the reservation ID of the worker's checkout in progress
	// (a JSON string's text), empty if none.
	pending string
	// product is the index of the product of the current stock-out.
	product int
	// move is the transfer in progress of a worker that moves stock.
	move transferState
}

// rand returns a pseudo-random number below n (xorshift: the tool must stay
// cheap, and the choice of product needs no quality).
func (wk *worker) rand(n int) int {
	wk.rng ^= wk.rng << 13
	wk.rng ^= wk.rng >> 7
	wk.rng ^= wk.rng << 17
	return int(wk.rng % uint64(n))
}

// next returns the worker's next request body and what it does.
func (w *Workload) next(wk *worker) ([]byte, reqKind) {
	switch w.scenario {
	case "ceiling":
		return w.ceiling, kindRead
	case "storefront":
		return w.storefront, kindRead
	case "product":
		return w.page[wk.rand(len(w.page))], kindRead
	case "flash-reads":
		if wk.id >= w.writers {
			return w.page[0], kindRead
		}
	case "reserve", "checkout":
		return w.nextReservation(wk)
	case "transfer":
		if mover(wk.id) {
			return w.nextTransfer(wk)
		}
	case "bundle", "bundle-hot-last":
		return w.nextBundle(wk)
	case "mixed":
		switch r := wk.rand(10); {
		case r < 6:
			return w.read[wk.rand(len(w.read))], kindRead
		case r < 8:
			return w.list, kindRead
		}
	}
	p := w.pick(wk)
	wk.product = p
	return w.keyed(wk, w.outHead[p], w.outTail[p]), kindStockOut
}

// observe reads what the worker's next request depends on from the answer
// to its last: a multi-step scenario's next step.
func (w *Workload) observe(wk *worker, kind reqKind, out string) {
	switch {
	case w.scenario == "checkout":
		w.observeCheckout(wk, kind, out)
	case kind == kindTransfer:
		w.observeTransfer(wk, out)
	}
}

// pick chooses one of the scenario's products for the worker's next
// change.
func (w *Workload) pick(wk *worker) int {
	if len(w.productIDs) > 1 {
		return wk.rand(len(w.productIDs))
	}
	return 0
}

// keyed returns the body head + a new idempotency key + tail, built in the
// worker's buffer: the run's tag, the worker and its count, so keys never
// repeat.
func (w *Workload) keyed(wk *worker, head, tail []byte) []byte {
	wk.body = append(w.appendKey(append(wk.body[:0], head...), wk), tail...)
	return wk.body
}

// appendKey appends a new idempotency key of the worker to b.
func (w *Workload) appendKey(b []byte, wk *worker) []byte {
	wk.seq++
	b = append(b, w.runID...)
	b = append(b, '-')
	b = strconv.AppendInt(b, int64(wk.id), 10)
	b = append(b, '-')
	return strconv.AppendInt(b, int64(wk.seq), 10)
}

// key is the idempotency key of the worker's current request (see keyed).
func (w *Workload) key(wk *worker) string {
	return w.runID + "-" + strconv.Itoa(wk.id) + "-" + strconv.Itoa(wk.seq)
}

// prefix names what the run creates (its products' SKUs, its locations'
// codes), so runs on one server never collide.
func (w *Workload) prefix() string { return strings.ToUpper(w.scenario) + "-" + w.runID }

// Prepare creates the scenario's products (untimed) and marshals its
// request bodies.
func Prepare(ctx context.Context, c *transport.Client, scenario string, products, stock, parallel, writers int) (*Workload, error) {
	w := &Workload{scenario: scenario, runID: transport.NewID(), writers: writers}
	for body, query := range map[*[]byte]string{&w.ceiling: ceilingQuery, &w.list: listQuery, &w.storefront: storefrontQuery} {
		var err error
		if *body, err = json.Marshal(map[string]string{"query": query}); err != nil {
			return nil, err
		}
	}
	var err error
	if _, ok := bundleOrder[scenario]; ok {
		w.productIDs, err = w.bundleProducts(ctx, c, stock)
	} else {
		w.productIDs, err = createProducts(ctx, c, w.prefix(), productCount(scenario, products), stock, parallel)
	}
	if err != nil {
		return nil, err
	}
	for _, id := range w.productIDs {
		head, tail, err := stockOutBody(id)
		if err != nil {
			return nil, err
		}
		w.outHead, w.outTail = append(w.outHead, head), append(w.outTail, tail)
		read, err := json.Marshal(map[string]any{"query": productQuery, "variables": map[string]string{"id": id}})
		if err != nil {
			return nil, err
		}
		page, err := json.Marshal(map[string]any{"query": pageQuery, "variables": map[string]string{"id": id}})
		if err != nil {
			return nil, err
		}
		w.read, w.page = append(w.read, read), append(w.page, page)
	}
	if err := w.reservationBodies(); err != nil {
		return nil, err
	}
	switch scenario {
	case "transfer":
		if err := w.prepareTransfers(ctx, c); err != nil {
			return nil, err
		}
	case "bundle", "bundle-hot-last":
		if err := w.prepareBundle(ctx, c); err != nil {
			return nil, err
		}
	}
	return w, nil
}

// stockOutBody marshals a stock-out of one unit of product id, cut around
// its idempotency key.
func stockOutBody(id string) (head, tail []byte, err error) {
	body, err := json.Marshal(map[string]any{"query": stockOutQuery, "variables": map[string]string{"id": id, "key": keyMark}})
	if err != nil {
		return nil, nil, err
	}
	head, tail, _ = bytes.Cut(body, []byte(keyMark))
	return head, tail, nil
}

// createProducts creates n products with the given stock, parallel at a
// time, and returns their IDs in SKU order.
func createProducts(ctx context.Context, c *transport.Client, skuPrefix string, n, stock, parallel int) ([]string, error) {
	ids := make([]string, n)
	errs := make([]error, n)
	next := make(chan int)
	var wg sync.WaitGroup
	for range min(parallel, 16, n) {
		wg.Go(func() {
			for i := range next {
				ids[i], errs[i] = createProduct(ctx, c, fmt.Sprintf("%s-%d", skuPrefix, i), stock)
			}
		})
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			return nil, fmt.Errorf("create product %d of %d: %w", i+1, n, err)
		}
	}
	return ids, nil
}

func createProduct(ctx context.Context, c *transport.Client, sku string, stock int) (string, error) {
	var out struct {
		CreateProduct struct{ Product struct{ ID string } }
	}
	err := c.Query(ctx, `mutation($sku: String!, $stock: Int!) { createProduct(input: {sku: $sku, name: "invbench", price: "1.00", initialStock: $stock}) { product { id } } }`,
		map[string]any{"sku": sku, "stock": stock}, &out)
	if err != nil {
		return "", err
	}
	return out.CreateProduct.Product.ID, nil
}
