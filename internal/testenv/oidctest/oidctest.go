// Package oidctest runs a real OpenID provider for tests: the npm package
// oidc-provider (pinned in testdata/package-lock.json, installed by `make
// oidc-provider-deps`, which `make test` runs) with testdata/provider.mjs,
// on a free loopback port. Its clients get access tokens with the
// client-credentials grant, as JWTs (RFC 9068) for Audience, signed with
// keys the test made, so it can rotate them and sign tokens of its own.
//
// Without node or the installed package, tests are skipped, unless
// INVENTORY_TEST_STRICT=1, where a skip is a failure.
package oidctest

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/big"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/shopstack/inventory/internal/testenv"
)

// DefaultAudience is the audience a provider issues tokens for unless a
// client asks for another resource.
const DefaultAudience = "urn:shopstack:inventory"

// Client is one of a provider's clients.
type Client struct {
	ID, Secret string
	// Scope is every scope it may ask for, and asks for.
	Scope string
}

// The clients every provider has: one per role, and one with no inventory
// scope.
var (
	Reader   = Client{ID: "shelf-app", Secret: "shelf-app-secret", Scope: "inventory:read"}
	Operator = Client{ID: "pos-1", Secret: "pos-1-secret", Scope: "inventory:write"}
	Admin    = Client{ID: "ops", Secret: "ops-secret", Scope: "inventory:read inventory:write inventory:admin"}
	NoScope  = Client{ID: "mailer", Secret: "mailer-secret"}
)

// Key is a signing key of the provider.
type Key struct {
	ID      string
	Private *rsa.PrivateKey
}

// Provider is one oidc-provider process.
type Provider struct {
	// Issuer is http://127.0.0.1:port; it stays the same across Rotate.
	Issuer   string
	Audience string

	dir  string
	port int

	proc testenv.Proc
	mu   sync.Mutex
	keys []Key // keys[0] signs
	n    int
}

// Dir is the directory of the provider's npm project (provider.mjs,
// package.json, the lockfile, node_modules once installed).
func Dir() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "testdata")
}

// Start starts a provider with one RS256 key on a free port, and waits
// until its discovery document answers. It stops when the test ends.
func Start(tb testing.TB) *Provider {
	tb.Helper()
	if !testenv.NodePackages(tb, Dir(), "oidc-provider-deps", "oidc-provider") {
		return nil
	}
	ports, err := testenv.FreePorts(1)
	if err != nil {
		tb.Fatal(err)
	}
	port := ports[0]
	p := &Provider{Issuer: "http://127.0.0.1:" + strconv.Itoa(port), Audience: DefaultAudience, dir: tb.TempDir(), port: port,
		keys: []Key{NewKey(tb)}}
	tb.Cleanup(p.stop)
	p.start(tb)
	return p
}

// NewKey makes an RSA key with an ID of its own.
func NewKey(tb testing.TB) Key {
	tb.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		tb.Fatal(err)
	}
	id := make([]byte, 8)
	_, _ = rand.Read(id)
	return Key{ID: "k-" + base64.RawURLEncoding.EncodeToString(id), Private: k}
}

// SigningKey is the key the provider signs with now.
func (p *Provider) SigningKey() Key {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.keys[0]
}

// Rotate restarts the provider, on the same port, signing with a new key;
// with keepOld it still publishes the keys it had (tokens they signed stay
// verifiable), as providers do while a rotation settles.
func (p *Provider) Rotate(tb testing.TB, keepOld bool) Key {
	tb.Helper()
	k := NewKey(tb)
	p.mu.Lock()
	if keepOld {
		p.keys = append([]Key{k}, p.keys...)
	} else {
		p.keys = []Key{k}
	}
	p.mu.Unlock()
	p.stop()
	p.start(tb)
	return k
}

