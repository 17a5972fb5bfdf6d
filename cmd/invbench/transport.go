package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	v1 "github.com/shopstack/inventory/internal/grpcapi/gen/inventory/v1"
)

// Transports the timed loop can speak. Preparation and the audit always
// use GraphQL; only the measured requests change.
const (
	transportGraphQL = "graphql"
	transportREST    = "rest"
	transportGRPC    = "grpc"
	// transportNATS and transportRabbitMQ send stock-out commands through
	// the broker (JetStream, RabbitMQ) and wait for their outcomes.
	transportNATS     = "nats"
	transportRabbitMQ = "rabbitmq"
)

var transports = []string{transportGraphQL, transportREST, transportGRPC, transportNATS, transportRabbitMQ}

// brokerTransport reports whether transport sends commands through a
// broker.
func brokerTransport(transport string) bool {
	return transport == transportNATS || transport == transportRabbitMQ
}

// transportScenario reports whether a scenario can run over transport:
// REST and gRPC run the stock-out scenarios and the no-op ceiling (gRPC's
// is the health check, REST's GET /healthz); a broker, which has no no-op
// command, the stock-out scenarios only.
func transportScenario(transport, scenario string) bool {
	switch transport {
	case transportGraphQL, "":
		return true
	case transportNATS, transportRabbitMQ:
		return scenario == "flash" || scenario == "spread"
	}
	switch scenario {
	case "flash", "spread", "ceiling":
		return true
	}
	return false
}

// speak makes the timed loop use transport: gRPC against baseURL, a
// broker's commands through bt.
func (c *client) speak(transport, baseURL string, bt brokerTarget) error {
	if transport == "" {
		transport = transportGraphQL
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
	switch transport {
	case transportGRPC:
		return c.dialGRPC(baseURL)
	case transportNATS:
		var err error
		c.commands, err = dialNATS(bt)
		return err
	case transportRabbitMQ:
		var err error
		c.commands, err = dialRabbitMQ(bt)
		return err
	}
	return nil
}

// workersPerConn is how many workers share one gRPC connection: a service
// calling us keeps a few connections and multiplexes its calls over them
// (one HTTP/2 connection is one reader and one writer on each side).
const workersPerConn = 8

// dialGRPC connects the client's gRPC channels to baseURL's host (the
// server's one port speaks HTTP/2 without TLS).
func (c *client) dialGRPC(baseURL string) error {
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

// send runs one request of the loop over the client's transport and
// classifies its outcome.
func (c *client) send(ctx context.Context, w *workload, wk *worker, body []byte, kind reqKind) string {
	switch c.transport {
	case transportGRPC:
		return c.sendGRPC(ctx, w, wk, kind)
	case transportREST:
		return c.sendREST(ctx, w, wk, kind)
	case transportNATS, transportRabbitMQ:
		return c.sendCommand(ctx, w, wk)
	}
	status, err := c.post(ctx, body, &wk.resp, &wk.gql)
	return outcome(status, err, &wk.gql, kind.want())
}

// key is the idempotency key of the worker's current request (see keyed).
func (w *workload) key(wk *worker) string {
	return w.runID + "-" + strconv.Itoa(wk.id) + "-" + strconv.Itoa(wk.seq)
}

func (c *client) sendGRPC(ctx context.Context, w *workload, wk *worker, kind reqKind) string {
	if c.auth != "" {
		ctx = metadata.AppendToOutgoingContext(ctx, "authorization", c.auth)
	}
	if kind == kindRead { // the ceiling
		_, err := healthpb.NewHealthClient(c.grpc[wk.id%len(c.grpc)]).Check(ctx, &healthpb.HealthCheckRequest{})
		return grpcOutcome(err)
	}
	id, _ := strconv.ParseInt(w.productIDs[wk.product], 10, 64)
	var resp v1.StockOutResponse
	err := c.grpc[wk.id%len(c.grpc)].Invoke(ctx, "/inventory.v1.InventoryService/StockOut",
		&v1.StockOutRequest{ProductId: id, Quantity: 1, IdempotencyKey: w.key(wk)}, &resp)
	if err == nil && resp.GetMovement().GetSequence() == 0 {
		return outcomeBad
	}
	return grpcOutcome(err)
}

// grpcOutcome is OK, the ErrorInfo reason (our error code), or the gRPC
// code of an error without one ("transport" when there was no answer).
func grpcOutcome(err error) string {
	if err == nil {
		return outcomeOK
	}
	st := status.Convert(err)
	for _, d := range st.Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok {
			return info.GetReason()
		}
	}
	if st.Code().String() == "Unavailable" && !strings.Contains(st.Message(), "inventory") {
		return outcomeTransport
	}
	return "grpc " + st.Code().String()
}

func (c *client) sendREST(ctx context.Context, w *workload, wk *worker, kind reqKind) string {
	base := strings.TrimSuffix(c.endpoint, "/query")
	var req *http.Request
	var err error
	if kind == kindRead { // the ceiling
		req, err = http.NewRequestWithContext(ctx, http.MethodGet, base+"/healthz", nil)
	} else {
		body := `{"productId": ` + w.productIDs[wk.product] + `, "count": 1}`
		req, err = http.NewRequestWithContext(ctx, http.MethodPost, base+"/stock/out", strings.NewReader(body))
		if err == nil {
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Idempotency-Key", w.key(wk))
		}
	}
	if err != nil {
		return outcomeTransport
	}
	if c.auth != "" {
		req.Header.Set("Authorization", c.auth)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return outcomeTransport
	}
	defer resp.Body.Close()
	wk.resp.Reset()
	if _, err := wk.resp.ReadFrom(resp.Body); err != nil {
		return outcomeTransport
	}
	if resp.StatusCode == http.StatusOK {
		if kind != kindRead && !bytes.Contains(wk.resp.Bytes(), movementField) {
			return outcomeBad
		}
		return outcomeOK
	}
	var e struct {
		Error struct{ Code string } `json:"error"`
	}
	if json.Unmarshal(wk.resp.Bytes(), &e) == nil && e.Error.Code != "" {
		return e.Error.Code
	}
	return "http " + strconv.Itoa(resp.StatusCode)
}

// checkTransport refuses a transport the scenario cannot run over.
func checkTransport(transport, scenario string) error {
	if !transportScenarioKnown(transport) {
		return fmt.Errorf("-transport %q: want one of %s", transport, strings.Join(transports, ", "))
	}
	if !transportScenario(transport, scenario) {
		runs := "flash, spread and ceiling"
		if brokerTransport(transport) {
			runs = "flash and spread"
		}
		return errors.New("-transport " + transport + " runs the " + runs + " scenarios only")
	}
	return nil
}

func transportScenarioKnown(t string) bool {
	for _, k := range transports {
		if k == t {
			return true
		}
	}
	return false
}
