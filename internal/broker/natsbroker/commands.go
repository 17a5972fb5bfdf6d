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
	"github.com/shopstack/inventory/internal/retry"
)

// Commands in, on two more streams:
//
//   - STREAM_COMMANDS holds PREFIX.command, a work queue: a command leaves
//     it when the consumer acknowledges it, which it does only after the
//     outcome is stored.
//   - STREAM_OUTCOMES holds PREFIX.outcome.<replyTo> (default
//     PREFIX.outcome.default) and the dead letters, PREFIX.dead, for
//     OutcomeMaxAge.
//
// A transient failure is negatively acknowledged with the retry's delay.
// A command whose consumer dies comes again after AckWait, and the durable
// consumer's MaxDeliver stops one that kills its consumer every time.

// Headers of a dead letter.
const (
	HeaderDeadReason = "Inventory-Dead-Reason"
	HeaderAttempts   = "Inventory-Attempts"
)

// Streams lists the streams c names: the events', the commands' and the
// outcomes'.
func (c Config) Streams() []string {
	c = c.withDefaults()
	return []string{c.Stream, c.commandStream(), c.outcomeStream()}
}

func (c Config) commandStream() string  { return c.Stream + "_COMMANDS" }
func (c Config) outcomeStream() string  { return c.Stream + "_OUTCOMES" }
func (c Config) commandSubject() string { return c.Prefix + ".command" }
func (c Config) deadSubject() string    { return c.Prefix + ".dead" }

// OutcomeSubject is where the outcome of a command with replyTo goes: a
// subject under PREFIX.outcome; an empty or unusable replyTo means
// PREFIX.outcome.default.
func (c Config) OutcomeSubject(replyTo string) string {
	if replyTo == "" || strings.ContainsAny(replyTo, "*> \t\r\n") || strings.HasPrefix(replyTo, ".") ||
		strings.HasSuffix(replyTo, ".") || strings.Contains(replyTo, "..") {
		replyTo = "default"
	}
	return c.Prefix + ".outcome." + replyTo
}

// ensureCommandStreams creates (or updates) the command and outcome
// streams.
func ensureCommandStreams(ctx context.Context, js jetstream.JetStream, cfg Config) (jetstream.Stream, error) {
	st, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name: cfg.commandStream(), Subjects: []string{cfg.commandSubject()}, Retention: jetstream.WorkQueuePolicy,
		Storage: jetstream.FileStorage, Duplicates: cfg.Duplicates,
	})
	if err != nil {
		return nil, fmt.Errorf("natsbroker: stream %s: %w", cfg.commandStream(), err)
	}
	if _, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name: cfg.outcomeStream(), Subjects: []string{cfg.Prefix + ".outcome.>", cfg.deadSubject()},
		Storage: jetstream.FileStorage, Duplicates: cfg.Duplicates, MaxAge: cfg.OutcomeMaxAge,
	}); err != nil {
		return nil, fmt.Errorf("natsbroker: stream %s: %w", cfg.outcomeStream(), err)
	}
	return st, nil
}

// Commands consumes commands from JetStream.
type Commands struct {
	js  jetstream.JetStream
	cfg Config
}

var _ broker.CommandSource = (*Commands)(nil)

// NewCommands returns the command source on nc's server; like New, it
// needs the server only when Consume runs.
func NewCommands(nc *nats.Conn, cfg Config) (*Commands, error) {
	cfg = cfg.withDefaults()
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, err
	}
	return &Commands{js: js, cfg: cfg}, nil
}

