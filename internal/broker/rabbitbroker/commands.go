package rabbitbroker

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"sync"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/shopstack/inventory/internal/broker"
)

// Commands in:
//
//   - CommandQueue is a quorum queue, so a command delivered to a consumer
//     that dies is delivered again with x-delivery-count, which counts as
//     an attempt. Its dead-letter target is DeadQueue, for the messages
//     the broker itself gives up on (a delivery limit, where one is set).
//   - A retry waits in CommandQueue.retry.<n>, whose message TTL is the
//     n-th delay of Config.Retry and whose dead-letter target is the
//     command queue: the expired copy comes back as a new message, with
//     HeaderAttempt saying which attempt it is.
//   - Outcomes go to the queue a command names in replyTo, if it exists
//     (and is not one of the adapter's own), else to OutcomeQueue; dead
//     letters to DeadQueue, with HeaderDeadReason and HeaderAttempts.
//
// What a disposition publishes is confirmed before the command is
// acknowledged; if it cannot be, the command is put back (nack with
// requeue) and runs again, which the service's idempotency makes a replay.

// Headers the adapter sets.
const (
	// HeaderAttempt is the attempt a message's first delivery is (absent:
	// 1), set on a retry's copy.
	HeaderAttempt = "x-inventory-attempt"
	// HeaderDeadReason and HeaderAttempts describe a dead letter.
	HeaderDeadReason = "x-inventory-dead-reason"
	HeaderAttempts   = "x-inventory-attempts"
)

// declareCommands declares the command queue, the retry queues, the
// dead-letter queue and the default outcome queue, idempotently.
func declareCommands(conn *amqp.Connection, cfg Config) error {
	return declare(conn, func(ch *amqp.Channel) error {
		queues := []struct {
			name string
			args amqp.Table
		}{
			{cfg.CommandQueue, amqp.Table{"x-queue-type": "quorum", "x-dead-letter-exchange": "", "x-dead-letter-routing-key": cfg.DeadQueue}},
			{cfg.DeadQueue, nil},
			{cfg.OutcomeQueue, nil},
		}
		for i, d := range cfg.Retry {
			queues = append(queues, struct {
				name string
				args amqp.Table
			}{cfg.retryQueue(i + 1), amqp.Table{"x-message-ttl": d.Milliseconds(), "x-dead-letter-exchange": "",
				"x-dead-letter-routing-key": cfg.CommandQueue}})
		}
		for _, q := range queues {
			if _, err := ch.QueueDeclare(q.name, true, false, false, false, q.args); err != nil {
				return fmt.Errorf("queue %s: %w", q.name, err)
			}
		}
		return nil
	})
}

// Commands consumes commands from the command queue.
type Commands struct {
	cfg  Config
	link *link
}

var _ broker.CommandSource = (*Commands)(nil)

// NewCommands returns the command source; like New, it dials when Consume
// runs.
func NewCommands(cfg Config) (*Commands, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	return &Commands{cfg: cfg, link: newLink(cfg.URL, "inventory commands")}, nil
}

// Close closes the connection; a Consume running returns an error.
func (c *Commands) Close() error { return c.link.close() }

const consumerTag = "inventory-commands" // one consumer per channel

