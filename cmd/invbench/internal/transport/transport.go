package transport

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/shopstack/inventory/graph/model"
	v1 "github.com/shopstack/inventory/internal/grpcapi/gen/inventory/v1"
)

// Transports the timed loop can speak. Preparation and the audit always
// use GraphQL; only the measured requests change.
const (
	GraphQL = "graphql"
	REST    = "rest"
	GRPC    = "grpc"
	// NATS, RabbitMQ and Kafka send stock-out commands through the
	// broker (JetStream, RabbitMQ, Kafka) and wait for their outcomes.
	// They also name the broker a server publishes to (INVENTORY_BROKER).
	NATS     = "nats"
	RabbitMQ = "rabbitmq"
	Kafka    = "kafka"
)

// Names lists the transports, for the flag's help.
func Names() []string { return append([]string{GraphQL, REST, GRPC}, Brokers()...) }

// Brokers lists the transports that are brokers.
func Brokers() []string { return []string{NATS, RabbitMQ, Kafka} }

// ViaBroker reports whether transport sends commands through a broker.
func ViaBroker(transport string) bool { return slices.Contains(Brokers(), transport) }

// canRun reports whether a scenario can run over transport: REST and gRPC
// run the stock-out scenarios and the no-op ceiling (gRPC's is the health
// check, REST's GET /healthz); a broker, which has no no-op command, the
// stock-out scenarios only.
func canRun(transport, scenario string) bool {
	switch {
	case transport == GraphQL || transport == "":
		return true
	case ViaBroker(transport):
		return scenario == "flash" || scenario == "spread"
	}
	switch scenario {
	case "flash", "spread", "ceiling":
		return true
	}
	return false
}

// Check refuses a transport the scenario cannot run over.
func Check(transport, scenario string) error {
	if !slices.Contains(Names(), transport) {
		return fmt.Errorf("-transport %q: want one of %s", transport, strings.Join(Names(), ", "))
	}
	if !canRun(transport, scenario) {
		runs := "flash, spread and ceiling"
		if ViaBroker(transport) {
			runs = "flash and spread"
		}
		return errors.New("-transport " + transport + " runs the " + runs + " scenarios only")
	}
	return nil
}

// Speak makes the timed loop use transport: gRPC against baseURL, a
// broker's commands through b.
func (c *Client) Speak(transport, baseURL string, b Broker) error {
	if transport == "" {
		transport = GraphQL
	}
	c.transport = transport
	for _, conn := range c.grpc {
		_ = conn.Close()
	}
	c.grpc = nil
	if c.commands != nil {
		c.commands.close()
		c.commands = nil
	}
	switch {
	case transport == GRPC:
		return c.dialGRPC(baseURL)
	case ViaBroker(transport):
		if b.Kind != transport {
			return fmt.Errorf("commands through %s to a %q broker", transport, b.Kind)
		}
		var err error
		c.commands, err = b.dial()
		return err
	}
	return nil
}

// Transport is what the timed loop speaks.
func (c *Client) Transport() string { return c.transport }

// workersPerConn is how many workers share one gRPC connection: a service
// calling us keeps a few connections and multiplexes its calls over them
// (one HTTP/2 connection is one reader and one writer on each side).
const workersPerConn = 8

// dialGRPC connects the client's gRPC channels to baseURL's host (the
// server's one port speaks HTTP/2 without TLS).
func (c *Client) dialGRPC(baseURL string) error {
	u, err := url.Parse(baseURL)
	if err != nil {
		return err
	}
	for range max(1, c.workers/workersPerConn) {
		conn, err := grpc.NewClient(u.Host, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			return err
		}
		c.grpc = append(c.grpc, conn)
	}
	return nil
}

