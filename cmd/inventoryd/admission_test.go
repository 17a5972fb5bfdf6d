package main

import (
	"bufio"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/shopstack/inventory/graph"
	"github.com/shopstack/inventory/internal/app"
	"github.com/shopstack/inventory/internal/broker"
	"github.com/shopstack/inventory/internal/gormstore"
	"github.com/shopstack/inventory/internal/grpcapi"
	v1 "github.com/shopstack/inventory/internal/grpcapi/gen/inventory/v1"
	"github.com/shopstack/inventory/internal/inventory"
	"github.com/shopstack/inventory/internal/rest"
	"github.com/shopstack/inventory/internal/testenv/inventorytest"
)

// countedFlow is flow control that admits everything and counts what it
// was asked.
type countedFlow struct{ asked atomic.Int64 }

func (f *countedFlow) Admit(context.Context, string, []int64) (func(error), error) {
	f.asked.Add(1)
	return func(error) {}, nil
}

// transportCase is a call by one transport and the code it must be
// answered.
type transportCase struct {
	name string
	call func(t *testing.T) string // returns the code answered
	want inventory.Code
}

// TestEveryTransportAuthorizes: every way into the service runs through
// the one admission chain, so a caller without a principal is refused
// UNAUTHENTICATED, and a broker principal without a role FORBIDDEN, before
// flow control hears of the operation. The transports are built with the
// gate as newHandler and startBroker build them, but without the
// authentication in front of them, so that nothing but the chain can
// refuse.
func TestEveryTransportAuthorizes(t *testing.T) {
	svc, _ := inventorytest.Open(t, gormstore.SQLite, app.Config{})
	flow := &countedFlow{}
	gate := inventory.NewGate(flow)

	gql := httptest.NewServer(graph.NewHandler(svc, nil, graph.Options{Gate: gate}))
	t.Cleanup(gql.Close)
	restAPI := httptest.NewServer(rest.NewHandler(svc, gate, nil))
	t.Cleanup(restAPI.Close)
	connectH, err := grpcapi.NewHandler(svc, grpcapi.Options{Gate: gate})
	if err != nil {
		t.Fatal(err)
	}
	connectSrv := httptest.NewUnstartedServer(connectH)
	connectSrv.Config.Protocols = new(http.Protocols)
	connectSrv.Config.Protocols.SetUnencryptedHTTP2(true)
	connectSrv.Start()
	t.Cleanup(connectSrv.Close)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	native := grpcapi.NewGRPCServer(svc, grpcapi.Options{Gate: gate})
	go func() { _ = native.Serve(ln) }()
	t.Cleanup(native.Stop)
	grpcConns := map[string]*grpc.ClientConn{}
	for name, addr := range map[string]string{"connect": strings.TrimPrefix(connectSrv.URL, "http://"), "grpc-go": ln.Addr().String()} {
		conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = conn.Close() })
		grpcConns[name] = conn
	}
	consumer := &broker.Consumer{Service: svc, Gate: gate, Principal: inventory.Principal{Name: "nobody"}}

	cases := []transportCase{
		{"GraphQL query", graphQLCall(gql.URL, `{ products(first: 1) { totalCount } }`, ""), inventory.CodeUnauthenticated},
		{"GraphQL mutation", graphQLCall(gql.URL, `mutation { stockOut(input: {productId: 1, quantity: 1}) { movement { sequence } } }`, ""),
			inventory.CodeUnauthenticated},
		{"GraphQL introspection", graphQLCall(gql.URL, `{ __schema { queryType { name } } }`, ""), inventory.CodeUnauthenticated},
		{"GraphQL subscription over SSE", graphQLCall(gql.URL, `subscription { stockChanged { sequence } }`, "text/event-stream"),
			inventory.CodeUnauthenticated},
		{"GraphQL subscription over WebSocket", func(t *testing.T) string {
			ws := dialWS(t, gql.URL)
			ws.subscribe("1", `subscription { lowStockAlerts { sequence } }`, nil)
			return graphQLCode(t, ws.read().Payload)
		}, inventory.CodeUnauthenticated},
		{"REST GET /product/{id}", restCall(restAPI.URL, "GET", "/product/SKU-1", ""), inventory.CodeUnauthenticated},
		{"REST GET /product", restCall(restAPI.URL, "GET", "/product?sku=SKU-1", ""), inventory.CodeUnauthenticated},
		{"REST POST /product", restCall(restAPI.URL, "POST", "/product", `{"id": "SKU-1", "name": "N", "price": "1"}`),
			inventory.CodeUnauthenticated},
		{"REST POST /stock/in", restCall(restAPI.URL, "POST", "/stock/in", `{"id": "SKU-1", "count": 1}`), inventory.CodeUnauthenticated},
		{"REST POST /stock/out", restCall(restAPI.URL, "POST", "/stock/out", `{"productId": "1", "count": 1}`), inventory.CodeUnauthenticated},
		{"REST POST /stock/bulk", restCall(restAPI.URL, "POST", "/stock/bulk", "SKU-1,,5\n"), inventory.CodeUnauthenticated},
		{"broker command", func(t *testing.T) string {
			d := consumer.Handle(t.Context(), broker.Delivery{Attempt: 1,
				Data: []byte(`{"id": "cmd-1", "type": "stockOut", "productId": "1", "quantity": 1}`)})
			var out broker.Outcome
			if err := json.Unmarshal(d.Outcome, &out); err != nil {
				t.Fatalf("outcome %s: %v", d.Outcome, err)
			}
			return out.Code
		}, inventory.CodeForbidden},
	}
	for _, name := range []string{"connect", "grpc-go"} {
		conn := grpcConns[name]
		cases = append(cases, []transportCase{
			{"gRPC GetProduct on " + name, grpcCall(conn, "GetProduct", &v1.GetProductRequest{Id: 1}, &v1.GetProductResponse{}),
				inventory.CodeUnauthenticated},
			{"gRPC StockOut on " + name, grpcCall(conn, "StockOut", &v1.StockOutRequest{ProductId: 1, Quantity: 1}, &v1.StockOutResponse{}),
				inventory.CodeUnauthenticated},
			{"gRPC WatchStockChanges on " + name, func(t *testing.T) string {
				ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
				defer cancel()
				stream, err := conn.NewStream(ctx, &grpc.StreamDesc{ServerStreams: true}, "/inventory.v1.InventoryService/WatchStockChanges")
				if err != nil {
					t.Fatal(err)
				}
				if err := stream.SendMsg(&v1.WatchStockChangesRequest{}); err != nil {
					t.Fatal(err)
				}
				_ = stream.CloseSend()
				return grpcReason(stream.RecvMsg(new(v1.WatchStockChangesResponse)))
			}, inventory.CodeUnauthenticated},
		}...)
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := c.call(t); got != string(c.want) {
				t.Errorf("answered %q, want %s", got, c.want)
			}
		})
	}
	if n := flow.asked.Load(); n != 0 {
		t.Errorf("flow control was asked %d times for operations never authorized", n)
	}
}

