package grpcapi_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/shopstack/inventory/internal/app"
	"github.com/shopstack/inventory/internal/auth"
	"github.com/shopstack/inventory/internal/gormstore"
	"github.com/shopstack/inventory/internal/grpcapi"
	v1 "github.com/shopstack/inventory/internal/grpcapi/gen/inventory/v1"
	"github.com/shopstack/inventory/internal/grpcapi/gen/inventory/v1/inventoryv1connect"
	"github.com/shopstack/inventory/internal/inventory"
	"github.com/shopstack/inventory/internal/lock/memlock"
	"github.com/shopstack/inventory/internal/testenv/gormstoretest"
	"github.com/shopstack/inventory/internal/testenv/inventorytest"
)

// env is a real service behind a real HTTP/2 (h2c) server, with a grpc-go
// connection and a Connect client to it.
type env struct {
	svc     *app.Service
	url     string
	conn    *grpc.ClientConn
	connect inventoryv1connect.InventoryServiceClient
}

func startService(t *testing.T, st *gormstore.Store, locker *memlock.Locker) *app.Service {
	t.Helper()
	svc := inventorytest.Start(t, st, app.Config{Locker: locker, PollInterval: 20 * time.Millisecond})
	return svc
}

// serve serves svc's gRPC API on a real h2c server (connect-go); env's
// grpc-go connection goes to it.
func serve(t *testing.T, svc *app.Service, tokens *auth.Tokens) env {
	t.Helper()
	return serveWith(t, svc, options(tokens))
}

