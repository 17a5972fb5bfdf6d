package main

import (
	"bytes"
	"context"
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
	outcomeOK        = "OK"
	outcomeTransport = "transport"
	outcomeBad       = "bad response"
)

// client talks GraphQL over HTTP to one server. One client (one pool of
// keep-alive connections) serves every worker.
type client struct {
	http     *http.Client
	endpoint string
	// auth is the Authorization header, for servers with tokens.
	auth string
	// transport is what the timed loop speaks (graphql, rest, grpc, nats,
	// rabbitmq); grpc holds its connections when it is gRPC, commands its
	// broker client when it is a broker.
	transport string
	grpc      []*grpc.ClientConn
	commands  *commandSender
	workers   int
}

// newClient returns a client whose pool keeps a connection per worker alive.
func newClient(clients int, timeout time.Duration) *client {
	tr := &http.Transport{
		MaxIdleConns:        2 * clients,
		MaxIdleConnsPerHost: clients,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
	}
	return &client{http: &http.Client{Transport: tr, Timeout: timeout}, workers: clients}
}

// use points the client at a server's base URL, dropping connections to the previous one.
func (c *client) use(baseURL string) {
	c.http.CloseIdleConnections()
	c.endpoint = strings.TrimSuffix(baseURL, "/") + "/query"
}

// bearer makes the client send token as its bearer token ("" sends none).
func (c *client) bearer(token string) {
	c.auth = ""
	if token != "" {
		c.auth = "Bearer " + token
	}
}

// gqlResponse is the part of a GraphQL response the tool reads.
type gqlResponse struct {
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
func (c *client) post(ctx context.Context, body []byte, buf *bytes.Buffer, r *gqlResponse) (int, error) {
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
	*r = gqlResponse{}
	if err := json.Unmarshal(buf.Bytes(), r); err != nil {
		return resp.StatusCode, fmt.Errorf("decode response (HTTP %d): %w", resp.StatusCode, err)
	}
	return resp.StatusCode, nil
}

// outcome classifies one response: OK, the first error's extensions.code,
// "http <status>", "transport" (no answer: the tool does not know whether a
// mutation happened) or "bad response" (an answer without the field the
// request asked for, such as a stock-out without its movement).
func outcome(status int, err error, r *gqlResponse, want []byte) string {
	switch {
	case err != nil && status == 0:
		return outcomeTransport
	case len(r.Errors) > 0:
		if code := r.Errors[0].Extensions.Code; code != "" {
			return code
		}
		return "error"
	case status != http.StatusOK:
		return "http " + strconv.Itoa(status)
	case err != nil, want != nil && !bytes.Contains(r.Data, want):
		return outcomeBad
	}
	return outcomeOK
}

// query runs one GraphQL operation outside the timed loop and decodes its
// data into out.
func (c *client) query(ctx context.Context, query string, vars map[string]any, out any) error {
	body, err := json.Marshal(map[string]any{"query": query, "variables": vars})
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	var r gqlResponse
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
