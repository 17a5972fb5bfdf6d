// Package rabbitbroker is the RabbitMQ broker: events go to a topic
// exchange, routing key stock.<product> (and a low-stock alert's copy to
// alert.<product>), held for consumers by a durable queue bound to them
// all; commands come in on a quorum queue (see Commands).
//
// RabbitMQ cannot refuse a message whose predecessor is not the last one
// stored, nor drop a message sent twice, so this adapter gives less than
// natsbroker: order holds per publisher (one channel, in sequence), and no
// event is missing, but events may repeat. The sequence last published is
// kept in the broker as an offset, a one-message queue EXCHANGE.last that
// Publish writes after its batch is confirmed and Last reads. A crash
// between the batch and its offset, or two publishers at once during a
// leader change, publish some events again: consumers drop an event whose
// sequence is not above the highest they have seen. The offset never runs
// ahead of the events, so that dedupe loses nothing, with one exception: a
// message the broker refuses (a nack, the queue's internal error) while
// later ones of its batch are stored comes again only after them, so only
// a consumer that remembers every sequence seen, not just the highest,
// still takes it.
//
// Every message is persistent and published with confirms (and mandatory:
// one no queue takes is an error, not a loss). A connection lost makes
// calls fail; the next call dials again, and the relay and the command
// consumer retry with backoff.
package rabbitbroker

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/cenkalti/backoff/v5"
	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/shopstack/inventory/internal/broker"
)

// Config names the exchange and queues. Every name derives from it, so
// two deployments (or tests) on one broker do not meet.
type Config struct {
	// URL is the broker (default "amqp://guest:guest@localhost:5672/").
	URL string
	// Exchange is the events' topic exchange (default "inventory.events");
	// Exchange+".last" holds the offset.
	Exchange string
	// EventsQueue is a durable queue bound to every event, so events are
	// held even before any other consumer binds a queue (default
	// "inventory.events"); "-" declares none, and then a message no queue
	// is bound for makes Publish fail.
	EventsQueue string
	// CommandQueue is the commands' quorum queue (default
	// "inventory.commands"); CommandQueue+".retry.<n>" delay retries.
	CommandQueue string
	// OutcomeQueue is where outcomes go when a command names no reply
	// queue, or one that does not exist (default "inventory.outcomes").
	OutcomeQueue string
	// DeadQueue holds the dead letters (default "inventory.commands.dead").
	DeadQueue string
	// Retry is the command consumer's schedule (default
	// broker.DefaultRetry): one retry queue per step, whose message TTL is
	// the step's delay. A queue's TTL cannot change, so a new schedule
	// needs the old retry queues deleted (once empty) first.
	Retry []time.Duration
}

func (c Config) withDefaults() (Config, error) {
	for _, d := range []struct {
		name *string
		def  string
	}{{&c.URL, "amqp://guest:guest@localhost:5672/"}, {&c.Exchange, "inventory.events"}, {&c.EventsQueue, "inventory.events"},
		{&c.CommandQueue, "inventory.commands"}, {&c.OutcomeQueue, "inventory.outcomes"}, {&c.DeadQueue, "inventory.commands.dead"}} {
		if *d.name == "" {
			*d.name = d.def
		}
	}
	if c.Retry == nil {
		c.Retry = broker.DefaultRetry
	}
	if _, err := amqp.ParseURI(c.URL); err != nil {
		return c, fmt.Errorf("rabbitbroker: URL: %w", err)
	}
	for _, d := range c.Retry {
		if d < 0 {
			return c, fmt.Errorf("rabbitbroker: negative retry delay %v", d)
		}
	}
	if len(c.retryQueue(len(c.Retry))) > 255 || len(c.lastQueue()) > 255 || len(c.OutcomeQueue) > 255 || len(c.DeadQueue) > 255 {
		return c, errors.New("rabbitbroker: a queue name is longer than 255 bytes")
	}
	return c, nil
}

