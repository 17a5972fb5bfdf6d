package grpcapi

import (
	"context"
	"errors"
	"strconv"
	"time"

	"connectrpc.com/connect"

	"github.com/shopstack/inventory/internal/app"
	v1 "github.com/shopstack/inventory/internal/grpcapi/gen/inventory/v1"
	"github.com/shopstack/inventory/internal/grpcapi/gen/inventory/v1/inventoryv1connect"
	"github.com/shopstack/inventory/internal/inventory"
)

// server implements the InventoryService over the service.
type server struct {
	svc  *app.Service
	opts Options
}

var _ inventoryv1connect.InventoryServiceHandler = (*server)(nil)

// run runs an operation as every transport does: through the gate (the
// caller's role, then flow control with the products it moves stock of),
// then fn, whose outcome is reported to flow control and mapped to a
// status.
func (s *server) run(ctx context.Context, op string, productIDs []int64, fn func() error) error {
	done, err := s.opts.Gate.Admit(ctx, op, productIDs)
	if err != nil {
		return toStatus(ctx, s.opts.Log, err)
	}
	err = fn()
	done(err)
	return toStatus(ctx, s.opts.Log, err)
}

func (s *server) GetProduct(ctx context.Context, req *connect.Request[v1.GetProductRequest]) (*connect.Response[v1.GetProductResponse], error) {
	out := &v1.GetProductResponse{}
	err := s.run(ctx, "product", nil, func() error {
		ps, err := s.svc.ProductStock(ctx, req.Msg.GetId())
		out.Product = toProduct(ps.Product, ps.Levels)
		return err
	})
	return reply(out, err)
}

func (s *server) BatchGetProducts(ctx context.Context, req *connect.Request[v1.BatchGetProductsRequest]) (*connect.Response[v1.BatchGetProductsResponse], error) {
	out := &v1.BatchGetProductsResponse{}
	err := s.run(ctx, "products", nil, func() error {
		if len(req.Msg.GetIds()) > inventory.MaxBatchLimit {
			return &inventory.Error{Code: inventory.CodeBadInput, Field: "ids", Message: "at most 1000 ids"}
		}
		pss, err := s.svc.ProductStocks(ctx, req.Msg.GetIds())
		for _, ps := range pss {
			out.Products = append(out.Products, toProduct(ps.Product, ps.Levels))
		}
		return err
	})
	return reply(out, err)
}

func (s *server) GetProductBySku(ctx context.Context, req *connect.Request[v1.GetProductBySkuRequest]) (*connect.Response[v1.GetProductBySkuResponse], error) {
	out := &v1.GetProductBySkuResponse{}
	err := s.run(ctx, "productBySku", nil, func() error {
		ps, err := s.svc.ProductStockBySKU(ctx, req.Msg.GetSku())
		out.Product = toProduct(ps.Product, ps.Levels)
		return err
	})
	return reply(out, err)
}

// change is a stock change's fields, as StockIn, StockOut and ExpectStock
// carry them.
type change interface {
	GetProductId() int64
	GetLocationId() int64
	GetQuantity() int64
	GetReason() string
	GetReference() string
	GetIdempotencyKey() string
}

func stockChange(m change) inventory.StockChange {
	return inventory.StockChange{ProductID: m.GetProductId(), LocationID: m.GetLocationId(), Quantity: m.GetQuantity(),
		Reason: m.GetReason(), Reference: m.GetReference(), IdempotencyKey: m.GetIdempotencyKey()}
}

func (s *server) StockIn(ctx context.Context, req *connect.Request[v1.StockInRequest]) (*connect.Response[v1.StockInResponse], error) {
	out := &v1.StockInResponse{}
	err := s.run(ctx, "stockIn", []int64{req.Msg.GetProductId()}, func() error {
		r, err := s.svc.StockIn(ctx, stockChange(req.Msg))
		out.Product, out.Level, out.Movement, out.Replayed = stockResult(r)
		return err
	})
	return reply(out, err)
}

func (s *server) StockOut(ctx context.Context, req *connect.Request[v1.StockOutRequest]) (*connect.Response[v1.StockOutResponse], error) {
	out := &v1.StockOutResponse{}
	err := s.run(ctx, "stockOut", []int64{req.Msg.GetProductId()}, func() error {
		r, err := s.svc.StockOut(ctx, stockChange(req.Msg))
		out.Product, out.Level, out.Movement, out.Replayed = stockResult(r)
		return err
	})
	return reply(out, err)
}

