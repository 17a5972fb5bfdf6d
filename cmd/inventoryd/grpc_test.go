package main

import (
	"context"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/shopstack/inventory/internal/gormstore"
	v1 "github.com/shopstack/inventory/internal/grpcapi/gen/inventory/v1"
)

// TestGRPCPort: with INVENTORY_GRPC_ADDR the server also serves gRPC on
// grpc-go's own server; at shutdown an open stream ends with UNAVAILABLE
// (reconnect elsewhere) and the server stops cleanly, well within its
// shutdown timeout.
func TestGRPCPort(t *testing.T) {
	env := envFor(t, gormstore.SQLite)
	env["INVENTORY_GRPC_ADDR"] = "127.0.0.1:0"
	env["INVENTORY_SHUTDOWN_TIMEOUT"] = "1m"
	s := startServer(t, env)
	s.mu.Lock()
	addr := s.grpcAddr
	s.mu.Unlock()
	if addr == "" {
		t.Fatal("no gRPC address logged")
	}
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx := context.Background()
	if h, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{}); err != nil ||
		h.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("health: %v %v", h, err)
	}
	id := s.createProduct(t, "GRPC-PORT", 3)
	var pid int64
	for _, c := range id {
		pid = pid*10 + int64(c-'0')
	}
	var out v1.StockOutResponse
	if err := conn.Invoke(ctx, "/inventory.v1.InventoryService/StockOut", &v1.StockOutRequest{ProductId: pid, Quantity: 1}, &out); err != nil ||
		out.GetProduct().GetStock() != 2 {
		t.Fatalf("StockOut: %v %v", &out, err)
	}
	stream, err := conn.NewStream(ctx, &grpc.StreamDesc{ServerStreams: true}, "/inventory.v1.InventoryService/WatchStockChanges")
	if err != nil {
		t.Fatal(err)
	}
	after := int64(0)
	if err := stream.SendMsg(&v1.WatchStockChangesRequest{AfterSequence: &after}); err != nil {
		t.Fatal(err)
	}
	_ = stream.CloseSend()
	if err := stream.RecvMsg(new(v1.WatchStockChangesResponse)); err != nil {
		t.Fatalf("first change: %v", err)
	}
	ended := make(chan error, 1)
	go func() {
		for {
			if err := stream.RecvMsg(new(v1.WatchStockChangesResponse)); err != nil {
				ended <- err
				return
			}
		}
	}()
	start := time.Now()
	s.stop()
	if err := <-s.done; err != nil {
		t.Fatalf("run: %v", err)
	}
	s.done <- nil // for the cleanup
	if err := <-ended; status.Code(err) != codes.Unavailable {
		t.Errorf("the stream ended with %v, want UNAVAILABLE (reconnect)", err)
	}
	t.Logf("stopped %v after SIGTERM with a gRPC stream open", time.Since(start).Round(time.Millisecond))
}
