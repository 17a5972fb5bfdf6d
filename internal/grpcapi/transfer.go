package grpcapi

import (
	"context"
	"strconv"
	"strings"

	"connectrpc.com/connect"

	v1 "github.com/shopstack/inventory/internal/grpcapi/gen/inventory/v1"
	"github.com/shopstack/inventory/internal/inventory"
)

// Transfers: each RPC runs as the GraphQL field of its name; a mutation
// naming items is admitted with their products, as GraphQL admits its
// input's.

func (s *server) CreateTransfer(ctx context.Context, req *connect.Request[v1.CreateTransferRequest]) (*connect.Response[v1.CreateTransferResponse], error) {
	m := req.Msg
	in := inventory.NewTransfer{OriginID: m.GetOriginLocationId(), DestinationID: m.GetDestinationLocationId(),
		Reference: m.GetReference(), IdempotencyKey: m.GetIdempotencyKey()}
	var pids []int64
	for _, it := range m.GetItems() {
		in.Items = append(in.Items, inventory.TransferItemInput{ProductID: it.GetProductId(), Quantity: it.GetQuantity()})
		pids = append(pids, it.GetProductId())
	}
	t, replayed, err := s.changeTransfer(ctx, "createTransfer", pids, func() (inventory.TransferResult, error) {
		return s.svc.CreateTransfer(ctx, in)
	})
	return reply(&v1.CreateTransferResponse{Transfer: t, Replayed: replayed}, err)
}

func (s *server) ShipTransfer(ctx context.Context, req *connect.Request[v1.ShipTransferRequest]) (*connect.Response[v1.ShipTransferResponse], error) {
	t, replayed, err := s.changeTransfer(ctx, "shipTransfer", nil, func() (inventory.TransferResult, error) {
		return s.svc.ShipTransfer(ctx, req.Msg.GetId(), req.Msg.GetIdempotencyKey())
	})
	return reply(&v1.ShipTransferResponse{Transfer: t, Replayed: replayed}, err)
}

func (s *server) ReceiveTransfer(ctx context.Context, req *connect.Request[v1.ReceiveTransferRequest]) (*connect.Response[v1.ReceiveTransferResponse], error) {
	m := req.Msg
	in := inventory.TransferReceipt{TransferID: m.GetId(), IdempotencyKey: m.GetIdempotencyKey()}
	var pids []int64
	for _, it := range m.GetItems() {
		in.Items = append(in.Items, inventory.ReceivedItem{ProductID: it.GetProductId(), Quantity: it.GetQuantity(),
			State: receivedState(it.GetState())})
		pids = append(pids, it.GetProductId())
	}
	t, replayed, err := s.changeTransfer(ctx, "receiveTransfer", pids, func() (inventory.TransferResult, error) {
		return s.svc.ReceiveTransfer(ctx, in)
	})
	return reply(&v1.ReceiveTransferResponse{Transfer: t, Replayed: replayed}, err)
}

func (s *server) CancelTransfer(ctx context.Context, req *connect.Request[v1.CancelTransferRequest]) (*connect.Response[v1.CancelTransferResponse], error) {
	t, replayed, err := s.changeTransfer(ctx, "cancelTransfer", nil, func() (inventory.TransferResult, error) {
		return s.svc.CancelTransfer(ctx, req.Msg.GetId(), req.Msg.GetIdempotencyKey())
	})
	return reply(&v1.CancelTransferResponse{Transfer: t, Replayed: replayed}, err)
}

// changeTransfer runs a transfer mutation as op.
func (s *server) changeTransfer(ctx context.Context, op string, productIDs []int64, fn func() (inventory.TransferResult, error)) (*v1.Transfer, bool, error) {
	var res inventory.TransferResult
	err := s.run(ctx, op, productIDs, func() (err error) {
		res, err = fn()
		return err
	})
	if err != nil {
		return nil, false, err
	}
	return toTransfer(res.Transfer), res.Replayed, nil
}

func (s *server) GetTransfer(ctx context.Context, req *connect.Request[v1.GetTransferRequest]) (*connect.Response[v1.GetTransferResponse], error) {
	out := &v1.GetTransferResponse{}
	err := s.run(ctx, "transfer", nil, func() error {
		t, err := s.svc.Transfer(ctx, req.Msg.GetId())
		if err == nil {
			out.Transfer = toTransfer(t)
		}
		return err
	})
	return reply(out, err)
}

func (s *server) ListTransfers(ctx context.Context, req *connect.Request[v1.ListTransfersRequest]) (*connect.Response[v1.ListTransfersResponse], error) {
	m := req.Msg
	out := &v1.ListTransfersResponse{}
	err := s.run(ctx, "transfers", nil, func() error {
		after, _, err := pageToken(m.GetPageToken())
		if err != nil {
			return err
		}
		page, err := s.svc.Transfers(ctx, inventory.TransferFilter{Status: fromTransferStatus(m.GetStatus())}, pageSize(m.GetPageSize()), after)
		for _, t := range page.Transfers {
			out.Transfers = append(out.Transfers, toTransfer(t))
		}
		if page.HasNext && len(page.Transfers) > 0 {
			out.NextPageToken = strconv.FormatInt(page.Transfers[len(page.Transfers)-1].ID, 10)
		}
		return err
	})
	return reply(out, err)
}

// receivedState is the state a receipt line names: AVAILABLE when
// unspecified (the domain's default for no state), and a value this
// server does not know kept unknown, for the domain to refuse, rather
// than received as AVAILABLE.
func receivedState(s v1.StockState) inventory.StockState {
	if _, known := v1.StockState_name[int32(s)]; !known {
		return inventory.StockState(s.String())
	}
	return fromStockState(s)
}

// fromTransferStatus is "" (any) for UNSPECIFIED; a value this server
// does not know stays unknown, for the service to refuse.
func fromTransferStatus(s v1.TransferStatus) inventory.TransferStatus {
	if s == v1.TransferStatus_TRANSFER_STATUS_UNSPECIFIED {
		return ""
	}
	return inventory.TransferStatus(strings.TrimPrefix(s.String(), "TRANSFER_STATUS_"))
}

func toTransfer(t inventory.Transfer) *v1.Transfer {
	out := &v1.Transfer{Id: t.ID, OriginLocationId: t.OriginID, DestinationLocationId: t.DestinationID,
		Reference: t.Reference, Actor: t.Actor, IdempotencyKey: t.IdempotencyKey, Version: t.Version,
		CreateTime: ts(t.CreatedAt), UpdateTime: ts(t.UpdatedAt)}
	if v, ok := v1.TransferStatus_value["TRANSFER_STATUS_"+string(t.Status)]; ok {
		out.Status = v1.TransferStatus(v)
	}
	for _, it := range t.Items {
		out.Items = append(out.Items, &v1.TransferItem{ProductId: it.ProductID, Quantity: it.Quantity, Shipped: it.Shipped,
			Received: it.Received, Returned: it.Returned, InTransit: it.InTransit()})
	}
	return out
}
