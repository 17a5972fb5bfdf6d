package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/coder/websocket"

	"github.com/shopstack/inventory/internal/gormstore"
)

const (
	readerToken   = "reader-token-0123456789"
	operatorToken = "operator-token-0123456789"
	adminToken    = "admin-token-0123456789"
)

// call sends a request as the holder of token ("" sends none) and returns
// the status and the decoded body.
func (s *server) call(t *testing.T, method, path, token, body string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(method, s.url+path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var out map[string]any
	_ = json.Unmarshal(b, &out)
	return resp.StatusCode, out
}

func gql(query string) string {
	b, _ := json.Marshal(map[string]string{"query": query})
	return string(b)
}

// gqlCode returns the first error's extensions.code, or "OK".
func gqlCode(body map[string]any) string {
	errs, _ := body["errors"].([]any)
	if len(errs) == 0 {
		return "OK"
	}
	ext, _ := errs[0].(map[string]any)["extensions"].(map[string]any)
	return fmt.Sprint(ext["code"])
}

// TestAuthAndRoles runs a server with three tokens and checks who may do
// what, over GraphQL, REST and WebSocket.
func TestAuthAndRoles(t *testing.T) {
	env := envFor(t, gormstore.SQLite)
	env["INVENTORY_AUTH_TOKENS"] = "shelf-app:reader:" + readerToken + ",pos-1:operator:" + operatorToken + ",ops:admin:" + adminToken
	s := startServer(t, env)

	create := gql(`mutation { createProduct(input: {sku: "AUTH-1", name: "N", price: "1.00", initialStock: 10}) { product { id } } }`)
	sell := gql(`mutation { stockOut(input: {productId: 1, quantity: 1}) { movement { actor } } }`)
	read := gql(`{ products(first: 5) { totalCount } }`)

	// No token, or a wrong one: 401, as a GraphQL error.
	for _, token := range []string{"", "not-a-valid-token-at-all"} {
		status, body := s.call(t, "POST", "/query", token, read)
		if status != http.StatusUnauthorized || gqlCode(body) != "UNAUTHENTICATED" {
			t.Errorf("token %q: %d %v", token, status, body)
		}
	}
	// Health, readiness, metrics and the GraphiQL page need none.
	for _, path := range []string{"/healthz", "/readyz", "/metrics", "/"} {
		if status, _ := s.call(t, "GET", path, "", ""); status != http.StatusOK {
			t.Errorf("GET %s without a token: %d", path, status)
		}
	}

	for _, c := range []struct {
		token, body, want string
	}{
		{operatorToken, create, "FORBIDDEN"},
		{adminToken, create, "OK"},
		{readerToken, read, "OK"},
		{readerToken, sell, "FORBIDDEN"},
		{operatorToken, sell, "OK"},
		{operatorToken, gql(`{ reconcile { levelsChecked } }`), "FORBIDDEN"},
		{adminToken, gql(`{ reconcile { levelsChecked } }`), "OK"},
		{readerToken, gql(`{ __schema { queryType { name } } }`), "OK"},
	} {
		if _, body := s.call(t, "POST", "/query", c.token, c.body); gqlCode(body) != c.want {
			t.Errorf("%s as %s: %v, want %s", c.body, c.token, body, c.want)
		}
	}
	// The ledger names the token's holder.
	_, body := s.call(t, "POST", "/query", operatorToken, sell)
	if actor := body["data"].(map[string]any)["stockOut"].(map[string]any)["movement"].(map[string]any)["actor"]; actor != "pos-1" {
		t.Errorf("actor %v, want pos-1", actor)
	}

	// REST: the same roles, REST-shaped errors.
	status, body := s.call(t, "POST", "/stock/out", readerToken, `{"productId": "1", "count": 1}`)
	if status != http.StatusForbidden || body["error"].(map[string]any)["code"] != "FORBIDDEN" {
		t.Errorf("REST stock-out as reader: %d %v", status, body)
	}
	status, body = s.call(t, "GET", "/product/AUTH-1", "", "")
	if status != http.StatusUnauthorized || body["error"].(map[string]any)["code"] != "UNAUTHENTICATED" {
		t.Errorf("REST without a token: %d %v", status, body)
	}
	if status, _ := s.call(t, "GET", "/product/AUTH-1", readerToken, ""); status != http.StatusOK {
		t.Errorf("REST read as reader: %d", status)
	}

	// WebSocket: the token rides in connection_init. A refusal is the
	// protocol's 4401 with the reason, which graphql-ws clients report
	// instead of reconnecting.
	for _, payload := range []string{`{}`, `{"Authorization": "Bearer wrong-token-0123456789"}`} {
		ws, m, err := dialWSInit(t, s.url, payload)
		for err == nil && m.Type != "connection_ack" { // gqlgen may say connection_error first
			m, err = ws.next()
		}
		var ce websocket.CloseError
		if !errors.As(err, &ce) || ce.Code != 4401 || !strings.Contains(ce.Reason, "token") {
			t.Errorf("WebSocket with init %s: %s %v, want close 4401 naming the token", payload, m.Type, err)
		}
	}
	// The key in any case, as clients spell headers.
	ws, m, err := dialWSInit(t, s.url, `{"authorization": "Bearer `+readerToken+`"}`)
	if err != nil || m.Type != "connection_ack" {
		t.Fatalf("reader's WebSocket: %s %v", m.Type, err)
	}
	// From the start of the ledger, so no event can slip past before the
	// subscription is in place: the product's creation, then pos-1's sales.
	ws.subscribe("1", `subscription { stockChanged(afterSequence: 0) { movement { actor } } }`, nil)
	for i := 0; ; i++ {
		got := ws.read()
		if got.Type != "next" || i == 5 {
			t.Fatalf("subscription event %d: %s %s", i, got.Type, got.Payload)
		}
		if bytes.Contains(got.Payload, []byte(`"pos-1"`)) {
			break
		}
	}
}

// TestNoTokensMeansLoopback: without INVENTORY_AUTH_TOKENS, a server asked
// to listen on every interface listens on loopback only, and says so.
func TestNoTokensMeansLoopback(t *testing.T) {
	env := envFor(t, gormstore.SQLite)
	env["INVENTORY_ADDR"] = "0.0.0.0:0"
	s := startServer(t, env)
	if !strings.HasPrefix(s.url, "http://127.0.0.1:") {
		t.Errorf("listening at %s, want loopback", s.url)
	}
	if !s.logged("no INVENTORY_AUTH_TOKENS") {
		t.Error("start-up did not say why it listens on loopback only")
	}
	if code := gqlCode(mustCall(t, s, gql(`mutation { createProduct(input: {sku: "L-1", name: "N", price: "1.00"}) { product { id } } }`))); code != "OK" {
		t.Errorf("anonymous createProduct on loopback: %s", code)
	}
}

// TestAllowAnonymousListensWhereAsked: with the operator's explicit
// opt-in, a server without tokens listens on the address asked for (a
// container's published port), and warns.
func TestAllowAnonymousListensWhereAsked(t *testing.T) {
	env := envFor(t, gormstore.SQLite)
	env["INVENTORY_ADDR"] = "0.0.0.0:0"
	env["INVENTORY_ALLOW_ANONYMOUS"] = "true"
	s := startServer(t, env)
	if strings.HasPrefix(s.url, "http://127.0.0.1:") {
		t.Errorf("listening at %s, want every interface", s.url)
	}
	if !s.logged("every caller who can reach the address is admin") {
		t.Error("start-up did not warn that every caller is admin")
	}
	_, port, _ := strings.Cut(strings.TrimPrefix(s.url, "http://"), "]:")
	if port == "" {
		_, port, _ = strings.Cut(strings.TrimPrefix(s.url, "http://"), ":")
	}
	if code, _ := get(t, "http://127.0.0.1:"+port+"/healthz"); code != http.StatusOK {
		t.Errorf("healthz = %d", code)
	}
}

func mustCall(t *testing.T, s *server, body string) map[string]any {
	t.Helper()
	_, out := s.call(t, "POST", "/query", "", body)
	return out
}

func TestBadTokensRefuseToStart(t *testing.T) {
	for name, spec := range map[string]string{
		"short token":  "a:reader:short",
		"unknown role": "a:owner:0123456789abcdef",
		"no role":      "0123456789abcdef",
		"same name":    "a:reader:0123456789abcdef,a:admin:fedcba9876543210",
	} {
		var out bytes.Buffer
		err := run(t.Context(), []string{"inventoryd", "-addr", "127.0.0.1:0"}, func(k string) string {
			return map[string]string{"INVENTORY_AUTH_TOKENS": spec, "INVENTORY_DB_DSN": t.TempDir() + "/x.db"}[k]
		}, &out, &out)
		if err == nil || strings.Contains(err.Error(), "0123456789abcdef") {
			t.Errorf("%s: %v", name, err)
		}
	}
}
