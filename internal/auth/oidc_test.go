package auth_test

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/shopstack/inventory/internal/auth"
	"github.com/shopstack/inventory/internal/inventory"
	"github.com/shopstack/inventory/internal/testenv/oidctest"
)

// clientMessages are every message a refused token may show a client:
// ours, never a library's.
var clientMessages = []string{
	"the bearer token is not valid",
	"the access token has expired",
	"the access token is not valid yet",
	"authentication required: send Authorization: Bearer <token>",
}

// logBuffer keeps what an authenticator logged.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// take returns what was logged since the last take.
func (b *logBuffer) take() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := b.buf.String()
	b.buf.Reset()
	return s
}

// refusedFor checks that err refuses a token (refused), and that the log
// says why: cause.
func refusedFor(t *testing.T, log *logBuffer, what string, p inventory.Principal, err error, want, cause string) {
	t.Helper()
	refused(t, what, p, err, want)
	if logged := log.take(); !strings.Contains(logged, cause) {
		t.Errorf("%s: the log does not say %q:\n%s", what, cause, logged)
	}
}

// refused checks that err refuses a token as UNAUTHENTICATED with one of
// our messages, which want must be part of.
func refused(t *testing.T, what string, p inventory.Principal, err error, want string) {
	t.Helper()
	e, ok := errors.AsType[*inventory.Error](err)
	switch {
	case !ok:
		t.Errorf("%s: accepted as %+v (%v), want UNAUTHENTICATED", what, p, err)
	case e.Code != inventory.CodeUnauthenticated:
		t.Errorf("%s: %s %q, want UNAUTHENTICATED", what, e.Code, e.Message)
	case !strings.Contains(e.Message, want):
		t.Errorf("%s: %q, want it to say %q", what, e.Message, want)
	}
	if ok {
		for _, m := range clientMessages {
			if e.Message == m {
				return
			}
		}
		t.Errorf("%s: the client would read %q, which is not one of ours", what, e.Message)
	}
}

// jwksCounter counts the fetches of a provider's keys.
type jwksCounter struct {
	fetches atomic.Int64
}

func (c *jwksCounter) RoundTrip(r *http.Request) (*http.Response, error) {
	if strings.HasSuffix(r.URL.Path, "/jwks") {
		c.fetches.Add(1)
	}
	return http.DefaultTransport.RoundTrip(r)
}

func newOIDC(t *testing.T, p *oidctest.Provider, o auth.OIDC, tokens *auth.Tokens) (*auth.Authenticator, *logBuffer) {
	t.Helper()
	o.Issuer, o.Audience = p.Issuer, p.Audience
	log := &logBuffer{}
	return mustNew(t, auth.Config{Tokens: tokens, OIDC: &o, Log: slog.New(slog.NewTextHandler(log, nil))}), log
}

