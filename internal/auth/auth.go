// Package auth authenticates callers by bearer token: the tokens of
// INVENTORY_AUTH_TOKENS, each naming a principal and its role. What each
// role may do is the domain's (inventory.Authorize).
package auth

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

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

// Anonymous is the principal of every request when no tokens are
// configured (the server then listens on loopback only).
var Anonymous = inventory.Principal{Name: "anonymous", Role: inventory.RoleAdmin}

// Middleware attaches the caller's principal to each request's context.
// Without tokens (t nil) every request acts as Anonymous. With tokens, a
// request needs a valid Authorization: Bearer header, except those public
// reports true for and WebSocket upgrades, which authenticate with their
// connection_init payload instead. A refusal is 401 UNAUTHENTICATED, as a
// GraphQL response on graphQLPath and as a REST error elsewhere.
func Middleware(t *Tokens, graphQLPath string, public func(*http.Request) bool, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if t == nil {
			next.ServeHTTP(w, r.WithContext(inventory.WithPrincipal(r.Context(), Anonymous)))
			return
		}
		header := r.Header.Get("Authorization")
		if header == "" {
			if public(r) || strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
				next.ServeHTTP(w, r)
				return
			}
			deny(w, r, graphQLPath, "authentication required: send Authorization: Bearer <token>")
			return
		}
		token, ok := Bearer(header)
		p, known := t.Lookup(token)
		if !ok || !known {
			deny(w, r, graphQLPath, "the bearer token is not valid")
			return
		}
		next.ServeHTTP(w, r.WithContext(inventory.WithPrincipal(r.Context(), p)))
	})
}

func deny(w http.ResponseWriter, r *http.Request, graphQLPath, message string) {
	w.Header().Set("WWW-Authenticate", `Bearer realm="inventory"`)
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
// (gRPC, whose refusals are statuses). Without tokens every caller is
// Anonymous.
func FromHeader(ctx context.Context, t *Tokens, header string) (context.Context, error) {
	if t == nil {
		return inventory.WithPrincipal(ctx, Anonymous), nil
	}
	if header == "" {
		return ctx, inventory.Errorf(inventory.CodeUnauthenticated, "authentication required: send authorization: Bearer <token>")
	}
	token, ok := Bearer(header)
	p, known := t.Lookup(token)
	if !ok || !known {
		return ctx, inventory.Errorf(inventory.CodeUnauthenticated, "the bearer token is not valid")
	}
	return inventory.WithPrincipal(ctx, p), nil
}

// FromInitPayload authenticates a WebSocket connection by its
// connection_init payload: {"Authorization": "Bearer <token>"}, the key in
// any case (or {"authToken": "<token>"}). A context that already has a principal (the
// upgrade request carried a valid header) keeps it.
func FromInitPayload(ctx context.Context, t *Tokens, payload map[string]any) (context.Context, error) {
	if _, ok := inventory.PrincipalFrom(ctx); ok || t == nil {
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
	p, ok := t.Lookup(token)
	if token == "" || !ok {
		return ctx, inventory.Errorf(inventory.CodeUnauthenticated, "connection_init needs a valid token: {\"Authorization\": \"Bearer <token>\"}")
	}
	return inventory.WithPrincipal(ctx, p), nil
}
