package rabbitbroker

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/shopstack/inventory/internal/broker"
)

// Client is an order service's side of the commands (and a consumer's of
// the events): it sends commands and reads outcomes, dead letters and
// events.
type Client struct {
	cfg  Config
	link *link

	ch *publishChannel
}

// NewClient returns a client; like New, it dials when first used.
func NewClient(cfg Config) (*Client, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	l := newLink(cfg.URL, "inventory client")
	return &Client{cfg: cfg, link: l, ch: &publishChannel{link: l, declare: func(c *amqp.Connection) error { return declareCommands(c, cfg) }}}, nil
}

// Close closes the connection, which ends every channel the client
// returned.
func (c *Client) Close() error { return c.link.close() }

// publishChannel is a link's publishing channel: opened, after declare,
// when first needed, and again after it failed.
type publishChannel struct {
	link    *link
	declare func(*amqp.Connection) error

	mu  sync.Mutex
	pub *confirmer
}

func (p *publishChannel) get() (*confirmer, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.pub != nil && !p.pub.closed() {
		return p.pub, nil
	}
	conn, err := p.link.connection()
	if err != nil {
		return nil, err
	}
	if err := p.declare(conn); err != nil {
		return nil, err
	}
	if p.pub, err = openConfirmer(conn); err != nil {
		return nil, err
	}
	return p.pub, nil
}

// Send publishes a command (CommandSchemaV1 JSON) to the command queue,
// with header as message headers (the trace context among them), and
// returns when the broker has stored it.
func (c *Client) Send(ctx context.Context, data []byte, header map[string]string) error {
	pub, err := c.ch.get()
	if err != nil {
		return err
	}
	h := make(amqp.Table, len(header))
	for k, v := range header {
		h[k] = v
	}
	s, err := pub.publish("", c.cfg.CommandQueue, true, amqp.Publishing{Headers: h, ContentType: "application/json",
		DeliveryMode: amqp.Persistent, Body: data})
	if err != nil {
		return fmt.Errorf("rabbitbroker: send: %w", err)
	}
	if err := s.wait(ctx); err != nil {
		return fmt.Errorf("rabbitbroker: send: %w", err)
	}
	return nil
}

// Outcomes delivers the outcomes in queue (declared durable; "" is
// Config.OutcomeQueue), each acknowledged once received, until ctx ends or
// the connection fails; then the channel closes.
func (c *Client) Outcomes(ctx context.Context, queue string) (<-chan []byte, error) {
	if queue == "" {
		queue = c.cfg.OutcomeQueue
	}
	return consume(ctx, c, queue, nil, func(d amqp.Delivery) []byte { return d.Body })
}

// DeadLetters delivers the dead letters, as Outcomes does.
func (c *Client) DeadLetters(ctx context.Context) (<-chan broker.DeadLetter, error) {
	return consume(ctx, c, c.cfg.DeadQueue, nil, func(d amqp.Delivery) broker.DeadLetter {
		dl := broker.DeadLetter{Data: d.Body}
		dl.Reason, _ = d.Headers[HeaderDeadReason].(string)
		if n, ok := intHeader(d.Headers[HeaderAttempts]); ok {
			dl.Attempts = int(n)
		}
		if r, ok := d.Headers["x-first-death-reason"].(string); ok && dl.Reason == "" {
			dl.Reason = "dead-lettered by the broker: " + r // the command queue's delivery limit
		}
		return dl
	})
}

// Message is an event as a consumer receives it.
type Message struct {
	// ID is the message ID: the sequence, or alert-<sequence>.
	ID         string
	RoutingKey string
	Data       []byte
}

