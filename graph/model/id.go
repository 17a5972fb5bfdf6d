package model

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"slices"
	"strconv"
	"strings"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"

	"github.com/shopstack/inventory/internal/inventory"
)

// NodeType is a GraphQL type that implements Node: the first part of its
// objects' global IDs.
type NodeType string

// The types whose objects have global IDs.
const (
	ProductNode     NodeType = "Product"
	LocationNode    NodeType = "Location"
	MovementNode    NodeType = "StockMovement"
	ReservationNode NodeType = "Reservation"
	TransferNode    NodeType = "Transfer"
)

// NodeTypes lists every NodeType.
var NodeTypes = []NodeType{ProductNode, LocationNode, MovementNode, ReservationNode, TransferNode}

// ID is a GraphQL ID: an object's global ID, the base64 encoding of
// "<type>:<database ID>" (as Relay's reference implementation writes
// them), unique across types. On input it is parsed by one rule, ParseID,
// which also takes a bare database ID (the form IDs had before global
// IDs) for a deprecation period; such an ID has no Type, and Of takes it
// as the type asked for.
type ID struct {
	Type       NodeType // empty for a bare database ID
	DatabaseID int64
	// Field is the argument or input field the ID came in, for errors.
	Field string
}

// GlobalID returns the global ID of an object of type t.
func GlobalID(t NodeType, databaseID int64) ID { return ID{Type: t, DatabaseID: databaseID} }

// String returns the global ID's encoding.
func (id ID) String() string {
	return base64.StdEncoding.EncodeToString([]byte(string(id.Type) + ":" + strconv.FormatInt(id.DatabaseID, 10)))
}

// Of returns the database ID of an ID that must name an object of type t:
// a global ID of another type is BAD_USER_INPUT on the ID's field.
func (id ID) Of(t NodeType) (int64, error) {
	if id.Type != "" && id.Type != t {
		return 0, inventory.Invalid(id.Field, "%s is the ID of a %s; %s takes the ID of a %s", id.Field, id.Type, id.Field, t)
	}
	return id.DatabaseID, nil
}

// MarshalGQLContext writes the global ID.
func (id ID) MarshalGQLContext(_ context.Context, w io.Writer) error {
	_, err := io.WriteString(w, strconv.Quote(id.String()))
	return err
}

// UnmarshalGQLContext reads an ID argument or input field by ParseID,
// naming in errors the input being read by its FieldPath (an element of a
// list or of an input object in a list by its index too), so an ID that
// is malformed and one of another type are named alike.
func (id *ID) UnmarshalGQLContext(ctx context.Context, v any) error {
	var err error
	*id, err = ParseID(v, inputPath(ctx))
	return err
}

// inputPath returns the FieldPath of the argument or input field ctx's
// path is reading.
func inputPath(ctx context.Context) string {
	var path ast.Path
	for pc := graphql.GetPathContext(ctx); pc != nil; pc = pc.Parent {
		switch {
		case pc.Index != nil:
			path = append(path, ast.PathIndex(*pc.Index))
		case pc.Field != nil:
			path = append(path, ast.PathName(*pc.Field))
		}
	}
	slices.Reverse(path)
	return FieldPath(path)
}

// ParseID is the one rule for reading an ID a client sent in field: a
// global ID of one of NodeTypes with a positive database ID, or, deprecated,
// a bare positive database ID (a string of digits or a JSON integer).
// Anything else is BAD_USER_INPUT on field.
func ParseID(v any, field string) (ID, error) {
	var s string
	switch v := v.(type) {
	case string:
		s = v
	case json.Number:
		s = v.String()
	case int64:
		s = strconv.FormatInt(v, 10)
	case int:
		s = strconv.Itoa(v)
	default:
		return ID{}, inventory.Invalid(field, "%s must be an ID: a string", field)
	}
	bad := func() (ID, error) {
		return ID{}, inventory.Invalid(field, "%s: %q is not an ID of this API", field, clip(s))
	}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		if n <= 0 {
			return bad()
		}
		return ID{DatabaseID: n, Field: field}, nil
	}
	raw, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return bad()
	}
	typ, num, ok := strings.Cut(string(raw), ":")
	n, err := strconv.ParseInt(num, 10, 64)
	if !ok || err != nil || n <= 0 || !knownType(NodeType(typ)) || strconv.FormatInt(n, 10) != num {
		return bad()
	}
	return ID{Type: NodeType(typ), DatabaseID: n, Field: field}, nil
}

func knownType(t NodeType) bool {
	for _, k := range NodeTypes {
		if k == t {
			return true
		}
	}
	return false
}