func (s *server) AdjustStock(ctx context.Context, req *connect.Request[v1.AdjustStockRequest]) (*connect.Response[v1.AdjustStockResponse], error) {
	m := req.Msg
	out := &v1.AdjustStockResponse{}
	err := s.run(ctx, "adjustStock", []int64{m.GetProductId()}, func() error {
		r, err := s.svc.AdjustStock(ctx, inventory.StockAdjustment{ProductID: m.GetProductId(), LocationID: m.GetLocationId(),
			Quantity: m.GetQuantity(), ChangeFromQuantity: m.ChangeFromQuantity, Reason: m.GetReason(),
			Reference: m.GetReference(), IdempotencyKey: m.GetIdempotencyKey()})
		out.Product, out.Level, out.Movement, out.Replayed = stockResult(r)
		return err
	})
	return reply(out, err)
}

func (s *server) MoveStock(ctx context.Context, req *connect.Request[v1.MoveStockRequest]) (*connect.Response[v1.MoveStockResponse], error) {
	m := req.Msg
	out := &v1.MoveStockResponse{}
	err := s.run(ctx, "moveStock", []int64{m.GetProductId()}, func() error {
		r, err := s.svc.MoveStock(ctx, inventory.StockMove{ProductID: m.GetProductId(), LocationID: m.GetLocationId(),
			Quantity: m.GetQuantity(), From: fromStockState(m.GetFromState()), To: fromStockState(m.GetToState()),
			ChangeFromQuantity: m.ChangeFromQuantity, Reason: m.GetReason(), Reference: m.GetReference(),
			IdempotencyKey: m.GetIdempotencyKey()})
		out.Product, out.Level, out.Movement, out.Replayed = stockResult(r)
		return err
	})
	return reply(out, err)
}

func (s *server) ExpectStock(ctx context.Context, req *connect.Request[v1.ExpectStockRequest]) (*connect.Response[v1.ExpectStockResponse], error) {
	out := &v1.ExpectStockResponse{}
	err := s.run(ctx, "expectStock", []int64{req.Msg.GetProductId()}, func() error {
		r, err := s.svc.ExpectStock(ctx, stockChange(req.Msg))
		out.Product, out.Level, out.Movement, out.Replayed = stockResult(r)
		return err
	})
	return reply(out, err)
}

var bulkPolicies = map[v1.BulkErrorPolicy]inventory.BulkErrorPolicy{
	v1.BulkErrorPolicy_BULK_ERROR_POLICY_UNSPECIFIED:        inventory.BulkRejectEverything,
	v1.BulkErrorPolicy_BULK_ERROR_POLICY_REJECT_EVERYTHING:  inventory.BulkRejectEverything,
	v1.BulkErrorPolicy_BULK_ERROR_POLICY_REJECT_FAILED_ROWS: inventory.BulkRejectFailedRows,
}

func (s *server) BulkAdjustStock(ctx context.Context, req *connect.Request[v1.BulkAdjustStockRequest]) (*connect.Response[v1.BulkAdjustStockResponse], error) {
	m := req.Msg
	in := inventory.BulkAdjustment{Policy: bulkPolicies[m.GetErrorPolicy()], Reason: m.GetReason(), Reference: m.GetReference(),
		IdempotencyKey: m.GetIdempotencyKey()}
	var pids []int64
	for _, it := range m.GetItems() {
		item := inventory.BulkItem{ProductID: it.GetProductId(), SKU: it.GetSku(), LocationID: it.GetLocationId(),
			ChangeFromQuantity: it.ChangeFromQuantity}
		switch c := it.GetChange().(type) {
		case *v1.BulkAdjustItem_Delta:
			item.Delta = &c.Delta
		case *v1.BulkAdjustItem_Quantity:
			item.Quantity = &c.Quantity
		}
		in.Items = append(in.Items, item)
		if it.GetProductId() > 0 {
			pids = append(pids, it.GetProductId())
		}
	}
	out := &v1.BulkAdjustStockResponse{}
	err := s.run(ctx, "bulkAdjustStock", pids, func() error {
		r, err := s.svc.BulkAdjustStock(ctx, in)
		out.Applied, out.Failed, out.Rejected = int32(r.Applied), int32(r.Failed), r.Rejected
		for _, row := range r.Rows {
			pr := &v1.BulkAdjustRow{Index: int32(row.Index), Status: string(row.Status)}
			switch {
			case row.Err != nil:
				pr.ErrorCode, pr.ErrorMessage, pr.ErrorField = rowError(ctx, s.opts.Log, row.Err)
			case row.Status == inventory.BulkApplied:
				pr.Movement, pr.Level = toMovement(row.Result.Movement), toLevel(row.Result.Level)
			}
			out.Rows = append(out.Rows, pr)
		}
		return err
	})
	return reply(out, err)
}