// serveWith is serve with the handler's options given.
func serveWith(t *testing.T, svc *app.Service, opts grpcapi.Options) env {
	t.Helper()
	h, err := grpcapi.NewHandler(svc, opts)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(h)
	srv.Config.Protocols = new(http.Protocols)
	srv.Config.Protocols.SetHTTP1(true)
	srv.Config.Protocols.SetUnencryptedHTTP2(true)
	srv.Start()
	t.Cleanup(srv.Close)
	conn, err := grpc.NewClient(strings.TrimPrefix(srv.URL, "http://"), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return env{svc: svc, url: srv.URL, conn: conn, connect: inventoryv1connect.NewInventoryServiceClient(http.DefaultClient, srv.URL)}
}

// options authenticate calls by tokens, as the server does: without
// tokens every caller is auth.Anonymous, an admin.
func options(tokens *auth.Tokens) grpcapi.Options {
	return grpcapi.Options{
		Authenticate: auth.Static(tokens).FromHeader}
}

// serveNative serves svc's gRPC API on grpc-go's own server, as on
// INVENTORY_GRPC_ADDR; env has no Connect client then.
func serveNative(t *testing.T, svc *app.Service, tokens *auth.Tokens) env {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := grpcapi.NewGRPCServer(svc, options(tokens))
	go func() { _ = gs.Serve(ln) }()
	t.Cleanup(gs.Stop)
	conn, err := grpc.NewClient(ln.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return env{svc: svc, conn: conn}
}

// servers are the two ways the API is served; every test runs on both.
var servers = []struct {
	name  string
	serve func(*testing.T, *app.Service, *auth.Tokens) env
}{{"connect", serve}, {"grpc-go", serveNative}}

// watch opens WatchStockChanges with grpc-go and returns its receive.
func (e env) watch(ctx context.Context, req *v1.WatchStockChangesRequest) (func() (*v1.WatchStockChangesResponse, error), error) {
	stream, err := e.conn.NewStream(ctx, &grpc.StreamDesc{ServerStreams: true}, "/inventory.v1.InventoryService/WatchStockChanges")
	if err != nil {
		return nil, err
	}
	if err := stream.SendMsg(req); err != nil {
		return nil, err
	}
	if err := stream.CloseSend(); err != nil {
		return nil, err
	}
	return func() (*v1.WatchStockChangesResponse, error) {
		m := new(v1.WatchStockChangesResponse)
		return m, stream.RecvMsg(m)
	}, nil
}

// call invokes a method with grpc-go, as a service written against the
// proto would.
func (e env) call(ctx context.Context, method string, req, resp any) error {
	return e.conn.Invoke(ctx, "/inventory.v1.InventoryService/"+method, req, resp)
}

func (e env) product(t *testing.T, sku string, stock int64) int64 {
	t.Helper()
	p, err := e.svc.CreateProduct(context.Background(), inventory.NewProduct{SKU: sku, Name: sku, Price: 100, InitialStock: stock})
	if err != nil {
		t.Fatal(err)
	}
	return p.Product.ID
}

// reason returns the ErrorInfo reason of a grpc-go error.
func reason(err error) (codes.Code, string) {
	st := status.Convert(err)
	for _, d := range st.Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok {
			return st.Code(), info.GetReason()
		}
	}
	return st.Code(), ""
}

// forEachServer runs fn against each server (connect and grpc-go) over a
// fresh service, on each database.
func forEachServer(t *testing.T, fn func(t *testing.T, e env)) {
	gormstoretest.ForEachDriver(t, func(t *testing.T, driver string) {
		for _, srv := range servers {
			t.Run(srv.name, func(t *testing.T) {
				fn(t, srv.serve(t, startService(t, gormstoretest.Open(t, driver), memlock.New(0)), nil))
			})
		}
	})
}

func TestGRPC(t *testing.T) {
	forEachServer(t, testGRPC)
}

func testGRPC(t *testing.T, e env) {
	{
		t.Run("FlashSale", func(t *testing.T) { testFlashSale(t, e) })
		t.Run("IdempotentReplay", func(t *testing.T) { testReplay(t, e) })
		t.Run("Errors", func(t *testing.T) { testErrors(t, e) })
		t.Run("Reservations", func(t *testing.T) { testReservations(t, e) })
		t.Run("StreamResumes", func(t *testing.T) { testStreamResumes(t, e) })
		t.Run("HealthAndConnect", func(t *testing.T) { testHealthAndConnect(t, e) })
		t.Run("Deadlines", func(t *testing.T) { testDeadlines(t, e) })
	}
}

// testDeadlines: 200 sales with deadlines of 1-50 ms race the pipeline.
// Some answer, some run out of time; a call that ran out may still have
// sold (its transaction was under way), so a careful client retries it with
// its idempotency key. In the end each key sold exactly once, and the
// stock says so: nothing was applied that the retries did not account for.
func testDeadlines(t *testing.T, e env) {
	const n = 200
	id := e.product(t, "DEADLINE", 1000)
	var mu sync.Mutex
	outcomes := map[codes.Code]int{}
	var retry []string
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			key := fmt.Sprintf("deadline-%d", i)
			ctx, cancel := context.WithTimeout(context.Background(), time.Duration(1+i%50)*time.Millisecond)
			defer cancel()
			err := e.call(ctx, "StockOut", &v1.StockOutRequest{ProductId: id, Quantity: 1, IdempotencyKey: key}, &v1.StockOutResponse{})
			mu.Lock()
			defer mu.Unlock()
			outcomes[status.Code(err)]++
			if err != nil {
				retry = append(retry, key)
			}
		})
	}
	wg.Wait()
	for code := range outcomes {
		if code != codes.OK && code != codes.DeadlineExceeded && code != codes.Unavailable {
			t.Fatalf("outcomes %v: %v is not a documented outcome of a call out of time", outcomes, code)
		}
	}
	replayed := 0
	for _, key := range retry {
		var resp v1.StockOutResponse
		if err := e.call(context.Background(), "StockOut", &v1.StockOutRequest{ProductId: id, Quantity: 1, IdempotencyKey: key}, &resp); err != nil {
			t.Fatalf("retry of %s: %v", key, err)
		}
		if resp.GetReplayed() {
			replayed++
		}
	}
	t.Logf("first answers %v; %d retried, of which %d had sold before their deadline ran out", outcomes, len(retry), replayed)
	ps, err := e.svc.ProductStock(context.Background(), id)
	if err != nil || ps.Product.Stock != 1000-n {
		t.Fatalf("stock %d (%v), want %d: each key sold once", ps.Product.Stock, err, 1000-n)
	}
}

// testFlashSale: 300 concurrent stock-outs of one unit of 100 over gRPC:
// exactly 100 succeed, the others are FAILED_PRECONDITION with reason
// INSUFFICIENT_STOCK, and the level holds 0.
func testFlashSale(t *testing.T, e env) {
	id := e.product(t, "FLASH", 100)
	var mu sync.Mutex
	outcomes := map[string]int{}
	var wg sync.WaitGroup
	for i := range 300 {
		wg.Go(func() {
			var resp v1.StockOutResponse
			err := e.call(context.Background(), "StockOut",
				&v1.StockOutRequest{ProductId: id, Quantity: 1, IdempotencyKey: fmt.Sprintf("flash-%d", i)}, &resp)
			code, why := reason(err)
			mu.Lock()
			outcomes[code.String()+" "+why]++
			mu.Unlock()
		})
	}
	wg.Wait()
	if outcomes["OK "] != 100 || outcomes["FailedPrecondition INSUFFICIENT_STOCK"] != 200 {
		t.Fatalf("outcomes %v, want 100 OK and 200 INSUFFICIENT_STOCK", outcomes)
	}
	ps, err := e.svc.ProductStock(context.Background(), id)
	if err != nil || ps.Product.Stock != 0 {
		t.Fatalf("stock %d (%v), want 0", ps.Product.Stock, err)
	}
}