func (p *Provider) start(tb testing.TB) {
	tb.Helper()
	p.mu.Lock()
	p.n++
	jwksFile := filepath.Join(p.dir, fmt.Sprintf("jwks-%d.json", p.n))
	keys := make([]map[string]string, len(p.keys))
	for i, k := range p.keys {
		keys[i] = privateJWK(k)
	}
	p.mu.Unlock()
	b, _ := json.Marshal(map[string]any{"keys": keys})
	if err := os.WriteFile(jwksFile, b, 0o600); err != nil {
		tb.Fatal(err)
	}
	cmd := exec.Command("node", filepath.Join(Dir(), "provider.mjs"))
	cmd.Env = append(os.Environ(), "OIDC_PORT="+strconv.Itoa(p.port), "OIDC_ISSUER="+p.Issuer, "OIDC_AUDIENCE="+p.Audience,
		"OIDC_JWKS_FILE="+jwksFile, "OIDC_TOKEN_TTL=300")
	logFile, err := os.Create(filepath.Join(p.dir, fmt.Sprintf("provider-%d.log", p.n)))
	if err != nil {
		tb.Fatal(err)
	}
	defer logFile.Close()
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = testenv.DieWithTest()
	if err := cmd.Start(); err != nil {
		tb.Fatalf("oidctest: %v", err)
	}
	p.proc.Set(cmd)
	if !testenv.Poll(testenv.Wait, func() bool {
		resp, err := http.Get(p.Issuer + "/.well-known/openid-configuration")
		if err == nil {
			_ = resp.Body.Close()
		}
		return err == nil && resp.StatusCode == http.StatusOK
	}) {
		out, _ := os.ReadFile(logFile.Name())
		tb.Fatalf("oidctest: the provider did not start on port %d:\n%s", p.port, out)
	}
}

func (p *Provider) stop() { p.proc.Kill() }

// Token gets an access token for c with the client-credentials grant,
// asking for c.Scope and, with extra, more parameters (resource=…).
func (p *Provider) Token(tb testing.TB, c Client, extra url.Values) string {
	tb.Helper()
	form := url.Values{"grant_type": {"client_credentials"}}
	if c.Scope != "" {
		form.Set("scope", c.Scope)
	}
	for k, v := range extra {
		form[k] = v
	}
	req, _ := http.NewRequest(http.MethodPost, p.Issuer+"/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(c.ID, c.Secret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatalf("oidctest: token: %v", err)
	}
	defer resp.Body.Close()
	var out struct {
		AccessToken string `json:"access_token"`
		Error       string `json:"error"`
		Description string `json:"error_description"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || out.AccessToken == "" {
		tb.Fatalf("oidctest: token for %s: %d %v %s %s", c.ID, resp.StatusCode, err, out.Error, out.Description)
	}
	return out.AccessToken
}

// Claims are the claims of a valid access token of the provider for sub
// with scope, to change before signing one with Sign.
func (p *Provider) Claims(sub, scope string) jwt.MapClaims {
	now := time.Now()
	return jwt.MapClaims{"iss": p.Issuer, "aud": p.Audience, "sub": sub, "client_id": sub, "scope": scope,
		"iat": now.Unix(), "exp": now.Add(5 * time.Minute).Unix(), "jti": strconv.FormatInt(now.UnixNano(), 36)}
}

// Sign signs claims as the provider would, RS256 with key (its ID in the
// header).
func Sign(tb testing.TB, key Key, claims jwt.MapClaims) string {
	tb.Helper()
	t := jwt.NewWithClaims(jwt.SigningMethodRS256, claims)
	t.Header["kid"] = key.ID
	t.Header["typ"] = "at+jwt"
	s, err := t.SignedString(key.Private)
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

// privateJWK is k as a private JWK (RFC 7518 section 6.3).
func privateJWK(k Key) map[string]string {
	b := func(i *big.Int) string { return base64.RawURLEncoding.EncodeToString(i.Bytes()) }
	pk := k.Private
	pk.Precompute()
	return map[string]string{"kty": "RSA", "kid": k.ID, "alg": "RS256", "use": "sig",
		"n": b(pk.N), "e": b(big.NewInt(int64(pk.E))), "d": b(pk.D), "p": b(pk.Primes[0]), "q": b(pk.Primes[1]),
		"dp": b(pk.Precomputed.Dp), "dq": b(pk.Precomputed.Dq), "qi": b(pk.Precomputed.Qinv)}
}
