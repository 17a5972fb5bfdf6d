package grpcapi_test

import (
	"context"
	"strings"
	"testing"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/shopstack/inventory/internal/gormstore"
	v1 "github.com/shopstack/inventory/internal/grpcapi/gen/inventory/v1"
	"github.com/shopstack/inventory/internal/inventory"
	"github.com/shopstack/inventory/internal/lock/memlock"
	"github.com/shopstack/inventory/internal/testenv"
	"github.com/shopstack/inventory/internal/testenv/gormstoretest"
)

// TestBadInputNamesItsField sweeps the calls refused as INVALID_ARGUMENT
// (BAD_USER_INPUT) on both servers: the ErrorInfo's field metadata names
// the input at fault, and no message carries a Go library's text.
func TestBadInputNamesItsField(t *testing.T) {
	for _, srv := range servers {
		t.Run(srv.name, func(t *testing.T) {
			e := srv.serve(t, startService(t, gormstoretest.Open(t, gormstore.SQLite), memlock.New(0)), nil)
			id := e.product(t, "FIELDS", 5)
			ids := make([]int64, 1001)
			for _, tc := range []struct {
				name, method string
				req, resp    proto.Message
				field        string
			}{
				{"zero quantity", "StockIn", &v1.StockInRequest{ProductId: id, Quantity: 0}, &v1.StockInResponse{}, "quantity"},
				{"bad page token", "ListMovements", &v1.ListMovementsRequest{ProductId: id, PageToken: "zz"}, &v1.ListMovementsResponse{}, "page_token"},
				{"too many ids", "BatchGetProducts", &v1.BatchGetProductsRequest{Ids: ids}, &v1.BatchGetProductsResponse{}, "ids"},
				{"no items", "ReserveStock", &v1.ReserveStockRequest{}, &v1.ReserveStockResponse{}, "items"},
				{"long key", "StockIn", &v1.StockInRequest{ProductId: id, Quantity: 1, IdempotencyKey: strings.Repeat("k", 300)}, &v1.StockInResponse{}, "idempotency_key"},
				{"negative count", "AdjustStock", &v1.AdjustStockRequest{ProductId: id, Quantity: 1, ChangeFromQuantity: proto.Int64(-1)}, &v1.AdjustStockResponse{}, "change_from_quantity"},
				{"item quantity", "ReserveStock", &v1.ReserveStockRequest{Items: []*v1.ReserveItem{{ProductId: id, Quantity: 0}}}, &v1.ReserveStockResponse{}, "items[0].quantity"},
			} {
				t.Run(tc.name, func(t *testing.T) {
					err := e.call(context.Background(), tc.method, tc.req, tc.resp)
					st := status.Convert(err)
					if st.Code() != codes.InvalidArgument {
						t.Fatalf("%v, want INVALID_ARGUMENT", err)
					}
					if field := fieldOf(err); field != tc.field {
						t.Errorf("field %q (%s), want %q", field, st.Message(), tc.field)
					}
					if !inMessage(tc.req.ProtoReflect().Descriptor(), tc.field) {
						t.Errorf("field %q is not a field of %s", tc.field, tc.req.ProtoReflect().Descriptor().FullName())
					}
					if m := testenv.LibraryText(st.Message()); m != "" {
						t.Errorf("message %q carries a library's text (%q)", st.Message(), m)
					}
				})
			}
		})
	}
}

// fieldOf returns the field metadata of a grpc-go error's ErrorInfo.
func fieldOf(err error) string {
	for _, d := range status.Convert(err).Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok {
			return info.GetMetadata()["field"]
		}
	}
	return ""
}