func (s *server) ReserveStock(ctx context.Context, req *connect.Request[v1.ReserveStockRequest]) (*connect.Response[v1.ReserveStockResponse], error) {
	m := req.Msg
	in := inventory.NewReservation{TTL: time.Duration(m.GetTtlSeconds()) * time.Second, Reference: m.GetReference(),
		IdempotencyKey: m.GetIdempotencyKey()}
	var pids []int64
	for _, it := range m.GetItems() {
		in.Items = append(in.Items, inventory.ReservationItemInput{ProductID: it.GetProductId(), LocationID: it.GetLocationId(),
			Quantity: it.GetQuantity()})
		pids = append(pids, it.GetProductId())
	}
	out := &v1.ReserveStockResponse{}
	err := s.run(ctx, "reserveStock", pids, func() error {
		r, err := s.svc.ReserveStock(ctx, in)
		out.Reservation, out.Replayed = toReservation(r.Reservation), r.Replayed
		return err
	})
	return reply(out, err)
}

// transition runs a reservation's transition as op.
func (s *server) transition(ctx context.Context, op string, fn func() (inventory.ReservationResult, error)) (*v1.Reservation, bool, error) {
	var res inventory.ReservationResult
	err := s.run(ctx, op, nil, func() (err error) {
		res, err = fn()
		return err
	})
	if err != nil {
		return nil, false, err
	}
	return toReservation(res.Reservation), res.Replayed, nil
}

func (s *server) CommitReservation(ctx context.Context, req *connect.Request[v1.CommitReservationRequest]) (*connect.Response[v1.CommitReservationResponse], error) {
	r, replayed, err := s.transition(ctx, "commitReservation", func() (inventory.ReservationResult, error) {
		return s.svc.CommitReservation(ctx, req.Msg.GetId())
	})
	return reply(&v1.CommitReservationResponse{Reservation: r, Replayed: replayed}, err)
}

func (s *server) ReleaseReservation(ctx context.Context, req *connect.Request[v1.ReleaseReservationRequest]) (*connect.Response[v1.ReleaseReservationResponse], error) {
	r, replayed, err := s.transition(ctx, "releaseReservation", func() (inventory.ReservationResult, error) {
		return s.svc.ReleaseReservation(ctx, req.Msg.GetId())
	})
	return reply(&v1.ReleaseReservationResponse{Reservation: r, Replayed: replayed}, err)
}

func (s *server) ExtendReservation(ctx context.Context, req *connect.Request[v1.ExtendReservationRequest]) (*connect.Response[v1.ExtendReservationResponse], error) {
	r, replayed, err := s.transition(ctx, "extendReservation", func() (inventory.ReservationResult, error) {
		return s.svc.ExtendReservation(ctx, req.Msg.GetId(), time.Duration(req.Msg.GetTtlSeconds())*time.Second)
	})
	return reply(&v1.ExtendReservationResponse{Reservation: r, Replayed: replayed}, err)
}

func (s *server) GetReservation(ctx context.Context, req *connect.Request[v1.GetReservationRequest]) (*connect.Response[v1.GetReservationResponse], error) {
	out := &v1.GetReservationResponse{}
	err := s.run(ctx, "reservation", nil, func() error {
		r, err := s.svc.Reservation(ctx, req.Msg.GetId())
		out.Reservation = toReservation(r)
		return err
	})
	return reply(out, err)
}