// testReplay: a retry with the same key answers the first outcome,
// replayed, and changes nothing; the same key for another request is
// ABORTED with reason CONFLICT.
func testReplay(t *testing.T, e env) {
	id := e.product(t, "REPLAY", 10)
	ctx := context.Background()
	var first, again v1.StockOutResponse
	req := &v1.StockOutRequest{ProductId: id, Quantity: 3, IdempotencyKey: "order-1", Reason: "sale"}
	if err := e.call(ctx, "StockOut", req, &first); err != nil {
		t.Fatal(err)
	}
	if err := e.call(ctx, "StockOut", req, &again); err != nil {
		t.Fatal(err)
	}
	if !again.GetReplayed() || again.GetMovement().GetSequence() != first.GetMovement().GetSequence() || again.GetProduct().GetStock() != 7 {
		t.Fatalf("replay %v after %v", &again, &first)
	}
	if first.GetMovement().GetType() != v1.MovementType_MOVEMENT_TYPE_OUT || first.GetMovement().GetReason() != "sale" {
		t.Fatalf("movement %v", first.GetMovement())
	}
	err := e.call(ctx, "StockOut", &v1.StockOutRequest{ProductId: id, Quantity: 4, IdempotencyKey: "order-1"}, &v1.StockOutResponse{})
	if code, why := reason(err); code != codes.Aborted || why != "CONFLICT" {
		t.Fatalf("key reused: %v", err)
	}
}

func testErrors(t *testing.T, e env) {
	ctx := context.Background()
	err := e.call(ctx, "GetProduct", &v1.GetProductRequest{Id: 999_999}, &v1.GetProductResponse{})
	if code, why := reason(err); code != codes.NotFound || why != "NOT_FOUND" {
		t.Errorf("unknown product: %v", err)
	}
	id := e.product(t, "ERRS", 5)
	err = e.call(ctx, "StockIn", &v1.StockInRequest{ProductId: id, Quantity: 0}, &v1.StockInResponse{})
	if code, why := reason(err); code != codes.InvalidArgument || why != "BAD_USER_INPUT" {
		t.Errorf("zero quantity: %v", err)
	}
	for _, d := range status.Convert(err).Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok && info.GetMetadata()["field"] != "quantity" {
			t.Errorf("field %q, want quantity", info.GetMetadata()["field"])
		}
	}
	// A message over the limit is refused before it is read.
	big := &v1.BatchGetProductsRequest{Ids: make([]int64, grpcapi.MaxMessageBytes/8+1)}
	for i := range big.Ids {
		big.Ids[i] = 1 << 62 // nine bytes each
	}
	err = e.call(ctx, "BatchGetProducts", big, &v1.BatchGetProductsResponse{})
	if code := status.Code(err); code != codes.ResourceExhausted {
		t.Errorf("a message over %d bytes: %v, want RESOURCE_EXHAUSTED", grpcapi.MaxMessageBytes, err)
	}
	// A deadline that has passed: DEADLINE_EXCEEDED, and nothing changed.
	dctx, cancel := context.WithTimeout(ctx, time.Nanosecond)
	defer cancel()
	<-dctx.Done()
	err = e.call(dctx, "StockOut", &v1.StockOutRequest{ProductId: id, Quantity: 1}, &v1.StockOutResponse{})
	if status.Code(err) != codes.DeadlineExceeded {
		t.Errorf("past deadline: %v", err)
	}
	if ps, _ := e.svc.ProductStock(ctx, id); ps.Product.Stock != 5 {
		t.Errorf("stock %d after a call past its deadline, want 5", ps.Product.Stock)
	}
}

