package grpcapi_test

import (
	"context"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"

	v1 "github.com/shopstack/inventory/internal/grpcapi/gen/inventory/v1"
	"github.com/shopstack/inventory/internal/inventory"
)

// TestTransfers: a transfer drafted, shipped and received in two receipts
// over both servers, with the SHIP rows on the change stream, and the
// refusals the GraphQL API gives, as gRPC statuses.
func TestTransfers(t *testing.T) {
	forEachServer(t, testTransfers)
}

// refuse checks that calling method with req is refused with code and
// reason (and field, if not empty).
func (e env) refuse(ctx context.Context, t *testing.T, method string, req, resp proto.Message, code codes.Code, why, field string) {
	t.Helper()
	err := e.call(ctx, method, req, resp)
	if c, r := reason(err); c != code || r != why {
		t.Fatalf("%s %v: %v, want %v %s", method, req, err, code, why)
	}
	if field != "" && errorField(err) != field {
		t.Fatalf("%s %v: field %q, want %q", method, req, errorField(err), field)
	}
}

func testTransfers(t *testing.T, e env) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	shop, err := e.svc.CreateLocation(ctx, inventory.NewLocation{Code: "SHOP-1", Name: "Shop"})
	if err != nil {
		t.Fatal(err)
	}
	a, b := e.product(t, "TRANSFER-A", 10), e.product(t, "TRANSFER-B", 3)

	create := &v1.CreateTransferRequest{OriginLocationId: inventory.DefaultLocationID, DestinationLocationId: shop.ID,
		Items: []*v1.CreateTransferItem{{ProductId: a, Quantity: 6}}, Reference: "T-1", IdempotencyKey: "t-1"}
	var created v1.CreateTransferResponse
	if err := e.call(ctx, "CreateTransfer", create, &created); err != nil {
		t.Fatal(err)
	}
	tr := created.GetTransfer()
	if tr.GetId() == 0 || tr.GetStatus() != v1.TransferStatus_TRANSFER_STATUS_DRAFT || created.GetReplayed() ||
		tr.GetOriginLocationId() != inventory.DefaultLocationID || tr.GetDestinationLocationId() != shop.ID ||
		!proto.Equal(tr.GetItems()[0], &v1.TransferItem{ProductId: a, Quantity: 6}) || tr.GetReference() != "T-1" {
		t.Fatalf("CreateTransfer: %v", &created)
	}
	var again v1.CreateTransferResponse
	if err := e.call(ctx, "CreateTransfer", create, &again); err != nil || !again.GetReplayed() || again.GetTransfer().GetId() != tr.GetId() {
		t.Fatalf("CreateTransfer again with its key: %v %v, want the draft replayed", &again, err)
	}

	// A watcher from the product's last row on: the next rows it gets are
	// the shipment's.
	var last v1.ListMovementsResponse
	if err := e.call(ctx, "ListMovements", &v1.ListMovementsRequest{ProductId: a, PageSize: 1}, &last); err != nil {
		t.Fatal(err)
	}
	after := last.GetMovements()[0].GetSequence()
	recv, err := e.watch(ctx, &v1.WatchStockChangesRequest{ProductIds: []int64{a}, AfterSequence: &after})
	if err != nil {
		t.Fatal(err)
	}

	ship := &v1.ShipTransferRequest{Id: tr.GetId(), IdempotencyKey: "s-1"}
	var shipped v1.ShipTransferResponse
	if err := e.call(ctx, "ShipTransfer", ship, &shipped); err != nil {
		t.Fatal(err)
	}
	if s := shipped.GetTransfer(); s.GetStatus() != v1.TransferStatus_TRANSFER_STATUS_IN_TRANSIT || shipped.GetReplayed() ||
		s.GetItems()[0].GetShipped() != 6 || s.GetItems()[0].GetInTransit() != 6 {
		t.Fatalf("ShipTransfer: %v", &shipped)
	}
	var reshipped v1.ShipTransferResponse
	if err := e.call(ctx, "ShipTransfer", ship, &reshipped); err != nil || !reshipped.GetReplayed() ||
		reshipped.GetTransfer().GetStatus() != v1.TransferStatus_TRANSFER_STATUS_IN_TRANSIT {
		t.Fatalf("ShipTransfer again with its key: %v %v, want a replay", &reshipped, err)
	}

	// The stream carries both SHIP rows, each naming the transfer: units
	// leave the origin and are incoming at the destination.
	ships := map[int64]*v1.Movement{} // by location
	for range 2 {
		got, err := recv()
		if err != nil {
			t.Fatal(err)
		}
		m := got.GetMovement()
		if m.GetType() != v1.MovementType_MOVEMENT_TYPE_SHIP || m.GetTransferId() != tr.GetId() {
			t.Fatalf("streamed %v, want a SHIP row of transfer %d", m, tr.GetId())
		}
		ships[m.GetLocationId()] = m
	}
	if o, d := ships[inventory.DefaultLocationID], ships[shop.ID]; o.GetDelta() != -6 || o.GetQuantityAfter() != 4 ||
		d.GetDelta() != 0 || d.GetStatesDelta().GetIncoming() != 6 {
		t.Fatalf("SHIP rows: origin %v, destination %v", o, d)
	}

	receive := &v1.ReceiveTransferRequest{Id: tr.GetId(), IdempotencyKey: "r-1", Items: []*v1.ReceiveTransferItem{
		{ProductId: a, Quantity: 3}, {ProductId: a, Quantity: 1, State: v1.StockState_STOCK_STATE_DAMAGED}}}
	var partial v1.ReceiveTransferResponse
	if err := e.call(ctx, "ReceiveTransfer", receive, &partial); err != nil {
		t.Fatal(err)
	}
	if r := partial.GetTransfer(); r.GetStatus() != v1.TransferStatus_TRANSFER_STATUS_IN_TRANSIT ||
		r.GetItems()[0].GetReceived() != 4 || r.GetItems()[0].GetInTransit() != 2 {
		t.Fatalf("partial receipt: %v", &partial)
	}
	var rereceived v1.ReceiveTransferResponse
	if err := e.call(ctx, "ReceiveTransfer", receive, &rereceived); err != nil || !rereceived.GetReplayed() ||
		rereceived.GetTransfer().GetItems()[0].GetReceived() != 4 {
		t.Fatalf("ReceiveTransfer again with its key: %v %v, want a replay", &rereceived, err)
	}
	e.refuse(ctx, t, "ReceiveTransfer", &v1.ReceiveTransferRequest{Id: tr.GetId(), Items: []*v1.ReceiveTransferItem{{ProductId: a, Quantity: 3}}},
		&v1.ReceiveTransferResponse{}, codes.Aborted, "CONFLICT", "")
	var rest v1.ReceiveTransferResponse
	if err := e.call(ctx, "ReceiveTransfer", &v1.ReceiveTransferRequest{Id: tr.GetId(),
		Items: []*v1.ReceiveTransferItem{{ProductId: a, Quantity: 2, State: v1.StockState_STOCK_STATE_AVAILABLE}}}, &rest); err != nil {
		t.Fatal(err)
	}
	if r := rest.GetTransfer(); r.GetStatus() != v1.TransferStatus_TRANSFER_STATUS_RECEIVED || r.GetItems()[0].GetInTransit() != 0 ||
		r.GetVersion() <= tr.GetVersion() {
		t.Fatalf("final receipt: %v", &rest)
	}

	var p v1.GetProductResponse
	if err := e.call(ctx, "GetProduct", &v1.GetProductRequest{Id: a}, &p); err != nil {
		t.Fatal(err)
	}
	levels := map[int64]*v1.Level{}
	for _, l := range p.GetProduct().GetLevels() {
		levels[l.GetLocationId()] = l
	}
	if o, d := levels[inventory.DefaultLocationID], levels[shop.ID]; p.GetProduct().GetStock() != 10 || o.GetStock() != 4 ||
		d.GetStock() != 6 || d.GetDamaged() != 1 || d.GetIncoming() != 0 || d.GetAvailable() != 5 {
		t.Fatalf("levels after the transfer: %v", p.GetProduct())
	}
	var got v1.GetTransferResponse
	if err := e.call(ctx, "GetTransfer", &v1.GetTransferRequest{Id: tr.GetId()}, &got); err != nil ||
		!proto.Equal(got.GetTransfer(), rest.GetTransfer()) {
		t.Fatalf("GetTransfer: %v %v, want %v", &got, err, rest.GetTransfer())
	}
	e.refuse(ctx, t, "CancelTransfer", &v1.CancelTransferRequest{Id: tr.GetId()}, &v1.CancelTransferResponse{}, codes.Aborted, "CONFLICT", "")

	t.Run("ErrInsufficientStock", func(t *testing.T) {
		var short v1.CreateTransferResponse
		if err := e.call(ctx, "CreateTransfer", &v1.CreateTransferRequest{OriginLocationId: inventory.DefaultLocationID,
			DestinationLocationId: shop.ID, Items: []*v1.CreateTransferItem{{ProductId: a, Quantity: 1}, {ProductId: b, Quantity: 5}}}, &short); err != nil {
			t.Fatal(err)
		}
		id := short.GetTransfer().GetId()
		e.refuse(ctx, t, "ShipTransfer", &v1.ShipTransferRequest{Id: id}, &v1.ShipTransferResponse{}, codes.FailedPrecondition, "INSUFFICIENT_STOCK", "")
		var still v1.GetTransferResponse
		if err := e.call(ctx, "GetTransfer", &v1.GetTransferRequest{Id: id}, &still); err != nil ||
			still.GetTransfer().GetStatus() != v1.TransferStatus_TRANSFER_STATUS_DRAFT {
			t.Fatalf("after a refused shipment: %v %v, want the draft unchanged", &still, err)
		}
		var cancelled v1.CancelTransferResponse
		if err := e.call(ctx, "CancelTransfer", &v1.CancelTransferRequest{Id: id, IdempotencyKey: "c-1"}, &cancelled); err != nil ||
			cancelled.GetTransfer().GetStatus() != v1.TransferStatus_TRANSFER_STATUS_CANCELLED {
			t.Fatalf("CancelTransfer of the draft: %v %v", &cancelled, err)
		}
		if err := e.call(ctx, "GetProduct", &v1.GetProductRequest{Id: a}, &p); err != nil || p.GetProduct().GetLevels()[0].GetStock() != 4 {
			t.Fatalf("the refused shipment changed the origin: %v %v", &p, err)
		}
	})
	t.Run("ErrNotFound", func(t *testing.T) {
		e.refuse(ctx, t, "ShipTransfer", &v1.ShipTransferRequest{Id: 999}, &v1.ShipTransferResponse{}, codes.NotFound, "NOT_FOUND", "")
		e.refuse(ctx, t, "GetTransfer", &v1.GetTransferRequest{Id: 999}, &v1.GetTransferResponse{}, codes.NotFound, "NOT_FOUND", "")
		e.refuse(ctx, t, "CreateTransfer", &v1.CreateTransferRequest{OriginLocationId: inventory.DefaultLocationID, DestinationLocationId: 999,
			Items: []*v1.CreateTransferItem{{ProductId: a, Quantity: 1}}}, &v1.CreateTransferResponse{}, codes.NotFound, "NOT_FOUND", "")
	})
	t.Run("ErrBadInput", func(t *testing.T) {
		into := func(s v1.StockState) *v1.ReceiveTransferRequest {
			return &v1.ReceiveTransferRequest{Id: tr.GetId(), Items: []*v1.ReceiveTransferItem{{ProductId: a, Quantity: 1, State: s}}}
		}
		e.refuse(ctx, t, "ReceiveTransfer", into(v1.StockState_STOCK_STATE_INCOMING), &v1.ReceiveTransferResponse{},
			codes.InvalidArgument, "BAD_USER_INPUT", "items[0].state")
		// A state this server does not know is refused, not received as
		// AVAILABLE.
		e.refuse(ctx, t, "ReceiveTransfer", into(v1.StockState(99)), &v1.ReceiveTransferResponse{},
			codes.InvalidArgument, "BAD_USER_INPUT", "items[0].state")
		e.refuse(ctx, t, "ListTransfers", &v1.ListTransfersRequest{Status: v1.TransferStatus(99)}, &v1.ListTransfersResponse{},
			codes.InvalidArgument, "BAD_USER_INPUT", "status")
		e.refuse(ctx, t, "ListTransfers", &v1.ListTransfersRequest{PageToken: "x"}, &v1.ListTransfersResponse{},
			codes.InvalidArgument, "BAD_USER_INPUT", "page_token")
	})
	t.Run("List", func(t *testing.T) {
		var received v1.ListTransfersResponse
		if err := e.call(ctx, "ListTransfers", &v1.ListTransfersRequest{Status: v1.TransferStatus_TRANSFER_STATUS_RECEIVED}, &received); err != nil ||
			len(received.GetTransfers()) != 1 || received.GetTransfers()[0].GetId() != tr.GetId() || received.GetNextPageToken() != "" {
			t.Fatalf("ListTransfers RECEIVED: %v %v", &received, err)
		}
		var ids []int64
		req := &v1.ListTransfersRequest{PageSize: 1}
		for range 3 {
			var page v1.ListTransfersResponse
			if err := e.call(ctx, "ListTransfers", req, &page); err != nil || len(page.GetTransfers()) != 1 {
				t.Fatalf("ListTransfers %v: %v %v", req, &page, err)
			}
			ids = append(ids, page.GetTransfers()[0].GetId())
			if req.PageToken = page.GetNextPageToken(); req.PageToken == "" {
				break
			}
		}
		if len(ids) != 2 || ids[0] != tr.GetId() || ids[1] <= ids[0] {
			t.Fatalf("pages of one transfer: %v, want both transfers in ID order, then no token", ids)
		}
	})
}
