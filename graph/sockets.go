package graph

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/99designs/gqlgen/graphql/handler/transport"

	"github.com/shopstack/inventory/internal/inventory"
)

// Close codes of the graphql-ws protocols that the endpoint sends.
const (
	// closeUnauthorized refuses a connection_init without a valid token.
	// graphql-ws clients do not retry it: the app sees the reason.
	closeUnauthorized = 4401
	// closeForbidden refuses a caller whose role may not connect.
	closeForbidden = 4403
	// closeGoingAway (RFC 6455) ends connections when the server shuts
	// down: clients reconnect, to another replica.
	closeGoingAway = 1001
)

// Sockets tracks the endpoint's open WebSocket connections, so that a
// server shutting down can close them with 1001 Going Away rather than
// let them end as if nothing were wrong. Its zero value is ready to use.
type Sockets struct {
	mu     sync.Mutex
	conns  map[*trackedConn]struct{}
	closed bool
}

// GoAway closes every open connection with 1001 Going Away, and every one
// opened after it at once.
func (s *Sockets) GoAway() {
	s.mu.Lock()
	s.closed = true
	conns := s.conns
	s.conns = nil
	s.mu.Unlock()
	for c := range conns {
		c.goAway()
	}
}

// wrap tracks the connections impl accepts.
func (s *Sockets) wrap(impl transport.WebsocketImplementation) transport.WebsocketImplementation {
	return trackingImpl{impl: impl, s: s}
}

func (s *Sockets) add(c *trackedConn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	if s.conns == nil {
		s.conns = map[*trackedConn]struct{}{}
	}
	s.conns[c] = struct{}{}
	return true
}

func (s *Sockets) remove(c *trackedConn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
}

type trackingImpl struct {
	impl transport.WebsocketImplementation
	s    *Sockets
}

func (t trackingImpl) Accept(w http.ResponseWriter, r *http.Request, opts transport.WebsocketAcceptOptions) (transport.WebsocketConn, error) {
	conn, err := t.impl.Accept(w, r, opts)
	if err != nil {
		return nil, err
	}
	c := &trackedConn{WebsocketConn: conn, s: t.s}
	if slot, ok := r.Context().Value(connSlotKey{}).(*connSlot); ok {
		slot.conn = c
	}
	if !t.s.add(c) {
		c.goAway()
	}
	return c, nil
}

// connSlot hands a connection from Accept to the connection_init
// handling, which gqlgen gives the upgrade request's context only.
type connSlot struct{ conn *trackedConn }

type connSlotKey struct{}

// withConnSlot gives each WebSocket upgrade request a connSlot.
func withConnSlot(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
			r = r.WithContext(context.WithValue(r.Context(), connSlotKey{}, &connSlot{}))
		}
		next.ServeHTTP(w, r)
	})
}

// endAtExpiry closes the connection of ctx (the one connection_init came
// on) with 4401 when its principal's credential expires: a subscription
// must not outlive the access token it was opened with. The client gets a
// new token and reconnects.
func endAtExpiry(ctx context.Context) {
	p, ok := inventory.PrincipalFrom(ctx)
	slot, _ := ctx.Value(connSlotKey{}).(*connSlot)
	if !ok || p.Expires.IsZero() || slot == nil || slot.conn == nil {
		return
	}
	c := slot.conn
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return
	}
	c.expiry = time.AfterFunc(time.Until(p.Expires), func() {
		_ = c.WebsocketConn.WriteClose(closeUnauthorized, "the access token has expired")
		_ = c.WebsocketConn.Close()
	})
}

// trackedConn is a connection Sockets can close. It passes on the
// optional interfaces of the connection it wraps.
type trackedConn struct {
	transport.WebsocketConn
	s *Sockets

	mu     sync.Mutex
	closed bool
	expiry *time.Timer // ends the connection when its token expires
}

var (
	_ transport.WebsocketReadLimiter   = (*trackedConn)(nil)
	_ transport.WebsocketReadDeadliner = (*trackedConn)(nil)
)

func (c *trackedConn) goAway() {
	_ = c.WebsocketConn.WriteClose(closeGoingAway, "server shutting down; reconnect")
	_ = c.WebsocketConn.Close()
}

func (c *trackedConn) Close() error {
	c.s.remove(c)
	c.mu.Lock()
	c.closed = true
	if c.expiry != nil {
		c.expiry.Stop()
	}
	c.mu.Unlock()
	return c.WebsocketConn.Close()
}

func (c *trackedConn) SetReadLimit(limit int64) {
	if l, ok := c.WebsocketConn.(transport.WebsocketReadLimiter); ok {
		l.SetReadLimit(limit)
	}
}

func (c *trackedConn) SetReadDeadline(t time.Time) error {
	if d, ok := c.WebsocketConn.(transport.WebsocketReadDeadliner); ok {
		return d.SetReadDeadline(t)
	}
	return nil
}
