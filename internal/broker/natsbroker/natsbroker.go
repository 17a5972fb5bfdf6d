// Package natsbroker is the NATS JetStream broker: events go to a stream
// of their own, one subject per product (PREFIX.stock.<product>) and the
// low-stock alerts to PREFIX.alert.<product>.
//
// Order and no gap are the server's to enforce: each message is published
// with the ID of the one before it as Nats-Expected-Last-Msg-Id, so the
// stream stores a message only right after its predecessor, whatever
// retries, restarts or a second publisher during a leader change do.
// Nats-Msg-Id (the sequence; alert-<sequence> for an alert) lets the
// stream's duplicate window drop a message sent twice.
package natsbroker

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/shopstack/inventory/internal/broker"
)

// Config names the streams and subjects, and the consumer of commands.
type Config struct {
	// Stream is the events' JetStream stream (default "INVENTORY");
	// commands and outcomes have Stream_COMMANDS and Stream_OUTCOMES.
	Stream string
	// Prefix starts every subject (default "inventory").
	Prefix string
	// Duplicates is the streams' deduplication window (default 2m).
	Duplicates time.Duration
	// Consumer is the durable consumer of commands (default
	// "inventory-commands"); the replicas share it.
	Consumer string
	// AckWait is how long a delivered command may go unacknowledged before
	// it is delivered again (default 5s): the consumer keeps a command in
	// progress while it runs, so this is how long one waits when its
	// consumer died or its acknowledgement was lost.
	AckWait time.Duration
	// Retry is the consumer's retry schedule (default
	// broker.DefaultRetry), which bounds redeliveries.
	Retry []time.Duration
	// OutcomeMaxAge is how long outcomes and dead letters are kept
	// (default 72h).
	OutcomeMaxAge time.Duration
}

// ConfigFor names everything of a deployment's namespace: the stream is
// the namespace upper-cased ("INVENTORY" for "inventory"), the subjects
// start with the namespace, and the commands' consumer is
// namespace-commands.
func ConfigFor(namespace string, retry []time.Duration) Config {
	return Config{Stream: strings.ToUpper(namespace), Prefix: namespace, Consumer: namespace + "-commands", Retry: retry}
}

func (c Config) withDefaults() Config {
	if c.Stream == "" {
		c.Stream = "INVENTORY"
	}
	if c.Prefix == "" {
		c.Prefix = "inventory"
	}
	if c.Duplicates <= 0 {
		c.Duplicates = 2 * time.Minute
	}
	if c.Consumer == "" {
		c.Consumer = "inventory-commands"
	}
	if c.AckWait <= 0 {
		c.AckWait = 5 * time.Second
	}
	if c.Retry == nil {
		c.Retry = broker.DefaultRetry
	}
	if c.OutcomeMaxAge <= 0 {
		c.OutcomeMaxAge = 72 * time.Hour
	}
	return c
}

// Publisher publishes events to JetStream.
type Publisher struct {
	nc  *nats.Conn
	js  jetstream.JetStream
	cfg Config

	mu     sync.Mutex
	stream jetstream.Stream // nil until Last has created or found it
	lastID string           // the message ID of the stream's last message, as Last read it or Publish left it
}

var _ broker.Publisher = (*Publisher)(nil)

// New returns a publisher to the stream on nc's server. It does not need
// the server yet: Last creates (or updates) the stream.
func New(nc *nats.Conn, cfg Config) (*Publisher, error) {
	cfg = cfg.withDefaults()
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, err
	}
	return &Publisher{nc: nc, js: js, cfg: cfg}, nil
}

// Last reads the stream's last message: its sequence header. It creates or
// updates the stream first, once.
func (p *Publisher) Last(ctx context.Context) (int64, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stream == nil {
		st, err := p.js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
			Name: p.cfg.Stream, Subjects: []string{p.cfg.Prefix + ".stock.*", p.cfg.Prefix + ".alert.*"},
			Storage: jetstream.FileStorage, Duplicates: p.cfg.Duplicates,
		})
		if err != nil {
			return 0, fmt.Errorf("natsbroker: stream %s: %w", p.cfg.Stream, err)
		}
		p.stream = st
	}
	info, err := p.stream.Info(ctx)
	if err != nil {
		return 0, err
	}
	if info.State.LastSeq == 0 {
		p.lastID = ""
		return 0, nil
	}
	m, err := p.stream.GetMsg(ctx, info.State.LastSeq)
	if err != nil {
		return 0, err
	}
	id := m.Header.Get(jetstream.MsgIDHeader)
	seq, err := strconv.ParseInt(strings.TrimPrefix(id, "alert-"), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("natsbroker: the stream's last message has no inventory sequence (%q)", id)
	}
	p.lastID = id
	return seq, nil
}

// Publish sends events in order, each expecting its predecessor as the
// stream's last message, and waits for the last one's acknowledgement
// only: the stream stores a message only right after its predecessor, so
// the last one stored means every one before it was. (The others go as
// plain publishes, without an acknowledgement each; one refused makes
// every later one refused, and so the last.)
func (p *Publisher) Publish(ctx context.Context, after int64, events []broker.Event) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if want := strconv.FormatInt(after, 10); after != 0 && p.lastID != want && p.lastID != "alert-"+want {
		return fmt.Errorf("natsbroker: asked to publish after %d, but the stream's last message is %q", after, p.lastID)
	}
	type message struct{ subject, id string }
	var msgs []message
	var data [][]byte
	for _, e := range events {
		product := strconv.FormatInt(e.ProductID, 10)
		seq := strconv.FormatInt(e.Seq, 10)
		msgs, data = append(msgs, message{p.cfg.Prefix + ".stock." + product, seq}), append(data, e.Data)
		if e.Alert {
			msgs, data = append(msgs, message{p.cfg.Prefix + ".alert." + product, "alert-" + seq}), append(data, e.Data)
		}
	}
	prev := p.lastID
	for i, m := range msgs {
		msg := &nats.Msg{Subject: m.subject, Data: data[i], Header: nats.Header{"Content-Type": []string{"application/json"}}}
		msg.Header.Set(jetstream.MsgIDHeader, m.id)
		if prev != "" {
			msg.Header.Set(jetstream.ExpectedLastMsgIDHeader, prev)
		}
		prev = m.id
		if i < len(msgs)-1 {
			if err := p.nc.PublishMsg(msg); err != nil {
				return err
			}
			continue
		}
		if _, err := p.js.PublishMsg(ctx, msg); err != nil {
			return fmt.Errorf("%d messages, the last refused: %w", len(msgs), err)
		}
		p.lastID = m.id
	}
	return nil
}
