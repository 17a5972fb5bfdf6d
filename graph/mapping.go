package graph

import (
	"context"
	"time"

	"github.com/shopstack/inventory/graph/model"
	"github.com/shopstack/inventory/internal/inventory"
)

// Cursor kinds: a cursor of one connection is refused by another.
const (
	productCursor     = "product"
	movementCursor    = "movement"
	reservationCursor = "reservation"
	transferCursor    = "transfer"
)

func (r *Resolver) reservation(ctx context.Context, id int64) (*inventory.Reservation, error) {
	res, err := r.load(ctx).reservations.Load(ctx, id)
	if err != nil {
		return nil, err
	}
	return &res, nil
}

// ttl maps a ttlSeconds argument to a duration the service checks: absent
// is zero (the default), and a value out of range stays out of range
// rather than overflowing into one that looks valid.
func ttl(seconds *int64) time.Duration {
	const limit = int64(100 * 365 * 24 * time.Hour / time.Second)
	switch {
	case seconds == nil:
		return 0
	case *seconds <= 0:
		return -time.Second
	case *seconds > limit:
		return time.Duration(limit) * time.Second
	}
	return time.Duration(*seconds) * time.Second
}

func reservationPayload(res inventory.ReservationResult, err error) (*model.ReservationPayload, error) {
	if err != nil {
		return nil, err
	}
	return &model.ReservationPayload{Reservation: &res.Reservation, Replayed: res.Replayed}, nil
}

func (r *Resolver) reservations(ctx context.Context, status *inventory.ReservationStatus, first *int64, after *string) (*model.ReservationConnection, error) {
	afterID, hasAfter, err := model.DecodeCursor(reservationCursor, after)
	if err != nil {
		return nil, err
	}
	page, err := r.Service.Reservations(ctx, inventory.ReservationFilter{Status: deref(status)}, int(derefOr(first, inventory.DefaultPageSize)), afterID)
	if err != nil {
		return nil, err
	}
	edges, info := connection(reservationCursor, page.Reservations, page.HasNext, hasAfter,
		func(r *inventory.Reservation) int64 { return r.ID },
		func(cursor string, r *inventory.Reservation) *model.ReservationEdge {
			return &model.ReservationEdge{Cursor: cursor, Node: r}
		})
	conn := &model.ReservationConnection{Edges: edges, PageInfo: info}
	return conn, nil
}

func (r *Resolver) transfer(ctx context.Context, id int64) (*inventory.Transfer, error) {
	t, err := r.load(ctx).transfers.Load(ctx, id)
	if err != nil {
		return nil, err
	}
	return &t, nil
}

func transferPayload(res inventory.TransferResult, err error) (*model.TransferPayload, error) {
	if err != nil {
		return nil, err
	}
	return &model.TransferPayload{Transfer: &res.Transfer, Replayed: res.Replayed}, nil
}

func (r *Resolver) transfers(ctx context.Context, status *inventory.TransferStatus, first *int64, after *string) (*model.TransferConnection, error) {
	afterID, hasAfter, err := model.DecodeCursor(transferCursor, after)
	if err != nil {
		return nil, err
	}
	page, err := r.Service.Transfers(ctx, inventory.TransferFilter{Status: deref(status)}, int(derefOr(first, inventory.DefaultPageSize)), afterID)
	if err != nil {
		return nil, err
	}
	edges, info := connection(transferCursor, page.Transfers, page.HasNext, hasAfter,
		func(t *inventory.Transfer) int64 { return t.ID },
		func(cursor string, t *inventory.Transfer) *model.TransferEdge {
			return &model.TransferEdge{Cursor: cursor, Node: t}
		})
	conn := &model.TransferConnection{Edges: edges, PageInfo: info}
	return conn, nil
}

// connection makes a page of nodes (ordered by ID) a Relay connection's
// edges, each with its cursor of kind, and its page info.
func connection[N, E any](kind string, nodes []N, hasNext, hasAfter bool, id func(*N) int64, edge func(cursor string, n *N) E) ([]E, *model.PageInfo) {
	edges := make([]E, len(nodes))
	first, last := "", ""
	for i := range nodes {
		cursor := model.EncodeCursor(kind, id(&nodes[i]))
		edges[i] = edge(cursor, &nodes[i])
		if i == 0 {
			first = cursor
		}
		last = cursor
	}
	return edges, pageInfo(hasNext, hasAfter, first, last)
}

