package kafkabroker

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/shopstack/inventory/internal/broker"
)

// Client is an order service's side: it sends commands and reads their
// outcomes, the dead letters and the events, as any Kafka client would.
type Client struct {
	cfg    Config
	topics *topics

	once sync.Once
	prod *kgo.Client // set once by producer
	err  error
}

// NewClient returns a client of cfg's cluster.
func NewClient(cfg Config) *Client {
	cfg = cfg.withDefaults()
	return &Client{cfg: cfg, topics: newTopics(cfg)}
}

func (c *Client) producer(ctx context.Context) (*kgo.Client, error) {
	c.once.Do(func() {
		c.prod, c.err = kgo.NewClient(append(c.cfg.opts(), kgo.ProducerLinger(time.Millisecond))...)
		if c.err == nil {
			c.err = c.topics.ensure(ctx, c.prod, c.cfg.commandTopic(), c.cfg.deadTopic(), c.cfg.OutcomeTopic(""))
		}
	})
	return c.prod, c.err
}

// Close ends the client's producer; readers end with their contexts.
func (c *Client) Close() {
	c.once.Do(func() { c.err = errors.New("kafkabroker: client closed") }) // no producer after Close
	if c.prod != nil {
		c.prod.Close()
	}
}

// Send stores a command (CommandSchemaV1 JSON) in the command topic,
// with header as record headers (the trace context among them), and
// returns when the cluster has it.
func (c *Client) Send(ctx context.Context, data []byte, header map[string]string) error {
	return c.SendKeyed(ctx, nil, data, header)
}

// SendKeyed is Send with a record key: commands with one key (a product's
// ID, an order's) stay in one partition, in order.
func (c *Client) SendKeyed(ctx context.Context, key, data []byte, header map[string]string) error {
	prod, err := c.producer(ctx)
	if err != nil {
		return err
	}
	return prod.ProduceSync(ctx, c.record(key, data, header)).FirstErr()
}

// SendAsync stores a command without waiting; done is called with the
// outcome of the write.
func (c *Client) SendAsync(ctx context.Context, key, data []byte, header map[string]string, done func(error)) error {
	prod, err := c.producer(ctx)
	if err != nil {
		return err
	}
	prod.Produce(ctx, c.record(key, data, header), func(_ *kgo.Record, err error) { done(err) })
	return nil
}

func (c *Client) record(key, data []byte, header map[string]string) *kgo.Record {
	r := &kgo.Record{Topic: c.cfg.commandTopic(), Key: key, Value: data,
		Headers: []kgo.RecordHeader{{Key: "content-type", Value: []byte("application/json")}}}
	for k, v := range header {
		r.Headers = append(r.Headers, kgo.RecordHeader{Key: k, Value: []byte(v)})
	}
	return r
}

// Outcomes delivers the outcomes stored for replyTo (see
// Config.OutcomeTopic), from the first kept, until ctx ends.
func (c *Client) Outcomes(ctx context.Context, replyTo string) (<-chan []byte, error) {
	ch := make(chan []byte, 1024)
	err := c.read(ctx, []string{c.cfg.OutcomeTopic(replyTo)}, func() { close(ch) }, func(r *kgo.Record) bool {
		return send(ctx, ch, r.Value)
	})
	return ch, err
}

// send delivers v unless ctx ends first.
func send[T any](ctx context.Context, ch chan<- T, v T) bool {
	select {
	case ch <- v:
		return true
	case <-ctx.Done():
		return false
	}
}

// DeadLetters delivers the dead letters, from the first kept, until ctx
// ends.
func (c *Client) DeadLetters(ctx context.Context) (<-chan broker.DeadLetter, error) {
	ch := make(chan broker.DeadLetter, 64)
	err := c.read(ctx, []string{c.cfg.deadTopic()}, func() { close(ch) }, func(r *kgo.Record) bool {
		n, _ := strconv.Atoi(header(r, HeaderAttempts))
		return send(ctx, ch, broker.DeadLetter{Data: r.Value, Reason: header(r, HeaderDeadReason), Attempts: n})
	})
	return ch, err
}

// Event is an event record as a consumer reads it.
type Event struct {
	// Alert is true for the copy on the alerts topic.
	Alert bool
	// ID is HeaderMessageID; Seq the ledger sequence.
	ID        string
	Seq       int64
	Partition int32
	Data      []byte
}

// Events delivers the events and alerts committed, from the first kept,
// until ctx ends, in each partition's order (read_committed).
func (c *Client) Events(ctx context.Context) (<-chan Event, error) {
	ch := make(chan Event, 4096)
	err := c.read(ctx, []string{c.cfg.stockTopic(), c.cfg.alertTopic()}, func() { close(ch) }, func(r *kgo.Record) bool {
		seq, _ := strconv.ParseInt(header(r, HeaderSequence), 10, 64)
		return send(ctx, ch, Event{Alert: r.Topic == c.cfg.alertTopic(), ID: header(r, HeaderMessageID), Seq: seq, Partition: r.Partition, Data: r.Value})
	})
	return ch, err
}

// read consumes topics from their start, read_committed, outside any
// group, handing each record to fn until ctx ends (or fn returns false);
// then it calls done.
func (c *Client) read(ctx context.Context, topics []string, done func(), fn func(*kgo.Record) bool) error {
	if _, err := c.producer(ctx); err != nil {
		return err
	}
	cl, err := kgo.NewClient(append(c.cfg.opts(), kgo.ConsumeTopics(topics...), kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(250*time.Millisecond),
		kgo.MetadataMinAge(250*time.Millisecond))...)
	if err != nil {
		return err
	}
	go func() {
		defer done()
		defer cl.Close()
		for {
			fs := cl.PollFetches(ctx)
			if ctx.Err() != nil || fs.IsClientClosed() {
				return
			}
			for it := fs.RecordIter(); !it.Done(); {
				if !fn(it.Next()) {
					return
				}
			}
		}
	}()
	return nil
}
