package rest_test

import (
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
)

var internalText = regexp.MustCompile(`(?i)sqlstate|sqlite|pgx|postgres|gorm|goroutine|panic|runtime error|nil pointer|\.go:\d`)

// FuzzREST sends arbitrary requests to the REST routes: never a 500,
// never internal text.
func FuzzREST(f *testing.F) {
	for _, seed := range []struct{ method, path, body string }{
		{"POST", "/product", `{"id": "MUG-1", "name": "Mug", "price": "8.00", "stock": 20, "threshold": 5}`},
		{"POST", "/product", `{"sku": "A", "name": "", "price": 1e309}`},
		{"POST", "/product", `{"id": "PRE-1", "name": "Pre", "price": 5, "stock": 1, "backorderLimit": 3}`},
		{"POST", "/product", `{"id": "EBOOK-1", "name": "E-book", "price": 5, "tracked": false}`},
		{"POST", "/bundle", `{"id": "KIT-1", "name": "Kit", "price": "9.00", "components": [{"id": "MUG-1", "quantity": 2}, {"productId": 1, "quantity": 1}]}`},
		{"GET", "/product?sku=MUG-1", ""},
		{"GET", "/product/1", ""},
		{"GET", "/product/99999999999999999999", ""},
		{"POST", "/stock/out", `{"id": "1", "count": 3}`},
		{"POST", "/stock/in", `{"id": 1, "count": "2", "location": "x"}`},
		{"POST", "/stock/bulk", "sku,location,quantity\nMUG-1,,5\nMUG-1,,+1\n"},
		{"POST", "/stock/bulk", "\"unterminated\nx,y"},
	} {
		f.Add(seed.method, seed.path, []byte(seed.body))
	}
	e := newEnv(f)
	f.Fuzz(func(t *testing.T, method, path string, body []byte) {
		if _, err := url.ParseRequestURI(path); err != nil || !strings.HasPrefix(path, "/") || strings.ContainsAny(path, " \r\n\t#") || !validMethod(method) {
			t.Skip()
		}
		req := httptest.NewRequest(method, "http://inventory"+path, strings.NewReader(string(body)))
		rec := httptest.NewRecorder()
		e.h.ServeHTTP(rec, req)
		if out := rec.Body.String(); rec.Code >= 500 || internalText.MatchString(out) {
			t.Fatalf("%s %s %q: HTTP %d %s", method, path, body, rec.Code, out)
		}
	})
}

func validMethod(m string) bool {
	switch m {
	case "GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS":
		return true
	}
	return false
}