func testReservations(t *testing.T, e env) {
	ctx := context.Background()
	id := e.product(t, "RES", 10)
	var r v1.ReserveStockResponse
	err := e.call(ctx, "ReserveStock", &v1.ReserveStockRequest{Items: []*v1.ReserveItem{{ProductId: id, Quantity: 4}},
		TtlSeconds: 600, IdempotencyKey: "cart-1"}, &r)
	if err != nil || r.GetReservation().GetStatus() != v1.ReservationStatus_RESERVATION_STATUS_ACTIVE {
		t.Fatalf("reserve: %v %v", &r, err)
	}
	var c v1.CommitReservationResponse
	if err := e.call(ctx, "CommitReservation", &v1.CommitReservationRequest{Id: r.GetReservation().GetId()}, &c); err != nil ||
		c.GetReservation().GetStatus() != v1.ReservationStatus_RESERVATION_STATUS_COMMITTED {
		t.Fatalf("commit: %v %v", &c, err)
	}
	var p v1.GetProductResponse
	if err := e.call(ctx, "GetProduct", &v1.GetProductRequest{Id: id}, &p); err != nil || p.GetProduct().GetStock() != 6 ||
		p.GetProduct().GetReserved() != 0 || len(p.GetProduct().GetLevels()) != 1 {
		t.Fatalf("product after commit: %v %v", &p, err)
	}
	var page v1.ListMovementsResponse
	if err := e.call(ctx, "ListMovements", &v1.ListMovementsRequest{ProductId: id, PageSize: 2}, &page); err != nil ||
		len(page.GetMovements()) != 2 || page.GetNextPageToken() == "" ||
		page.GetMovements()[0].GetType() != v1.MovementType_MOVEMENT_TYPE_COMMIT {
		t.Fatalf("movements: %v %v", &page, err)
	}
	var rest v1.ListMovementsResponse
	if err := e.call(ctx, "ListMovements", &v1.ListMovementsRequest{ProductId: id, PageSize: 2, PageToken: page.GetNextPageToken()}, &rest); err != nil ||
		len(rest.GetMovements()) != 1 || rest.GetNextPageToken() != "" || rest.GetMovements()[0].GetType() != v1.MovementType_MOVEMENT_TYPE_IN {
		t.Fatalf("second page: %v %v", &rest, err)
	}
}

// testStreamResumes: a watcher drops after some changes; reconnecting
// after the last sequence it saw, it gets what it missed and then live
// changes, each once and in order.
func testStreamResumes(t *testing.T, e env) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	id := e.product(t, "WATCH", 100)
	ps, _ := e.svc.ProductStock(ctx, id)
	after := ps.Product.LastSeq
	sell := func(n int) {
		for range n {
			if err := e.call(ctx, "StockOut", &v1.StockOutRequest{ProductId: id, Quantity: 1}, &v1.StockOutResponse{}); err != nil {
				t.Fatal(err)
			}
		}
	}
	watch := func(after int64, n int) []int64 {
		sctx, stop := context.WithCancel(ctx)
		defer stop()
		recv, err := e.watch(sctx, &v1.WatchStockChangesRequest{ProductIds: []int64{id}, AfterSequence: &after})
		if err != nil {
			t.Fatal(err)
		}
		var seqs []int64
		for len(seqs) < n {
			m, err := recv()
			if err != nil {
				t.Fatalf("stream ended after %d of %d: %v", len(seqs), n, err)
			}
			seqs = append(seqs, m.GetMovement().GetSequence())
		}
		return seqs
	}
	sell(3)
	first := watch(after, 3) // from the ledger, then the watcher drops
	sell(4)
	second := watch(first[2], 4) // what it missed
	all := append(first, second...)
	for i := 1; i < len(all); i++ {
		if all[i] <= all[i-1] {
			t.Fatalf("sequences %v: not increasing (a gap-free resume has no repeat)", all)
		}
	}
	var ledger v1.ListMovementsResponse
	if err := e.call(ctx, "ListMovements", &v1.ListMovementsRequest{ProductId: id, OldestFirst: true, PageSize: 100}, &ledger); err != nil {
		t.Fatal(err)
	}
	var want []int64
	for _, m := range ledger.GetMovements() {
		if m.GetSequence() > after {
			want = append(want, m.GetSequence())
		}
	}
	if fmt.Sprint(want) != fmt.Sprint(all) {
		t.Fatalf("streamed %v, ledger has %v", all, want)
	}
}

