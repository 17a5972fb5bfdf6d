package natsbroker

import (
	"context"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/shopstack/inventory/internal/broker"
)

// Client is an order service's side of the commands: it sends them and
// reads their outcomes.
type Client struct {
	js  jetstream.JetStream
	cfg Config

	mu    sync.Mutex
	ready bool // the streams exist
}

// NewClient returns a client on nc's server.
func NewClient(nc *nats.Conn, cfg Config) (*Client, error) {
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, err
	}
	return &Client{js: js, cfg: cfg.withDefaults()}, nil
}

func (c *Client) streams(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ready {
		return nil
	}
	_, err := ensureCommandStreams(ctx, c.js, c.cfg)
	c.ready = err == nil
	return err
}

// Send stores a command (CommandSchemaV1 JSON) in the command stream, with
// header as message headers (the trace context among them), and returns
// when the stream has it.
func (c *Client) Send(ctx context.Context, data []byte, header map[string]string) error {
	if err := c.streams(ctx); err != nil {
		return err
	}
	m := &nats.Msg{Subject: c.cfg.commandSubject(), Data: data, Header: nats.Header{"Content-Type": []string{"application/json"}}}
	for k, v := range header {
		m.Header.Set(k, v)
	}
	_, err := c.js.PublishMsg(ctx, m)
	return err
}

// SendAsync stores a command without waiting: the returned future
// reports when the stream has it.
func (c *Client) SendAsync(ctx context.Context, data []byte, header map[string]string) (jetstream.PubAckFuture, error) {
	if err := c.streams(ctx); err != nil {
		return nil, err
	}
	m := &nats.Msg{Subject: c.cfg.commandSubject(), Data: data, Header: nats.Header{"Content-Type": []string{"application/json"}}}
	for k, v := range header {
		m.Header.Set(k, v)
	}
	return c.js.PublishMsgAsync(m)
}

// Outcomes delivers the outcomes stored for replyTo (see
// Config.OutcomeSubject), from the first kept, until ctx ends.
func (c *Client) Outcomes(ctx context.Context, replyTo string) (<-chan []byte, error) {
	ch := make(chan []byte, 1024)
	err := c.read(ctx, c.cfg.OutcomeSubject(replyTo), func(m jetstream.Msg) { ch <- m.Data() })
	return ch, err
}

// DeadLetters delivers the dead letters, from the first kept, until ctx
// ends.
func (c *Client) DeadLetters(ctx context.Context) (<-chan broker.DeadLetter, error) {
	ch := make(chan broker.DeadLetter, 64)
	err := c.read(ctx, c.cfg.deadSubject(), func(m jetstream.Msg) {
		n, _ := strconv.Atoi(m.Headers().Get(HeaderAttempts))
		ch <- broker.DeadLetter{Data: m.Data(), Reason: m.Headers().Get(HeaderDeadReason), Attempts: n}
	})
	return ch, err
}

// read runs an ordered consumer of the outcome stream's subject.
func (c *Client) read(ctx context.Context, subject string, fn func(jetstream.Msg)) error {
	if err := c.streams(ctx); err != nil {
		return err
	}
	cons, err := c.js.OrderedConsumer(ctx, c.cfg.outcomeStream(), jetstream.OrderedConsumerConfig{FilterSubjects: []string{subject}})
	if err != nil {
		return err
	}
	// Short pulls with a heartbeat every second: after a broker restart the
	// reader notices within seconds and starts again where it was.
	cc, err := cons.Consume(fn, jetstream.PullExpiry(5*time.Second), jetstream.PullHeartbeat(time.Second))
	if err != nil {
		return err
	}
	go func() {
		<-ctx.Done()
		cc.Stop()
	}()
	return nil
}
