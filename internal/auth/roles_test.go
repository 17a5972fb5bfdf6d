package auth

import (
	"encoding/json"
	"testing"

	"github.com/golang-jwt/jwt/v5"

	"github.com/shopstack/inventory/internal/inventory"
)

func TestRolesOf(t *testing.T) {
	for _, c := range []struct {
		name, claims, rolesClaim string
		want                     inventory.Role
	}{
		{"ScopeString", `{"scope": "openid inventory:read"}`, "", inventory.RoleReader},
		{"HighestScopeWins", `{"scope": "inventory:admin inventory:read inventory:write"}`, "", inventory.RoleAdmin},
		{"ScpArray", `{"scp": ["inventory:write", "profile"]}`, "", inventory.RoleOperator},
		{"ScpString", `{"scp": "inventory:write"}`, "", inventory.RoleOperator},
		{"NoInventoryScope", `{"scope": "openid email"}`, "", inventory.RoleNone},
		{"NoScope", `{}`, "", inventory.RoleNone},
		{"ScopeNotAString", `{"scope": 7}`, "", inventory.RoleNone},
		{"RolesArray", `{"roles": ["reader", "operator"]}`, "roles", inventory.RoleOperator},
		{"RolesString", `{"roles": "admin"}`, "roles", inventory.RoleAdmin},
		{"RolesCommaString", `{"roles": "reader,admin"}`, "roles", inventory.RoleAdmin},
		{"UnknownRolesIgnored", `{"roles": ["offline_access", "none", "root", "reader"]}`, "roles", inventory.RoleReader},
		{"ClaimIgnoresScopes", `{"scope": "inventory:admin", "roles": ["reader"]}`, "roles", inventory.RoleReader},
		{"ClaimMissing", `{"scope": "inventory:admin"}`, "roles", inventory.RoleNone},
		{"NestedPath", `{"realm_access": {"roles": ["offline_access", "operator"]}}`, "realm_access.roles", inventory.RoleOperator},
		{"NestedPathNotAnObject", `{"realm_access": ["admin"]}`, "realm_access.roles", inventory.RoleNone},
		{"URLClaimWithDots", `{"https://shop.example.com/roles": ["admin"]}`, "https://shop.example.com/roles", inventory.RoleAdmin},
	} {
		t.Run(c.name, func(t *testing.T) {
			claims := jwt.MapClaims{}
			if err := json.Unmarshal([]byte(c.claims), &claims); err != nil {
				t.Fatal(err)
			}
			if got := rolesOf(claims, c.rolesClaim); got != c.want {
				t.Errorf("%s with claim %q: %s, want %s", c.claims, c.rolesClaim, got, c.want)
			}
		})
	}
}
