package grpcapi_test

import (
	"context"
	"testing"
	"time"

	v1 "github.com/shopstack/inventory/internal/grpcapi/gen/inventory/v1"
	"github.com/shopstack/inventory/internal/inventory"
)

// TestUntracked: over both servers, an untracked product sells and is held
// below zero, beyond any backorder limit, says tracked=false and is never
// low on stock; a tracked product says tracked=true. (Products are created
// through the service: the gRPC API only reads them.)
func TestUntracked(t *testing.T) {
	forEachServer(t, testUntracked)
}

func testUntracked(t *testing.T, e env) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	created, err := e.svc.CreateProduct(ctx, inventory.NewProduct{SKU: "EBOOK-1", Name: "E-book", Price: 500, Threshold: 10, Untracked: true})
	if err != nil {
		t.Fatal(err)
	}
	id := created.Product.ID

	// Nothing on the shelf and no backorder limit: sold all the same.
	var out v1.StockOutResponse
	if err := e.call(ctx, "StockOut", &v1.StockOutRequest{ProductId: id, Quantity: 4, IdempotencyKey: "ebook-1"}, &out); err != nil {
		t.Fatal(err)
	}
	if p := out.GetProduct(); p.GetTracked() || p.GetStock() != -4 || p.GetAvailable() != -4 || p.GetBackordered() != 4 ||
		p.GetBackorderLimit() != 0 || p.GetLowStock() {
		t.Errorf("StockOut's product: %v", p)
	}
	if l, m := out.GetLevel(), out.GetMovement(); l.GetStock() != -4 || l.GetBackordered() != 4 || m.GetQuantityAfter() != -4 || m.GetLowStockAlert() {
		t.Errorf("StockOut's level %v, movement %v", l, m)
	}
	var held v1.ReserveStockResponse
	if err := e.call(ctx, "ReserveStock", &v1.ReserveStockRequest{Items: []*v1.ReserveItem{{ProductId: id, Quantity: 100}},
		TtlSeconds: 60}, &held); err != nil {
		t.Fatal(err)
	}

	var got v1.GetProductResponse
	if err := e.call(ctx, "GetProduct", &v1.GetProductRequest{Id: id}, &got); err != nil {
		t.Fatal(err)
	}
	if p := got.GetProduct(); p.GetTracked() || p.GetStock() != -4 || p.GetReserved() != 100 || p.GetBackordered() != 104 || p.GetLowStock() {
		t.Errorf("GetProduct after the sale and the hold: %v", p)
	}

	t.Run("TrackedByDefault", func(t *testing.T) {
		shelf, err := e.svc.CreateProduct(ctx, inventory.NewProduct{SKU: "MUG-1", Name: "Mug", Price: 800, InitialStock: 1})
		if err != nil {
			t.Fatal(err)
		}
		var got v1.GetProductResponse
		if err := e.call(ctx, "GetProduct", &v1.GetProductRequest{Id: shelf.Product.ID}, &got); err != nil {
			t.Fatal(err)
		}
		if !got.GetProduct().GetTracked() {
			t.Errorf("a product created tracked: %v", got.GetProduct())
		}
	})
}