func (c Config) lastQueue() string             { return c.Exchange + ".last" }
func (c Config) retryQueue(n int) string       { return c.CommandQueue + ".retry." + strconv.Itoa(n) }
func (c Config) hasEventsQueue() bool          { return c.EventsQueue != "-" }
func (c Config) eventKey(product int64) string { return "stock." + strconv.FormatInt(product, 10) }
func (c Config) alertKey(product int64) string { return "alert." + strconv.FormatInt(product, 10) }

// declareEvents declares the exchange, the events queue and the offset
// queue, idempotently.
func declareEvents(conn *amqp.Connection, cfg Config) error {
	return declare(conn, func(ch *amqp.Channel) error {
		if err := ch.ExchangeDeclare(cfg.Exchange, amqp.ExchangeTopic, true, false, false, false, nil); err != nil {
			return fmt.Errorf("exchange %s: %w", cfg.Exchange, err)
		}
		if cfg.hasEventsQueue() {
			if _, err := ch.QueueDeclare(cfg.EventsQueue, true, false, false, false, nil); err != nil {
				return fmt.Errorf("queue %s: %w", cfg.EventsQueue, err)
			}
			if err := ch.QueueBind(cfg.EventsQueue, "#", cfg.Exchange, false, nil); err != nil {
				return fmt.Errorf("bind %s: %w", cfg.EventsQueue, err)
			}
		}
		// Holds the newest offset only: a new one drops the old.
		args := amqp.Table{"x-max-length": int64(1), "x-overflow": "drop-head"}
		if _, err := ch.QueueDeclare(cfg.lastQueue(), true, false, false, false, args); err != nil {
			return fmt.Errorf("queue %s: %w", cfg.lastQueue(), err)
		}
		return nil
	})
}

// declare runs fn on a channel of its own: a declaration that fails closes
// its channel.
func declare(conn *amqp.Connection, fn func(*amqp.Channel) error) error {
	ch, err := conn.Channel()
	if err != nil {
		return fmt.Errorf("rabbitbroker: open a channel: %w", err)
	}
	defer func() { _ = ch.Close() }() // closed already after a failure
	if err := fn(ch); err != nil {
		return fmt.Errorf("rabbitbroker: declare %w", err)
	}
	return nil
}

// Publisher publishes events to the exchange.
type Publisher struct {
	cfg  Config
	link *link

	ch *publishChannel

	mu   sync.Mutex
	last int64 // the offset, as Last read it or Publish left it; -1: read it first
}

var _ broker.Publisher = (*Publisher)(nil)

// New returns a publisher. It does not need the broker yet: Last dials
// and declares the exchange and queues.
func New(cfg Config) (*Publisher, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	l := newLink(cfg.URL, "inventory events")
	return &Publisher{cfg: cfg, link: l, last: -1,
		ch: &publishChannel{link: l, declare: func(c *amqp.Connection) error { return declareEvents(c, cfg) }}}, nil
}

// Close closes the connection.
func (p *Publisher) Close() error { return p.link.close() }

// errNoOffset is Last's answer while the offset queue looks empty.
var errNoOffset = errors.New("no offset")

