// Package auth authenticates callers by bearer token: a static token of
// INVENTORY_AUTH_TOKENS, each naming a principal and its role, or an access
// token (a JWT) the shop's OpenID provider issued, checked locally against
// the provider's keys, its scopes or a claim naming the role. One
// Authenticator turns a token into an inventory.Principal for every
// transport. What each role may do is the domain's (inventory.Authorize).
package auth

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/shopstack/inventory/internal/inventory"
)

// MinTokenLength is the shortest token accepted: a token is a password.
const MinTokenLength = 16

// Tokens maps bearer tokens to principals. It keeps only the tokens'
// SHA-256 hashes.
type Tokens struct {
	byHash map[[32]byte]inventory.Principal
}

// Parse reads a token list: comma-separated name:role:token entries, e.g.
// "pos-1:operator:8c0f…,grafana:reader:…". Empty returns nil: no
// authentication.
func Parse(spec string) (*Tokens, error) {
	if strings.TrimSpace(spec) == "" {
		return nil, nil
	}
	t := &Tokens{byHash: map[[32]byte]inventory.Principal{}}
	names := map[string]bool{}
	for i, entry := range strings.Split(spec, ",") {
		name, rest, ok1 := strings.Cut(strings.TrimSpace(entry), ":")
		roleName, token, ok2 := strings.Cut(rest, ":")
		if !ok1 || !ok2 || name == "" {
			return nil, fmt.Errorf("INVENTORY_AUTH_TOKENS entry %d: want name:role:token", i+1)
		}
		role, err := inventory.ParseRole(roleName)
		if err != nil {
			return nil, fmt.Errorf("INVENTORY_AUTH_TOKENS entry %d (%s): %w", i+1, name, err)
		}
		if len(token) < MinTokenLength {
			return nil, fmt.Errorf("INVENTORY_AUTH_TOKENS entry %d (%s): a token needs at least %d characters", i+1, name, MinTokenLength)
		}
		h := sha256.Sum256([]byte(token))
		if _, dup := t.byHash[h]; dup || names[name] {
			return nil, fmt.Errorf("INVENTORY_AUTH_TOKENS entry %d (%s): a name or token appears twice", i+1, name)
		}
		names[name] = true
		t.byHash[h] = inventory.Principal{Name: name, Role: role}
	}
	return t, nil
}

// Lookup returns the principal of token.
func (t *Tokens) Lookup(token string) (inventory.Principal, bool) {
	p, ok := t.byHash[sha256.Sum256([]byte(token))]
	return p, ok
}

// Len is how many tokens t holds.
func (t *Tokens) Len() int { return len(t.byHash) }

