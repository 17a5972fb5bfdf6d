package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/shopstack/inventory/internal/gormstore"
	v1 "github.com/shopstack/inventory/internal/grpcapi/gen/inventory/v1"
	"github.com/shopstack/inventory/internal/testenv/oidctest"
)

// libraryWords are what a JWT or JWKS library would say; no client may
// read them.
var libraryWords = []string{"jwt", "JWK", "keyfunc", "signature", "crypto/", "token is expired", "token is malformed", "token is unverifiable", "token has invalid", "claim"}

// TestOIDCEndToEnd runs the server as inventoryd builds it against a real
// OpenID provider: its clients' access tokens over GraphQL, REST, gRPC and
// a WebSocket, static tokens beside them, the refusals, a key rotation,
// and subscriptions ended when their token expires.
func TestOIDCEndToEnd(t *testing.T) {
	p := oidctest.Start(t)
	env := envFor(t, gormstore.SQLite)
	env["INVENTORY_OIDC_ISSUER"] = p.Issuer
	env["INVENTORY_OIDC_AUDIENCE"] = p.Audience
	env["INVENTORY_AUTH_TOKENS"] = "ops-static:admin:" + adminToken
	env["INVENTORY_GRPC_ADDR"] = "127.0.0.1:0"
	env["INVENTORY_ADDR"] = "0.0.0.0:0" // authentication on: no need to stay on loopback
	s := startServer(t, env)
	if !s.logged("OpenID provider discovered") || strings.HasPrefix(s.url, "http://127.0.0.1:") {
		t.Fatalf("start-up at %s did not discover the provider or stayed on loopback", s.url)
	}
	reader, operator, admin := p.Token(t, oidctest.Reader, nil), p.Token(t, oidctest.Operator, nil), p.Token(t, oidctest.Admin, nil)
	noScope := p.Token(t, oidctest.NoScope, nil)

	create := gql(`mutation { createProduct(input: {sku: "OIDC-1", name: "N", price: "1.00", initialStock: 10}) { product { id } } }`)
	sell := gql(`mutation { stockOut(input: {productId: 1, quantity: 1}) { movement { actor } } }`)
	read := gql(`{ products(first: 5) { totalCount } }`)
	for _, c := range []struct {
		who, token, body, want string
	}{
		{"operator", operator, create, "FORBIDDEN"},
		{"admin", admin, create, "OK"},
		{"reader", reader, read, "OK"},
		{"reader", reader, sell, "FORBIDDEN"},
		{"operator", operator, sell, "OK"},
		{"no scope", noScope, read, "FORBIDDEN"},
		{"no scope", noScope, sell, "FORBIDDEN"},
		{"static admin", adminToken, gql(`{ reconcile { levelsChecked } }`), "OK"},
	} {
		if _, body := s.call(t, "POST", "/query", c.token, c.body); gqlCode(body) != c.want {
			t.Errorf("%s as %s: %v, want %s", c.body, c.who, body, c.want)
		}
	}
	// The ledger names the client.
	_, body := s.call(t, "POST", "/query", operator, sell)
	if actor := body["data"].(map[string]any)["stockOut"].(map[string]any)["movement"].(map[string]any)["actor"]; actor != oidctest.Operator.ID {
		t.Errorf("actor %v, want %s", actor, oidctest.Operator.ID)
	}
	if status, _ := s.call(t, "GET", "/product/OIDC-1", reader, ""); status != http.StatusOK {
		t.Errorf("REST read as reader: %d", status)
	}

	// Refusals: 401 UNAUTHENTICATED with our message and an RFC 6750
	// challenge, nothing of the library's.
	key := p.SigningKey()
	expired := p.Claims("svc", "inventory:admin")
	expired["iat"], expired["exp"] = time.Now().Add(-time.Hour).Unix(), time.Now().Add(-time.Minute).Unix()
	for what, c := range map[string]struct{ token, message string }{
		"expired":        {oidctest.Sign(t, key, expired), "the access token has expired"},
		"wrong audience": {p.Token(t, oidctest.Admin, url.Values{"resource": {"urn:shopstack:billing"}}), "the bearer token is not valid"},
		"alg none":       {"eyJhbGciOiJub25lIn0." + strings.Split(admin, ".")[1] + ".", "the bearer token is not valid"},
	} {
		req, _ := http.NewRequest("POST", s.url+"/query", strings.NewReader(read))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+c.token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		challenge := resp.Header.Get("WWW-Authenticate")
		if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(string(b), `"code":"UNAUTHENTICATED"`) ||
			!strings.Contains(string(b), c.message) || !strings.Contains(challenge, `error="invalid_token"`) {
			t.Errorf("%s: %d %s %q, want 401 UNAUTHENTICATED %q", what, resp.StatusCode, b, challenge, c.message)
		}
		for _, w := range libraryWords {
			if strings.Contains(string(b)+challenge, w) {
				t.Errorf("%s: the client reads %q: %s %s", what, w, b, challenge)
			}
		}
	}

	t.Run("GRPC", func(t *testing.T) { oidcGRPC(t, s, reader, operator) })
	t.Run("WebSocketEndsAtExpiry", func(t *testing.T) { oidcWebSocketExpiry(t, s, p) })
	t.Run("EventStreamEndsAtExpiry", func(t *testing.T) { oidcEventStreamExpiry(t, s, p) })
	t.Run("GRPCStreamEndsAtExpiry", func(t *testing.T) { oidcGRPCStreamExpiry(t, s, p) })

	// The provider rotates its key; the server follows without a restart.
	p.Rotate(t, false)
	if _, body := s.call(t, "POST", "/query", p.Token(t, oidctest.Operator, nil), sell); gqlCode(body) != "OK" {
		t.Errorf("a token signed with the provider's new key: %v", body)
	}
}

