package auth_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/shopstack/inventory/internal/auth"
	"github.com/shopstack/inventory/internal/inventory"
)

func TestParse(t *testing.T) {
	tokens, err := auth.Parse(" pos-1:operator:0123456789abcdef , ops:admin:fedcba9876543210")
	if err != nil || tokens.Len() != 2 {
		t.Fatalf("%v, %v", tokens, err)
	}
	if p, ok := tokens.Lookup("0123456789abcdef"); !ok || p != (inventory.Principal{Name: "pos-1", Role: inventory.RoleOperator}) {
		t.Errorf("lookup: %+v %v", p, ok)
	}
	if _, ok := tokens.Lookup("0123456789abcdeX"); ok {
		t.Error("a wrong token was found")
	}
	if tokens, err := auth.Parse(""); tokens != nil || err != nil {
		t.Errorf("empty: %v %v", tokens, err)
	}
	for _, bad := range []string{"a:reader:short", "a:root:0123456789abcdef", "a:0123456789abcdef", ":reader:0123456789abcdef",
		"a:reader:0123456789abcdef,b:admin:0123456789abcdef"} {
		if _, err := auth.Parse(bad); err == nil || strings.Contains(err.Error(), "0123456789abcdef") {
			t.Errorf("%q: %v (must fail without showing the token)", bad, err)
		}
	}
}

func TestMiddleware(t *testing.T) {
	tokens, _ := auth.Parse("app:reader:0123456789abcdef")
	var got *inventory.Principal
	next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = nil
		if p, ok := inventory.PrincipalFrom(r.Context()); ok {
			got = &p
		}
	})
	public := func(r *http.Request) bool { return r.URL.Path == "/healthz" }
	with, without := mustNew(t, auth.Config{Tokens: tokens}), mustNew(t, auth.Config{})
	do := func(a *auth.Authenticator, path, authz, upgrade string) *httptest.ResponseRecorder {
		req := httptest.NewRequest("POST", path, nil)
		if authz != "" {
			req.Header.Set("Authorization", authz)
		}
		if upgrade != "" {
			req.Header.Set("Upgrade", upgrade)
		}
		rec := httptest.NewRecorder()
		got = nil
		a.Middleware("/query", public, next).ServeHTTP(rec, req)
		return rec
	}
	if rec := do(with, "/query", "Bearer 0123456789abcdef", ""); rec.Code != 200 || got == nil || got.Name != "app" {
		t.Errorf("valid token: %d %+v", rec.Code, got)
	}
	if rec := do(with, "/query", "", ""); rec.Code != 401 || !strings.Contains(rec.Body.String(), `"errors"`) || rec.Header().Get("WWW-Authenticate") == "" {
		t.Errorf("no token on /query: %d %s", rec.Code, rec.Body)
	}
	if rec := do(with, "/product/1", "Basic YWxhZGRpbjpvcGVuc2VzYW1l", ""); rec.Code != 401 || !strings.Contains(rec.Body.String(), `"error":{"code":"UNAUTHENTICATED"`) {
		t.Errorf("basic auth on REST: %d %s", rec.Code, rec.Body)
	}
	if rec := do(with, "/healthz", "", ""); rec.Code != 200 || got != nil {
		t.Errorf("public path: %d %+v", rec.Code, got)
	}
	if rec := do(with, "/query", "", "websocket"); rec.Code != 200 || got != nil {
		t.Errorf("WebSocket upgrade: %d %+v (authenticated by connection_init)", rec.Code, got)
	}
	if rec := do(without, "/query", "", ""); rec.Code != 200 || got == nil || *got != auth.Anonymous {
		t.Errorf("no tokens configured: %d %+v", rec.Code, got)
	}
}

func TestFromInitPayload(t *testing.T) {
	tokens, _ := auth.Parse("app:reader:0123456789abcdef")
	a := mustNew(t, auth.Config{Tokens: tokens})
	ctx := context.Background()
	for payload, ok := range map[string]bool{"Bearer 0123456789abcdef": true, "Bearer nope-nope-nope-nope": false, "": false} {
		c, err := a.FromInitPayload(ctx, map[string]any{"Authorization": payload})
		if _, has := inventory.PrincipalFrom(c); (err == nil) != ok || has != ok {
			t.Errorf("%q: %v, principal %v", payload, err, has)
		}
	}
	if c, err := a.FromInitPayload(ctx, map[string]any{"authToken": "0123456789abcdef"}); err != nil || inventory.ActorFrom(c) != "app" {
		t.Errorf("authToken: %v, actor %s", err, inventory.ActorFrom(c))
	}
}

func mustNew(tb testing.TB, cfg auth.Config) *auth.Authenticator {
	tb.Helper()
	a, err := auth.New(tb.Context(), cfg)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(a.Close)
	return a
}
