package grpcapi_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/shopstack/inventory/internal/gormstore"
	"github.com/shopstack/inventory/internal/lock/memlock"
	"github.com/shopstack/inventory/internal/testenv"
	"github.com/shopstack/inventory/internal/testenv/gormstoretest"
)

// TestUndecodableRequestsNameTheirField: a Connect JSON request that does
// not decode is INVALID_ARGUMENT naming the field at fault by the proto's
// names (the body as a whole where it is not JSON), in our words: no
// codec's text ("unmarshal message", "proto:").
func TestUndecodableRequestsNameTheirField(t *testing.T) {
	e := serve(t, startService(t, gormstoretest.Open(t, gormstore.SQLite), memlock.New(0)), nil)
	// A field this server does not know is dropped, as before: a client of
	// a newer proto can call it.
	id := e.product(t, "DECODE", 5)
	resp, err := http.Post(e.url+"/inventory.v1.InventoryService/StockIn", "application/json",
		strings.NewReader(fmt.Sprintf(`{"productId": "%d", "quantity": 1, "futureField": {"x": 1}}`, id)))
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := io.ReadAll(resp.Body); resp.StatusCode != http.StatusOK {
		t.Errorf("a request with an unknown field: %d %s", resp.StatusCode, b)
	}
	_ = resp.Body.Close()
	for _, tc := range []struct{ name, method, body, field string }{
		{"wrong type", "StockIn", `{"productId": "1", "quantity": "two"}`, "quantity"},
		{"bool for a number", "StockOut", `{"product_id": true, "quantity": 1}`, "product_id"},
		{"float for a whole number", "StockIn", `{"productId": "1", "quantity": 1.5}`, "quantity"},
		{"in a list item", "ReserveStock", `{"items": [{"productId": "1", "quantity": 1}, {"productId": "1", "locationId": "x", "quantity": 1}]}`, "items[1].location_id"},
		{"not a list", "BatchGetProducts", `{"ids": "1"}`, "ids"},
		{"unknown enum", "ReceiveTransfer", `{"id": "1", "items": [{"productId": "1", "quantity": 1, "state": "STOCK_STATE_GONE"}]}`, "items[0].state"},
		{"bad JSON", "StockIn", `{"productId": `, "body"},
		{"not an object", "StockIn", `[1]`, "body"},
		{"empty", "StockIn", ``, "body"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := http.Post(e.url+"/inventory.v1.InventoryService/"+tc.method, "application/json", strings.NewReader(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			var out struct {
				Code    string
				Message string
				Details []struct{ Type, Value string }
			}
			if err := json.Unmarshal(b, &out); err != nil {
				t.Fatalf("%d %s: %v", resp.StatusCode, b, err)
			}
			field := ""
			for _, d := range out.Details {
				raw, _ := base64.RawStdEncoding.DecodeString(strings.TrimRight(d.Value, "="))
				var info errdetails.ErrorInfo
				if d.Type == "google.rpc.ErrorInfo" && proto.Unmarshal(raw, &info) == nil {
					field = info.GetMetadata()["field"]
				}
			}
			if out.Code != "invalid_argument" || field != tc.field {
				t.Errorf("%s field %q (%s), want invalid_argument naming %q", out.Code, field, out.Message, tc.field)
			}
			if m := testenv.LibraryText(out.Message); m != "" {
				t.Errorf("message %q carries a library's text (%q)", out.Message, m)
			}
		})
	}
}

// TestUndecodableProtobuf: a gRPC request whose protobuf does not decode
// is INVALID_ARGUMENT on the body, in our words, on both servers, for a
// unary call and for the change stream.
func TestUndecodableProtobuf(t *testing.T) {
	garbage := []byte{0xff, 0xff, 0xff}
	for _, srv := range servers {
		t.Run(srv.name, func(t *testing.T) {
			e := srv.serve(t, startService(t, gormstoretest.Open(t, gormstore.SQLite), memlock.New(0)), nil)
			check := func(what string, err error) {
				t.Helper()
				st := status.Convert(err)
				if st.Code() != codes.InvalidArgument || fieldOf(err) != "body" {
					t.Errorf("%s: %v (field %q), want INVALID_ARGUMENT on body", what, err, fieldOf(err))
				}
				if m := testenv.LibraryText(st.Message()); m != "" || strings.Contains(st.Message(), "grpc:") {
					t.Errorf("%s: message %q carries a library's text", what, st.Message())
				}
			}
			var out []byte
			check("StockIn", e.conn.Invoke(context.Background(), "/inventory.v1.InventoryService/StockIn", garbage, &out, grpc.ForceCodec(rawCodec{})))
			stream, err := e.conn.NewStream(context.Background(), &grpc.StreamDesc{ServerStreams: true},
				"/inventory.v1.InventoryService/WatchStockChanges", grpc.ForceCodec(rawCodec{}))
			if err != nil {
				t.Fatal(err)
			}
			if err := stream.SendMsg(garbage); err != nil {
				t.Fatal(err)
			}
			if err := stream.CloseSend(); err != nil {
				t.Fatal(err)
			}
			check("WatchStockChanges", stream.RecvMsg(&out))
		})
	}
}

// rawCodec sends bytes as they are, as a client with a broken encoder
// would.
type rawCodec struct{}

func (rawCodec) Name() string                  { return "proto" }
func (rawCodec) Marshal(v any) ([]byte, error) { return v.([]byte), nil }
func (rawCodec) Unmarshal(data []byte, v any) error {
	*v.(*[]byte) = append([]byte(nil), data...)
	return nil
}
