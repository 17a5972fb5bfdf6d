package main

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/shopstack/inventory/internal/gormstore"
)

// wsClient speaks graphql-transport-ws, the protocol of the graphql-ws
// JavaScript client.
type wsClient struct {
	t    *testing.T
	conn *websocket.Conn
}

type wsMessage struct {
	ID      string          `json:"id,omitempty"`
	Type    string          `json:"type"`
	Payload json.RawMessage `json:"payload,omitempty"`
}

func dialWS(t *testing.T, url string) *wsClient {
	t.Helper()
	c, first, err := dialWSInit(t, url, `{}`)
	if err != nil || first.Type != "connection_ack" {
		t.Fatalf("got %s (%v), want connection_ack", first.Type, err)
	}
	return c
}

// dialWSInit connects with a connection_init payload and returns the
// server's answer to it.
func dialWSInit(t *testing.T, url, payload string) (*wsClient, wsMessage, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, resp, err := websocket.Dial(ctx, strings.Replace(url, "http://", "ws://", 1)+"/query",
		&websocket.DialOptions{Subprotocols: []string{"graphql-transport-ws"}})
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	if resp.Header.Get("Sec-WebSocket-Protocol") != "graphql-transport-ws" {
		t.Fatalf("server chose subprotocol %q", resp.Header.Get("Sec-WebSocket-Protocol"))
	}
	c := &wsClient{t: t, conn: conn}
	t.Cleanup(func() { _ = conn.CloseNow() })
	c.send(wsMessage{Type: "connection_init", Payload: json.RawMessage(payload)})
	m, err := c.next()
	return c, m, err
}

func (c *wsClient) send(m wsMessage) {
	c.t.Helper()
	b, _ := json.Marshal(m)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.conn.Write(ctx, websocket.MessageText, b); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

// read returns the next message that is not a keep-alive ping (answered).
func (c *wsClient) read() wsMessage {
	c.t.Helper()
	m, err := c.next()
	if err != nil {
		c.t.Fatalf("read: %v", err)
	}
	return m
}

func (c *wsClient) next() (wsMessage, error) {
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		_, b, err := c.conn.Read(ctx)
		cancel()
		if err != nil {
			return wsMessage{}, err
		}
		var m wsMessage
		if err := json.Unmarshal(b, &m); err != nil {
			return wsMessage{}, err
		}
		if m.Type == "ping" {
			c.send(wsMessage{Type: "pong"})
			continue
		}
		return m, nil
	}
}

func (c *wsClient) subscribe(id, query string, vars map[string]any) {
	c.t.Helper()
	payload, _ := json.Marshal(map[string]any{"query": query, "variables": vars})
	c.send(wsMessage{ID: id, Type: "subscribe", Payload: payload})
}

