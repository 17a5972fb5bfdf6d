package graph

import (
	"context"
	"slices"

	"github.com/99designs/gqlgen/graphql"

	"github.com/shopstack/inventory/graph/model"
	"github.com/shopstack/inventory/internal/inventory"
)

// MaxNodes is the most IDs one nodes field takes.
const MaxNodes = inventory.MaxPageSize

// nodeOperations is the operation a type's objects are read as, by node,
// nodes and _entities: the type's own query, whose role and flow-control
// rules they pass.
var nodeOperations = map[model.NodeType]string{
	model.ProductNode:     "product",
	model.LocationNode:    "locations",
	model.MovementNode:    "stockMovements",
	model.ReservationNode: "reservation",
	model.TransferNode:    "transfer",
}

// node resolves the node field: a global ID's object, through the
// loaders its type's fields use.
func (r *Resolver) node(ctx context.Context, id model.ID) (model.Node, error) {
	if err := nodeID(id); err != nil {
		return nil, err
	}
	return r.loadNode(ctx, id)()
}

// nodes resolves the nodes field: every ID's load is queued before any is
// waited for, so the objects of one type load in one batch. An ID whose
// object is missing is null with its error at its index.
func (r *Resolver) nodes(ctx context.Context, ids []*model.ID) ([]model.Node, error) {
	if len(ids) > MaxNodes {
		return nil, inventory.Invalid("ids", "ids takes 1..%d IDs", MaxNodes)
	}
	for _, id := range ids {
		if err := nodeID(*id); err != nil {
			return nil, err
		}
	}
	thunks := make([]func() (model.Node, error), len(ids))
	for i, id := range ids {
		thunks[i] = r.loadNode(ctx, *id)
	}
	out := make([]model.Node, len(ids))
	for i, thunk := range thunks {
		n, err := thunk()
		if err != nil {
			graphql.AddError(graphql.WithPathContext(ctx, graphql.NewPathWithIndex(i)), err)
			continue
		}
		out[i] = n
	}
	return out, nil
}

// nodeID refuses an ID that names no type: a bare database ID.
func nodeID(id model.ID) error {
	if id.Type == "" {
		return inventory.Invalid(id.Field, "%s must be a global ID (the id field of an object); %d is a bare database ID", id.Field, id.DatabaseID)
	}
	return nil
}

// loadNode queues the load of id's object and returns the function that
// waits for it.
func (r *Resolver) loadNode(ctx context.Context, id model.ID) func() (model.Node, error) {
	l := r.load(ctx)
	switch id.Type {
	case model.ProductNode:
		return nodeThunk(l.stocks.LoadThunk(ctx, id.DatabaseID), func(ps inventory.ProductStock) model.Node { return &ps.Product })
	case model.LocationNode:
		return nodeThunk(l.locations.LoadThunk(ctx, id.DatabaseID), func(loc inventory.Location) model.Node { return &loc })
	case model.MovementNode:
		return nodeThunk(l.movementsBySeq.LoadThunk(ctx, id.DatabaseID), func(m inventory.Movement) model.Node { return &m })
	case model.ReservationNode:
		return nodeThunk(l.reservations.LoadThunk(ctx, id.DatabaseID), func(res inventory.Reservation) model.Node { return &res })
	case model.TransferNode:
		return nodeThunk(l.transfers.LoadThunk(ctx, id.DatabaseID), func(t inventory.Transfer) model.Node { return &t })
	}
	return func() (model.Node, error) { return nil, nodeID(model.ID{Field: id.Field}) }
}

func nodeThunk[V any](thunk func() (V, error), node func(V) model.Node) func() (model.Node, error) {
	return func() (model.Node, error) {
		v, err := thunk()
		if err != nil {
			return nil, err
		}
		return node(v), nil
	}
}

// entityID returns the database ID of an entity representation's id, a
// global ID of type t or its bare database ID; errors name representations.
func entityID(id model.ID, t model.NodeType) (int64, error) {
	id.Field = "representations"
	return id.Of(t)
}

// entityOperations returns the operations an _entities field reads its
// representations as: product or productBySku (by the key given) and
// locations.
func entityOperations(args map[string]any) []string {
	reps, _ := args["representations"].([]any)
	var ops []string
	for _, r := range reps {
		rep, _ := r.(map[string]any)
		op := ""
		switch rep["__typename"] {
		case "Product":
			op = "product"
			if rep["id"] == nil && rep["sku"] != nil {
				op = "productBySku"
			}
		case "Location":
			op = "locations"
		}
		if op != "" && !slices.Contains(ops, op) {
			ops = append(ops, op)
		}
	}
	return ops
}

// nodeTypes returns the types of the global IDs among a node or nodes
// field's raw arguments (what flow control sees before the field runs);
// IDs that do not parse are left to the field, which refuses them.
func nodeTypes(field string, args map[string]any) []model.NodeType {
	var raw []any
	switch field {
	case "node":
		raw = []any{args["id"]}
	case "nodes":
		raw, _ = args["ids"].([]any)
	}
	var types []model.NodeType
	for _, v := range raw {
		id, err := model.ParseID(v, "")
		if err == nil && id.Type != "" && !slices.Contains(types, id.Type) {
			types = append(types, id.Type)
		}
	}
	return types
}
