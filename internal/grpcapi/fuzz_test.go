package grpcapi_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/shopstack/inventory/internal/app"
	"github.com/shopstack/inventory/internal/gormstore"
	"github.com/shopstack/inventory/internal/grpcapi"
	v1 "github.com/shopstack/inventory/internal/grpcapi/gen/inventory/v1"
	"github.com/shopstack/inventory/internal/inventory"
	"github.com/shopstack/inventory/internal/testenv/gormstoretest"
	"github.com/shopstack/inventory/internal/testenv/inventorytest"
)

var internalText = regexp.MustCompile(`(?i)sqlstate|sqlite|pgx|postgres|gorm|goroutine|panic|runtime error|nil pointer|\.go:\d`)

// unaryMethods are the service's unary methods, which the fuzzer calls
// over the Connect protocol.
var unaryMethods = []string{"GetProduct", "BatchGetProducts", "GetProductBySku", "StockIn", "StockOut", "AdjustStock",
	"BulkAdjustStock", "ReserveStock", "CommitReservation", "ReleaseReservation", "ExtendReservation", "GetReservation",
	"ListMovements", "MoveStock", "ExpectStock", "CreateTransfer", "ShipTransfer", "ReceiveTransfer", "CancelTransfer",
	"GetTransfer", "ListTransfers", "CreateBundle"}

// FuzzGRPC sends arbitrary messages (binary and JSON) to every unary
// method: never an INTERNAL answer, never internal text.
func FuzzGRPC(f *testing.F) {
	seed := func(m uint8, msg proto.Message) {
		b, _ := proto.Marshal(msg)
		f.Add(m, b, false)
	}
	seed(4, &v1.StockOutRequest{ProductId: 1, Quantity: 1, IdempotencyKey: "k"})
	seed(5, &v1.AdjustStockRequest{ProductId: 1, Quantity: 5, ChangeFromQuantity: proto.Int64(7)})
	seed(6, &v1.BulkAdjustStockRequest{Items: []*v1.BulkAdjustItem{{Sku: "FUZZ", Change: &v1.BulkAdjustItem_Delta{Delta: -3}}}})
	seed(7, &v1.ReserveStockRequest{Items: []*v1.ReserveItem{{ProductId: 1, Quantity: 2}}, TtlSeconds: 60})
	seed(10, &v1.ExtendReservationRequest{Id: 1, TtlSeconds: -5})
	seed(12, &v1.ListMovementsRequest{PageSize: 1000, PageToken: "x"})
	seed(13, &v1.MoveStockRequest{ProductId: 1, Quantity: 2, FromState: v1.StockState_STOCK_STATE_AVAILABLE,
		ToState: v1.StockState(99), ChangeFromQuantity: proto.Int64(-1)})
	seed(14, &v1.ExpectStockRequest{ProductId: 1, Quantity: 3, Reference: "PO-1"})
	seed(15, &v1.CreateTransferRequest{OriginLocationId: 1, DestinationLocationId: 2,
		Items: []*v1.CreateTransferItem{{ProductId: 1, Quantity: 2}, {ProductId: 1, Quantity: -1}}})
	seed(16, &v1.ShipTransferRequest{Id: 1, IdempotencyKey: "k"})
	seed(17, &v1.ReceiveTransferRequest{Id: 1, Items: []*v1.ReceiveTransferItem{{ProductId: 1, Quantity: 1, State: v1.StockState(99)}}})
	seed(20, &v1.ListTransfersRequest{Status: v1.TransferStatus(7), PageSize: -1, PageToken: "-2"})
	seed(21, &v1.CreateBundleRequest{Sku: "KIT", Name: "Kit", Price: "1.5e3",
		Components: []*v1.BundleComponent{{ProductId: 1, Quantity: 2}, {ProductId: 1, Quantity: -1}, {ProductId: 99}}})
	f.Add(uint8(2), []byte(`{"sku": "fuzz"}`), true)
	f.Add(uint8(3), []byte(`{"productId": "1", "quantity": "9223372036854775807"}`), true)
	f.Add(uint8(1), []byte(`{"ids": [1, 2, -3]}`), true)

	st := gormstoretest.Open(f, gormstore.SQLite)
	svc := inventorytest.Start(f, st, app.Config{})
	if _, err := svc.CreateProduct(context.Background(), inventory.NewProduct{SKU: "FUZZ", Name: "F", Price: 1, InitialStock: 100}); err != nil {
		f.Fatal(err)
	}
	h, err := grpcapi.NewHandler(svc, options(nil))
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, m uint8, body []byte, asJSON bool) {
		method := unaryMethods[int(m)%len(unaryMethods)]
		req := httptest.NewRequest(http.MethodPost, "/inventory.v1.InventoryService/"+method, strings.NewReader(string(body)))
		req.Header.Set("Content-Type", "application/proto")
		if asJSON {
			req.Header.Set("Content-Type", "application/json")
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if out := rec.Body.String(); rec.Code >= 500 || internalText.MatchString(out) {
			t.Fatalf("%s %q: HTTP %d %s", method, body, rec.Code, out)
		}
	})
}
