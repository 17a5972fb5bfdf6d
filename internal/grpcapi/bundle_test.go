package grpcapi_test

import (
	"context"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"

	v1 "github.com/shopstack/inventory/internal/grpcapi/gen/inventory/v1"
)

// TestBundles: over both servers, CreateBundle makes a bundle whose
// product says is_bundle, its components and the bundles they make; a
// StockOut of it takes its components' units with rows naming it, a
// reservation holds component items naming it, and a watcher of the bundle
// hears of every component change with the bundle as it is now. A bundle's
// own stock-in and a bundle of bundles are INVALID_ARGUMENT.
func TestBundles(t *testing.T) {
	forEachServer(t, testBundles)
}

func testBundles(t *testing.T, e env) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	mug, tea := e.product(t, "MUG", 10), e.product(t, "TEA", 3)
	ps, err := e.svc.ProductStock(ctx, tea)
	if err != nil {
		t.Fatal(err)
	}
	after := ps.Product.LastSeq

	req := &v1.CreateBundleRequest{Sku: "GIFT-BOX", Name: "Gift box", Price: "18.00", Threshold: 1,
		Components: []*v1.BundleComponent{{ProductId: tea, Quantity: 1}, {ProductId: mug, Quantity: 2}}, IdempotencyKey: "box"}
	var created v1.CreateBundleResponse
	if err := e.call(ctx, "CreateBundle", req, &created); err != nil {
		t.Fatal(err)
	}
	box := created.GetProduct()
	wantComps := []*v1.BundleComponent{{ProductId: mug, Quantity: 2}, {ProductId: tea, Quantity: 1}} // by product
	if !box.GetIsBundle() || box.GetSku() != "GIFT-BOX" || box.GetPrice() != "18.00" || box.GetAvailable() != 3 || created.GetReplayed() ||
		!equalComponents(box.GetComponents(), wantComps) {
		t.Fatalf("CreateBundle: %v", &created)
	}
	t.Run("Replayed", func(t *testing.T) {
		var again v1.CreateBundleResponse
		if err := e.call(ctx, "CreateBundle", req, &again); err != nil || !again.GetReplayed() || again.GetProduct().GetId() != box.GetId() {
			t.Fatalf("the same request again: %v (%v)", &again, err)
		}
		other := proto.CloneOf(req)
		other.Name = "Another box"
		if c, r := reason(e.call(ctx, "CreateBundle", other, &v1.CreateBundleResponse{})); c != codes.Aborted || r != "CONFLICT" {
			t.Fatalf("the key with another request: %v %s, want ABORTED CONFLICT", c, r)
		}
	})

	var got v1.GetProductResponse
	if err := e.call(ctx, "GetProduct", &v1.GetProductRequest{Id: box.GetId()}, &got); err != nil {
		t.Fatal(err)
	}
	if p := got.GetProduct(); !p.GetIsBundle() || p.GetAvailable() != 3 || p.GetStock() != 3 || !equalComponents(p.GetComponents(), wantComps) ||
		len(p.GetLevels()) != 1 || p.GetLevels()[0].GetAvailable() != 3 {
		t.Fatalf("GetProduct of the bundle: %v", p)
	}
	var plain v1.GetProductResponse
	if err := e.call(ctx, "GetProduct", &v1.GetProductRequest{Id: mug}, &plain); err != nil || plain.GetProduct().GetIsBundle() ||
		len(plain.GetProduct().GetComponents()) != 0 {
		t.Fatalf("GetProduct of a component: %v (%v)", &plain, err)
	}

	// A watcher of the bundle, from before the sale.
	sctx, stop := context.WithCancel(ctx)
	defer stop()
	recv, err := e.watch(sctx, &v1.WatchStockChangesRequest{ProductIds: []int64{box.GetId()}, AfterSequence: &after})
	if err != nil {
		t.Fatal(err)
	}
	next := func() *v1.WatchStockChangesResponse {
		t.Helper()
		m, err := recv()
		if err != nil {
			t.Fatal(err)
		}
		return m
	}

	var sold v1.StockOutResponse
	if err := e.call(ctx, "StockOut", &v1.StockOutRequest{ProductId: box.GetId(), Quantity: 2, IdempotencyKey: "sale-1"}, &sold); err != nil {
		t.Fatal(err)
	}
	if p, l, m := sold.GetProduct(), sold.GetLevel(), sold.GetMovement(); p.GetId() != box.GetId() || p.GetAvailable() != 1 || l.GetAvailable() != 1 ||
		m.GetProductId() != mug || m.GetBundleId() != box.GetId() || m.GetDelta() != -4 || m.GetType() != v1.MovementType_MOVEMENT_TYPE_OUT {
		t.Fatalf("StockOut of the bundle: %v", &sold)
	}
	for _, want := range []struct{ product, delta int64 }{{mug, -4}, {tea, -2}} {
		ev := next()
		m, bundles := ev.GetMovement(), ev.GetBundles()
		if m.GetProductId() != want.product || m.GetDelta() != want.delta || m.GetBundleId() != box.GetId() ||
			len(bundles) != 1 || bundles[0].GetId() != box.GetId() || bundles[0].GetAvailable() != 1 || !bundles[0].GetIsBundle() {
			t.Fatalf("event %v, want product %d delta %d naming the bundle", ev, want.product, want.delta)
		}
	}
	var ledger v1.ListMovementsResponse
	if err := e.call(ctx, "ListMovements", &v1.ListMovementsRequest{ProductId: tea, PageSize: 1}, &ledger); err != nil ||
		len(ledger.GetMovements()) != 1 || ledger.GetMovements()[0].GetBundleId() != box.GetId() {
		t.Fatalf("the component's ledger: %v (%v)", &ledger, err)
	}

	// A direct sale of a component changes the bundle too.
	if err := e.call(ctx, "StockOut", &v1.StockOutRequest{ProductId: tea, Quantity: 1}, &v1.StockOutResponse{}); err != nil {
		t.Fatal(err)
	}
	if ev := next(); ev.GetMovement().GetProductId() != tea || ev.GetMovement().GetBundleId() != 0 || len(ev.GetBundles()) != 1 ||
		ev.GetBundles()[0].GetAvailable() != 0 || len(ev.GetBundles()[0].GetLevels()) != 1 {
		t.Fatalf("the direct sale's event: %v", ev)
	}
	stop()

	// No tea left: the bundle cannot be held until some comes in.
	hold := &v1.ReserveStockRequest{Items: []*v1.ReserveItem{{ProductId: box.GetId(), Quantity: 1}}, TtlSeconds: 60}
	if c, r := reason(e.call(ctx, "ReserveStock", hold, &v1.ReserveStockResponse{})); c != codes.FailedPrecondition || r != "INSUFFICIENT_STOCK" {
		t.Fatalf("ReserveStock without tea: %v %s", c, r)
	}
	if err := e.call(ctx, "StockIn", &v1.StockInRequest{ProductId: tea, Quantity: 1}, &v1.StockInResponse{}); err != nil {
		t.Fatal(err)
	}
	var held v1.ReserveStockResponse
	if err := e.call(ctx, "ReserveStock", hold, &held); err != nil {
		t.Fatal(err)
	}
	items := held.GetReservation().GetItems()
	if len(items) != 2 || items[0].GetProductId() != mug || items[0].GetQuantity() != 2 || items[0].GetBundleId() != box.GetId() ||
		items[1].GetProductId() != tea || items[1].GetQuantity() != 1 || items[1].GetBundleId() != box.GetId() {
		t.Fatalf("the bundle's reservation items: %v", items)
	}
	var committed v1.CommitReservationResponse
	if err := e.call(ctx, "CommitReservation", &v1.CommitReservationRequest{Id: held.GetReservation().GetId()}, &committed); err != nil {
		t.Fatal(err)
	}
	if err := e.call(ctx, "ListMovements", &v1.ListMovementsRequest{ProductId: mug, PageSize: 1}, &ledger); err != nil ||
		ledger.GetMovements()[0].GetType() != v1.MovementType_MOVEMENT_TYPE_COMMIT || ledger.GetMovements()[0].GetBundleId() != box.GetId() {
		t.Fatalf("the commit's row: %v (%v)", &ledger, err)
	}

	refused := func(name, method string, req, resp proto.Message, code codes.Code, want string) {
		t.Run(name, func(t *testing.T) {
			if c, r := reason(e.call(ctx, method, req, resp)); c != code || r != want {
				t.Fatalf("%s: %v %s, want %v %s", method, c, r, code, want)
			}
		})
	}
	refused("ErrStockInOfBundle", "StockIn", &v1.StockInRequest{ProductId: box.GetId(), Quantity: 1}, &v1.StockInResponse{},
		codes.InvalidArgument, "BAD_USER_INPUT")
	refused("ErrNestedBundle", "CreateBundle", &v1.CreateBundleRequest{Sku: "NESTED", Name: "Nested", Price: "1.00",
		Components: []*v1.BundleComponent{{ProductId: box.GetId(), Quantity: 1}}}, &v1.CreateBundleResponse{},
		codes.InvalidArgument, "BAD_USER_INPUT")
	refused("ErrUnknownComponent", "CreateBundle", &v1.CreateBundleRequest{Sku: "GHOST", Name: "Ghost", Price: "1.00",
		Components: []*v1.BundleComponent{{ProductId: mug, Quantity: 1}, {ProductId: 1 << 40, Quantity: 1}}}, &v1.CreateBundleResponse{},
		codes.NotFound, "NOT_FOUND")
	refused("ErrPrice", "CreateBundle", &v1.CreateBundleRequest{Sku: "CHEAP", Name: "Cheap", Price: "1,50",
		Components: []*v1.BundleComponent{{ProductId: mug, Quantity: 1}}}, &v1.CreateBundleResponse{},
		codes.InvalidArgument, "BAD_USER_INPUT")
}

func equalComponents(got, want []*v1.BundleComponent) bool {
	if len(got) != len(want) {
		return false
	}
	for i := range got {
		if !proto.Equal(got[i], want[i]) {
			return false
		}
	}
	return true
}