// Ceiling sends the ceiling's no-op over REST (GET /healthz) or gRPC (the
// health check) and classifies its outcome. worker picks the worker's gRPC
// connection; buf is its scratch space.
func (c *Client) Ceiling(ctx context.Context, worker int, buf *bytes.Buffer) string {
	if c.transport == GRPC {
		_, err := healthpb.NewHealthClient(c.grpc[worker%len(c.grpc)]).Check(c.outgoing(ctx), &healthpb.HealthCheckRequest{})
		return grpcOutcome(err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base()+"/healthz", nil)
	if err != nil {
		return NoAnswer
	}
	return c.rest(req, buf, nil)
}

// StockOut sends a stock-out of one unit of productID, key its idempotency
// key, over REST, gRPC or as a broker's command, and classifies its
// outcome. worker picks the worker's gRPC connection; buf is its scratch
// space.
func (c *Client) StockOut(ctx context.Context, worker int, buf *bytes.Buffer, productID, key string) string {
	switch c.transport {
	case GRPC:
		return c.grpcStockOut(ctx, worker, productID, key)
	case REST:
		body := `{"productId": ` + productID + `, "count": 1}`
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base()+"/stock/out", strings.NewReader(body))
		if err != nil {
			return NoAnswer
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Idempotency-Key", key)
		return c.rest(req, buf, movementField)
	}
	return c.sendCommand(ctx, productID, key)
}

// movementField is what an OK stock-out answer over REST must contain, as
// over GraphQL: its movement's sequence.
var movementField = []byte(`"sequence"`)

// outgoing adds the client's Authorization to a gRPC call's metadata.
func (c *Client) outgoing(ctx context.Context) context.Context {
	if c.auth != "" {
		ctx = metadata.AppendToOutgoingContext(ctx, "authorization", c.auth)
	}
	return ctx
}

// DatabaseID is the number gRPC and the brokers name an object by: the
// database ID of a GraphQL ID (global, or the bare number), 0 if none.
func DatabaseID(id string) int64 {
	parsed, err := model.ParseID(id, "id")
	if err != nil {
		return 0
	}
	return parsed.DatabaseID
}

func (c *Client) grpcStockOut(ctx context.Context, worker int, productID, key string) string {
	id := DatabaseID(productID)
	var resp v1.StockOutResponse
	err := c.grpc[worker%len(c.grpc)].Invoke(c.outgoing(ctx), "/inventory.v1.InventoryService/StockOut",
		&v1.StockOutRequest{ProductId: id, Quantity: 1, IdempotencyKey: key}, &resp)
	if err == nil && resp.GetMovement().GetSequence() == 0 {
		return BadAnswer
	}
	return grpcOutcome(err)
}

// grpcOutcome is OK, the ErrorInfo reason (our error code), or the gRPC
// code of an error without one (NoAnswer when there was no answer).
func grpcOutcome(err error) string {
	if err == nil {
		return OK
	}
	st := status.Convert(err)
	for _, d := range st.Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok {
			return info.GetReason()
		}
	}
	if st.Code().String() == "Unavailable" && !strings.Contains(st.Message(), "inventory") {
		return NoAnswer
	}
	return "grpc " + st.Code().String()
}

// base is the server's base URL, which the REST routes hang off.
func (c *Client) base() string { return strings.TrimSuffix(c.endpoint, "/query") }

// rest sends a REST request and classifies the answer: OK if its status is
// 200 and it contains want (unless nil), else the error's code or
// "http <status>".
func (c *Client) rest(req *http.Request, buf *bytes.Buffer, want []byte) string {
	if c.auth != "" {
		req.Header.Set("Authorization", c.auth)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return NoAnswer
	}
	defer resp.Body.Close()
	buf.Reset()
	if _, err := buf.ReadFrom(resp.Body); err != nil {
		return NoAnswer
	}
	if resp.StatusCode == http.StatusOK {
		if want != nil && !bytes.Contains(buf.Bytes(), want) {
			return BadAnswer
		}
		return OK
	}
	var e struct {
		Error struct{ Code string } `json:"error"`
	}
	if json.Unmarshal(buf.Bytes(), &e) == nil && e.Error.Code != "" {
		return e.Error.Code
	}
	return "http " + strconv.Itoa(resp.StatusCode)
}
