// Package transport is how invbench talks to a server: GraphQL over HTTP
// to prepare a run and to audit it, and each timed request over the
// transport the run measures (GraphQL, REST, gRPC, or stock-out commands
// through NATS JetStream, RabbitMQ or Kafka), classified into an outcome.
package transport

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"google.golang.org/grpc"
)

// Outcomes that are not an error code from the server.
const (
	// OK is an answer that says the request did what it asked.
	OK = "OK"
	// NoAnswer is a request without an answer: the tool does not know
	// whether a mutation happened.
	NoAnswer = "transport"
	// BadAnswer is an answer without the field the request asked for, such
	// as a stock-out without its movement.
	BadAnswer = "bad response"
)

// Client talks GraphQL over HTTP to one server. One client (one pool of
// keep-alive connections) serves every worker.
type Client struct {
	http     *http.Client
	endpoint string
	// auth is the Authorization header, for servers with tokens.
	auth string
	// transport is what the timed loop speaks (graphql, rest, grpc, nats,
	// rabbitmq, kafka); grpc holds its connections when it is gRPC, commands its
	// broker client when it is a broker.
	transport string
	grpc      []*grpc.ClientConn
	commands  *commandSender
	workers   int
}

// New returns a client whose pool keeps a connection per worker alive. It
// speaks GraphQL until Speak says otherwise.
func New(clients int, timeout time.Duration) *Client {
	tr := &http.Transport{
		MaxIdleConns:        2 * clients,
		MaxIdleConnsPerHost: clients,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
	}
	return &Client{http: &http.Client{Transport: tr, Timeout: timeout}, transport: GraphQL, workers: clients}
}

// Use points the client at a server's base URL, dropping connections to the previous one.
func (c *Client) Use(baseURL string) {
	c.http.CloseIdleConnections()
	c.endpoint = strings.TrimSuffix(baseURL, "/") + "/query"
}

// Bearer makes the client send token as its bearer token ("" sends none).
func (c *Client) Bearer(token string) {
	c.auth = ""
	if token != "" {
		c.auth = "Bearer " + token
	}
}

// Response is the part of a GraphQL response the tool reads.
type Response struct {
	Data   json.RawMessage `json:"data"`
	Errors []gqlError      `json:"errors"`
}

type gqlError struct {
	Message    string `json:"message"`
	Extensions struct {
		Code string `json:"code"`
	} `json:"extensions"`
}

// post sends a pre-marshalled request body and decodes the response into r,
// reusing buf for the body. It returns the HTTP status.
func (c *Client) post(ctx context.Context, body []byte, buf *bytes.Buffer, r *Response) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.endpoint, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	if c.auth != "" {
		req.Header.Set("Authorization", c.auth)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	buf.Reset()
	if _, err := buf.ReadFrom(resp.Body); err != nil {
		return resp.StatusCode, err
	}
	*r = Response{}
	if err := json.Unmarshal(buf.Bytes(), r); err != nil {
		return resp.StatusCode, fmt.Errorf("decode response (HTTP %d): %w", resp.StatusCode, err)
	}
	return resp.StatusCode, nil
}

// GraphQL sends one timed GraphQL request, body marshalled already,
// decodes the answer into r (buf is the worker's scratch space) and
// classifies it; want is what an OK answer must contain, nil for reads.
func (c *Client) GraphQL(ctx context.Context, body []byte, buf *bytes.Buffer, r *Response, want []byte) string {
	status, err := c.post(ctx, body, buf, r)
	return outcome(status, err, r, want)
}

// outcome classifies one response: OK, the first error's extensions.code,
// "http <status>", NoAnswer or BadAnswer.
func outcome(status int, err error, r *Response, want []byte) string {
	switch {
	case err != nil && status == 0:
		return NoAnswer
	case len(r.Errors) > 0:
		if code := r.Errors[0].Extensions.Code; code != "" {
			return code
		}
		return "error"
	case status != http.StatusOK:
		return "http " + strconv.Itoa(status)
	case err != nil, want != nil && !bytes.Contains(r.Data, want):
		return BadAnswer
	}
	return OK
}

// Query runs one GraphQL operation outside the timed loop and decodes its
// data into out.
func (c *Client) Query(ctx context.Context, query string, vars map[string]any, out any) error {
	body, err := json.Marshal(map[string]any{"query": query, "variables": vars})
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	var r Response
	status, err := c.post(ctx, body, &buf, &r)
	if err != nil {
		return err
	}
	if len(r.Errors) > 0 {
		return fmt.Errorf("%s (%s)", r.Errors[0].Message, r.Errors[0].Extensions.Code)
	}
	if status != http.StatusOK {
		return fmt.Errorf("HTTP %d", status)
	}
	if out == nil {
		return nil
	}
	if len(r.Data) == 0 || string(r.Data) == "null" {
		return errors.New("response without data")
	}
	return json.Unmarshal(r.Data, out)
}

// NewID returns a random tag for what a run names: its SKUs, idempotency
// keys and reply destinations, so runs sharing a database or a broker
// never collide.
func NewID() string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return strings.ToUpper(hex.EncodeToString(b))
}
