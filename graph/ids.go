package graph

import (
	"github.com/shopstack/inventory/graph/model"
)

// idReader reads the database IDs of a request's IDs, each of the type
// its argument or input field takes, keeping the first error (a global
// ID of another type: BAD_USER_INPUT on its field). A malformed ID never
// gets here: the ID scalar refuses it (model.ParseID).
type idReader struct{ err error }

// of returns id's database ID as the ID of a t.
func (r *idReader) of(id model.ID, t model.NodeType) int64 {
	n, err := id.Of(t)
	if err != nil && r.err == nil {
		r.err = err
	}
	return n
}

// opt is of for an optional ID: 0 when absent.
func (r *idReader) opt(id *model.ID, t model.NodeType) int64 {
	if id == nil {
		return 0
	}
	return r.of(*id, t)
}

// list is of for a list of IDs; nil stays nil.
func (r *idReader) list(ids []*model.ID, t model.NodeType) []int64 {
	if ids == nil {
		return nil
	}
	out := make([]int64, len(ids))
	for i, id := range ids {
		out[i] = r.of(*id, t)
	}
	return out
}

// globalID returns the global ID of a t as an output field's value.
func globalID(t model.NodeType, databaseID int64) (*model.ID, error) {
	id := model.GlobalID(t, databaseID)
	return &id, nil
}