func TestSubscriptionsOverGraphQLTransportWS(t *testing.T) {
	s := startServer(t, envFor(t, gormstore.SQLite))
	var created struct {
		CreateProduct struct {
			Product  struct{ ID string }
			Movement struct{ Sequence int64 }
		}
	}
	s.graphql(t, `mutation { createProduct(input: {sku: "WS", name: "Item", price: "1.00", initialStock: 5, threshold: 3}) {
		product { id } movement { sequence } } }`, nil, &created)
	id, since := created.CreateProduct.Product.ID, created.CreateProduct.Movement.Sequence

	c := dialWS(t, s.url)
	// afterSequence makes delivery independent of when the server
	// registers the subscription.
	c.subscribe("changes", `subscription($ids: [ID!], $after: Int64) { stockChanged(productIds: $ids, afterSequence: $after) {
		sequence movement { type delta availableAfter } } }`, map[string]any{"ids": []string{id}, "after": since})
	c.subscribe("alerts", `subscription($after: Int64) { lowStockAlerts(afterSequence: $after) { sequence available threshold } }`,
		map[string]any{"after": since})

	for _, qty := range []int{1, 2, 1} { // 5 -> 4 -> 2 (alert) -> 1
		r := s.graphql(t, `mutation($id: ID!, $q: Int!) { stockOut(input: {productId: $id, quantity: $q}) { replayed } }`,
			map[string]any{"id": id, "q": qty}, nil)
		if len(r.Errors) > 0 {
			t.Fatalf("stockOut: %+v", r.Errors)
		}
	}
	var changes []int64
	var alerts []string
	for len(changes) < 3 || len(alerts) < 1 {
		m := c.read()
		if m.Type != "next" {
			t.Fatalf("got %s %s, want next", m.Type, m.Payload)
		}
		var p struct {
			Data struct {
				StockChanged *struct {
					Sequence int64
					Movement struct{ Delta int64 }
				}
				LowStockAlerts *struct {
					Sequence             int64
					Available, Threshold int
				}
			}
		}
		if err := json.Unmarshal(m.Payload, &p); err != nil {
			t.Fatal(err)
		}
		switch m.ID {
		case "changes":
			changes = append(changes, p.Data.StockChanged.Movement.Delta)
		case "alerts":
			a := p.Data.LowStockAlerts
			if a.Available != 2 || a.Threshold != 3 {
				t.Fatalf("alert %+v", a)
			}
			alerts = append(alerts, m.ID)
		}
	}
	if changes[0] != -1 || changes[1] != -2 || changes[2] != -1 {
		t.Fatalf("changes in order: %v, want [-1 -2 -1]", changes)
	}

	// Unknown products are refused with NOT_FOUND.
	c.subscribe("bad", `subscription { stockChanged(productIds: ["999"]) { sequence } }`, nil)
	for {
		m := c.read()
		if m.ID != "bad" {
			continue
		}
		// gqlgen answers a resolver error with a "next" carrying errors
		// (then "complete"); protocol errors come as "error".
		if (m.Type != "error" && m.Type != "next") || !strings.Contains(string(m.Payload), `"code":"NOT_FOUND"`) {
			t.Fatalf("got %s %s, want errors with NOT_FOUND", m.Type, m.Payload)
		}
		break
	}

	// Shutdown completes open subscriptions and closes the connection.
	s.stop()
	deadline := time.After(20 * time.Second)
	for {
		done := make(chan error, 1)
		go func() { _, err := c.next(); done <- err }()
		select {
		case err := <-done:
			if err != nil {
				return // closed by the server
			}
		case <-deadline:
			t.Fatal("subscription connection still open 20s after shutdown")
		}
	}
}

func TestWebSocketRefusesForeignOrigin(t *testing.T) {
	s := startServer(t, envFor(t, gormstore.SQLite))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, resp, err := websocket.Dial(ctx, strings.Replace(s.url, "http://", "ws://", 1)+"/query", &websocket.DialOptions{
		Subprotocols: []string{"graphql-transport-ws"},
		HTTPHeader:   http.Header{"Origin": []string{"https://evil.example"}},
	})
	if err == nil {
		t.Fatal("a page on another origin opened a subscription")
	}
	if resp != nil && resp.StatusCode != http.StatusForbidden {
		t.Fatalf("status %d, want 403", resp.StatusCode)
	}

	// An origin listed in INVENTORY_WS_ORIGINS may.
	env := envFor(t, gormstore.SQLite)
	env["INVENTORY_WS_ORIGINS"] = "shop.example, *.partner.example"
	s = startServer(t, env)
	for origin, ok := range map[string]bool{"https://shop.example": true, "https://pos.partner.example": true, "https://evil.example": false} {
		conn, _, err := websocket.Dial(ctx, strings.Replace(s.url, "http://", "ws://", 1)+"/query", &websocket.DialOptions{
			Subprotocols: []string{"graphql-transport-ws"},
			HTTPHeader:   http.Header{"Origin": []string{origin}},
		})
		if (err == nil) != ok {
			t.Errorf("origin %s: err %v, want allowed %v", origin, err, ok)
		}
		if conn != nil {
			_ = conn.CloseNow()
		}
	}
}