func (r *Resolver) product(ctx context.Context, id int64) (*inventory.Product, error) {
	ps, err := r.load(ctx).stocks.Load(ctx, id)
	if err != nil {
		return nil, err
	}
	return &ps.Product, nil
}

func (r *Resolver) location(ctx context.Context, id int64) (*inventory.Location, error) {
	l, err := r.Service.Location(ctx, id)
	if err != nil {
		return nil, err
	}
	return &l, nil
}

// movementQuery decodes a movements field's paging arguments.
func movementQuery(first *int64, after *string, order *model.SortOrder) (inventory.MovementQuery, error) {
	pos, hasAfter, err := model.DecodeCursor(movementCursor, after)
	if err != nil {
		return inventory.MovementQuery{}, err
	}
	return inventory.MovementQuery{After: pos, HasAfter: hasAfter, Limit: int(derefOr(first, 50)),
		Descending: order == nil || *order == model.SortOrderDesc}, nil
}

func movementConnection(page inventory.MovementPage, hasAfter bool) *model.StockMovementConnection {
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
	return conn
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

func stockChange(in model.StockChangeInput) (inventory.StockChange, error) {
	var ids idReader
	productID, locationID := ids.of(in.ProductID, model.ProductNode), ids.opt(in.LocationID, model.LocationNode)
	return inventory.StockChange{
		ProductID:      productID,
		LocationID:     locationID,
		Quantity:       in.Quantity,
		Reason:         deref(in.Reason),
		Reference:      deref(in.Reference),
		IdempotencyKey: deref(in.IdempotencyKey),
	}, ids.err
}

func (r *Resolver) stockPayload(ctx context.Context, res inventory.StockResult, err error) (*model.StockPayload, error) {
	if err != nil {
		return nil, err
	}
	levels, err := r.stockLevels(ctx, res.Level)
	if err != nil {
		return nil, err
	}
	return &model.StockPayload{Product: &res.Product, Level: levels[0], Movement: &res.Movement, Replayed: res.Replayed}, nil
}

// stockLevels returns levels with their locations.
func (r *Resolver) stockLevels(ctx context.Context, levels ...inventory.Level) ([]*model.StockLevel, error) {
	ids := make([]int64, len(levels))
	for i, l := range levels {
		ids[i] = l.LocationID
	}
	locs, err := r.Service.LocationsByIDs(ctx, ids)
	if err != nil {
		return nil, err
	}
	out := make([]*model.StockLevel, len(levels))
	for i, l := range levels {
		loc, ok := locs[l.LocationID]
		if !ok {
			return nil, inventory.Errorf(inventory.CodeNotFound, "location %d not found", l.LocationID)
		}
		out[i] = &model.StockLevel{Level: l, Location: &loc}
	}
	return out, nil
}

// bulkPayload maps a bulk adjustment's result; row errors get their codes
// from the one table, and an internal one is logged, never shown.
func (r *Resolver) bulkPayload(ctx context.Context, res inventory.BulkResult) (*model.BulkAdjustStockPayload, error) {
	out := &model.BulkAdjustStockPayload{Applied: int64(res.Applied), Failed: int64(res.Failed), Rejected: res.Rejected,
		Rows: make([]*model.BulkRowResult, len(res.Rows))}
	var levels []inventory.Level
	var rows []*model.BulkRowResult // the rows with a level, in order
	for i, row := range res.Rows {
		out.Rows[i] = &model.BulkRowResult{Index: int64(row.Index), Status: model.BulkRowStatus(row.Status)}
		switch {
		case row.Err != nil:
			out.Rows[i].Error = rowError(ctx, r.Log, row.Err)
		case row.Status == inventory.BulkApplied || row.Status == inventory.BulkReplayed:
			out.Rows[i].Movement = &row.Result.Movement
			levels, rows = append(levels, row.Result.Level), append(rows, out.Rows[i])
		}
	}
	withLocations, err := r.stockLevels(ctx, levels...)
	if err != nil {
		return nil, err
	}
	for i, l := range withLocations {
		rows[i].Level = l
	}
	return out, nil
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

// optState is nil for no state.
func optState(s inventory.StockState) *inventory.StockState {
	if s == "" {
		return nil
	}
	return &s
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