// Bearer returns the token of an Authorization value "Bearer <token>".
func Bearer(v string) (string, bool) {
	scheme, token, ok := strings.Cut(strings.TrimSpace(v), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(token) == "" {
		return "", false
	}
	return strings.TrimSpace(token), true
}

// Anonymous is the principal of every request when no authentication is
// configured (the server then listens on loopback only).
var Anonymous = inventory.Principal{Name: "anonymous", Role: inventory.RoleAdmin}

// Client messages of refusals. Nothing a library says reaches a client.
const (
	msgRequired     = "authentication required: send Authorization: Bearer <token>"
	msgInvalid      = "the bearer token is not valid"
	msgInitRequired = "connection_init needs a valid token: {\"Authorization\": \"Bearer <token>\"}"
)

// Config is how callers are authenticated: by static tokens, by an OpenID
// provider's access tokens, or both. Neither: every caller is Anonymous.
type Config struct {
	Tokens *Tokens // nil: no static tokens
	OIDC   *OIDC   // nil: no OpenID provider
	// Now is the clock tokens' lifetimes are judged by; nil: time.Now.
	Now func() time.Time
	// Log receives why a token was refused; nil discards it.
	Log *slog.Logger
}

// Authenticator turns bearer tokens into principals: the one place every
// transport's authentication goes through. Its methods are safe for
// concurrent use; a nil *Authenticator authenticates no one and lets
// everyone in as Anonymous.
type Authenticator struct {
	tokens *Tokens
	oidc   *verifier
	log    *slog.Logger
}

// New returns an authenticator. With an OpenID provider it discovers it
// and fetches its keys first (retrying for a while if it does not answer
// yet), and refreshes the keys in the background until Close.
func New(ctx context.Context, cfg Config) (*Authenticator, error) {
	a := &Authenticator{tokens: cfg.Tokens, log: cfg.Log}
	if a.log == nil {
		a.log = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.OIDC != nil {
		v, err := newVerifier(ctx, *cfg.OIDC, cfg.Now, a.log)
		if err != nil {
			return nil, err
		}
		a.oidc = v
	}
	return a, nil
}

// Static returns an authenticator of static tokens only (nil: none, every
// caller is Anonymous), which needs no start-up.
func Static(t *Tokens) *Authenticator {
	return &Authenticator{tokens: t, log: slog.New(slog.DiscardHandler)}
}

// Close stops refreshing the provider's keys.
func (a *Authenticator) Close() {
	if a != nil && a.oidc != nil {
		a.oidc.close()
	}
}

// Enabled reports whether callers must authenticate.
func (a *Authenticator) Enabled() bool { return a != nil && (a.tokens != nil || a.oidc != nil) }

// Mode says how callers are authenticated, for the start-up log.
func (a *Authenticator) Mode() string {
	var modes []string
	if a.Enabled() && a.tokens != nil {
		modes = append(modes, fmt.Sprintf("bearer tokens (%d)", a.tokens.Len()))
	}
	if a.Enabled() && a.oidc != nil {
		modes = append(modes, "OpenID Connect access tokens ("+a.oidc.issuer+")")
	}
	return strings.Join(modes, " and ")
}

// Authenticate returns the principal a bearer token stands for. A refusal
// is an *inventory.Error with code UNAUTHENTICATED whose message says
// what a client can do about it; the cause, if any, is logged. A valid
// access token that grants no inventory role is a principal with RoleNone,
// which inventory.Authorize refuses everything (FORBIDDEN).
func (a *Authenticator) Authenticate(ctx context.Context, token string) (inventory.Principal, error) {
	if !a.Enabled() {
		return Anonymous, nil
	}
	if token == "" {
		return inventory.Principal{}, inventory.Errorf(inventory.CodeUnauthenticated, msgRequired)
	}
	if a.tokens != nil {
		if p, ok := a.tokens.Lookup(token); ok {
			return p, nil
		}
	}
	if a.oidc == nil {
		return inventory.Principal{}, inventory.Errorf(inventory.CodeUnauthenticated, msgInvalid)
	}
	p, err := a.oidc.verify(ctx, token)
	if err != nil {
		msg := msgInvalid
		if r, ok := errors.AsType[*refusal](err); ok {
			msg = r.message
		}
		a.log.InfoContext(ctx, "bearer token refused", "transport", inventory.TransportFrom(ctx), "reason", err.Error())
		return inventory.Principal{}, inventory.Errorf(inventory.CodeUnauthenticated, "%s", msg)
	}
	return p, nil
}

// authenticate adds the principal of an Authorization header's value to
// ctx.
func (a *Authenticator) authenticate(ctx context.Context, header string) (context.Context, error) {
	if !a.Enabled() {
		return inventory.WithPrincipal(ctx, Anonymous), nil
	}
	if header == "" {
		return ctx, inventory.Errorf(inventory.CodeUnauthenticated, msgRequired)
	}
	token, ok := Bearer(header)
	if !ok {
		return ctx, inventory.Errorf(inventory.CodeUnauthenticated, msgInvalid)
	}
	p, err := a.Authenticate(ctx, token)
	if err != nil {
		return ctx, err
	}
	return inventory.WithPrincipal(ctx, p), nil
}

// Middleware attaches the caller's principal to each request's context.
// Without authentication every request acts as Anonymous. With it, a
// request needs a valid Authorization: Bearer header, except those public
// reports true for and WebSocket upgrades, which authenticate with their
// connection_init payload instead. A refusal is 401 UNAUTHENTICATED, as a
// GraphQL response on graphQLPath and as a REST error elsewhere. A
// server-sent event stream ends when the caller's access token expires.
func (a *Authenticator) Middleware(graphQLPath string, public func(*http.Request) bool, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		header := r.Header.Get("Authorization")
		if a.Enabled() && header == "" && (public(r) || strings.EqualFold(r.Header.Get("Upgrade"), "websocket")) {
			next.ServeHTTP(w, r)
			return
		}
		ctx, err := a.authenticate(r.Context(), header)
		if err != nil {
			deny(w, r, graphQLPath, header != "", err)
			return
		}
		if p, _ := inventory.PrincipalFrom(ctx); !p.Expires.IsZero() && strings.Contains(r.Header.Get("Accept"), "text/event-stream") {
			var cancel context.CancelFunc
			ctx, cancel = context.WithDeadline(ctx, p.Expires)
			defer cancel()
		}
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

// deny answers 401 with err's message; presented says whether a token
// came with the request (RFC 6750's invalid_token).
func deny(w http.ResponseWriter, r *http.Request, graphQLPath string, presented bool, err error) {
	message := msgInvalid
	if e, ok := errors.AsType[*inventory.Error](err); ok {
		message = e.Message
	}
	challenge := `Bearer realm="inventory"`
	if presented {
		challenge += `, error="invalid_token", error_description="` + message + `"`
	}
	w.Header().Set("WWW-Authenticate", challenge)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusUnauthorized)
	code := string(inventory.CodeUnauthenticated)
	var body any = map[string]any{"error": map[string]string{"code": code, "message": message}}
	if r.URL.Path == graphQLPath {
		body = map[string]any{"errors": []any{map[string]any{"message": message, "extensions": map[string]string{"code": code}}}}
	}
	_ = json.NewEncoder(w).Encode(body)
}

// FromHeader authenticates a call by its Authorization header value, for
// transports that authenticate per call rather than through Middleware
// (gRPC, whose refusals are statuses). Without authentication every
// caller is Anonymous.
func (a *Authenticator) FromHeader(ctx context.Context, header string) (context.Context, error) {
	return a.authenticate(ctx, header)
}

// FromInitPayload authenticates a WebSocket connection by its
// connection_init payload: {"Authorization": "Bearer <token>"}, the key in
// any case (or {"authToken": "<token>"}). A context that already has a
// principal (the upgrade request carried a valid header) keeps it.
func (a *Authenticator) FromInitPayload(ctx context.Context, payload map[string]any) (context.Context, error) {
	if _, ok := inventory.PrincipalFrom(ctx); ok || !a.Enabled() {
		return ctx, nil
	}
	var token string
	for k, v := range payload {
		s, ok := v.(string)
		switch {
		case !ok:
		case strings.EqualFold(k, "Authorization"): // clients spell it as they spell headers
			token, _ = Bearer(s)
		case k == "authToken" && token == "":
			token = s
		}
	}
	if token == "" {
		return ctx, inventory.Errorf(inventory.CodeUnauthenticated, msgInitRequired)
	}
	p, err := a.Authenticate(ctx, token)
	if err != nil {
		return ctx, err
	}
	return inventory.WithPrincipal(ctx, p), nil
}