// TestOIDC checks access tokens of a real OpenID provider: each client's
// role and name, static tokens beside them, and the refusals.
func TestOIDC(t *testing.T) {
	p := oidctest.Start(t)
	tokens, _ := auth.Parse("till-7:operator:static-token-0123456789")
	a, log := newOIDC(t, p, auth.OIDC{}, tokens)
	ctx := t.Context()
	if !strings.Contains(a.Mode(), p.Issuer) || !strings.Contains(a.Mode(), "bearer tokens (1)") {
		t.Errorf("mode %q", a.Mode())
	}

	t.Run("Roles", func(t *testing.T) {
		for c, want := range map[oidctest.Client]inventory.Role{
			oidctest.Reader: inventory.RoleReader, oidctest.Operator: inventory.RoleOperator, oidctest.Admin: inventory.RoleAdmin,
			oidctest.NoScope: inventory.RoleNone,
		} {
			got, err := a.Authenticate(ctx, p.Token(t, c, nil))
			if err != nil || got.Name != c.ID || got.Role != want {
				t.Errorf("%s: %+v %v, want %s as %s", c.ID, got, err, c.ID, want)
			}
			if until := time.Until(got.Expires); until < 4*time.Minute || until > 6*time.Minute {
				t.Errorf("%s: expires in %v, want the token's 5 minutes", c.ID, until)
			}
		}
	})
	t.Run("NoInventoryScopeIsForbidden", func(t *testing.T) {
		ctx, err := a.FromHeader(ctx, "Bearer "+p.Token(t, oidctest.NoScope, nil))
		if err != nil {
			t.Fatal(err)
		}
		for _, op := range []string{"stockOut", "products"} {
			if e, ok := errors.AsType[*inventory.Error](inventory.Authorize(ctx, op)); !ok || e.Code != inventory.CodeForbidden {
				t.Errorf("%s without an inventory scope: %v, want FORBIDDEN", op, e)
			}
		}
	})
	t.Run("StaticTokens", func(t *testing.T) {
		if got, err := a.Authenticate(ctx, "static-token-0123456789"); err != nil || got.Name != "till-7" || !got.Expires.IsZero() {
			t.Errorf("static token beside OIDC: %+v %v", got, err)
		}
	})

	key := p.SigningKey()
	t.Run("OwnSignatureAccepted", func(t *testing.T) {
		// The tokens below differ from this one in one thing each.
		if got, err := a.Authenticate(ctx, oidctest.Sign(t, key, p.Claims("svc", "inventory:write"))); err != nil || got.Role != inventory.RoleOperator {
			t.Fatalf("a token signed with the provider's key: %+v %v", got, err)
		}
	})
	with := func(change func(jwt.MapClaims)) jwt.MapClaims {
		c := p.Claims("svc", "inventory:admin")
		change(c)
		return c
	}
	for name, c := range map[string]struct {
		claims jwt.MapClaims
		want   string
	}{
		"WrongIssuer":   {with(func(c jwt.MapClaims) { c["iss"] = "http://127.0.0.1:1" }), "not valid"},
		"WrongAudience": {with(func(c jwt.MapClaims) { c["aud"] = "urn:someone-else" }), "not valid"},
		"NoAudience":    {with(func(c jwt.MapClaims) { delete(c, "aud") }), "not valid"},
		"Expired": {with(func(c jwt.MapClaims) {
			c["iat"], c["exp"] = time.Now().Add(-time.Hour).Unix(), time.Now().Add(-time.Minute).Unix()
		}), "expired"},
		"NoExpiry":    {with(func(c jwt.MapClaims) { delete(c, "exp") }), "not valid"},
		"NotYet":      {with(func(c jwt.MapClaims) { c["nbf"] = time.Now().Add(time.Hour).Unix() }), "not valid yet"},
		"IssuedLater": {with(func(c jwt.MapClaims) { c["iat"] = time.Now().Add(time.Hour).Unix() }), "not valid yet"},
		"NoSubject":   {with(func(c jwt.MapClaims) { delete(c, "sub"); delete(c, "client_id") }), "not valid"},
		"LongSubject": {with(func(c jwt.MapClaims) { c["sub"] = strings.Repeat("x", 201) }), "not valid"},
	} {
		t.Run(name, func(t *testing.T) {
			got, err := a.Authenticate(ctx, oidctest.Sign(t, key, c.claims))
			refused(t, name, got, err, c.want)
		})
	}
	t.Run("WithinLeeway", func(t *testing.T) {
		claims := with(func(c jwt.MapClaims) { c["exp"] = time.Now().Add(-10 * time.Second).Unix() })
		if _, err := a.Authenticate(ctx, oidctest.Sign(t, key, claims)); err != nil {
			t.Errorf("a token 10s past its expiry, within the leeway: %v", err)
		}
	})
	t.Run("WrongAudienceFromProvider", func(t *testing.T) {
		tok := p.Token(t, oidctest.Admin, url.Values{"resource": {"urn:shopstack:billing"}})
		got, err := a.Authenticate(ctx, tok)
		refusedFor(t, log, "a token the provider issued for another API", got, err, "not valid", "invalid audience")
	})
	t.Run("AlgNone", func(t *testing.T) {
		got, err := a.Authenticate(ctx, unsigned(t, map[string]any{"alg": "none", "typ": "at+jwt", "kid": key.ID}, p.Claims("svc", "inventory:admin")))
		refusedFor(t, log, "alg none", got, err, "not valid", "signing method none is invalid")
	})
	t.Run("HMACWithThePublicKey", func(t *testing.T) {
		// The classic confusion: the provider's public key, which anyone
		// can fetch, used as an HMAC secret.
		der, err := x509.MarshalPKIXPublicKey(&key.Private.PublicKey)
		if err != nil {
			t.Fatal(err)
		}
		for _, secret := range [][]byte{pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), der, key.Private.N.Bytes()} {
			tok := jwt.NewWithClaims(jwt.SigningMethodHS256, p.Claims("svc", "inventory:admin"))
			tok.Header["kid"] = key.ID
			s, err := tok.SignedString(secret)
			if err != nil {
				t.Fatal(err)
			}
			got, err := a.Authenticate(ctx, s)
			refusedFor(t, log, "HS256 keyed with the public key", got, err, "not valid", "signing method HS256 is invalid")
		}
	})
	t.Run("AnotherKeyClaimingTheKeyID", func(t *testing.T) {
		forger := oidctest.NewKey(t)
		forger.ID = key.ID
		got, err := a.Authenticate(ctx, oidctest.Sign(t, forger, p.Claims("svc", "inventory:admin")))
		refusedFor(t, log, "a key of our own with the provider's key ID", got, err, "not valid", "verification error")
	})
	t.Run("AnotherProvider", func(t *testing.T) {
		other := oidctest.Start(t)
		got, err := a.Authenticate(ctx, other.Token(t, oidctest.Admin, nil))
		refusedFor(t, log, "another provider's token", got, err, "not valid", "could not read JWK")
		// Even one that claims our issuer: its key is not the provider's.
		got, err = a.Authenticate(ctx, oidctest.Sign(t, other.SigningKey(), p.Claims("svc", "inventory:admin")))
		refusedFor(t, log, "another provider's key claiming our issuer", got, err, "not valid", "could not read JWK")
	})
	t.Run("Garbage", func(t *testing.T) {
		for _, s := range []string{"x", "a.b.c", "a.b", "....", "eyJhbGciOiJSUzI1NiJ9.e30.", "static-token-012345678X"} {
			got, err := a.Authenticate(ctx, s)
			refused(t, s, got, err, "not valid")
		}
	})
}

