package graph_test

import (
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
)

// internalText is what must never reach a client: database, driver and
// runtime text.
var internalText = regexp.MustCompile(`(?i)sqlstate|sqlite|pgx|postgres|gorm|redis|etcd|goroutine|panic|runtime error|nil pointer|\.go:\d`)

// FuzzGraphQL posts arbitrary bodies to the GraphQL endpoint: whatever
// arrives, the answer is never a 500, never an internal error, and never
// shows internal text.
func FuzzGraphQL(f *testing.F) {
	for _, seed := range []string{
		`{"query": "{ products { totalCount } }"}`,
		`{"query": "mutation { createProduct(input: {sku: \"F-1\", name: \"N\", price: \"1.00\", initialStock: 5}) { product { id } } }"}`,
		`{"query": "mutation($q: Int!) { stockOut(input: {productId: 1, quantity: $q}) { movement { id } } }", "variables": {"q": 3}}`,
		`{"query": "mutation { bulkAdjustStock(input: {errorPolicy: REJECT_FAILED_ROWS, items: [{sku: \"F-1\", quantity: 2}, {productId: 99, delta: -1}]}) { applied rows { status error { code } } } }"}`,
		`{"query": "mutation { reserveStock(input: {items: [{productId: 1, quantity: 1}], ttlSeconds: 60}) { reservation { id } } }"}`,
		`{"query": "{ stockMovements(first: 5, after: \"bad-cursor\") { edges { node { id } } } }"}`,
		`{"query": "{ product(id: \"-1\") { sku } }"}`,
		`{"query": "mutation { updateProduct(input: {id: 1, price: \"1e400\"}) { product { id } } }"}`,
		`{"query": "{ reconcile(productIds: [1, 2]) { levelsChecked } }"}`,
		`{"query": "{"}`,
		`[]`,
		`{"query": "query { __schema { types { name } } }"}`,
	} {
		f.Add([]byte(seed))
	}
	e := newEnv(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		req := httptest.NewRequest(http.MethodPost, "/query", strings.NewReader(string(body)))
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		e.h.ServeHTTP(rec, req)
		out := rec.Body.String()
		if rec.Code >= 500 || strings.Contains(out, "INTERNAL_SERVER_ERROR") || internalText.MatchString(out) {
			t.Fatalf("body %q: HTTP %d %s", body, rec.Code, out)
		}
	})
}
