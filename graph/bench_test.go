package graph_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/shopstack/inventory/graph"
	"github.com/shopstack/inventory/internal/gormstore"
	"github.com/shopstack/inventory/internal/inventory"
	"github.com/shopstack/inventory/internal/lock/memlock"
	"github.com/shopstack/inventory/internal/testenv/gormstoretest"
)

// BenchmarkStorefront serves the storefront's 50-product page, and a
// product page, from the read model, in process (no network): what
// GraphQL execution costs per page.
func BenchmarkStorefront(b *testing.B) {
	svc := startReplica(b, replica{driver: gormstore.SQLite, dsn: gormstoretest.DSN(b, gormstore.SQLite), locker: memlock.New(0)})
	var first int64
	for i := range 50 {
		res, err := svc.CreateProduct(context.Background(), inventory.NewProduct{SKU: "SF-" + strconv.Itoa(i), Name: "Item", InitialStock: 10})
		if err != nil {
			b.Fatal(err)
		}
		if i == 0 {
			first = res.Product.ID
		}
	}
	h := newHandler(svc, graph.Options{})
	for _, q := range []struct{ name, query string }{
		{"page", `{ products(first: 50) { edges { node { id sku name price available lowStock levels { location { code } available } } } } }`},
		{"product", `{ product(id: ` + strconv.FormatInt(first, 10) + `) { id sku name price available lowStock } }`},
		{"typename", `{ __typename }`},
	} {
		body, _ := json.Marshal(map[string]string{"query": q.query})
		b.Run(q.name, func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					req := httptest.NewRequest(http.MethodPost, "/query", strings.NewReader(string(body)))
					req.Header.Set("Content-Type", "application/json")
					rec := httptest.NewRecorder()
					h.ServeHTTP(rec, req)
					if rec.Code != 200 || strings.Contains(rec.Body.String(), `"errors"`) {
						b.Fatalf("%d %s", rec.Code, rec.Body)
					}
				}
			})
		})
	}
}