// Consume pulls commands through the durable consumer and carries out
// each Disposition, at most inFlight at once.
func (c *Commands) Consume(ctx context.Context, inFlight int, handle func(context.Context, broker.Delivery) broker.Disposition) error {
	st, err := ensureCommandStreams(ctx, c.js, c.cfg)
	if err != nil {
		return err
	}
	// MaxDeliver stops a command one delivery past what the consumer
	// would try (which dead-letters it then): a command whose consumer
	// dies every time is not delivered for ever. (BackOff is not used: it
	// replaces the delay of a negative acknowledgement on some servers.)
	cons, err := st.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{
		Durable: c.cfg.Consumer, AckPolicy: jetstream.AckExplicitPolicy, AckWait: c.cfg.AckWait,
		MaxDeliver: len(c.cfg.Retry) + 3, MaxAckPending: 2 * inFlight,
	})
	if err != nil {
		return fmt.Errorf("natsbroker: consumer %s: %w", c.cfg.Consumer, err)
	}
	// Pulls last 5 s with a heartbeat every second: after a broker restart
	// the consumer notices within seconds and pulls again.
	msgs, err := cons.Messages(jetstream.PullMaxMessages(inFlight), jetstream.PullExpiry(5*time.Second), jetstream.PullHeartbeat(time.Second))
	if err != nil {
		return err
	}
	stopped := make(chan struct{})
	go func() {
		select {
		case <-ctx.Done():
		case <-stopped:
		}
		msgs.Stop()
	}()
	sem := make(chan struct{}, inFlight)
	var wg sync.WaitGroup
	defer func() {
		close(stopped)
		wg.Wait()
	}()
	for {
		msg, err := msgs.Next()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			c.handle(ctx, msg, handle)
		})
	}
}

func (c *Commands) handle(ctx context.Context, msg jetstream.Msg, handle func(context.Context, broker.Delivery) broker.Disposition) {
	meta, err := msg.Metadata()
	if err != nil {
		_ = msg.Term() // not a JetStream message
		return
	}
	d := broker.Delivery{Data: msg.Data(), Attempt: int(meta.NumDelivered), Header: map[string]string{}}
	for k, v := range msg.Headers() {
		if len(v) > 0 {
			d.Header[strings.ToLower(k)] = v[0]
		}
	}
	// While it runs, the command is kept in progress, so AckWait can be
	// short: it is how long a command waits when its consumer died.
	running := make(chan struct{})
	go func() {
		t := time.NewTicker(c.cfg.AckWait / 3)
		defer t.Stop()
		for {
			select {
			case <-running:
				return
			case <-t.C:
				_ = msg.InProgress()
			}
		}
	}()
	defer close(running)
	disp := handle(ctx, d)
	// The disposition is carried out even when the consumer is stopping:
	// what was decided is stored, or the command comes again.
	pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if disp.Retry {
		settle(pctx, c.cfg.AckWait, func(context.Context) error { return msg.NakWithDelay(disp.Delay) })
		return
	}
	if err := c.publish(pctx, disp, d, meta.Sequence.Stream); err != nil {
		settle(pctx, c.cfg.AckWait, func(context.Context) error { return msg.NakWithDelay(time.Second) })
		return
	}
	settle(pctx, c.cfg.AckWait, msg.DoubleAck)
}

// settle acknowledges (or not) a command, again while the connection is
// away, for up to within: after that the broker delivers the command again
// anyway (and the rerun is a replay).
func settle(ctx context.Context, within time.Duration, ack func(context.Context) error) {
	ctx, cancel := context.WithTimeout(ctx, within)
	defer cancel()
	_ = retry.Forever(ctx, retry.Doubling(50*time.Millisecond, time.Second), func() error {
		actx, acancel := context.WithTimeout(ctx, time.Second)
		defer acancel()
		return ack(actx)
	}, nil)
}

// publish stores the dead letter and the outcome. Their message IDs carry
// the command message's stream sequence, so a redelivery after a lost
// acknowledgement stores nothing twice, and a command deliberately sent
// again is answered again.
func (c *Commands) publish(ctx context.Context, disp broker.Disposition, d broker.Delivery, streamSeq uint64) error {
	id := strconv.FormatUint(streamSeq, 10)
	if disp.Dead != nil {
		h := nats.Header{}
		h.Set(HeaderDeadReason, disp.Dead.Reason)
		h.Set(HeaderAttempts, strconv.Itoa(disp.Dead.Attempts))
		if _, err := c.js.PublishMsg(ctx, &nats.Msg{Subject: c.cfg.deadSubject(), Data: disp.Dead.Data, Header: h},
			jetstream.WithMsgID("dead-"+id)); err != nil {
			return err
		}
	}
	if disp.Outcome != nil {
		h := nats.Header{"Content-Type": []string{"application/json"}}
		if _, err := c.js.PublishMsg(ctx, &nats.Msg{Subject: c.cfg.OutcomeSubject(disp.ReplyTo), Data: disp.Outcome, Header: h},
			jetstream.WithMsgID("outcome-"+id)); err != nil {
			return err
		}
	}
	return nil
}
