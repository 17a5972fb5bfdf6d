package grpcapi_test

import (
	"context"
	"slices"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/reflect/protoregistry"

	"github.com/shopstack/inventory/internal/gormstore"
	v1 "github.com/shopstack/inventory/internal/grpcapi/gen/inventory/v1"
	"github.com/shopstack/inventory/internal/lock/memlock"
	"github.com/shopstack/inventory/internal/testenv/gormstoretest"
)

// TestEveryMethod: each method of the proto is served by both servers
// (grpc-go's lists its methods by hand) and fuzzed: a method added to the
// contract and forgotten in either answers UNIMPLEMENTED here.
func TestEveryMethod(t *testing.T) {
	methods := v1.File_inventory_v1_inventory_proto.Services().ByName("InventoryService").Methods()
	for _, srv := range servers {
		t.Run(srv.name, func(t *testing.T) {
			e := srv.serve(t, startService(t, gormstoretest.Open(t, gormstore.SQLite), memlock.New(0)), nil)
			for i := range methods.Len() {
				md := methods.Get(i)
				if md.IsStreamingServer() {
					continue // WatchStockChanges has tests of its own
				}
				in, err := protoregistry.GlobalTypes.FindMessageByName(md.Input().FullName())
				if err != nil {
					t.Fatal(err)
				}
				out, err := protoregistry.GlobalTypes.FindMessageByName(md.Output().FullName())
				if err != nil {
					t.Fatal(err)
				}
				err = e.call(context.Background(), string(md.Name()), in.New().Interface(), out.New().Interface())
				if status.Code(err) == codes.Unimplemented {
					t.Errorf("%s: %v", md.Name(), err)
				}
				if !slices.Contains(unaryMethods, string(md.Name())) {
					t.Errorf("%s is not among the fuzzer's methods", md.Name())
				}
			}
		})
	}
}