// graphQLCall posts query to the GraphQL endpoint at url (as server-sent
// events if accept says so) and returns its first error's code.
func graphQLCall(url, query, accept string) func(t *testing.T) string {
	return func(t *testing.T) string {
		req, _ := http.NewRequestWithContext(t.Context(), "POST", url+"/query", strings.NewReader(gql(query)))
		req.Header.Set("Content-Type", "application/json")
		if accept != "" {
			req.Header.Set("Accept", accept)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if accept != "text/event-stream" {
			var body json.RawMessage
			_ = json.NewDecoder(resp.Body).Decode(&body)
			return graphQLCode(t, body)
		}
		for lines := bufio.NewScanner(resp.Body); lines.Scan(); {
			if data, ok := strings.CutPrefix(lines.Text(), "data: "); ok {
				return graphQLCode(t, json.RawMessage(data))
			}
		}
		t.Fatal("no event")
		return ""
	}
}

// graphQLCode returns the code of the first error of a GraphQL response, or
// of a graphql-transport-ws error message's payload (a list of errors).
func graphQLCode(t *testing.T, payload json.RawMessage) string {
	t.Helper()
	var resp struct{ Errors []gqlError }
	if err := json.Unmarshal(payload, &resp); err != nil {
		if err := json.Unmarshal(payload, &resp.Errors); err != nil {
			t.Fatalf("not a GraphQL answer: %s", payload)
		}
	}
	if len(resp.Errors) == 0 {
		return "OK"
	}
	return resp.Errors[0].Extensions.Code
}

type gqlError struct {
	Extensions struct{ Code string }
}

// restCall sends a REST request and returns its error's code.
func restCall(url, method, path, body string) func(t *testing.T) string {
	return func(t *testing.T) string {
		req, _ := http.NewRequestWithContext(t.Context(), method, url+path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out struct{ Error struct{ Code string } }
		_ = json.NewDecoder(resp.Body).Decode(&out)
		return out.Error.Code
	}
}

// grpcCall calls method of the inventory service on conn and returns the
// reason of its error.
func grpcCall(conn *grpc.ClientConn, method string, req, resp proto.Message) func(t *testing.T) string {
	return func(t *testing.T) string {
		return grpcReason(conn.Invoke(t.Context(), "/inventory.v1.InventoryService/"+method, req, resp))
	}
}

// grpcReason returns the ErrorInfo reason of a gRPC error: its domain
// code.
func grpcReason(err error) string {
	for _, d := range status.Convert(err).Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok {
			return info.GetReason()
		}
	}
	return status.Code(err).String()
}