// Events delivers the events in queue ("" is Config.EventsQueue), declared
// durable and bound to every event, as Outcomes does. Events may repeat:
// drop one whose sequence is not above the highest seen.
func (c *Client) Events(ctx context.Context, queue string) (<-chan Message, error) {
	if queue == "" || queue == "-" {
		queue = c.cfg.EventsQueue
	}
	if queue == "-" {
		return nil, errors.New("rabbitbroker: no events queue configured or named")
	}
	bind := func(ch *amqp.Channel) error {
		if err := ch.ExchangeDeclare(c.cfg.Exchange, amqp.ExchangeTopic, true, false, false, false, nil); err != nil {
			return err
		}
		return ch.QueueBind(queue, "#", c.cfg.Exchange, false, nil)
	}
	return consume(ctx, c, queue, bind, func(d amqp.Delivery) Message {
		return Message{ID: d.MessageId, RoutingKey: d.RoutingKey, Data: d.Body}
	})
}

// consume declares queue durable (then runs bind, if set) and delivers its
// messages converted, acknowledging each once received.
func consume[T any](ctx context.Context, c *Client, queue string, bind func(*amqp.Channel) error, convert func(amqp.Delivery) T) (<-chan T, error) {
	conn, err := c.link.connection()
	if err != nil {
		return nil, err
	}
	ch, err := conn.Channel()
	if err != nil {
		return nil, fmt.Errorf("rabbitbroker: open a channel: %w", err)
	}
	deliveries, err := func() (<-chan amqp.Delivery, error) {
		if _, err := ch.QueueDeclare(queue, true, false, false, false, nil); err != nil {
			return nil, err
		}
		if bind != nil {
			if err := bind(ch); err != nil {
				return nil, err
			}
		}
		if err := ch.Qos(256, 0, false); err != nil {
			return nil, err
		}
		return ch.Consume(queue, "", false, false, false, false, nil)
	}()
	if err != nil {
		_ = ch.Close()
		return nil, fmt.Errorf("rabbitbroker: consume %s: %w", queue, err)
	}
	out := make(chan T)
	go func() {
		defer close(out)
		// Closing the channel puts back what was delivered but not received.
		defer func() { _ = ch.Close() }()
		for {
			select {
			case <-ctx.Done():
				return
			case d, ok := <-deliveries:
				if !ok {
					return
				}
				select {
				case out <- convert(d):
					_ = d.Ack(false) // lost with the channel: delivered again
				case <-ctx.Done():
					return
				}
			}
		}
	}()
	return out, nil
}

// link is a connection to RabbitMQ, dialled when first needed and again
// once it is lost.
type link struct {
	url, name string

	mu       sync.Mutex
	conn     *amqp.Connection
	isClosed bool
}

func newLink(url, name string) *link { return &link{url: url, name: name} }

// dialTimeout bounds the TCP connect and the AMQP handshake.
const dialTimeout = 5 * time.Second

var errClosed = errors.New("rabbitbroker: closed")

// connection returns the connection, dialling when there is none or it
// was lost.
func (l *link) connection() (*amqp.Connection, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.isClosed {
		return nil, errClosed
	}
	if l.conn != nil && !l.conn.IsClosed() {
		return l.conn, nil
	}
	props := amqp.NewConnectionProperties()
	props.SetClientConnectionName(l.name)
	conn, err := amqp.DialConfig(l.url, amqp.Config{Dial: amqp.DefaultDial(dialTimeout), Properties: props})
	if err != nil {
		return nil, fmt.Errorf("rabbitbroker: dial: %w", err)
	}
	l.conn = conn
	return conn, nil
}

func (l *link) close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.isClosed = true
	if l.conn == nil || l.conn.IsClosed() {
		return nil
	}
	return l.conn.Close()
}

var (
	errNacked     = errors.New("rabbitbroker: the broker refused the message (nack)")
	errUnroutable = errors.New("rabbitbroker: no queue took the message")
)

// confirmer publishes on a channel in confirm mode and tells each
// publisher what became of its message: confirmed, refused, or returned
// unroutable (mandatory). The library reports a return before the
// confirmation of the same message, both from its reader goroutine: one
// goroutine here receives both, the returns unbuffered, so a return is
// recorded before its message's confirmation is looked at.
type confirmer struct {
	ch *amqp.Channel

	sendMu sync.Mutex // held from reading the next delivery tag to sending the message

	mu      sync.Mutex
	pending map[uint64]*pending // by delivery tag
	err     error               // why the channel closed; set once done
	done    chan struct{}
}