// oidcGRPC calls over gRPC with the token in the authorization metadata.
func oidcGRPC(t *testing.T, s *server, reader, operator string) {
	s.mu.Lock()
	addr := s.grpcAddr
	s.mu.Unlock()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	for _, c := range []struct {
		who, token string
		want       codes.Code
	}{
		{"operator", operator, codes.OK},
		{"reader", reader, codes.PermissionDenied},
		{"nobody", "not-a-token", codes.Unauthenticated},
	} {
		ctx := metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+c.token)
		err := conn.Invoke(ctx, "/inventory.v1.InventoryService/StockOut", &v1.StockOutRequest{ProductId: 1, Quantity: 1}, new(v1.StockOutResponse))
		if st := status.Convert(err); st.Code() != c.want {
			t.Errorf("StockOut as %s: %v, want %s", c.who, err, c.want)
		} else if c.want == codes.Unauthenticated && st.Message() != "the bearer token is not valid" {
			t.Errorf("StockOut as %s: message %q", c.who, st.Message())
		}
	}
}

// shortLived is an access token of the provider's that expires in d.
func shortLived(t *testing.T, p *oidctest.Provider, d time.Duration) string {
	claims := p.Claims("dashboard-1", "inventory:read")
	claims["exp"] = time.Now().Add(d).Unix()
	return oidctest.Sign(t, p.SigningKey(), claims)
}

// oidcWebSocketExpiry: a WebSocket whose token expires is closed with
// 4401, which graphql-ws clients answer by getting a new token.
func oidcWebSocketExpiry(t *testing.T, s *server, p *oidctest.Provider) {
	ws, m, err := dialWSInit(t, s.url, fmt.Sprintf(`{"Authorization": "Bearer %s"}`, shortLived(t, p, 3*time.Second)))
	if err != nil || m.Type != "connection_ack" {
		t.Fatalf("connection_init: %s %v", m.Type, err)
	}
	ws.subscribe("1", `subscription { stockChanged(afterSequence: 0) { sequence } }`, nil)
	if m := ws.read(); m.Type != "next" {
		t.Fatalf("subscription: %s %s", m.Type, m.Payload)
	}
	start := time.Now()
	for {
		_, err := ws.next()
		if err == nil {
			continue
		}
		var ce websocket.CloseError
		if !errors.As(err, &ce) || ce.Code != 4401 || !strings.Contains(ce.Reason, "expired") {
			t.Errorf("the WebSocket ended with %v after %v, want close 4401 saying the token expired", err, time.Since(start))
		}
		return
	}
}

// oidcGRPCStreamExpiry: a WatchStockChanges stream whose token expires
// ends with UNAUTHENTICATED, saying so.
func oidcGRPCStreamExpiry(t *testing.T, s *server, p *oidctest.Provider) {
	s.mu.Lock()
	addr := s.grpcAddr
	s.mu.Unlock()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+shortLived(t, p, 3*time.Second))
	stream, err := conn.NewStream(ctx, &grpc.StreamDesc{ServerStreams: true}, "/inventory.v1.InventoryService/WatchStockChanges")
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.SendMsg(&v1.WatchStockChangesRequest{AfterSequence: new(int64)}); err != nil {
		t.Fatal(err)
	}
	if err := stream.CloseSend(); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	for {
		if err = stream.RecvMsg(new(v1.WatchStockChangesResponse)); err != nil {
			break
		}
	}
	if st := status.Convert(err); st.Code() != codes.Unauthenticated || !strings.Contains(st.Message(), "expired") || ctx.Err() != nil {
		t.Errorf("the stream ended with %v after %v, want UNAUTHENTICATED at the token's expiry", err, time.Since(start))
	}
}

// oidcEventStreamExpiry: a server-sent event stream ends when its token
// expires.
func oidcEventStreamExpiry(t *testing.T, s *server, p *oidctest.Provider) {
	req, _ := http.NewRequest(http.MethodPost, s.url+"/query", strings.NewReader(`{"query":"subscription { stockChanged { sequence } }"}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("Authorization", "Bearer "+shortLived(t, p, 3*time.Second))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resp, err := http.DefaultClient.Do(req.WithContext(ctx))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("event stream: %d", resp.StatusCode)
	}
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		t.Errorf("the stream ended with %v, want its end at the token's expiry", err)
	}
}