// Consume receives commands with a prefetch of inFlight and runs each in
// a goroutine of its own, at most inFlight at once. It returns nil when
// ctx ends and an error when the connection or a channel fails, or a
// disposition could not be carried out (the caller consumes again, after
// a backoff); in every case once the commands being handled are done.
func (c *Commands) Consume(ctx context.Context, inFlight int, handle func(context.Context, broker.Delivery) broker.Disposition) error {
	inFlight = min(max(inFlight, 1), math.MaxUint16)
	conn, err := c.link.connection()
	if err != nil {
		return err
	}
	if err := declareCommands(conn, c.cfg); err != nil {
		return err
	}
	pub, err := openConfirmer(conn)
	if err != nil {
		return err
	}
	defer pub.close()
	ch, deliveries, closes, err := c.subscribe(conn, inFlight)
	if err != nil {
		return err
	}
	// Closing the channel puts back the commands received and not handled.
	defer func() { _ = ch.Close() }()
	sem := make(chan struct{}, inFlight)
	failed := make(chan error, 1)
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		select {
		case <-ctx.Done():
			_ = ch.Cancel(consumerTag, false) // nothing more; the channel's close does the rest
			return nil
		case err := <-failed:
			return err
		case <-pub.done:
			return pub.err
		case m, ok := <-deliveries:
			if !ok {
				if e, ok := <-closes; ok && e != nil {
					return fmt.Errorf("rabbitbroker: consume %s: %w", c.cfg.CommandQueue, e)
				}
				return fmt.Errorf("rabbitbroker: consume %s: the channel closed", c.cfg.CommandQueue)
			}
			sem <- struct{}{} // never blocks long: the prefetch bounds what is held
			wg.Go(func() {
				defer func() { <-sem }()
				if err := c.handle(ctx, pub, m, handle); err != nil {
					select {
					case failed <- err:
					default:
					}
				}
			})
		}
	}
}

// subscribe opens a channel consuming the command queue with a prefetch
// of inFlight.
func (c *Commands) subscribe(conn *amqp.Connection, inFlight int) (*amqp.Channel, <-chan amqp.Delivery, <-chan *amqp.Error, error) {
	ch, err := conn.Channel()
	if err != nil {
		return nil, nil, nil, fmt.Errorf("rabbitbroker: open a channel: %w", err)
	}
	closes := ch.NotifyClose(make(chan *amqp.Error, 1))
	err = ch.Qos(inFlight, 0, false)
	var deliveries <-chan amqp.Delivery
	if err == nil {
		deliveries, err = ch.Consume(c.cfg.CommandQueue, consumerTag, false, false, false, false, nil)
	}
	if err != nil {
		_ = ch.Close()
		return nil, nil, nil, fmt.Errorf("rabbitbroker: consume %s: %w", c.cfg.CommandQueue, err)
	}
	return ch, deliveries, closes, nil
}

// handle runs one command and carries out its disposition, even when ctx
// has ended: what was decided is stored, or the command comes again.
func (c *Commands) handle(ctx context.Context, pub *confirmer, m amqp.Delivery, handle func(context.Context, broker.Delivery) broker.Disposition) error {
	d := broker.Delivery{Data: m.Body, Header: stringHeaders(m.Headers), Attempt: attempt(m.Headers)}
	disp := handle(ctx, d)
	pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := c.carryOut(pctx, pub, m, d, disp); err != nil {
		_ = m.Nack(false, true) // lost with the channel, which puts it back too
		return fmt.Errorf("rabbitbroker: command %q: %w", disp.CommandID, err)
	}
	_ = m.Ack(false) // lost with the channel: delivered again, and replayed
	return nil
}

func (c *Commands) carryOut(ctx context.Context, pub *confirmer, m amqp.Delivery, d broker.Delivery, disp broker.Disposition) error {
	if disp.Retry {
		h := copyHeaders(m.Headers)
		h[HeaderAttempt] = int64(d.Attempt + 1)
		q := c.cfg.retryQueue(c.retryStep(d.Attempt, disp.Delay))
		return confirm(ctx, pub, q, amqp.Publishing{Headers: h, ContentType: m.ContentType, DeliveryMode: amqp.Persistent,
			MessageId: m.MessageId, CorrelationId: m.CorrelationId, ReplyTo: m.ReplyTo, Timestamp: m.Timestamp,
			Type: m.Type, AppId: m.AppId, Body: m.Body})
	}
	if disp.Dead != nil {
		h := copyHeaders(m.Headers)
		delete(h, HeaderAttempt)
		h[HeaderDeadReason], h[HeaderAttempts] = disp.Dead.Reason, int64(disp.Dead.Attempts)
		if err := confirm(ctx, pub, c.cfg.DeadQueue, amqp.Publishing{Headers: h, ContentType: m.ContentType,
			DeliveryMode: amqp.Persistent, MessageId: disp.CommandID, Body: disp.Dead.Data}); err != nil {
			return fmt.Errorf("dead letter: %w", err)
		}
	}
	if disp.Outcome == nil {
		return nil
	}
	out := amqp.Publishing{ContentType: "application/json", DeliveryMode: amqp.Persistent, MessageId: disp.CommandID, Body: disp.Outcome}
	if c.replyQueue(disp.ReplyTo) {
		err := confirm(ctx, pub, disp.ReplyTo, out)
		if !errors.Is(err, errUnroutable) {
			return err
		}
		// No such queue: the default one.
	}
	if err := confirm(ctx, pub, c.cfg.OutcomeQueue, out); err != nil {
		return fmt.Errorf("outcome: %w", err)
	}
	return nil
}