// Last reads the offset without taking it: a basic.get, then a nack that
// puts it back.
//
// Two publishers reading at once (a leader change) can disturb each
// other, never beyond publishing events again: an offset published while
// another is held may end up behind it, so a later read returns the
// older; and while one publisher holds the offset the queue looks empty
// to the other, which is why an empty queue is read again before Last
// answers 0. A publisher that dies holding it hides it until the broker
// notices (a heartbeat timeout at worst); one starting then publishes the
// ledger from the first event, which consumers drop.
func (p *Publisher) Last(ctx context.Context) (int64, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.last = -1
	c, err := p.ch.get()
	if err != nil {
		return 0, err
	}
	m, err := backoff.Retry(ctx, func() (amqp.Delivery, error) {
		m, ok, err := c.ch.Get(p.cfg.lastQueue(), false)
		switch {
		case err != nil:
			return m, backoff.Permanent(fmt.Errorf("rabbitbroker: read the offset: %w", err))
		case !ok:
			return m, errNoOffset
		}
		return m, nil
	}, backoff.WithBackOff(backoff.NewConstantBackOff(20*time.Millisecond)), backoff.WithMaxTries(3))
	if errors.Is(err, errNoOffset) {
		p.last = 0
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	// Should the nack be lost, the channel is gone and the broker puts the
	// offset back itself.
	_ = m.Nack(false, true)
	seq, err := strconv.ParseInt(string(m.Body), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("rabbitbroker: the offset in %s is not a sequence (%q)", p.cfg.lastQueue(), m.Body)
	}
	p.last = seq
	return seq, nil
}

// Publish sends the events on one channel, then waits for every
// confirmation, then stores the offset and waits for it too.
func (p *Publisher) Publish(ctx context.Context, after int64, events []broker.Event) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(events) == 0 {
		return nil
	}
	if after != p.last {
		return fmt.Errorf("rabbitbroker: asked to publish after %d, but the offset read is %d (-1: read Last first)", after, p.last)
	}
	p.last = -1 // until the offset is stored
	c, err := p.ch.get()
	if err != nil {
		return err
	}
	var sent []*pending
	send := func(key, id string, data []byte) error {
		s, err := c.publish(p.cfg.Exchange, key, true, amqp.Publishing{ContentType: "application/json",
			DeliveryMode: amqp.Persistent, MessageId: id, Body: data})
		if err == nil {
			sent = append(sent, s)
		}
		return err
	}
	for _, e := range events {
		seq := strconv.FormatInt(e.Seq, 10)
		if err := send(p.cfg.eventKey(e.ProductID), seq, e.Data); err != nil {
			return fmt.Errorf("rabbitbroker: publish event %d: %w", e.Seq, err)
		}
		if e.Alert {
			if err := send(p.cfg.alertKey(e.ProductID), "alert-"+seq, e.Data); err != nil {
				return fmt.Errorf("rabbitbroker: publish alert %d: %w", e.Seq, err)
			}
		}
	}
	for i, s := range sent {
		if err := s.wait(ctx); err != nil {
			return fmt.Errorf("rabbitbroker: message %d of %d: %w", i+1, len(sent), err)
		}
	}
	newest := events[len(events)-1].Seq
	s, err := c.publish("", p.cfg.lastQueue(), true, amqp.Publishing{DeliveryMode: amqp.Persistent,
		Body: []byte(strconv.FormatInt(newest, 10))})
	if err == nil {
		err = s.wait(ctx)
	}
	if err != nil {
		return fmt.Errorf("rabbitbroker: store the offset %d: %w", newest, err)
	}
	p.last = newest
	return nil
}

// Ping reports whether the broker answers: it dials when the publisher
// has no connection (as on a replica that does not publish).
func (p *Publisher) Ping() error {
	_, err := p.link.connection()
	return err
}

// ConfigFor names everything after prefix, as the server does: exchange
// PREFIX.events, queues PREFIX.events, PREFIX.commands, PREFIX.outcomes
// and PREFIX.commands.dead.
func ConfigFor(url, prefix string, retry []time.Duration) Config {
	return Config{URL: url, Exchange: prefix + ".events", EventsQueue: prefix + ".events", CommandQueue: prefix + ".commands",
		OutcomeQueue: prefix + ".outcomes", DeadQueue: prefix + ".commands.dead", Retry: retry}
}

// Queues lists every queue c declares (not the reply queues clients name).
func (c Config) Queues() []string {
	c, _ = c.withDefaults()
	q := []string{c.lastQueue(), c.CommandQueue, c.OutcomeQueue, c.DeadQueue}
	if c.hasEventsQueue() {
		q = append(q, c.EventsQueue)
	}
	for n := range c.Retry {
		q = append(q, c.retryQueue(n+1))
	}
	return q
}
