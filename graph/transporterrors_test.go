package graph_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
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
	if rec.Code != http.StatusUnprocessableEntity || !strings.Contains(rec.Body.String(), `"locations"`) ||
		!strings.Contains(rec.Body.String(), "GRAPHQL_VALIDATION_FAILED") {
		t.Errorf("validation error: %d %s", rec.Code, rec.Body)
	}
}
