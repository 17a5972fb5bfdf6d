package graph_test

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/99designs/gqlgen/client"

	"github.com/shopstack/inventory/graph"
	"github.com/shopstack/inventory/internal/app"
	"github.com/shopstack/inventory/internal/gormstore"
	"github.com/shopstack/inventory/internal/inventory"
	"github.com/shopstack/inventory/internal/testenv/gormstoretest"
	"github.com/shopstack/inventory/internal/testenv/inventorytest"
)

// recorder is an Admission that records what it is asked and refuses the
// operations named in refuse.
type recorder struct {
	mu     sync.Mutex
	asked  []string
	ids    map[string][]int64
	refuse map[string]bool
}

func (r *recorder) Admit(_ context.Context, op string, ids []int64) (func(error), error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.asked = append(r.asked, op)
	r.ids[op] = ids
	if r.refuse[op] {
		return nil, &inventory.Error{Code: inventory.CodeRateLimited, Message: "too many " + op + " requests", RetryAfter: 250 * time.Millisecond}
	}
	return func(error) {}, nil
}

// TestAdmission: every root query and mutation field is admitted by name,
// with the products a stock mutation moves; a refusal is RATE_LIMITED with
// retryAfterMs.
func TestAdmission(t *testing.T) {
	st := gormstoretest.Open(t, gormstore.SQLite)
	svc := inventorytest.Start(t, st, app.Config{})
	rec := &recorder{ids: map[string][]int64{}, refuse: map[string]bool{"stockIn": true}}
	e := env{c: client.New(newHandler(svc, graph.Options{Gate: inventory.NewGate(rec)}))}

	if errs := e.do(t, `mutation { a: createProduct(input: {sku: "A", name: "A", price: "1", initialStock: 5}) { product { id } }
		b: createProduct(input: {sku: "B", name: "B", price: "1", initialStock: 5}) { product { id } } }`, nil); len(errs) > 0 {
		t.Fatal(errs)
	}
	if errs := e.do(t, `mutation { stockOut(input: {productId: "1", quantity: 1}) { movement { sequence } } }`, nil); len(errs) > 0 {
		t.Fatal(errs)
	}
	if errs := e.do(t, `mutation { reserveStock(input: {items: [{productId: "2", quantity: 1}, {productId: "1", quantity: 1}]}) { reservation { id } } }`, nil); len(errs) > 0 {
		t.Fatal(errs)
	}
	if errs := e.do(t, `{ products { edges { node { sku levels { available } } } } __schema { queryType { name } } }`, nil); len(errs) > 0 {
		t.Fatal(errs)
	}
	errs := e.do(t, `mutation { stockIn(input: {productId: "1", quantity: 1}) { movement { sequence } } }`, nil)
	if len(errs) != 1 || errs[0].Extensions["code"] != "RATE_LIMITED" || errs[0].Extensions["retryAfterMs"] != float64(250) ||
		errs[0].Extensions["retryable"] != true {
		t.Errorf("refused stockIn: %+v", errs)
	}
	want := []string{"createProduct", "createProduct", "stockOut", "reserveStock", "products", "stockIn"}
	if !slices.Equal(rec.asked, want) {
		t.Errorf("admitted %v, want %v", rec.asked, want)
	}
	if got := rec.ids["reserveStock"]; !slices.Equal(got, []int64{2, 1}) {
		t.Errorf("reserveStock keyed on %v", got)
	}
	if got := rec.ids["stockOut"]; !slices.Equal(got, []int64{1}) {
		t.Errorf("stockOut keyed on %v", got)
	}
	if got := rec.ids["products"]; got != nil {
		t.Errorf("products keyed on %v", got)
	}
	if p, _ := st.Product(context.Background(), 1); p.Stock != 5-1 {
		t.Errorf("stock after a refused stockIn = %d, want 4", p.Stock)
	}
}