// unsigned is a JWT of header and claims with an empty signature.
func unsigned(t testing.TB, header map[string]any, claims jwt.MapClaims) string {
	t.Helper()
	h, _ := json.Marshal(header)
	c, _ := json.Marshal(claims)
	return base64.RawURLEncoding.EncodeToString(h) + "." + base64.RawURLEncoding.EncodeToString(c) + "."
}

// TestOIDCKeyRotation: the provider restarts with a new signing key, and
// its tokens are accepted without restarting the verifier, which fetches
// the keys again on the unknown key ID.
func TestOIDCKeyRotation(t *testing.T) {
	p := oidctest.Start(t)
	var jwks jwksCounter
	a, _ := newOIDC(t, p, auth.OIDC{HTTPClient: &http.Client{Transport: &jwks, Timeout: 10 * time.Second}}, nil)
	ctx := t.Context()
	before := p.Token(t, oidctest.Operator, nil)
	if _, err := a.Authenticate(ctx, before); err != nil {
		t.Fatal(err)
	}
	if n := jwks.fetches.Load(); n != 1 {
		t.Errorf("%d fetches of the keys before the rotation, want 1 (at start)", n)
	}

	// A rotation that still publishes the old key: tokens of both verify.
	p.Rotate(t, true)
	after := p.Token(t, oidctest.Operator, nil)
	if got, err := a.Authenticate(ctx, after); err != nil || got.Name != oidctest.Operator.ID {
		t.Fatalf("a token signed with the new key: %+v %v", got, err)
	}
	if _, err := a.Authenticate(ctx, before); err != nil {
		t.Errorf("a token signed with the old key, still published: %v", err)
	}
	if n := jwks.fetches.Load(); n != 2 {
		t.Errorf("%d fetches of the keys, want 2: one more for the new key", n)
	}
}

// TestOIDCUnknownKeysRateLimited: tokens with made-up key IDs do not make
// the verifier fetch the keys more than once per UnknownKeyInterval, and
// are refused without waiting for it.
func TestOIDCUnknownKeysRateLimited(t *testing.T) {
	p := oidctest.Start(t)
	var jwks jwksCounter
	a, _ := newOIDC(t, p, auth.OIDC{HTTPClient: &http.Client{Transport: &jwks, Timeout: 10 * time.Second}, UnknownKeyInterval: time.Hour}, nil)
	for range 20 {
		forger := oidctest.NewKey(t)
		got, err := a.Authenticate(t.Context(), oidctest.Sign(t, forger, p.Claims("svc", "inventory:admin")))
		refused(t, "unknown key ID", got, err, "not valid")
	}
	if n := jwks.fetches.Load(); n != 2 {
		t.Errorf("%d fetches of the keys for 20 unknown key IDs, want 2 (at start, and once for the first)", n)
	}
	// A rotation is then seen at the next allowed fetch at the latest (or
	// the hourly refresh); until then the new key's tokens are refused.
	p.Rotate(t, false)
	got, err := a.Authenticate(t.Context(), p.Token(t, oidctest.Reader, nil))
	refused(t, "a new key while fetches are held back", got, err, "not valid")
}

// TestOIDCDiscoveryFails: a server that is not the issuer it is named by,
// or that does not answer, stops start-up with an error naming it.
func TestOIDCDiscoveryFails(t *testing.T) {
	p := oidctest.Start(t)
	for name, o := range map[string]auth.OIDC{
		"IssuerMismatch": {Issuer: strings.Replace(p.Issuer, "127.0.0.1", "localhost", 1), Audience: p.Audience},
		"NoProvider":     {Issuer: "http://127.0.0.1:1", Audience: p.Audience, DiscoveryTimeout: time.Second},
		"NoAudience":     {Issuer: p.Issuer},
	} {
		t.Run(name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer cancel()
			if _, err := auth.New(ctx, auth.Config{OIDC: &o}); err == nil {
				t.Error("started")
			}
		})
	}
}