// pending is a message published and not yet confirmed.
type pending struct {
	exchange, key, id string
	returned          string // the broker's reason, once returned
	result            chan error
}

func openConfirmer(conn *amqp.Connection) (*confirmer, error) {
	ch, err := conn.Channel()
	if err != nil {
		return nil, fmt.Errorf("rabbitbroker: open a channel: %w", err)
	}
	if err := ch.Confirm(false); err != nil {
		_ = ch.Close()
		return nil, fmt.Errorf("rabbitbroker: confirm mode: %w", err)
	}
	c := &confirmer{ch: ch, pending: make(map[uint64]*pending), done: make(chan struct{})}
	closes := ch.NotifyClose(make(chan *amqp.Error, 1))
	returns := ch.NotifyReturn(make(chan amqp.Return))
	confirms := ch.NotifyPublish(make(chan amqp.Confirmation, 256))
	go c.dispatch(confirms, returns, closes)
	return c, nil
}

func (c *confirmer) closed() bool {
	select {
	case <-c.done:
		return true
	default:
		return c.ch.IsClosed()
	}
}

func (c *confirmer) close() { _ = c.ch.Close() }

// dispatch runs until the channel closes; then every message unconfirmed
// fails (it may or may not be stored).
func (c *confirmer) dispatch(confirms <-chan amqp.Confirmation, returns <-chan amqp.Return, closes <-chan *amqp.Error) {
	for confirms != nil {
		select {
		case r, ok := <-returns:
			if !ok {
				returns = nil
				continue
			}
			c.returned(r)
		case cf, ok := <-confirms:
			if !ok {
				confirms = nil
				continue
			}
			c.confirmed(cf)
		}
	}
	err := errors.New("rabbitbroker: channel closed")
	select {
	case e := <-closes:
		if e != nil {
			err = fmt.Errorf("rabbitbroker: channel closed: %w", e)
		}
	default:
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.err = err
	for tag, p := range c.pending {
		p.result <- err
		delete(c.pending, tag)
	}
	close(c.done)
}

// returned marks the oldest unconfirmed message sent where r was, with
// r's ID. Two such at once are copies of one message (an outcome sent
// twice), so which one is marked does not matter.
func (c *confirmer) returned(r amqp.Return) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var oldest uint64
	for tag, p := range c.pending {
		if p.returned == "" && p.exchange == r.Exchange && p.key == r.RoutingKey && p.id == r.MessageId && (oldest == 0 || tag < oldest) {
			oldest = tag
		}
	}
	if oldest != 0 {
		c.pending[oldest].returned = strconv.Itoa(int(r.ReplyCode)) + " " + r.ReplyText
	}
}

func (c *confirmer) confirmed(cf amqp.Confirmation) {
	c.mu.Lock()
	p := c.pending[cf.DeliveryTag]
	delete(c.pending, cf.DeliveryTag)
	c.mu.Unlock()
	switch {
	case p == nil:
	case !cf.Ack:
		p.result <- errNacked
	case p.returned != "":
		p.result <- fmt.Errorf("%w (%s)", errUnroutable, p.returned)
	default:
		p.result <- nil
	}
}

// publish sends a message; wait on the result for its confirmation.
func (c *confirmer) publish(exchange, key string, mandatory bool, msg amqp.Publishing) (*pending, error) {
	c.sendMu.Lock()
	defer c.sendMu.Unlock()
	p := &pending{exchange: exchange, key: key, id: msg.MessageId, result: make(chan error, 1)}
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		return nil, c.err
	}
	tag := c.ch.GetNextPublishSeqNo()
	c.pending[tag] = p
	c.mu.Unlock()
	if err := c.ch.Publish(exchange, key, mandatory, false, msg); err != nil {
		c.mu.Lock()
		delete(c.pending, tag)
		c.mu.Unlock()
		return nil, err
	}
	return p, nil
}

// wait returns when the message is confirmed (nil), refused, returned or
// lost with the channel, or ctx ends.
func (p *pending) wait(ctx context.Context) error {
	select {
	case err := <-p.result:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}
