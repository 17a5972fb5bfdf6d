package graph_test

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shopstack/inventory/graph"
	"github.com/shopstack/inventory/internal/app"
	"github.com/shopstack/inventory/internal/gormstore"
	"github.com/shopstack/inventory/internal/testenv/gormstoretest"
	"github.com/shopstack/inventory/internal/testenv/inventorytest"
)

// storefront is a category page's query: read-model fields only.
const storefront = `query Storefront { products(first: 10) { edges { node { id sku name price available lowStock } } } }`

func sha(q string) string {
	b := sha256.Sum256([]byte(q))
	return hex.EncodeToString(b[:])
}

// get sends a GraphQL GET with the given query parameters and headers.
func get(t *testing.T, srv *httptest.Server, params url.Values, header http.Header) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, srv.URL+"/query?"+params.Encode(), nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	return resp, readAll(t, resp)
}

func readAll(t *testing.T, resp *http.Response) string {
	t.Helper()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func persisted(hash string) string {
	return fmt.Sprintf(`{"persistedQuery":{"version":1,"sha256Hash":%q}}`, hash)
}

func newCacheServer(t *testing.T, opts graph.Options) *httptest.Server {
	t.Helper()
	st := gormstoretest.Open(t, gormstore.SQLite)
	svc := inventorytest.Start(t, st, app.Config{PollInterval: 50 * time.Millisecond})
	opts.Answers = graph.NewAnswers(svc, 1<<20)
	srv := httptest.NewServer(newHandler(svc, opts))
	t.Cleanup(srv.Close)
	post(t, srv, `mutation { createProduct(input: {sku: "MUG", name: "Mug", price: "4.50", initialStock: 8}) { product { id } } }`)
	return srv
}

// post runs a mutation over POST and fails the test on any error.
func post(t *testing.T, srv *httptest.Server, query string) string {
	t.Helper()
	code, body := postRaw(t, srv, map[string]any{"query": query})
	if code != http.StatusOK || strings.Contains(body, `"errors"`) {
		t.Fatalf("%s: %d %s", query, code, body)
	}
	return body
}

func postRaw(t *testing.T, srv *httptest.Server, req map[string]any) (int, string) {
	t.Helper()
	b, _ := json.Marshal(req)
	resp, err := http.Post(srv.URL+"/query", "application/json", strings.NewReader(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	return resp.StatusCode, readAll(t, resp)
}

// TestGETCaching: a storefront query over GET, by its persisted hash,
// answers with Cache-Control and an ETag, and the same request with
// If-None-Match gets 304; what may not be cached says no-store.
func TestGETCaching(t *testing.T) {
	srv := newCacheServer(t, graph.Options{HTTPCacheMaxAge: 5 * time.Second})

	// Automatic persisted query: the hash alone is unknown at first.
	byHash := url.Values{"extensions": {persisted(sha(storefront))}}
	resp, body := get(t, srv, byHash, nil)
	if !strings.Contains(body, graph.PersistedQueryNotFound) || resp.Header.Get("Cache-Control") != "no-store" {
		t.Fatalf("unknown hash: %d %s %q, want %s, no-store", resp.StatusCode, body, resp.Header.Get("Cache-Control"), graph.PersistedQueryNotFound)
	}
	// The client sends the text with the hash once; from then on the hash
	// alone runs it.
	withText := url.Values{"query": {storefront}, "extensions": {persisted(sha(storefront))}}
	if resp, body := get(t, srv, withText, nil); resp.StatusCode != http.StatusOK || !strings.Contains(body, `"sku":"MUG"`) {
		t.Fatalf("query with its hash: %d %s", resp.StatusCode, body)
	}
	resp, body = get(t, srv, byHash, nil)
	etag := resp.Header.Get("ETag")
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, `"sku":"MUG"`) || etag == "" ||
		resp.Header.Get("Cache-Control") != "public, max-age=5" {
		t.Fatalf("by hash: %d %s, Cache-Control %q, ETag %q", resp.StatusCode, body, resp.Header.Get("Cache-Control"), etag)
	}
	// The storefront asks again: not modified, no body.
	resp, body = get(t, srv, byHash, http.Header{"If-None-Match": {etag}})
	if resp.StatusCode != http.StatusNotModified || body != "" || resp.Header.Get("ETag") != etag {
		t.Fatalf("If-None-Match: %d %q, ETag %q; want 304, no body", resp.StatusCode, body, resp.Header.Get("ETag"))
	}
	// A sale changes the answer, and so its ETag: the old one is not
	// matched (once the read model has the sale).
	post(t, srv, `mutation { stockOut(input: {productId: "1", quantity: 1}) { level { available } } }`)
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, body = get(t, srv, byHash, http.Header{"If-None-Match": {etag}})
		if resp.StatusCode == http.StatusOK && strings.Contains(body, `"available":7`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after a sale: %d %s", resp.StatusCode, body)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if resp.Header.Get("ETag") == etag {
		t.Fatal("a changed answer kept its ETag")
	}

	for name, c := range map[string]struct {
		params url.Values
		header http.Header
	}{
		"a STRONG read":             {params: url.Values{"query": {`{ product(id: "1", consistency: STRONG) { sku available } }`}}},
		"a field from the database": {params: url.Values{"query": {`{ product(id: "1") { sku movements(first: 1) { edges { node { type } } } } }`}}},
		"a caller with a token":     {params: url.Values{"query": {storefront}}, header: http.Header{"Authorization": {"Bearer some-token-of-a-caller"}}},
		"an error":                  {params: url.Values{"query": {`{ product(id: "999") { sku } }`}}},
		"a mutation over GET":       {params: url.Values{"query": {`mutation { stockIn(input: {productId: "1", quantity: 1}) { level { stock } } }`}}},
	} {
		resp, body := get(t, srv, c.params, c.header)
		if cc := resp.Header.Get("Cache-Control"); cc != "no-store" || resp.Header.Get("ETag") != "" {
			t.Errorf("%s: Cache-Control %q, ETag %q (%d %s), want no-store and no ETag", name, cc, resp.Header.Get("ETag"), resp.StatusCode, body)
		}
	}
}

// TestGETCachingOff: with no max-age, nothing over GET may be cached.
func TestGETCachingOff(t *testing.T) {
	srv := newCacheServer(t, graph.Options{})
	resp, body := get(t, srv, url.Values{"query": {storefront}}, nil)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Cache-Control") != "no-store" || resp.Header.Get("ETag") != "" {
		t.Fatalf("%d %s, Cache-Control %q", resp.StatusCode, body, resp.Header.Get("Cache-Control"))
	}
}

// TestTrustedDocuments: a server started with a manifest runs its
// operations, by hash or by text, and refuses any other; it learns
// nothing from clients.
func TestTrustedDocuments(t *testing.T) {
	manifest := filepath.Join(t.TempDir(), "manifest.json")
	sale := `mutation Sale($id: ID!) { stockOut(input: {productId: $id, quantity: 1}) { level { available } } }`
	create := `mutation { createProduct(input: {sku: "MUG", name: "Mug", price: "4.50", initialStock: 8}) { product { id } } }`
	var ops []map[string]string
	for name, body := range map[string]string{"Storefront": storefront, "Sale": sale, "Create": create} {
		ops = append(ops, map[string]string{"id": sha(body), "name": name, "type": "query", "body": body})
	}
	b, _ := json.Marshal(map[string]any{"format": "apollo-persisted-query-manifest", "version": 1, "operations": ops})
	if err := os.WriteFile(manifest, b, 0o600); err != nil {
		t.Fatal(err)
	}
	trusted, err := graph.LoadTrustedDocuments(manifest)
	if err != nil {
		t.Fatal(err)
	}
	srv := newCacheServer(t, graph.Options{PersistedQueries: trusted, HTTPCacheMaxAge: time.Second})
	if resp, body := get(t, srv, url.Values{"extensions": {persisted(sha(storefront))}}, nil); resp.StatusCode != http.StatusOK ||
		!strings.Contains(body, `"sku":"MUG"`) || resp.Header.Get("ETag") == "" {
		t.Fatalf("a listed query by hash: %d %s", resp.StatusCode, body)
	}
	if _, body := postRaw(t, srv, map[string]any{"query": sale, "variables": map[string]any{"id": "1"}}); !strings.Contains(body, `"available":7`) {
		t.Fatalf("a listed mutation by text: %s", body)
	}
	other := `{ products(first: 1) { edges { node { sku } } } }`
	for name, req := range map[string]map[string]any{
		"an operation not listed":    {"query": other},
		"a hash not listed":          {"extensions": map[string]any{"persistedQuery": map[string]any{"version": 1, "sha256Hash": sha(other)}}},
		"a registration":             {"query": other, "extensions": map[string]any{"persistedQuery": map[string]any{"version": 1, "sha256Hash": sha(other)}}},
		"the hash after registering": {"extensions": map[string]any{"persistedQuery": map[string]any{"version": 1, "sha256Hash": sha(other)}}},
	} {
		if _, body := postRaw(t, srv, req); !strings.Contains(body, `"code":"`+graph.PersistedQueryNotInList+`"`) || strings.Contains(body, `"sku"`) {
			t.Errorf("%s: %s, want %s", name, body, graph.PersistedQueryNotInList)
		}
	}
	// A hash that is not the text's is the client's mistake, named.
	_, body := postRaw(t, srv, map[string]any{"query": storefront, "extensions": map[string]any{"persistedQuery": map[string]any{"version": 1, "sha256Hash": sha(other)}}})
	if !strings.Contains(body, `"field":"extensions.persistedQuery.sha256Hash"`) {
		t.Errorf("a wrong hash: %s", body)
	}
}