// TestReplayedRefusalNamesItsField: a final refusal remembered under its
// idempotency key is told to a retry with the same code, message and
// field, even after the stock changed so the call would now succeed.
func TestReplayedRefusalNamesItsField(t *testing.T) {
	for _, srv := range servers {
		t.Run(srv.name, func(t *testing.T) {
			e := srv.serve(t, startService(t, gormstoretest.Open(t, gormstore.SQLite), memlock.New(0)), nil)
			id := e.product(t, "FULL", inventory.MaxQuantity)
			ctx := context.Background()
			for _, q := range []int64{inventory.MaxQuantity, inventory.MaxStock - 2*inventory.MaxQuantity} {
				if err := e.call(ctx, "StockIn", &v1.StockInRequest{ProductId: id, Quantity: q}, &v1.StockInResponse{}); err != nil {
					t.Fatal(err)
				}
			}
			in := &v1.StockInRequest{ProductId: id, Quantity: 5, IdempotencyKey: "full"}
			first := e.call(ctx, "StockIn", in, &v1.StockInResponse{})
			if status.Code(first) != codes.InvalidArgument || fieldOf(first) != "quantity" {
				t.Fatalf("first refusal %v (field %q), want INVALID_ARGUMENT naming quantity", first, fieldOf(first))
			}
			if err := e.call(ctx, "StockOut", &v1.StockOutRequest{ProductId: id, Quantity: 10}, &v1.StockOutResponse{}); err != nil {
				t.Fatal(err)
			}
			again := e.call(ctx, "StockIn", in, &v1.StockInResponse{})
			if status.Code(again) != status.Code(first) || status.Convert(again).Message() != status.Convert(first).Message() ||
				fieldOf(again) != fieldOf(first) {
				t.Errorf("retry answered %v (field %q), want %v (field %q)", again, fieldOf(again), first, fieldOf(first))
			}
		})
	}
}

// inMessage reports whether path (items[0].location_id) names a field of
// a message of type m by the proto's names.
func inMessage(m protoreflect.MessageDescriptor, path string) bool {
	for name := range strings.SplitSeq(path, ".") {
		name, _, indexed := strings.Cut(name, "[")
		if m == nil {
			return false
		}
		f := m.Fields().ByName(protoreflect.Name(name))
		if f == nil || indexed && !f.IsList() {
			return false
		}
		m = f.Message()
	}
	return true
}

// TestBulkRowNamesItsField: a bad item of BulkAdjustStock is told in its
// row, and the row names the item's field by the proto's names, as a
// call's ErrorInfo would, on both servers.
func TestBulkRowNamesItsField(t *testing.T) {
	for _, srv := range servers {
		t.Run(srv.name, func(t *testing.T) {
			e := srv.serve(t, startService(t, gormstoretest.Open(t, gormstore.SQLite), memlock.New(0)), nil)
			id := e.product(t, "BULKFIELD", 5)
			req := &v1.BulkAdjustStockRequest{ErrorPolicy: v1.BulkErrorPolicy_BULK_ERROR_POLICY_REJECT_FAILED_ROWS, Items: []*v1.BulkAdjustItem{
				{ProductId: id, Change: &v1.BulkAdjustItem_Delta{Delta: 1}},
				{Change: &v1.BulkAdjustItem_Delta{Delta: 1}},
				{ProductId: id, LocationId: 7, Change: &v1.BulkAdjustItem_Quantity{Quantity: 3}, ChangeFromQuantity: proto.Int64(-1)},
			}}
			resp := &v1.BulkAdjustStockResponse{}
			if err := e.call(context.Background(), "BulkAdjustStock", req, resp); err != nil {
				t.Fatal(err)
			}
			if resp.GetApplied() != 1 || resp.GetFailed() != 2 || len(resp.GetRows()) != 3 {
				t.Fatalf("applied %d, failed %d, %d rows; want 1, 2, 3", resp.GetApplied(), resp.GetFailed(), len(resp.GetRows()))
			}
			for i, want := range []string{"", "items[1].product_id", "items[2].change_from_quantity"} {
				row := resp.GetRows()[i]
				if row.GetErrorField() != want {
					t.Errorf("row %d: field %q (%s %s), want %q", i, row.GetErrorField(), row.GetErrorCode(), row.GetErrorMessage(), want)
				}
				if want == "" {
					continue
				}
				if row.GetErrorCode() != string(inventory.CodeBadInput) {
					t.Errorf("row %d: code %q, want %s", i, row.GetErrorCode(), inventory.CodeBadInput)
				}
				if !inMessage(req.ProtoReflect().Descriptor(), want) {
					t.Errorf("row %d: field %q is not a field of %s", i, want, req.ProtoReflect().Descriptor().FullName())
				}
				if m := testenv.LibraryText(row.GetErrorMessage()); m != "" {
					t.Errorf("row %d: message %q carries a library's text (%q)", i, row.GetErrorMessage(), m)
				}
			}
		})
	}
}
