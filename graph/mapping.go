package graph

import (
	"context"

	"github.com/shopstack/inventory/graph/model"
	"github.com/shopstack/inventory/internal/inventory"
)

// Cursor kinds: a cursor of one connection is refused by another.
const (
	productCursor  = "product"
	movementCursor = "movement"
)

func (r *Resolver) product(ctx context.Context, id int64) (*inventory.Product, error) {
	p, err := r.Service.Product(ctx, id)
	if err != nil {
		return nil, err
	}
	return &p, nil
}

func (r *Resolver) location(ctx context.Context, id int64) (*inventory.Location, error) {
	l, err := r.Service.Location(ctx, id)
	if err != nil {
		return nil, err
	}
	return &l, nil
}

func (r *Resolver) movements(ctx context.Context, q inventory.MovementQuery, first *int64, after *string, order *model.SortOrder) (*model.StockMovementConnection, error) {
	pos, hasAfter, err := model.DecodeCursor(movementCursor, after)
	if err != nil {
		return nil, err
	}
	q.After, q.HasAfter = pos, hasAfter
	q.Limit = int(derefOr(first, 50))
	q.Descending = order == nil || *order == model.SortOrderDesc
	page, err := r.Service.Movements(ctx, q)
	if err != nil {
		return nil, err
	}
	conn := &model.StockMovementConnection{Edges: make([]*model.StockMovementEdge, len(page.Movements))}
	for i := range page.Movements {
		m := &page.Movements[i]
		conn.Edges[i] = &model.StockMovementEdge{Cursor: model.EncodeCursor(movementCursor, m.Seq), Node: m}
	}
	if n := len(conn.Edges); n > 0 {
		conn.PageInfo = pageInfo(page.HasNext, hasAfter, conn.Edges[0].Cursor, conn.Edges[n-1].Cursor)
	} else {
		conn.PageInfo = pageInfo(page.HasNext, hasAfter, "", "")
	}
	return conn, nil
}

// pageInfo describes a page whose edges run from cursor first to cursor
// last (both empty for an empty page).
func pageInfo(hasNext, hasPrevious bool, first, last string) *model.PageInfo {
	pi := &model.PageInfo{HasNextPage: hasNext, HasPreviousPage: hasPrevious}
	if first != "" {
		pi.StartCursor, pi.EndCursor = &first, &last
	}
	return pi
}

func stockChange(in model.StockChangeInput) inventory.StockChange {
	return inventory.StockChange{
		ProductID:      in.ProductID,
		LocationID:     deref(in.LocationID),
		Quantity:       in.Quantity,
		Reason:         deref(in.Reason),
		Reference:      deref(in.Reference),
		IdempotencyKey: deref(in.IdempotencyKey),
	}
}

func stockPayload(res inventory.StockResult, err error) (*model.StockPayload, error) {
	if err != nil {
		return nil, err
	}
	return &model.StockPayload{Product: &res.Product, Level: &res.Level, Movement: &res.Movement, Replayed: res.Replayed}, nil
}

// relay converts a service event stream into a GraphQL one. It ends when
// the service closes events (which it does when ctx is done).
func relay[T any](ctx context.Context, events <-chan inventory.Movement, convert func(inventory.Movement) *T) <-chan *T {
	out := make(chan *T)
	go func() {
		defer close(out)
		for m := range events {
			select {
			case out <- convert(m):
			case <-ctx.Done():
				return
			}
		}
	}()
	return out
}

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}

func derefOr[T any](p *T, def T) T {
	if p == nil {
		return def
	}
	return *p
}

func pointers[T any](xs []T) []*T {
	out := make([]*T, len(xs))
	for i := range xs {
		out[i] = &xs[i]
	}
	return out
}
