package graph_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/99designs/gqlgen/client"

	"github.com/shopstack/inventory/graph"
	"github.com/shopstack/inventory/graph/model"
	"github.com/shopstack/inventory/internal/app"
	"github.com/shopstack/inventory/internal/auth"
	"github.com/shopstack/inventory/internal/gormstore"
	"github.com/shopstack/inventory/internal/testenv/gormstoretest"
	"github.com/shopstack/inventory/internal/testenv/inventorytest"
)

type gqlError struct {
	Message    string         `json:"message"`
	Path       []any          `json:"path"`
	Extensions map[string]any `json:"extensions"`
}

type env struct {
	c     *client.Client
	h     http.Handler
	store *gormstore.Store
}

func newEnv(t testing.TB) env {
	t.Helper()
	st := gormstoretest.Open(t, gormstore.SQLite)
	svc := inventorytest.Start(t, st, app.Config{PollInterval: 50 * time.Millisecond})
	h := newHandler(svc, graph.Options{})
	return env{c: client.New(h), h: h, store: st}
}

// newHandler is the GraphQL endpoint behind the server's authentication
// without tokens: every request acts as auth.Anonymous (an admin), and the
// endpoint authorizes it as it does every caller.
func newHandler(svc *app.Service, opts graph.Options) http.Handler {
	return auth.Static(nil).Middleware("/query", nil, graph.NewHandler(svc, nil, opts))
}

// do runs a GraphQL operation and decodes data into out; it returns the
// response's errors.
func (e env) do(t *testing.T, query string, out any, opts ...client.Option) []gqlError {
	t.Helper()
	resp, err := e.c.RawPost(query, opts...)
	if err != nil {
		t.Fatalf("post: %v", err)
	}
	var errs []gqlError
	if len(resp.Errors) > 0 {
		if err := json.Unmarshal(resp.Errors, &errs); err != nil {
			t.Fatalf("decode errors %s: %v", resp.Errors, err)
		}
	}
	if out != nil && resp.Data != nil {
		b, _ := json.Marshal(resp.Data)
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("decode data %s: %v", b, err)
		}
	}
	return errs
}

