package rest_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/shopstack/inventory/internal/gormstore"
	"github.com/shopstack/inventory/internal/gormstore/gormstoretest"
	"github.com/shopstack/inventory/internal/inventory"
	"github.com/shopstack/inventory/internal/lock/memlock"
	"github.com/shopstack/inventory/internal/rest"
)

type env struct {
	h     http.Handler
	store *gormstore.Store
}

func newEnv(t testing.TB) env {
	t.Helper()
	st := gormstoretest.Open(t, gormstore.SQLite)
	svc := inventory.NewService(inventory.Config{Store: st, Locker: memlock.New(0)})
	if err := svc.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(svc.Close)
	return env{h: rest.NewHandler(svc, nil, nil), store: st}
}

type response struct {
	status int
	header http.Header
	body   map[string]any
	raw    string
}

func (e env) do(t *testing.T, method, path, body string, header ...string) response {
	t.Helper()
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	rec := httptest.NewRecorder()
	e.h.ServeHTTP(rec, req)
	r := response{status: rec.Code, header: rec.Header(), raw: rec.Body.String()}
	_ = json.Unmarshal(rec.Body.Bytes(), &r.body)
	return r
}

func (r response) errCode() any {
	if e, ok := r.body["error"].(map[string]any); ok {
		return e["code"]
	}
	return nil
}

func field(t *testing.T, m map[string]any, path ...string) any {
	t.Helper()
	var v any = m
	for _, p := range path {
		obj, ok := v.(map[string]any)
		if !ok {
			t.Fatalf("no %v in %v", path, m)
		}
		v = obj[p]
	}
	return v
}

func TestSeedFlow(t *testing.T) {
	e := newEnv(t)
	r := e.do(t, "POST", "/product", `{"id":"sku-1","name":"Widget","price":12.5,"stock":10,"threshold":2}`)
	if r.status != http.StatusCreated {
		t.Fatalf("POST /product = %d %s", r.status, r.raw)
	}
	id := r.body["id"].(string)
	if r.body["sku"] != "SKU-1" || r.body["price"] != "12.50" || r.body["stock"] != 10.0 || r.header.Get("Location") != "/product/"+id {
		t.Fatalf("created %v (Location %q)", r.body, r.header.Get("Location"))
	}

	r = e.do(t, "POST", "/stock/in", `{"id":"`+id+`","count":5}`)
	if r.status != 200 || field(t, r.body, "product", "stock") != 15.0 || field(t, r.body, "movement", "type") != "IN" || field(t, r.body, "movement", "delta") != 5.0 {
		t.Fatalf("stock in = %d %s", r.status, r.raw)
	}
	r = e.do(t, "POST", "/stock/out", `{"id":`+id+`,"count":4,"reason":"sale","reference":"SO-9"}`)
	if r.status != 200 || field(t, r.body, "product", "stock") != 11.0 || field(t, r.body, "movement", "quantityAfter") != 11.0 ||
		field(t, r.body, "movement", "reason") != "sale" || field(t, r.body, "movement", "reference") != "SO-9" || field(t, r.body, "replayed") != false {
		t.Fatalf("stock out = %d %s", r.status, r.raw)
	}

	r = e.do(t, "GET", "/product/"+id, "")
	if r.status != 200 || r.body["stock"] != 11.0 || r.body["available"] != 11.0 {
		t.Fatalf("GET /product/%s = %d %s", id, r.status, r.raw)
	}
	r = e.do(t, "GET", "/product?sku=Sku-1", "")
	if r.status != 200 || r.body["id"] != id {
		t.Fatalf("GET by sku = %d %s", r.status, r.raw)
	}

	r = e.do(t, "POST", "/stock/out", `{"id":"`+id+`","count":12}`)
	if r.status != http.StatusConflict || r.errCode() != "INSUFFICIENT_STOCK" {
		t.Fatalf("oversell = %d %s", r.status, r.raw)
	}
	if r = e.do(t, "GET", "/product/"+id, ""); r.body["stock"] != 11.0 {
		t.Fatalf("a refused stock-out changed stock to %v", r.body["stock"])
	}
}

func TestIdempotencyKeyHeader(t *testing.T) {
	e := newEnv(t)
	id := e.do(t, "POST", "/product", `{"sku":"IDEM","name":"x","price":"1","stock":10}`).body["id"].(string)
	first := e.do(t, "POST", "/stock/out", `{"id":"`+id+`","count":3}`, "Idempotency-Key", "order-1")
	again := e.do(t, "POST", "/stock/out", `{"id":"`+id+`","count":3}`, "Idempotency-Key", "order-1")
	if first.status != 200 || again.status != 200 || again.body["replayed"] != true ||
		field(t, again.body, "movement", "sequence") != field(t, first.body, "movement", "sequence") || field(t, again.body, "product", "stock") != 7.0 {
		t.Fatalf("replay: first %s, again %s", first.raw, again.raw)
	}
	if r := e.do(t, "POST", "/stock/out", `{"id":"`+id+`","count":4}`, "Idempotency-Key", "order-1"); r.status != 409 || r.errCode() != "CONFLICT" {
		t.Fatalf("same key, other count = %d %s", r.status, r.raw)
	}
	created := e.do(t, "POST", "/product", `{"sku":"IDEM-2","name":"x","price":"1"}`, "Idempotency-Key", "new-2")
	replayed := e.do(t, "POST", "/product", `{"sku":"IDEM-2","name":"x","price":"1"}`, "Idempotency-Key", "new-2")
	if created.status != 201 || replayed.status != 200 || replayed.body["id"] != created.body["id"] {
		t.Fatalf("product replay: %d %s / %d %s", created.status, created.raw, replayed.status, replayed.raw)
	}
}

