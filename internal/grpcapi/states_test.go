package grpcapi_test

import (
	"context"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	v1 "github.com/shopstack/inventory/internal/grpcapi/gen/inventory/v1"
)

// TestStockStates: ExpectStock and MoveStock over both servers, with the
// states on the product, the level, the ledger row and the change stream,
// and the refusals the GraphQL API gives, as gRPC statuses.
func TestStockStates(t *testing.T) {
	forEachServer(t, testStockStates)
}

func testStockStates(t *testing.T, e env) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	id := e.product(t, "STATES", 10)

	var exp v1.ExpectStockResponse
	if err := e.call(ctx, "ExpectStock", &v1.ExpectStockRequest{ProductId: id, Quantity: 8, Reference: "PO-1", IdempotencyKey: "exp-1"}, &exp); err != nil {
		t.Fatal(err)
	}
	if l, m := exp.GetLevel(), exp.GetMovement(); l.GetIncoming() != 8 || l.GetStock() != 10 || m.GetType() != v1.MovementType_MOVEMENT_TYPE_EXPECT ||
		m.GetToState() != v1.StockState_STOCK_STATE_INCOMING || m.GetFromState() != v1.StockState_STOCK_STATE_UNSPECIFIED ||
		m.GetStatesDelta().GetIncoming() != 8 {
		t.Fatalf("ExpectStock: %v", &exp)
	}

	// A watcher from the EXPECT row on: the next row it gets is the MOVE.
	after := exp.GetMovement().GetSequence()
	recv, err := e.watch(ctx, &v1.WatchStockChangesRequest{ProductIds: []int64{id}, AfterSequence: &after})
	if err != nil {
		t.Fatal(err)
	}

	move := &v1.MoveStockRequest{ProductId: id, Quantity: 6, FromState: v1.StockState_STOCK_STATE_INCOMING,
		ToState: v1.StockState_STOCK_STATE_DAMAGED, ChangeFromQuantity: proto.Int64(8), Reason: "crushed on arrival", IdempotencyKey: "mv-1"}
	var mv v1.MoveStockResponse
	if err := e.call(ctx, "MoveStock", move, &mv); err != nil {
		t.Fatal(err)
	}
	level := proto.CloneOf(mv.GetLevel())
	level.LocationId, level.Version, level.UpdateTime = 0, 0, nil
	if want := (&v1.Level{Stock: 16, Damaged: 6, Incoming: 2, Available: 10}); !proto.Equal(level, want) {
		t.Errorf("MoveStock's level %v, want %v", level, want)
	}
	if p := mv.GetProduct(); p.GetStock() != 16 || p.GetDamaged() != 6 || p.GetIncoming() != 2 || p.GetAvailable() != 10 {
		t.Errorf("MoveStock's product: %v", p)
	}
	m := mv.GetMovement()
	if m.GetType() != v1.MovementType_MOVEMENT_TYPE_MOVE || m.GetDelta() != 6 ||
		!proto.Equal(m.GetStatesDelta(), &v1.StockStates{Damaged: 6, Incoming: -6}) ||
		m.GetFromState() != v1.StockState_STOCK_STATE_INCOMING || m.GetToState() != v1.StockState_STOCK_STATE_DAMAGED ||
		m.GetQuantityAfter() != 16 || m.GetAvailableAfter() != 10 || m.GetReason() != "crushed on arrival" {
		t.Errorf("MoveStock's movement: %v", m)
	}

	// The stream carries the MOVE row's states, as the ledger holds them.
	got, err := recv()
	if err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(got.GetMovement(), m) {
		t.Errorf("streamed %v,\nanswered %v", got.GetMovement(), m)
	}

	var again v1.MoveStockResponse
	if err := e.call(ctx, "MoveStock", move, &again); err != nil || !again.GetReplayed() ||
		again.GetMovement().GetSequence() != mv.GetMovement().GetSequence() || again.GetLevel().GetDamaged() != 6 {
		t.Errorf("MoveStock again with its key: %v %v, want the first answer replayed", &again, err)
	}
	var p v1.GetProductResponse
	if err := e.call(ctx, "GetProduct", &v1.GetProductRequest{Id: id}, &p); err != nil || len(p.GetProduct().GetLevels()) != 1 ||
		p.GetProduct().GetLevels()[0].GetDamaged() != 6 || p.GetProduct().GetQualityControl() != 0 {
		t.Errorf("GetProduct: %v %v", &p, err)
	}

	refuse := func(name string, req *v1.MoveStockRequest, code codes.Code, why, field string) {
		t.Run(name, func(t *testing.T) {
			err := e.call(ctx, "MoveStock", req, &v1.MoveStockResponse{})
			if c, r := reason(err); c != code || r != why {
				t.Fatalf("%v, want %v %s", err, code, why)
			}
			if field != "" && errorField(err) != field {
				t.Fatalf("field %q, want %q", errorField(err), field)
			}
		})
	}
	damaged := v1.StockState_STOCK_STATE_DAMAGED
	available := v1.StockState_STOCK_STATE_AVAILABLE
	refuse("ErrInsufficientStock", &v1.MoveStockRequest{ProductId: id, Quantity: 7, FromState: damaged, ToState: available},
		codes.FailedPrecondition, "INSUFFICIENT_STOCK", "")
	refuse("ErrConflict", &v1.MoveStockRequest{ProductId: id, Quantity: 1, FromState: damaged, ToState: available, ChangeFromQuantity: proto.Int64(5)},
		codes.Aborted, "CONFLICT", "")
	refuse("ErrIntoIncoming", &v1.MoveStockRequest{ProductId: id, Quantity: 1, FromState: available, ToState: v1.StockState_STOCK_STATE_INCOMING},
		codes.InvalidArgument, "BAD_USER_INPUT", "to")
	refuse("ErrNoFromState", &v1.MoveStockRequest{ProductId: id, Quantity: 1, ToState: damaged},
		codes.InvalidArgument, "BAD_USER_INPUT", "from")
	refuse("ErrUnknownState", &v1.MoveStockRequest{ProductId: id, Quantity: 1, FromState: damaged, ToState: v1.StockState(99)},
		codes.InvalidArgument, "BAD_USER_INPUT", "to")

	// The refusals changed nothing.
	if err := e.call(ctx, "GetProduct", &v1.GetProductRequest{Id: id}, &p); err != nil || p.GetProduct().GetDamaged() != 6 ||
		p.GetProduct().GetStock() != 16 || p.GetProduct().GetAvailable() != 10 {
		t.Errorf("after the refusals: %v %v", &p, err)
	}
}

// errorField is the field named in a grpc-go error's ErrorInfo.
func errorField(err error) string {
	for _, d := range status.Convert(err).Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok {
			return info.GetMetadata()["field"]
		}
	}
	return ""
}
