package rest_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/shopstack/inventory/internal/app"
	"github.com/shopstack/inventory/internal/auth"
	"github.com/shopstack/inventory/internal/gormstore"
	"github.com/shopstack/inventory/internal/inventory"
	"github.com/shopstack/inventory/internal/rest"
	"github.com/shopstack/inventory/internal/testenv"
	"github.com/shopstack/inventory/internal/testenv/gormstoretest"
	"github.com/shopstack/inventory/internal/testenv/inventorytest"
)

type env struct {
	h     http.Handler
	store *gormstore.Store
}

func newEnv(t testing.TB) env {
	t.Helper()
	st := gormstoretest.Open(t, gormstore.SQLite)
	svc := inventorytest.Start(t, st, app.Config{})
	// Behind the server's authentication without tokens, every request
	// acts as auth.Anonymous (an admin), whom the routes authorize as
	// they do every caller.
	return env{h: auth.Static(nil).Middleware("/query", nil, rest.NewHandler(svc, nil, nil)), store: st}
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

// seedProduct is the seed's Product, as a client written for its routes
// decodes every answer.
type seedProduct struct {
	ID        string  `json:"id"`
	Name      string  `json:"name"`
	Price     float64 `json:"price"`
	Stock     int     `json:"stock"`
	Threshold int     `json:"threshold"`
}

// TestSeedFlow runs the seed's client unchanged: it chooses its product's
// id, reads and moves stock by it, and decodes every answer into its own
// Product.
func TestSeedFlow(t *testing.T) {
	e := newEnv(t)
	seed := func(method, path, body string, status int) seedProduct {
		t.Helper()
		r := e.do(t, method, path, body)
		var p seedProduct
		if err := json.Unmarshal([]byte(r.raw), &p); r.status != status || err != nil {
			t.Fatalf("%s %s = %d %s (%v)", method, path, r.status, r.raw, err)
		}
		return p
	}
	p := seed("POST", "/product", `{"id":"MUG-1","name":"Mug","price":12.5,"stock":10,"threshold":2}`, http.StatusCreated)
	if p != (seedProduct{ID: "MUG-1", Name: "Mug", Price: 12.5, Stock: 10, Threshold: 2}) {
		t.Fatalf("created %+v", p)
	}
	if p = seed("GET", "/product/MUG-1", "", 200); p.Stock != 10 {
		t.Fatalf("GET /product/MUG-1: %+v", p)
	}
	if p = seed("POST", "/stock/in", `{"id":"MUG-1","count":5}`, 200); p.ID != "MUG-1" || p.Stock != 15 {
		t.Fatalf("stock in: %+v", p)
	}
	if p = seed("POST", "/stock/out", `{"id":"MUG-1","count":4}`, 200); p.Stock != 11 {
		t.Fatalf("stock out: %+v", p)
	}

	// The rest of the answer, for clients that want it.
	r := e.do(t, "POST", "/stock/out", `{"id":"mug-1","count":1,"reason":"sale","reference":"SO-9"}`)
	if r.status != 200 || r.body["sku"] != "MUG-1" || r.body["stock"] != 10.0 || field(t, r.body, "movement", "quantityAfter") != 10.0 ||
		field(t, r.body, "movement", "reason") != "sale" || field(t, r.body, "movement", "reference") != "SO-9" || r.body["replayed"] != false {
		t.Fatalf("stock out = %d %s", r.status, r.raw)
	}
	productID := r.body["productId"].(string)
	if r = e.do(t, "POST", "/stock/in", `{"productId":`+productID+`,"count":1}`); r.status != 200 || r.body["stock"] != 11.0 {
		t.Fatalf("stock in by productId = %d %s", r.status, r.raw)
	}
	if r = e.do(t, "GET", "/product?sku=Mug-1", ""); r.status != 200 || r.body["id"] != "MUG-1" || r.body["productId"] != productID {
		t.Fatalf("GET by sku = %d %s", r.status, r.raw)
	}
	if r = e.do(t, "POST", "/stock/out", `{"id":"MUG-1","count":12}`); r.status != http.StatusConflict || r.errCode() != "INSUFFICIENT_STOCK" {
		t.Fatalf("oversell = %d %s", r.status, r.raw)
	}
	if p = seed("GET", "/product/MUG-1", "", 200); p.Stock != 11 {
		t.Fatalf("a refused stock-out changed stock to %d", p.Stock)
	}
	// A product whose SKU is a number is still found by it, not by ID.
	seed("POST", "/product", `{"id":"1001","name":"Numbered","price":"1.00","stock":3}`, http.StatusCreated)
	if p = seed("POST", "/stock/out", `{"id":1001,"count":1}`, 200); p.ID != "1001" || p.Stock != 2 {
		t.Fatalf("stock out of SKU 1001: %+v", p)
	}
}

func TestIdempotencyKeyHeader(t *testing.T) {
	e := newEnv(t)
	id := e.do(t, "POST", "/product", `{"sku":"IDEM","name":"x","price":"1","stock":10}`).body["id"].(string)
	first := e.do(t, "POST", "/stock/out", `{"id":"`+id+`","count":3}`, "Idempotency-Key", "order-1")
	again := e.do(t, "POST", "/stock/out", `{"id":"`+id+`","count":3}`, "Idempotency-Key", "order-1")
	if first.status != 200 || again.status != 200 || again.body["replayed"] != true ||
		field(t, again.body, "movement", "sequence") != field(t, first.body, "movement", "sequence") || again.body["stock"] != 7.0 {
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
		field                    string // of a BAD_USER_INPUT: every one names its field
	}{
		// An item of a list is named by its index, as GraphQL names it.
		{"wrong type in an item", "POST", "/bundle", `{"sku":"BB","name":"x","price":"1","components":[{"productId":"1","quantity":"two"}]}`, 400, "BAD_USER_INPUT", "components[0].quantity"},
		{"wrong type in a later item", "POST", "/bundle", `{"sku":"BB","name":"x","price":"1","components":[{"productId":"1","quantity":1},{"productId":"1","quantity":"two"}]}`, 400, "BAD_USER_INPUT", "components[1].quantity"},
		{"wrong type of an item's id", "POST", "/bundle", `{"sku":"BB","name":"x","price":"1","components":[{"productId":"1","quantity":1},{"productId":true,"quantity":1}]}`, 400, "BAD_USER_INPUT", "components[1].productId"},
		{"bad id in an item", "POST", "/bundle", `{"sku":"BB","name":"x","price":"1","components":[{"productId":"1","quantity":1},{"productId":"abc","quantity":1}]}`, 400, "BAD_USER_INPUT", "components[1].productId"},
		{"id and product id in an item", "POST", "/bundle", `{"sku":"BB","name":"x","price":"1","components":[{"id":"BAD","productId":"1","quantity":1}]}`, 400, "BAD_USER_INPUT", "components[0].id"},
		{"unknown field in an item", "POST", "/bundle", `{"sku":"BB","name":"x","price":"1","components":[{"productId":"1","quantity":1},{"productId":"1","qty":1}]}`, 400, "BAD_USER_INPUT", "components[1].qty"},
		{"item not an object", "POST", "/bundle", `{"sku":"BB","name":"x","price":"1","components":[1]}`, 400, "BAD_USER_INPUT", "components[0]"},
		{"list not a list", "POST", "/bundle", `{"sku":"BB","name":"x","price":"1","components":{"productId":"1"}}`, 400, "BAD_USER_INPUT", "components"},
		{"not CSV", "POST", "/stock/bulk", "sku,location,quantity\n\"x", 400, "BAD_USER_INPUT", "body"},
		{"malformed JSON", "POST", "/stock/in", `{"id":`, 400, "BAD_USER_INPUT", "body"},
		{"not an object", "POST", "/stock/in", `[1,2]`, 400, "BAD_USER_INPUT", "body"},
		{"empty body", "POST", "/stock/in", ``, 400, "BAD_USER_INPUT", "body"},
		{"trailing data", "POST", "/stock/in", `{"id":"` + id + `","count":1} {}`, 400, "BAD_USER_INPUT", "body"},
		{"unknown field", "POST", "/stock/in", `{"id":"` + id + `","cout":1}`, 400, "BAD_USER_INPUT", "cout"},
		{"missing count", "POST", "/stock/in", `{"id":"` + id + `"}`, 400, "BAD_USER_INPUT", "count"},
		{"missing id", "POST", "/stock/in", `{"count":1}`, 400, "BAD_USER_INPUT", "id"},
		{"fractional count", "POST", "/stock/in", `{"id":"` + id + `","count":1.5}`, 400, "BAD_USER_INPUT", "count"},
		{"exponent count", "POST", "/stock/in", `{"id":"` + id + `","count":1e3}`, 400, "BAD_USER_INPUT", "count"},
		{"string count", "POST", "/stock/in", `{"id":"` + id + `","count":"x"}`, 400, "BAD_USER_INPUT", "count"},
		{"zero count", "POST", "/stock/out", `{"id":"` + id + `","count":0}`, 400, "BAD_USER_INPUT", "count"},
		{"bad product id", "POST", "/stock/in", `{"productId":"abc","count":1}`, 400, "BAD_USER_INPUT", "productId"},
		{"wrong type of product id", "POST", "/stock/in", `{"productId":true,"count":1}`, 400, "BAD_USER_INPUT", "productId"},
		{"id and product id", "POST", "/stock/in", `{"id":"BAD","productId":"1","count":1}`, 400, "BAD_USER_INPUT", "id"},
		{"unknown product", "POST", "/stock/in", `{"id":"NOPE","count":1}`, 404, "NOT_FOUND", ""},
		{"unknown product id", "POST", "/stock/in", `{"productId":9999,"count":1}`, 404, "NOT_FOUND", ""},
		{"unknown location", "POST", "/stock/in", `{"id":"` + id + `","count":1,"location":77}`, 404, "NOT_FOUND", ""},
		{"too large", "POST", "/stock/in", `{"reason":"` + strings.Repeat("x", 1<<20) + `"}`, 413, "BAD_USER_INPUT", "body"},
		{"price float text", "POST", "/product", `{"sku":"P1","name":"x","price":1e3}`, 400, "BAD_USER_INPUT", "price"},
		{"no price", "POST", "/product", `{"sku":"P1","name":"x"}`, 400, "BAD_USER_INPUT", "price"},
		{"no sku", "POST", "/product", `{"name":"x","price":"1"}`, 400, "BAD_USER_INPUT", "sku"},
		{"two skus", "POST", "/product", `{"id":"A","sku":"B","name":"x","price":"1"}`, 400, "BAD_USER_INPUT", "id"},
		{"duplicate sku", "POST", "/product", `{"sku":"bad","name":"x","price":"1"}`, 409, "CONFLICT", ""},
		{"unknown path id", "GET", "/product/NOPE", ``, 404, "NOT_FOUND", ""},
		{"sku lookup without sku", "GET", "/product", ``, 400, "BAD_USER_INPUT", "sku"},
		{"wrong method", "GET", "/stock/out", ``, 405, "BAD_USER_INPUT", "method"},
		{"wrong method on a product", "DELETE", "/product/BAD", ``, 405, "BAD_USER_INPUT", "method"},
		{"unknown route", "GET", "/stock/elsewhere", ``, 404, "NOT_FOUND", ""},
	} {
		r := e.do(t, tc.method, tc.path, tc.body)
		if r.status != tc.status || r.errCode() != tc.code {
			t.Errorf("%s: %d %v, want %d %s (%.200s)", tc.name, r.status, r.errCode(), tc.status, tc.code, r.raw)
		}
		errBody, _ := r.body["error"].(map[string]any)
		if f, _ := errBody["field"].(string); tc.code == "BAD_USER_INPUT" && f != tc.field {
			t.Errorf("%s: field %q, want %q (%.200s)", tc.name, f, tc.field, r.raw)
		}
		if msg, _ := errBody["message"].(string); testenv.LibraryText(msg) != "" {
			t.Errorf("%s: message %q carries a library's text", tc.name, msg)
		}
	}
	if r := e.do(t, "GET", "/product/"+id, ""); r.body["stock"] != 10.0 {
		t.Fatalf("bad requests changed stock to %v", r.body["stock"])
	}
	if r := e.do(t, "POST", "/product", `{"sku":"bad sku","name":"x","price":"1"}`); field(t, r.body, "error", "field") != "sku" {
		t.Fatalf("validation error does not name the field: %s", r.raw)
	}
	// Errors name the fields these routes' clients send, not the service's.
	if r := e.do(t, "POST", "/stock/out", `{"id":"`+id+`","count":0}`); field(t, r.body, "error", "field") != "count" {
		t.Fatalf("a bad count is not named count: %s", r.raw)
	}
	if r := e.do(t, "GET", "/stock/out", ``); r.header.Get("Allow") != "POST" || r.header.Get("Content-Type") != "application/json" {
		t.Fatalf("GET /stock/out: %v %s", r.header, r.raw)
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

// outcomes is an Admission that admits everything and records each
// operation's outcome: "OK" or the error's code.
type outcomes struct {
	mu  sync.Mutex
	got []string
}

func (o *outcomes) Admit(_ context.Context, op string, _ []int64) (func(error), error) {
	return func(err error) {
		code := "OK"
		if err != nil {
			code = string(inventory.ErrorCode(err))
		}
		o.mu.Lock()
		defer o.mu.Unlock()
		o.got = append(o.got, op+" "+code)
	}, nil
}

// TestOutcomesReachFlowControl: every route tells flow control (and so the
// request counts and the breakers) how it ended, failures included.
func TestOutcomesReachFlowControl(t *testing.T) {
	st := gormstoretest.Open(t, gormstore.SQLite)
	svc := inventorytest.Start(t, st, app.Config{})
	rec := &outcomes{}
	h := auth.Static(nil).Middleware("/query", nil, rest.NewHandler(svc, inventory.NewGate(rec), nil))
	e := env{h: h, store: st}
	for _, c := range []struct{ method, path, body string }{
		{"POST", "/product", `{"sku": "OUT-1", "name": "n", "price": "1.00", "stock": 1}`},
		{"POST", "/product", `{"sku": "OUT-2", "name": "n"}`},
		{"GET", "/product/OUT-1", ""},
		{"GET", "/product/NOPE", ""},
		{"GET", "/product?sku=NOPE", ""},
		{"POST", "/stock/out", `{"id": "OUT-1", "count": 5}`},
	} {
		e.do(t, c.method, c.path, c.body)
	}
	want := []string{"createProduct OK", "createProduct " + string(inventory.CodeBadInput), "product OK", "product NOT_FOUND",
		"productBySku NOT_FOUND", "stockOut INSUFFICIENT_STOCK"}
	if strings.Join(rec.got, ", ") != strings.Join(want, ", ") {
		t.Fatalf("outcomes %v, want %v", rec.got, want)
	}
}