func TestBadRequests(t *testing.T) {
	e := newEnv(t)
	id := e.do(t, "POST", "/product", `{"sku":"BAD","name":"x","price":"1","stock":10}`).body["id"].(string)
	for _, tc := range []struct {
		name, method, path, body string
		status                   int
		code                     string
	}{
		{"malformed JSON", "POST", "/stock/in", `{"id":`, 400, "BAD_USER_INPUT"},
		{"not an object", "POST", "/stock/in", `[1,2]`, 400, "BAD_USER_INPUT"},
		{"empty body", "POST", "/stock/in", ``, 400, "BAD_USER_INPUT"},
		{"trailing data", "POST", "/stock/in", `{"id":"` + id + `","count":1} {}`, 400, "BAD_USER_INPUT"},
		{"unknown field", "POST", "/stock/in", `{"id":"` + id + `","cout":1}`, 400, "BAD_USER_INPUT"},
		{"missing count", "POST", "/stock/in", `{"id":"` + id + `"}`, 400, "BAD_USER_INPUT"},
		{"missing id", "POST", "/stock/in", `{"count":1}`, 400, "BAD_USER_INPUT"},
		{"fractional count", "POST", "/stock/in", `{"id":"` + id + `","count":1.5}`, 400, "BAD_USER_INPUT"},
		{"exponent count", "POST", "/stock/in", `{"id":"` + id + `","count":1e3}`, 400, "BAD_USER_INPUT"},
		{"string count", "POST", "/stock/in", `{"id":"` + id + `","count":"x"}`, 400, "BAD_USER_INPUT"},
		{"zero count", "POST", "/stock/out", `{"id":"` + id + `","count":0}`, 400, "BAD_USER_INPUT"},
		{"bad id", "POST", "/stock/in", `{"id":"abc","count":1}`, 400, "BAD_USER_INPUT"},
		{"unknown product", "POST", "/stock/in", `{"id":"9999","count":1}`, 404, "NOT_FOUND"},
		{"unknown location", "POST", "/stock/in", `{"id":"` + id + `","count":1,"location":77}`, 404, "NOT_FOUND"},
		{"too large", "POST", "/stock/in", `{"reason":"` + strings.Repeat("x", 1<<20) + `"}`, 413, "BAD_USER_INPUT"},
		{"price float text", "POST", "/product", `{"sku":"P1","name":"x","price":1e3}`, 400, "BAD_USER_INPUT"},
		{"no price", "POST", "/product", `{"sku":"P1","name":"x"}`, 400, "BAD_USER_INPUT"},
		{"no sku", "POST", "/product", `{"name":"x","price":"1"}`, 400, "BAD_USER_INPUT"},
		{"two skus", "POST", "/product", `{"id":"A","sku":"B","name":"x","price":"1"}`, 400, "BAD_USER_INPUT"},
		{"duplicate sku", "POST", "/product", `{"sku":"bad","name":"x","price":"1"}`, 409, "CONFLICT"},
		{"unknown product id", "GET", "/product/9999", ``, 404, "NOT_FOUND"},
		{"non-numeric path id", "GET", "/product/abc", ``, 404, "NOT_FOUND"},
		{"sku lookup without sku", "GET", "/product", ``, 400, "BAD_USER_INPUT"},
	} {
		r := e.do(t, tc.method, tc.path, tc.body)
		if r.status != tc.status || r.errCode() != tc.code {
			t.Errorf("%s: %d %v, want %d %s (%.200s)", tc.name, r.status, r.errCode(), tc.status, tc.code, r.raw)
		}
	}
	if r := e.do(t, "GET", "/product/"+id, ""); r.body["stock"] != 10.0 {
		t.Fatalf("bad requests changed stock to %v", r.body["stock"])
	}
	if r := e.do(t, "POST", "/product", `{"sku":"bad sku","name":"x","price":"1"}`); field(t, r.body, "error", "field") != "sku" {
		t.Fatalf("validation error does not name the field: %s", r.raw)
	}
}

func TestInternalErrorsStayInternal(t *testing.T) {
	e := newEnv(t)
	_ = e.store.Close()
	r := e.do(t, "GET", "/product/1", "")
	if r.status != 500 || r.errCode() != "INTERNAL_SERVER_ERROR" || field(t, r.body, "error", "message") != "Internal error." {
		t.Fatalf("got %d %s", r.status, r.raw)
	}
	if strings.Contains(strings.ToLower(r.raw), "sql") {
		t.Fatalf("internal text leaked: %s", r.raw)
	}
}