func testHealthAndConnect(t *testing.T, e env) {
	ctx := context.Background()
	h, err := healthpb.NewHealthClient(e.conn).Check(ctx, &healthpb.HealthCheckRequest{})
	if err != nil || h.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("health: %v %v", h, err)
	}
	if e.connect == nil {
		return // grpc-go's server speaks gRPC only
	}
	// The Connect protocol, over HTTP/1.1, reaches the same service.
	id := e.product(t, "CONNECT", 2)
	_, err = e.connect.StockOut(ctx, connect.NewRequest(&v1.StockOutRequest{ProductId: id, Quantity: 3}))
	var ce *connect.Error
	if !errors.As(err, &ce) || ce.Code() != connect.CodeFailedPrecondition || ce.Message() != "insufficient stock: 2 available, 3 requested" {
		t.Fatalf("connect: %v", err)
	}
}

// TestGRPCAuth: without a valid token a call is UNAUTHENTICATED, with a
// role too low PERMISSION_DENIED, each with its reason; health needs no
// token.
func TestGRPCAuth(t *testing.T) {
	tokens, err := auth.Parse("pos:operator:operator-token-0123456789,viewer:reader:reader-token-0123456789")
	if err != nil {
		t.Fatal(err)
	}
	for _, srv := range servers {
		t.Run(srv.name, func(t *testing.T) {
			testAuth(t, srv.serve(t, startService(t, gormstoretest.Open(t, gormstore.SQLite), memlock.New(0)), tokens))
		})
	}
}

func testAuth(t *testing.T, e env) {
	id := e.product(t, "AUTH", 5)
	with := func(token string) context.Context {
		if token == "" {
			return context.Background()
		}
		return metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+token)
	}
	for _, tc := range []struct {
		token  string
		code   codes.Code
		reason string
	}{
		{"", codes.Unauthenticated, "UNAUTHENTICATED"},
		{"wrong-token-0123456789", codes.Unauthenticated, "UNAUTHENTICATED"},
		{"reader-token-0123456789", codes.PermissionDenied, "FORBIDDEN"},
		{"operator-token-0123456789", codes.OK, ""},
	} {
		var resp v1.StockOutResponse
		err := e.call(with(tc.token), "StockOut", &v1.StockOutRequest{ProductId: id, Quantity: 1}, &resp)
		if code, why := reason(err); code != tc.code || why != tc.reason {
			t.Errorf("token %q: %v, want %v %s", tc.token, err, tc.code, tc.reason)
		}
		if err == nil && resp.GetMovement().GetActor() != "pos" {
			t.Errorf("actor %q, want pos", resp.GetMovement().GetActor())
		}
	}
	if _, err := healthpb.NewHealthClient(e.conn).Check(context.Background(), &healthpb.HealthCheckRequest{}); err != nil {
		t.Errorf("health without a token: %v", err)
	}
}

// TestStreamAcrossReplicas: two replicas of one database; a watcher on B
// receives every change sold on A, once and in order.
func TestStreamAcrossReplicas(t *testing.T) {
	gormstoretest.ForEachDriver(t, func(t *testing.T, driver string) {
		dsn := gormstoretest.DSN(t, driver)
		open := func() *gormstore.Store {
			st, err := gormstore.Open(context.Background(), gormstore.Config{Driver: driver, DSN: dsn})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = st.Close() })
			return st
		}
		locker := memlock.New(0) // one lock backend, as replicas share one
		a := serve(t, startService(t, open(), locker), nil)
		b := serve(t, startService(t, open(), locker), nil)
		id := a.product(t, "ACROSS", 100)
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		after := int64(0)
		recv, err := b.watch(ctx, &v1.WatchStockChangesRequest{ProductIds: []int64{id}, AfterSequence: &after})
		if err != nil {
			t.Fatal(err)
		}
		const sales = 20
		go func() {
			for i := range sales {
				_ = a.call(ctx, "StockOut", &v1.StockOutRequest{ProductId: id, Quantity: 1, IdempotencyKey: fmt.Sprintf("across-%d", i)},
					&v1.StockOutResponse{})
			}
		}()
		var outs []int64
		last := int64(0)
		for len(outs) < sales {
			resp, err := recv()
			if err != nil {
				t.Fatalf("B's watcher saw %d of %d sales made on A: %v", len(outs), sales, err)
			}
			m := resp.GetMovement()
			if m.GetSequence() <= last {
				t.Fatalf("sequence %d after %d", m.GetSequence(), last)
			}
			last = m.GetSequence()
			if m.GetType() == v1.MovementType_MOVEMENT_TYPE_OUT {
				outs = append(outs, m.GetSequence())
			}
		}

	})
}
