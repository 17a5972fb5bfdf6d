package auth

import (
	"strings"

	"github.com/golang-jwt/jwt/v5"

	"github.com/shopstack/inventory/internal/inventory"
)

// rolesOf is the highest role a token's claims grant: by the names in the
// claim rolesClaim if it is set, else by its scopes (ScopeRoles). None is
// RoleNone, which may do nothing (inventory.Authorize says FORBIDDEN).
func rolesOf(claims jwt.MapClaims, rolesClaim string) inventory.Role {
	best := inventory.RoleNone
	grant := func(r inventory.Role) {
		best = max(best, r)
	}
	if rolesClaim != "" {
		for _, name := range words(claim(claims, rolesClaim)) {
			if r, err := inventory.ParseRole(name); err == nil {
				grant(r)
			}
		}
		return best
	}
	// scope is a space-separated string (RFC 9068, RFC 8693); scp is an
	// array (Okta, Entra ID) or a string.
	for _, c := range []string{"scope", "scp"} {
		for _, s := range words(claims[c]) {
			grant(ScopeRoles[s])
		}
	}
	return best
}

// claim returns the claim name, or if there is none and name has dots, the
// value at that path through nested objects (Keycloak's
// realm_access.roles). Auth0's namespaced claims are URLs with dots, so
// the whole name is tried first.
func claim(claims jwt.MapClaims, name string) any {
	if v, ok := claims[name]; ok {
		return v
	}
	var v any = map[string]any(claims)
	for part := range strings.SplitSeq(name, ".") {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[part]
	}
	return v
}

// words are the strings a claim holds: the items of an array of strings,
// or the words of a string separated by spaces or commas.
func words(v any) []string {
	switch v := v.(type) {
	case string:
		return strings.FieldsFunc(v, func(r rune) bool { return r == ' ' || r == ',' })
	case []any:
		out := make([]string, 0, len(v))
		for _, item := range v {
			if s, ok := item.(string); ok {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}