// confirm publishes to queue through the default exchange, mandatory, and
// waits for the confirmation.
func confirm(ctx context.Context, pub *confirmer, queue string, msg amqp.Publishing) error {
	s, err := pub.publish("", queue, true, msg)
	if err != nil {
		return err
	}
	return s.wait(ctx)
}

// retryStep is the retry queue (1-based) for a retry of attempt after
// delay: the shortest delay not below it, the attempt's own among equals;
// the longest when all are shorter. With no retry queue, the copy is
// returned unroutable and the command put back.
func (c *Commands) retryStep(attempt int, delay time.Duration) int {
	r := c.cfg.Retry
	best := 1
	for i := 1; i < len(r); i++ {
		d, b := r[i], r[best-1]
		switch {
		case (d >= delay) != (b >= delay):
			if d >= delay {
				best = i + 1
			}
		case d >= delay:
			if d < b || d == b && i+1 == attempt {
				best = i + 1
			}
		case d > b:
			best = i + 1
		}
	}
	return best
}

// replyQueue reports whether an outcome may go to the queue a command
// names: not a name of the adapter's own (a command must not write into
// the commands, the events or the offset).
func (c *Commands) replyQueue(q string) bool {
	if q == "" || len(q) > 255 {
		return false
	}
	cfg := c.cfg
	own := q == cfg.CommandQueue || q == cfg.DeadQueue || q == cfg.lastQueue() ||
		cfg.hasEventsQueue() && q == cfg.EventsQueue || strings.HasPrefix(q, cfg.CommandQueue+".retry.")
	return !own
}

// attempt is HeaderAttempt (or 1) plus the redeliveries the quorum queue
// counted.
func attempt(h amqp.Table) int {
	n := int64(1)
	if v, ok := intHeader(h[HeaderAttempt]); ok && v > 1 {
		n = v
	}
	if v, ok := intHeader(h["x-delivery-count"]); ok && v > 0 {
		n += v
	}
	return int(min(n, math.MaxInt32))
}

func intHeader(v any) (int64, bool) {
	switch x := v.(type) {
	case int8:
		return int64(x), true
	case int16:
		return int64(x), true
	case int32:
		return int64(x), true
	case int64:
		return x, true
	case int:
		return int64(x), true
	case uint8:
		return int64(x), true
	case uint16:
		return int64(x), true
	case uint32:
		return int64(x), true
	case string:
		n, err := strconv.ParseInt(x, 10, 64)
		return n, err == nil
	}
	return 0, false
}

// stringHeaders is the headers whose values are strings (the trace
// context among them).
func stringHeaders(h amqp.Table) map[string]string {
	out := make(map[string]string, len(h))
	for k, v := range h {
		switch s := v.(type) {
		case string:
			out[k] = s
		case []byte:
			out[k] = string(s)
		}
	}
	return out
}

// copyHeaders copies a command's headers but those the broker sets, which
// a new message must not carry.
func copyHeaders(h amqp.Table) amqp.Table {
	out := make(amqp.Table, len(h)+2)
	for k, v := range h {
		if k == "x-delivery-count" || k == "x-death" || strings.HasPrefix(k, "x-first-death-") || strings.HasPrefix(k, "x-last-death-") {
			continue
		}
		out[k] = v
	}
	return out
}
