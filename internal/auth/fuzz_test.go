package auth_test

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"math/big"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/shopstack/inventory/internal/auth"
	"github.com/shopstack/inventory/internal/inventory"
	"github.com/shopstack/inventory/internal/testenv/oidctest"
)

// serveProvider serves an OpenID provider's discovery document and its
// public key over HTTP, for the fuzzer, which needs no tokens from a real
// provider: it makes up its own.
func serveProvider(tb testing.TB, key oidctest.Key) string {
	tb.Helper()
	mux := http.NewServeMux()
	srv := httptest.NewServer(mux)
	tb.Cleanup(srv.Close)
	b64 := func(i *big.Int) string { return base64.RawURLEncoding.EncodeToString(i.Bytes()) }
	mux.HandleFunc("/.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		_ = json.NewEncoder(w).Encode(map[string]any{"issuer": srv.URL, "jwks_uri": srv.URL + "/jwks",
			"authorization_endpoint": srv.URL + "/auth", "token_endpoint": srv.URL + "/token",
			"id_token_signing_alg_values_supported": []string{"RS256", "HS256", "none"}})
	})
	mux.HandleFunc("/jwks", func(w http.ResponseWriter, r *http.Request) {
		pub := key.Private.PublicKey
		_ = json.NewEncoder(w).Encode(map[string]any{"keys": []any{map[string]string{"kty": "RSA", "kid": key.ID, "alg": "RS256",
			"use": "sig", "n": b64(pub.N), "e": b64(big.NewInt(int64(pub.E)))}}})
	})
	return srv.URL
}

// FuzzToken feeds the verifier made-up tokens: it must not panic, must
// accept none but the provider's, and must refuse each with one of our
// messages (nothing a library says reaches a client).
func FuzzToken(f *testing.F) {
	key := oidctest.NewKey(f)
	issuer := serveProvider(f, key)
	a := mustNew(f, auth.Config{OIDC: &auth.OIDC{Issuer: issuer, Audience: "urn:inventory", UnknownKeyInterval: time.Hour}})
	claims := func() jwt.MapClaims {
		return jwt.MapClaims{"iss": issuer, "aud": "urn:inventory", "sub": "svc", "scope": "inventory:write",
			"iat": time.Now().Unix(), "exp": time.Now().Add(time.Hour).Unix()}
	}
	valid := oidctest.Sign(f, key, claims())
	f.Add(valid)
	f.Add(valid[:len(valid)-3])
	f.Add(unsigned(f, map[string]any{"alg": "none"}, claims()))
	hs := jwt.NewWithClaims(jwt.SigningMethodHS256, claims())
	hs.Header["kid"] = key.ID
	hsToken, _ := hs.SignedString(key.Private.N.Bytes())
	f.Add(hsToken)
	f.Add(unsigned(f, map[string]any{"alg": "RS256", "kid": []int{1}}, claims()))
	f.Add(unsigned(f, map[string]any{"alg": "RS256", "crit": []string{"exp"}}, jwt.MapClaims{"exp": "soon", "aud": 7}))
	f.Add("eyJ.eyJ.")
	f.Add("a.b.c.d.e")
	f.Add("")
	f.Fuzz(func(t *testing.T, token string) {
		ctx := t.Context()
		p, err := a.Authenticate(ctx, token)
		if err == nil {
			if token != valid || p.Name != "svc" || p.Role != inventory.RoleOperator {
				t.Fatalf("accepted %q as %+v", token, p)
			}
			return
		}
		e, ok := errors.AsType[*inventory.Error](err)
		if !ok || e.Code != inventory.CodeUnauthenticated || !slices.Contains(clientMessages, e.Message) {
			t.Fatalf("%q: %v, want UNAUTHENTICATED with one of our messages", token, err)
		}
		if _, err := a.FromHeader(ctx, "Bearer "+token); err != nil {
			if e, ok := errors.AsType[*inventory.Error](err); !ok || !slices.Contains(clientMessages, e.Message) {
				t.Fatalf("%q in a header: %v, want one of our messages", token, err)
			}
		}
	})
}
