package inventory

import (
	"context"
	"fmt"
	"maps"
	"time"
)

// Role is what a caller may do; each role may also do what the roles
// before it may.
type Role int

// Roles.
const (
	RoleNone Role = iota
	// RoleReader may query and subscribe.
	RoleReader
	// RoleOperator may also move stock and reserve it.
	RoleOperator
	// RoleAdmin may also edit products and locations, reconcile and repair
	// levels, and read the flow-control state.
	RoleAdmin
)

var roleNames = map[Role]string{RoleNone: "none", RoleReader: "reader", RoleOperator: "operator", RoleAdmin: "admin"}

func (r Role) String() string { return roleNames[r] }

// ParseRole returns the role named s.
func ParseRole(s string) (Role, error) {
	for r, name := range roleNames {
		if name == s && r != RoleNone {
			return r, nil
		}
	}
	return RoleNone, fmt.Errorf("unknown role %q (want reader, operator or admin)", s)
}

// Principal is an authenticated caller: its name is the actor recorded on
// the ledger rows it causes.
type Principal struct {
	Name string
	Role Role
	// Expires is when the credential it came with stops being valid (an
	// access token's expiry); zero: never. A connection that outlives it,
	// such as a subscription, is ended then.
	Expires time.Time
}

type principalKey struct{}

// WithPrincipal returns a context acting for p.
func WithPrincipal(ctx context.Context, p Principal) context.Context {
	return WithActor(context.WithValue(ctx, principalKey{}, p), p.Name)
}

// PrincipalFrom returns the principal ctx acts for, if any.
func PrincipalFrom(ctx context.Context) (Principal, bool) {
	p, ok := ctx.Value(principalKey{}).(Principal)
	return p, ok
}

// operationRoles is the role each operation (a GraphQL root field; REST
// routes count as theirs) needs. An operation not listed needs RoleAdmin.
var operationRoles = map[string]Role{
	"product": RoleReader, "productBySku": RoleReader, "products": RoleReader, "lowStockProducts": RoleReader,
	"stockMovements": RoleReader, "locations": RoleReader, "reservation": RoleReader, "reservations": RoleReader,
	"lowStockAlerts": RoleReader, "stockChanged": RoleReader, "reservationEvents": RoleReader,
	"transfer": RoleReader, "transfers": RoleReader, "node": RoleReader, "nodes": RoleReader,
	"_entities": RoleReader, "_service": RoleReader,

	"stockIn": RoleOperator, "stockOut": RoleOperator, "adjustStock": RoleOperator, "bulkAdjustStock": RoleOperator,
	"reserveStock": RoleOperator, "commitReservation": RoleOperator, "releaseReservation": RoleOperator,
	"extendReservation": RoleOperator, "moveStock": RoleOperator, "expectStock": RoleOperator,
	"createTransfer": RoleOperator, "shipTransfer": RoleOperator, "receiveTransfer": RoleOperator, "cancelTransfer": RoleOperator,

	"createProduct": RoleAdmin, "updateProduct": RoleAdmin, "createBundle": RoleAdmin, "createLocation": RoleAdmin, "repairDrift": RoleAdmin,
	"reconcile": RoleAdmin, "flowControl": RoleAdmin,
}

// OperationRoles returns the role of every operation listed.
func OperationRoles() map[string]Role { return maps.Clone(operationRoles) }

// RoleFor returns the role operation op needs.
func RoleFor(op string) Role {
	if r, ok := operationRoles[op]; ok {
		return r
	}
	return RoleAdmin
}

// Authorize returns nil if ctx's principal may run op: UNAUTHENTICATED
// without a principal, FORBIDDEN if its role is too low.
func Authorize(ctx context.Context, op string) error {
	p, ok := PrincipalFrom(ctx)
	if !ok {
		return Errorf(CodeUnauthenticated, "authentication required: send Authorization: Bearer <token>")
	}
	if need := RoleFor(op); p.Role < need {
		return Errorf(CodeForbidden, "%s needs the %s role; %s is %s", op, need, p.Name, p.Role)
	}
	return nil
}
