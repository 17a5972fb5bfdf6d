package graph_test

import (
	"cmp"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/shopstack/inventory/graph"
)

// TestTransportErrorsHaveCodes: requests that no operation runs for are
// refused with a JSON body whose every error has an extensions.code, and a
// status that says what was wrong.
func TestTransportErrorsHaveCodes(t *testing.T) {
	e := newEnv(t)
	mutation := url.QueryEscape(`mutation { stockIn(input: {productId: "1", quantity: 1}) { product { id } } }`)
	for _, tc := range []struct {
		name, method, target, contentType, body string
		status                                  int
	}{
		{"PostWithoutJSON", http.MethodPost, "/query", "text/plain", `{"query": "{ __typename }"}`, http.StatusUnsupportedMediaType},
		{"Put", http.MethodPut, "/query", "application/json", `{}`, http.StatusMethodNotAllowed},
		{"MutationOverGet", http.MethodGet, "/query?query=" + mutation, "", "", http.StatusMethodNotAllowed},
		{"BadEscape", http.MethodGet, "/query?query=%zz", "", "", http.StatusBadRequest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := httptest.NewRequest(tc.method, tc.target, strings.NewReader(tc.body))
			if tc.contentType != "" {
				req.Header.Set("Content-Type", tc.contentType)
			}
			rec := httptest.NewRecorder()
			e.h.ServeHTTP(rec, req)
			if rec.Code != tc.status {
				t.Errorf("status %d, want %d", rec.Code, tc.status)
			}
			if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type %q", ct)
			}
			var resp struct{ Errors []gqlError }
			if err := json.Unmarshal(rec.Body.Bytes(), &resp); err != nil || len(resp.Errors) == 0 {
				t.Fatalf("body %q: %v", rec.Body, err)
			}
			for _, e := range resp.Errors {
				if e.Extensions["code"] != "BAD_REQUEST" || e.Message == "" {
					t.Errorf("error %+v, want a message and code BAD_REQUEST", e)
				}
			}
		})
	}
	// A query over GET still works, and validation errors keep their own
	// code and locations.
	rec := httptest.NewRecorder()
	e.h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/query?query="+url.QueryEscape("{ nope }"), nil))
	if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), `"locations"`) ||
		!strings.Contains(rec.Body.String(), "GRAPHQL_VALIDATION_FAILED") {
		t.Errorf("validation error: %d %s", rec.Code, rec.Body)
	}
}

// TestRequestErrorStatus: the status codes of GraphQL over HTTP for request
// errors (docs/GRAPHQL_HTTP.md), by the media type of the answer; a request
// error never has a data entry, and every error has a code.
func TestRequestErrorStatus(t *testing.T) {
	e := limitedEnv(t, graph.Limits{MaxDepth: 3})
	const (
		plain = "application/json"
		gqlRJ = "application/graphql-response+json"
	)
	big := `{"query": "{ __typename }", "variables": {"pad": "` + strings.Repeat("x", graph.MaxBodyBytes) + `"}}`
	for _, tc := range []struct {
		name, method, body, query, code string
		chunked                         bool
		status                          map[string]int // by Accept
	}{
		{name: "Parse", body: `{"query": "{"}`, code: "GRAPHQL_PARSE_FAILED", status: map[string]int{plain: 200, gqlRJ: 400, "": 200, "*/*": 200}},
		{name: "Validation", body: `{"query": "{ nope }"}`, code: "GRAPHQL_VALIDATION_FAILED", status: map[string]int{plain: 200, gqlRJ: 400}},
		{name: "Coercion", body: `{"query": "query($f: Int!) { products(first: $f) { totalCount } }", "variables": {"f": null}}`,
			code: "GRAPHQL_VALIDATION_FAILED", status: map[string]int{plain: 200, gqlRJ: 400}},
		{name: "Depth", body: `{"query": "{ products { edges { node { levels { location { code } } } } } }"}`,
			code: "DEPTH_LIMIT_EXCEEDED", status: map[string]int{plain: 200, gqlRJ: 400}},
		{name: "GetParse", method: http.MethodGet, query: "?query=" + url.QueryEscape("{"), code: "GRAPHQL_PARSE_FAILED",
			status: map[string]int{plain: 200, gqlRJ: 400}},
		{name: "NoQuery", body: `{"qeury": "{ __typename }"}`, code: "BAD_REQUEST", status: map[string]int{plain: 400, gqlRJ: 400}},
		{name: "GetNoQuery", method: http.MethodGet, code: "BAD_REQUEST", status: map[string]int{plain: 400, gqlRJ: 400}},
		{name: "NotJSON", body: `{"query": `, code: "BAD_REQUEST", status: map[string]int{plain: 400, gqlRJ: 400}},
		{name: "VariablesNotAnObject", body: `{"query": "{ __typename }", "variables": "x"}`, code: "BAD_REQUEST", status: map[string]int{plain: 400, gqlRJ: 400}},
		{name: "TooLarge", body: big, code: "BAD_REQUEST", status: map[string]int{plain: 413, gqlRJ: 413}},
		{name: "TooLargeChunked", body: big, chunked: true, code: "BAD_REQUEST", status: map[string]int{plain: 413, gqlRJ: 413}},
	} {
		for accept, want := range tc.status {
			t.Run(tc.name+"/"+accept, func(t *testing.T) {
				method := cmp.Or(tc.method, http.MethodPost)
				var body io.Reader = strings.NewReader(tc.body)
				if tc.chunked {
					body = io.MultiReader(body) // no length: chunked
				}
				req := httptest.NewRequest(method, "/query"+tc.query, body)
				if tc.chunked {
					req.ContentLength = -1
				}
				if method == http.MethodPost {
					req.Header.Set("Content-Type", "application/json")
				}
				if accept != "" {
					req.Header.Set("Accept", accept)
				}
				rec := httptest.NewRecorder()
				e.h.ServeHTTP(rec, req)
				if rec.Code != want {
					t.Errorf("status %d, want %d: %s", rec.Code, want, rec.Body)
				}
				wantType := plain
				if accept == gqlRJ {
					wantType = gqlRJ
				}
				if ct := rec.Header().Get("Content-Type"); ct != wantType {
					t.Errorf("Content-Type %q, want %q", ct, wantType)
				}
				var resp map[string]json.RawMessage
				if err := json.Unmarshal(rec.Body.Bytes(), &resp); err != nil {
					t.Fatalf("body %q: %v", rec.Body, err)
				}
				if _, ok := resp["data"]; ok {
					t.Errorf("a request error with a data entry: %s", rec.Body)
				}
				var errs []gqlError
				if err := json.Unmarshal(resp["errors"], &errs); err != nil || len(errs) == 0 {
					t.Fatalf("errors %s: %v", resp["errors"], err)
				}
				for _, e := range errs {
					if e.Extensions["code"] != tc.code || e.Message == "" {
						t.Errorf("error %+v, want a message and code %s", e, tc.code)
					}
				}
			})
		}
	}
}
