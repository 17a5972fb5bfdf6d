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

// TestBackorders: over both servers, a product with a backorder limit
// sells beyond its shelf, its product, level and ledger row say so with
// negative stock and available, and a sale or a hold beyond the limit is
// refused as INSUFFICIENT_STOCK, changing nothing. (Products are created
// through the service: the gRPC API only reads them.)
func TestBackorders(t *testing.T) {
	forEachServer(t, testBackorders)
}

func testBackorders(t *testing.T, e env) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	created, err := e.svc.CreateProduct(ctx, inventory.NewProduct{SKU: "PRE-ORDER", Name: "Pre-order", Price: 500, InitialStock: 1, BackorderLimit: 3})
	if err != nil {
		t.Fatal(err)
	}
	id := created.Product.ID

	// 1 on the shelf and 3 more may be sold: a sale of 3 leaves 2 backordered.
	var out v1.StockOutResponse
	if err := e.call(ctx, "StockOut", &v1.StockOutRequest{ProductId: id, Quantity: 3, IdempotencyKey: "pre-1"}, &out); err != nil {
		t.Fatal(err)
	}
	if p := out.GetProduct(); p.GetStock() != -2 || p.GetAvailable() != -2 || p.GetBackordered() != 2 || p.GetBackorderLimit() != 3 {
		t.Errorf("StockOut's product: %v", p)
	}
	level := proto.CloneOf(out.GetLevel())
	level.LocationId, level.Version, level.UpdateTime = 0, 0, nil
	if want := (&v1.Level{Stock: -2, Available: -2, Backordered: 2}); !proto.Equal(level, want) {
		t.Errorf("StockOut's level %v, want %v", level, want)
	}
	if m := out.GetMovement(); m.GetQuantityAfter() != -2 || m.GetAvailableAfter() != -2 {
		t.Errorf("StockOut's movement: %v", m)
	}

	// One more may be sold or held, not two.
	refused := func(name, method string, req, resp proto.Message) {
		t.Run(name, func(t *testing.T) {
			err := e.call(ctx, method, req, resp)
			if c, r := reason(err); c != codes.FailedPrecondition || r != "INSUFFICIENT_STOCK" {
				t.Fatalf("%s beyond the limit: %v, want FAILED_PRECONDITION INSUFFICIENT_STOCK", method, err)
			}
		})
	}
	refused("ErrStockOutBeyondLimit", "StockOut", &v1.StockOutRequest{ProductId: id, Quantity: 2}, &v1.StockOutResponse{})
	refused("ErrReserveBeyondLimit", "ReserveStock", &v1.ReserveStockRequest{Items: []*v1.ReserveItem{{ProductId: id, Quantity: 2}},
		TtlSeconds: 60}, &v1.ReserveStockResponse{})

	var got v1.GetProductResponse
	if err := e.call(ctx, "GetProduct", &v1.GetProductRequest{Id: id}, &got); err != nil {
		t.Fatal(err)
	}
	if p := got.GetProduct(); p.GetStock() != -2 || p.GetBackordered() != 2 || p.GetBackorderLimit() != 3 ||
		len(p.GetLevels()) != 1 || p.GetLevels()[0].GetBackordered() != 2 || p.GetLevels()[0].GetAvailable() != -2 {
		t.Errorf("GetProduct after the refusals: %v", p)
	}

	// A receipt fills the backorders first.
	var in v1.StockInResponse
	if err := e.call(ctx, "StockIn", &v1.StockInRequest{ProductId: id, Quantity: 3}, &in); err != nil {
		t.Fatal(err)
	}
	if p, l := in.GetProduct(), in.GetLevel(); p.GetStock() != 1 || p.GetBackordered() != 0 || l.GetBackordered() != 0 || l.GetAvailable() != 1 {
		t.Errorf("StockIn: %v", &in)
	}
}
