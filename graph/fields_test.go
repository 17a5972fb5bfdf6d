package graph_test

import (
	"strings"
	"testing"

	"github.com/shopstack/inventory/internal/testenv"
)

// TestBadInputNamesItsField sweeps GraphQL's bad inputs: every
// BAD_USER_INPUT names the input at fault in extensions.field (as the
// client sent it, within its argument or input object), at the path of the
// field whose argument it is, and no message carries a Go library's text.
func TestBadInputNamesItsField(t *testing.T) {
	e := newEnv(t)
	var created struct {
		CreateProduct struct{ Product struct{ ID string } }
	}
	e.must(t, `mutation { createProduct(input: {sku: "FIELD-1", name: "x", price: "1"}) { product { id } } }`, &created)
	id := created.CreateProduct.Product.ID
	for _, tc := range []struct{ name, body, field string }{
		{"float price variable", `{"query": "mutation($p: Decimal!) { createProduct(input: {sku: \"F2\", name: \"x\", price: $p}) { replayed } }", "variables": {"p": 12.5}}`, "price"},
		{"float price literal", `{"query": "mutation { createProduct(input: {sku: \"F2\", name: \"x\", price: 12.5}) { replayed } }"}`, "price"},
		{"price text", `{"query": "mutation { createProduct(input: {sku: \"F2\", name: \"x\", price: \"twelve\"}) { replayed } }"}`, "price"},
		{"name too long", `{"query": "mutation { createProduct(input: {sku: \"F2\", name: \"` + longName + `\", price: \"1\"}) { replayed } }"}`, "name"},
		{"bad cursor", `{"query": "{ products(after: \"zz\") { totalCount } }"}`, "after"},
		{"bad movements cursor", `{"query": "{ stockMovements(after: \"zz\") { pageInfo { hasNextPage } } }"}`, "after"},
		{"page too large", `{"query": "{ products(first: 5000) { totalCount } }"}`, "first"},
		{"Int64 not a number", `{"query": "subscription($a: Int64) { stockChanged(afterSequence: $a) { sequence } }", "variables": {"a": "abc"}}`, "afterSequence"},
		{"bad ID argument", `{"query": "{ stockMovements(productId: \"x\") { pageInfo { hasNextPage } } }"}`, "productId"},
		{"bad ID in a list", `{"query": "mutation { createBundle(input: {sku: \"B\", name: \"b\", price: \"1\", components: [{productId: \"ID\", quantity: 1}, {productId: \"x\", quantity: 1}]}) { replayed } }"}`, "components[1].productId"},
		{"quantity out of range", `{"query": "mutation { stockIn(input: {productId: \"ID\", quantity: 0}) { replayed } }"}`, "quantity"},
		{"hot products", `{"query": "{ flowControl(hotProducts: 1000) { source } }"}`, "hotProducts"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, errs := e.raw(t, strings.ReplaceAll(tc.body, `\"ID\"`, `\"`+id+`\"`))
			if len(errs) == 0 {
				t.Fatal("no error")
			}
			for _, err := range errs {
				if err.Extensions["code"] != "BAD_USER_INPUT" {
					t.Errorf("code %v (%q), want BAD_USER_INPUT", err.Extensions["code"], err.Message)
				}
				if f := err.Extensions["field"]; f != tc.field {
					t.Errorf("field %v (%q), want %q", f, err.Message, tc.field)
				}
				if len(err.Path) != 1 {
					t.Errorf("path %v, want the root field's", err.Path)
				}
				if m := testenv.LibraryText(err.Message); m != "" {
					t.Errorf("message %q carries a library's text (%q)", err.Message, m)
				}
			}
		})
	}
}

const longName = "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"

// TestReplayedRefusalNamesItsField: a final refusal remembered under its
// idempotency key is told to a retry with the same code, message and
// field, even after the stock changed so the request would now succeed.
func TestReplayedRefusalNamesItsField(t *testing.T) {
	e := newEnv(t)
	p := e.createProduct(t, "FULL-1", 1_000_000_000, 0)
	e.must(t, `mutation { a: stockIn(input: {productId: "`+p.ID+`", quantity: 1000000000}) { replayed }
		b: stockIn(input: {productId: "`+p.ID+`", quantity: 147483647}) { replayed } }`, nil)
	in := `mutation { stockIn(input: {productId: "` + p.ID + `", quantity: 5, idempotencyKey: "full-1"}) { replayed } }`
	first := wantCode(t, e.do(t, in, nil), "BAD_USER_INPUT")
	if first.Extensions["field"] != "quantity" {
		t.Fatalf("first refusal %+v, want field quantity", first)
	}
	e.must(t, `mutation { stockOut(input: {productId: "`+p.ID+`", quantity: 10}) { replayed } }`, nil)
	again := wantCode(t, e.do(t, in, nil), "BAD_USER_INPUT")
	if again.Message != first.Message || again.Extensions["field"] != first.Extensions["field"] {
		t.Errorf("retry answered %q field %v, want %q field %v", again.Message, again.Extensions["field"], first.Message, first.Extensions["field"])
	}
}