// pageSize is a list request's page size: the default when it names none.
func pageSize(n int32) int {
	if n == 0 {
		return inventory.DefaultPageSize
	}
	return int(n)
}

// pageToken decodes a list request's page_token: the key of the previous
// page's last row (has is false for none, the first page).
func pageToken(t string) (after int64, has bool, err error) {
	if t == "" {
		return 0, false, nil
	}
	after, err = strconv.ParseInt(t, 10, 64)
	if err != nil || after < 0 {
		return 0, false, &inventory.Error{Code: inventory.CodeBadInput, Field: "page_token", Message: "page_token is not one this API gave"}
	}
	return after, true, nil
}

func (s *server) ListMovements(ctx context.Context, req *connect.Request[v1.ListMovementsRequest]) (*connect.Response[v1.ListMovementsResponse], error) {
	m := req.Msg
	q := inventory.MovementQuery{ProductID: m.GetProductId(), LocationID: m.GetLocationId(), Limit: pageSize(m.GetPageSize()),
		Descending: !m.GetOldestFirst()}
	out := &v1.ListMovementsResponse{}
	err := s.run(ctx, "stockMovements", nil, func() error {
		var err error
		if q.After, q.HasAfter, err = pageToken(m.GetPageToken()); err != nil {
			return err
		}
		page, err := s.svc.Movements(ctx, q)
		for _, mv := range page.Movements {
			out.Movements = append(out.Movements, toMovement(mv))
		}
		if page.HasNext && len(page.Movements) > 0 {
			out.NextPageToken = strconv.FormatInt(page.Movements[len(page.Movements)-1].Seq, 10)
		}
		return err
	})
	return reply(out, err)
}

// errStreamEnded ends a stream the server closed (at shutdown): the
// client reconnects, to another replica, with the last sequence it saw.
var errStreamEnded = connect.NewError(connect.CodeUnavailable,
	errors.New("the server ended the stream (it is shutting down, or the client fell behind); reconnect with after_sequence"))

func (s *server) WatchStockChanges(ctx context.Context, req *connect.Request[v1.WatchStockChangesRequest], stream *connect.ServerStream[v1.WatchStockChangesResponse]) error {
	return s.watch(ctx, req.Msg, stream.Send)
}

// watch streams the changes req asks for to send, for both servers.
func (s *server) watch(ctx context.Context, req *v1.WatchStockChangesRequest, send func(*v1.WatchStockChangesResponse) error) error {
	// A stream is authorized as the stockChanged subscription, and, like
	// it, passes no flow control.
	if _, err := s.opts.Gate.Authorize(ctx, "stockChanged"); err != nil {
		return toStatus(ctx, s.opts.Log, err)
	}
	f := inventory.EventFilter{ProductIDs: req.GetProductIds(), AfterSeq: req.AfterSequence}
	// A stream ends when its caller's credential expires (an access
	// token's expiry), UNAUTHENTICATED: the client gets a new token and
	// watches again from the last sequence it saw.
	sub := ctx
	if p, _ := inventory.PrincipalFrom(ctx); !p.Expires.IsZero() {
		var cancel context.CancelFunc
		sub, cancel = context.WithDeadline(ctx, p.Expires)
		defer cancel()
	}
	ended := func() error {
		if ctx.Err() == nil && sub.Err() != nil {
			return toStatus(ctx, s.opts.Log, inventory.Errorf(inventory.CodeUnauthenticated, "the access token has expired"))
		}
		return nil
	}
	ch, err := s.svc.Subscribe(sub, f)
	if err != nil {
		return toStatus(ctx, s.opts.Log, err)
	}
	for {
		select {
		case <-sub.Done():
			return ended()
		case m, ok := <-ch:
			if !ok {
				if sub.Err() != nil {
					return ended()
				}
				return errStreamEnded
			}
			bundles, err := s.watchedBundles(ctx, req.GetProductIds(), m.ProductID)
			if err != nil {
				return toStatus(ctx, s.opts.Log, err)
			}
			if err := send(&v1.WatchStockChangesResponse{Movement: toMovement(m), Bundles: bundles}); err != nil {
				return err
			}
		}
	}
}

func reply[T any](msg *T, err error) (*connect.Response[T], error) {
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(msg), nil
}