// raw posts a JSON body and returns the HTTP status and GraphQL errors.
func (e env) raw(t *testing.T, body string) (int, []gqlError) {
	t.Helper()
	req := httptest.NewRequest(http.MethodPost, "/query", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	e.h.ServeHTTP(rec, req)
	var resp struct{ Errors []gqlError }
	_ = json.Unmarshal(rec.Body.Bytes(), &resp)
	return rec.Code, resp.Errors
}

func (e env) must(t *testing.T, query string, out any, opts ...client.Option) {
	t.Helper()
	if errs := e.do(t, query, out, opts...); len(errs) > 0 {
		t.Fatalf("unexpected errors: %+v", errs)
	}
}

func wantCode(t *testing.T, errs []gqlError, code string) gqlError {
	t.Helper()
	if len(errs) != 1 {
		t.Fatalf("got %d errors %+v, want one %s", len(errs), errs, code)
	}
	if got := errs[0].Extensions["code"]; got != code {
		t.Fatalf("code = %v (%q), want %s", got, errs[0].Message, code)
	}
	return errs[0]
}

type productJSON struct {
	ID        string `json:"id"`
	SKU       string `json:"sku"`
	Name      string `json:"name"`
	Price     string `json:"price"`
	Stock     int    `json:"stock"`
	Available int    `json:"available"`
	Threshold int    `json:"threshold"`
	LowStock  bool   `json:"lowStock"`
	Version   int    `json:"version"`
}

const createProduct = `mutation($sku: String!, $stock: Int, $threshold: Int) {
	createProduct(input: {sku: $sku, name: "Widget", price: "9.99", initialStock: $stock, threshold: $threshold}) {
		product { id sku name price stock available threshold lowStock version }
		movement { sequence type delta }
		replayed
	}
}`

func (e env) createProduct(t *testing.T, sku string, stock, threshold int) productJSON {
	t.Helper()
	var out struct {
		CreateProduct struct{ Product productJSON }
	}
	e.must(t, createProduct, &out, client.Var("sku", sku), client.Var("stock", stock), client.Var("threshold", threshold))
	return out.CreateProduct.Product
}

const stockOut = `mutation($id: ID!, $qty: Int!, $key: String) {
	stockOut(input: {productId: $id, quantity: $qty, idempotencyKey: $key, reason: "sale"}) {
		product { stock available lowStock }
		level { stock location { code isDefault } }
		movement { id sequence type delta quantityAfter reason idempotencyKey leaseToken actor }
		replayed
	}
}`

type stockPayload struct {
	Product struct {
		Stock, Available int
		LowStock         bool
	}
	Level struct {
		Stock    int
		Location struct {
			Code      string
			IsDefault bool
		}
	}
	Movement struct {
		ID             string
		Sequence       int64
		Type           string
		Delta          int
		QuantityAfter  int
		Reason         string
		IdempotencyKey *string
		LeaseToken     int64
		Actor          string
	}
	Replayed bool
}

func TestStockFlow(t *testing.T) {
	e := newEnv(t)
	p := e.createProduct(t, "w-1", 10, 3)
	if p.SKU != "W-1" || p.Price != "9.99" || p.Stock != 10 || p.LowStock {
		t.Fatalf("created %+v", p)
	}

	var out struct{ StockOut stockPayload }
	e.must(t, stockOut, &out, client.Var("id", p.ID), client.Var("qty", 8), client.Var("key", "order-1"))
	got := out.StockOut
	if got.Replayed || got.Product.Stock != 2 || !got.Product.LowStock || got.Level.Stock != 2 || !got.Level.Location.IsDefault ||
		got.Movement.Type != "OUT" || got.Movement.Delta != -8 || got.Movement.QuantityAfter != 2 || got.Movement.ID != model.GlobalID(model.MovementNode, got.Movement.Sequence).String() ||
		got.Movement.IdempotencyKey == nil || *got.Movement.IdempotencyKey != "order-1" || got.Movement.LeaseToken == 0 || got.Movement.Actor != "anonymous" {
		t.Fatalf("stockOut: %+v", got)
	}

	// The same request again is replayed: same movement, stock unchanged.
	var again struct{ StockOut stockPayload }
	e.must(t, stockOut, &again, client.Var("id", p.ID), client.Var("qty", 8), client.Var("key", "order-1"))
	if !again.StockOut.Replayed || again.StockOut.Movement.Sequence != got.Movement.Sequence || again.StockOut.Product.Stock != 2 {
		t.Fatalf("replay: %+v", again.StockOut)
	}
	wantCode(t, e.do(t, stockOut, nil, client.Var("id", p.ID), client.Var("qty", 1), client.Var("key", "order-1")), "CONFLICT")
	errRes := wantCode(t, e.do(t, stockOut, nil, client.Var("id", p.ID), client.Var("qty", 3)), "INSUFFICIENT_STOCK")
	if !strings.Contains(errRes.Message, "2 available") {
		t.Errorf("message %q does not say what is available", errRes.Message)
	}

	var adj struct {
		AdjustStock stockPayload
	}
	e.must(t, `mutation($id: ID!) { adjustStock(input: {productId: $id, quantity: 50, changeFromQuantity: 2}) {
		product { stock } movement { type delta } replayed } }`, &adj, client.Var("id", p.ID))
	if adj.AdjustStock.Product.Stock != 50 || adj.AdjustStock.Movement.Delta != 48 || adj.AdjustStock.Movement.Type != "ADJUST" {
		t.Fatalf("adjust: %+v", adj)
	}
	wantCode(t, e.do(t, `mutation($id: ID!) { adjustStock(input: {productId: $id, quantity: 1, changeFromQuantity: 2}) { replayed } }`,
		nil, client.Var("id", p.ID)), "CONFLICT")

	var ledger struct {
		Product struct {
			Levels []struct {
				Stock    int
				Version  int
				Location struct{ Code string }
			}
			Movements struct {
				Edges []struct {
					Node struct {
						Sequence int64
						Type     string
						Delta    int
					}
				}
				PageInfo struct{ HasNextPage bool }
			}
		}
	}
	e.must(t, `query($id: ID!) { product(id: $id) {
		levels { stock version location { code } }
		movements(first: 10) { edges { node { sequence type delta } } pageInfo { hasNextPage } } } }`, &ledger, client.Var("id", p.ID))
	mv := ledger.Product.Movements.Edges
	if len(mv) != 3 || mv[0].Node.Type != "ADJUST" || mv[1].Node.Type != "OUT" || mv[2].Node.Type != "IN" || mv[0].Node.Sequence <= mv[1].Node.Sequence {
		t.Fatalf("ledger (newest first): %+v", mv)
	}
	if lv := ledger.Product.Levels; len(lv) != 1 || lv[0].Stock != 50 || lv[0].Version != 3 || lv[0].Location.Code != "DEFAULT" {
		t.Fatalf("levels: %+v", lv)
	}
}

func TestProductsConnection(t *testing.T) {
	e := newEnv(t)
	for i := range 7 {
		e.createProduct(t, fmt.Sprintf("C-%d", i), i, 3)
	}
	type page struct {
		Products struct {
			Edges []struct {
				Cursor string
				Node   productJSON
			}
			PageInfo struct {
				HasNextPage bool
				EndCursor   *string
			}
			TotalCount int
		}
	}
	q := `query($after: String, $low: Boolean) { products(first: 3, after: $after, filter: {lowStock: $low}) {
		edges { cursor node { sku stock } } pageInfo { hasNextPage endCursor } totalCount } }`
	var skus []string
	var after *string
	for {
		var out page
		e.must(t, q, &out, client.Var("after", after))
		for _, ed := range out.Products.Edges {
			skus = append(skus, ed.Node.SKU)
		}
		if out.Products.TotalCount != 7 {
			t.Fatalf("totalCount = %d", out.Products.TotalCount)
		}
		if !out.Products.PageInfo.HasNextPage {
			break
		}
		after = out.Products.PageInfo.EndCursor
	}
	if strings.Join(skus, ",") != "C-0,C-1,C-2,C-3,C-4,C-5,C-6" {
		t.Fatalf("paged SKUs: %v", skus)
	}
	var low page
	e.must(t, q, &low, client.Var("low", true))
	if low.Products.TotalCount != 3 {
		t.Fatalf("low-stock totalCount = %d, want 3", low.Products.TotalCount)
	}
	var list struct{ LowStockProducts []productJSON }
	e.must(t, `{ lowStockProducts { sku } }`, &list)
	if len(list.LowStockProducts) != 3 {
		t.Fatalf("lowStockProducts: %+v", list)
	}
	wantCode(t, e.do(t, q, nil, client.Var("after", "bm90LWEtY3Vyc29y")), "BAD_USER_INPUT")
}

func TestErrors(t *testing.T) {
	e := newEnv(t)
	e.createProduct(t, "ERR", 1, 0)

	t.Run("NotFound", func(t *testing.T) {
		wantCode(t, e.do(t, `{ product(id: "424242") { id } }`, nil), "NOT_FOUND")
		wantCode(t, e.do(t, `{ productBySku(sku: "NOPE") { id } }`, nil), "NOT_FOUND")
		wantCode(t, e.do(t, `mutation { stockIn(input: {productId: "99", quantity: 1}) { replayed } }`, nil), "NOT_FOUND")
	})
	t.Run("BadInput", func(t *testing.T) {
		for name, q := range map[string]string{
			"bad id":          `{ product(id: "abc") { id } }`,
			"negative id":     `{ product(id: "-1") { id } }`,
			"price exponent":  `mutation { createProduct(input: {sku: "X", name: "x", price: "1e3"}) { replayed } }`,
			"price as number": `mutation { createProduct(input: {sku: "X", name: "x", price: 12.5}) { replayed } }`,
			"zero quantity":   `mutation { stockIn(input: {productId: "1", quantity: 0}) { replayed } }`,
			"huge quantity":   `mutation { stockIn(input: {productId: "1", quantity: 1000000001}) { replayed } }`,
			"long name":       `mutation { createProduct(input: {sku: "X", name: "` + strings.Repeat("n", 201) + `", price: "1"}) { replayed } }`,
			"page size":       `{ products(first: 1000) { totalCount } }`,
		} {
			errs := e.do(t, q, nil)
			if len(errs) != 1 || errs[0].Extensions["code"] != "BAD_USER_INPUT" {
				t.Errorf("%s: errors %+v, want BAD_USER_INPUT", name, errs)
			}
		}
		errs := e.do(t, `mutation { createProduct(input: {sku: "bad sku", name: "x", price: "1"}) { replayed } }`, nil)
		if got := wantCode(t, errs, "BAD_USER_INPUT"); got.Extensions["field"] != "sku" {
			t.Errorf("field = %v, want sku", got.Extensions["field"])
		}
	})
	t.Run("Validation", func(t *testing.T) {
		for body, code := range map[string]string{
			`{"query": "{ product(id: \"1\") { nope } }"}`: "GRAPHQL_VALIDATION_FAILED",
			`{"query": "{ product(id: "}`:                  "GRAPHQL_PARSE_FAILED",
			`{"query": "mutation($q: Int!) { stockIn(input: {productId: \"1\", quantity: $q}) { replayed } }", "variables": {"q": "ten"}}`: "GRAPHQL_VALIDATION_FAILED",
		} {
			// A well-formed request whose document is refused: 200 as
			// application/json (see TestRequestErrorStatus).
			status, errs := e.raw(t, body)
			if status != http.StatusOK {
				t.Errorf("%s: status %d, want 200", body, status)
			}
			wantCode(t, errs, code)
		}
		status, _ := e.raw(t, `{"query": `)
		if status != http.StatusBadRequest {
			t.Errorf("malformed JSON: status %d, want 400", status)
		}
	})
	t.Run("InternalTextNeverLeaks", func(t *testing.T) {
		// A store whose database is gone fails with a driver error; the
		// client sees a generic internal error.
		_ = e.store.Close()
		errs := e.do(t, `{ product(id: "1") { id } }`, nil)
		got := wantCode(t, errs, "INTERNAL_SERVER_ERROR")
		if got.Message != "Internal error." {
			t.Fatalf("message %q", got.Message)
		}
	})
}

func TestSubscriptionStockChanged(t *testing.T) {
	e := newEnv(t)
	var created struct {
		CreateProduct struct {
			Product  productJSON
			Movement struct{ Sequence int64 }
		}
	}
	e.must(t, createProduct, &created, client.Var("sku", "SUB"), client.Var("stock", 5), client.Var("threshold", 3))
	p, since := created.CreateProduct.Product, created.CreateProduct.Movement.Sequence
	// Subscribing after the creation's sequence makes the test independent
	// of when the server registers the subscription: the stock-out arrives
	// either replayed from the ledger or live, exactly once.
	sub := e.c.Websocket(`subscription($ids: [ID!], $after: Int64) { stockChanged(productIds: $ids, afterSequence: $after) {
		sequence movement { type delta availableAfter } product { sku stock } } }`, client.Var("ids", []string{p.ID}), client.Var("after", since))
	defer sub.Close()
	alerts := e.c.Websocket(`subscription($after: Int64) { lowStockAlerts(afterSequence: $after) {
		sequence available threshold product { sku } movement { delta } } }`, client.Var("after", since))
	defer alerts.Close()
	var out struct{ StockOut stockPayload }
	e.must(t, stockOut, &out, client.Var("id", p.ID), client.Var("qty", 3), client.Var("key", nil))

	var ev struct {
		StockChanged struct {
			Sequence int64
			Movement struct {
				Type           string
				Delta          int
				AvailableAfter int
			}
			Product struct {
				SKU   string
				Stock int
			}
		}
	}
	if err := sub.Next(&ev); err != nil {
		t.Fatal(err)
	}
	if ev.StockChanged.Sequence != out.StockOut.Movement.Sequence || ev.StockChanged.Movement.Delta != -3 || ev.StockChanged.Movement.AvailableAfter != 2 || ev.StockChanged.Product.SKU != "SUB" || ev.StockChanged.Product.Stock != 2 {
		t.Fatalf("event %+v", ev)
	}
	var alert struct {
		LowStockAlerts struct {
			Sequence             int64
			Available, Threshold int
			Product              struct{ SKU string }
			Movement             struct{ Delta int }
		}
	}
	if err := alerts.Next(&alert); err != nil {
		t.Fatal(err)
	}
	if a := alert.LowStockAlerts; a.Sequence != ev.StockChanged.Sequence || a.Available != 2 || a.Threshold != 3 || a.Product.SKU != "SUB" || a.Movement.Delta != -3 {
		t.Fatalf("alert %+v", a)
	}
}

// TestSubscriptionOverSSE watches stockChanged the way curl would: a POST
// with Accept: text/event-stream on a real HTTP server, reading "next"
// events as they are flushed.
func TestSubscriptionOverSSE(t *testing.T) {
	e := newEnv(t)
	srv := httptest.NewServer(e.h)
	defer srv.Close()
	var created struct {
		CreateProduct struct {
			Product  productJSON
			Movement struct{ Sequence int64 }
		}
	}
	e.must(t, createProduct, &created, client.Var("sku", "SSE"), client.Var("stock", 5), client.Var("threshold", 0))
	p := created.CreateProduct.Product

	// afterSequence makes delivery independent of when the subscription
	// is registered: the stock-out comes replayed or live, once.
	body, _ := json.Marshal(map[string]any{
		"query":     `subscription($ids: [ID!], $after: Int64) { stockChanged(productIds: $ids, afterSequence: $after) { sequence movement { delta } product { stock } } }`,
		"variables": map[string]any{"ids": []string{p.ID}, "after": created.CreateProduct.Movement.Sequence},
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, srv.URL+"/query", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "text/event-stream")
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("Content-Type %q", ct)
	}
	lines := bufio.NewScanner(resp.Body)
	var out struct{ StockOut stockPayload }
	e.must(t, stockOut, &out, client.Var("id", p.ID), client.Var("qty", 2), client.Var("key", nil))

	var event string
	for lines.Scan() {
		line := lines.Text()
		if v, ok := strings.CutPrefix(line, "event: "); ok {
			event = v
			continue
		}
		data, ok := strings.CutPrefix(line, "data: ")
		if !ok {
			continue
		}
		if event != "next" {
			t.Fatalf("event %q: %s", event, data)
		}
		var ev struct {
			Data struct {
				StockChanged struct {
					Sequence int64
					Movement struct{ Delta int }
					Product  struct{ Stock int }
				}
			}
		}
		if err := json.Unmarshal([]byte(data), &ev); err != nil {
			t.Fatalf("%s: %v", data, err)
		}
		if c := ev.Data.StockChanged; c.Sequence != out.StockOut.Movement.Sequence || c.Movement.Delta != -2 || c.Product.Stock != 3 {
			t.Fatalf("event %s", data)
		}
		return
	}
	t.Fatalf("stream ended: %v", lines.Err())
}

// TestFailedMutationNullsOnlyItsField: of three stock-ins in one document,
// the third fails; the answer still shows the two that committed.
func TestFailedMutationNullsOnlyItsField(t *testing.T) {
	e := newEnv(t)
	p := e.createProduct(t, "MULTI", 10, 0)
	resp, err := e.c.RawPost(`mutation($id: ID!) {
		a: stockIn(input: {productId: $id, quantity: 1}) { product { stock } }
		b: stockIn(input: {productId: $id, quantity: 2}) { product { stock } }
		c: stockIn(input: {productId: $id, quantity: 3, locationId: "999"}) { product { stock } }
	}`, client.Var("id", p.ID))
	if err != nil {
		t.Fatal(err)
	}
	var data struct {
		A, B *struct{ Product struct{ Stock int } }
		C    *struct{}
	}
	b, _ := json.Marshal(resp.Data)
	if err := json.Unmarshal(b, &data); err != nil || data.A == nil || data.B == nil {
		t.Fatalf("data %s (%v): the committed mutations are not visible", b, err)
	}
	if data.A.Product.Stock != 11 || data.B.Product.Stock != 13 || data.C != nil {
		t.Fatalf("data %s", b)
	}
	var errs []gqlError
	if err := json.Unmarshal(resp.Errors, &errs); err != nil || len(errs) != 1 || errs[0].Extensions["code"] != "NOT_FOUND" ||
		fmt.Sprint(errs[0].Path) != "[c]" {
		t.Fatalf("errors %s", resp.Errors)
	}
}
