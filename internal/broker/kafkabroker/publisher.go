package kafkabroker

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/shopstack/inventory/internal/broker"
)

// Publisher publishes events to Kafka in transactions.
type Publisher struct {
	cfg    Config
	topics *topics

	mu   sync.Mutex
	cl   *kgo.Client // the transactional producer; nil until Last, and after a failure
	last int64       // the checkpoint as Last read it or Publish left it

	pingOnce sync.Once
	pinger   *kgo.Client
	pingErr  error
}

var _ broker.Publisher = (*Publisher)(nil)

// New returns a publisher to cfg's cluster. It does not need the cluster
// yet: Last connects (and creates the topics).
func New(cfg Config) (*Publisher, error) {
	cfg = cfg.withDefaults()
	if err := cfg.Check(); err != nil {
		return nil, err
	}
	return &Publisher{cfg: cfg, topics: newTopics(cfg)}, nil
}

// Close ends the producer.
func (p *Publisher) Close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.drop()
	if p.pinger != nil {
		p.pinger.Close()
	}
}

// Ping reports whether a broker of the cluster answers, within 2 s.
func (p *Publisher) Ping(ctx context.Context) error {
	p.pingOnce.Do(func() { p.pinger, p.pingErr = kgo.NewClient(p.cfg.opts()...) })
	if p.pingErr != nil {
		return p.pingErr
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	return p.pinger.Ping(ctx)
}

func (p *Publisher) drop() {
	if p.cl != nil {
		p.cl.Close()
		p.cl = nil
	}
}

// Last starts a new transactional producer, which fences every earlier
// one with the deployment's transactional ID and aborts its open
// transaction, and then reads the last committed checkpoint.
func (p *Publisher) Last(ctx context.Context) (int64, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.drop()
	cl, err := kgo.NewClient(append(p.cfg.opts(), kgo.TransactionalID(p.cfg.transactionalID()),
		kgo.TransactionTimeout(30*time.Second), kgo.ProducerLinger(0),
		kgo.RecordDeliveryTimeout(30*time.Second))...)
	if err != nil {
		return 0, err
	}
	if err := p.topics.ensure(ctx, cl, p.cfg.stockTopic(), p.cfg.alertTopic(), p.cfg.checkpointTopic()); err != nil {
		cl.Close()
		return 0, err
	}
	if _, _, err := cl.ProducerID(ctx); err != nil {
		cl.Close()
		return 0, fmt.Errorf("kafkabroker: initialize the producer %s: %w", p.cfg.transactionalID(), err)
	}
	last, err := readCheckpoint(ctx, p.cfg, cl)
	if err != nil {
		cl.Close()
		return 0, err
	}
	p.cl, p.last = cl, last
	return last, nil
}

// Publish sends events, their alerts' copies and the checkpoint in one
// transaction, and returns when it is committed. On any failure the
// transaction is aborted and the producer dropped: the next Last starts
// again from what the topics hold.
func (p *Publisher) Publish(ctx context.Context, after int64, events []broker.Event) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cl == nil {
		return errors.New("kafkabroker: publish before Last")
	}
	if after != p.last {
		return fmt.Errorf("kafkabroker: asked to publish after %d, but the checkpoint is %d", after, p.last)
	}
	if len(events) == 0 {
		return nil
	}
	records := make([]*kgo.Record, 0, len(events)+1)
	for _, e := range events {
		seq, product := strconv.FormatInt(e.Seq, 10), []byte(strconv.FormatInt(e.ProductID, 10))
		records = append(records, eventRecord(p.cfg.stockTopic(), product, seq, seq, e.Data))
		if e.Alert {
			records = append(records, eventRecord(p.cfg.alertTopic(), product, seq, "alert-"+seq, e.Data))
		}
	}
	last := events[len(events)-1].Seq
	records = append(records, &kgo.Record{Topic: p.cfg.checkpointTopic(), Key: []byte("last"), Value: []byte(strconv.FormatInt(last, 10))})
	if err := p.transact(ctx, records); err != nil {
		p.drop()
		return err
	}
	p.last = last
	return nil
}

func eventRecord(topic string, key []byte, seq, id string, data []byte) *kgo.Record {
	return &kgo.Record{Topic: topic, Key: key, Value: data, Headers: []kgo.RecordHeader{
		{Key: "content-type", Value: []byte("application/json")},
		{Key: HeaderSequence, Value: []byte(seq)},
		{Key: HeaderMessageID, Value: []byte(id)},
	}}
}

func (p *Publisher) transact(ctx context.Context, records []*kgo.Record) error {
	if err := p.cl.BeginTransaction(); err != nil {
		return err
	}
	if err := p.cl.ProduceSync(ctx, records...).FirstErr(); err != nil {
		actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = p.cl.EndTransaction(actx, kgo.TryAbort)
		return fmt.Errorf("kafkabroker: %d records, one refused: %w", len(records), err)
	}
	if err := p.cl.EndTransaction(ctx, kgo.TryCommit); err != nil {
		return fmt.Errorf("kafkabroker: commit %d records: %w", len(records), err)
	}
	return nil
}

// readCheckpoint returns the value of the last committed checkpoint
// record, or 0 when there is none.
func readCheckpoint(ctx context.Context, cfg Config, cl *kgo.Client) (int64, error) {
	v, ok, err := lastCommitted(ctx, cfg, cl, cfg.checkpointTopic(), 0)
	if err != nil || !ok {
		return 0, err
	}
	seq, err := strconv.ParseInt(string(v), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("kafkabroker: checkpoint %q is not a sequence", v)
	}
	return seq, nil
}

// lastCommitted reads the value of the last committed record of a
// partition: it reads read_committed, control records kept, from a window
// below the last stable offset, widening the window until it holds a
// data record or reaches the log's start.
//
// The record just below the last stable offset is a transaction marker
// or a record written outside a transaction, never an aborted record (its
// abort marker would come after it), so a read that returns it has read
// the whole window.
func lastCommitted(ctx context.Context, cfg Config, cl *kgo.Client, topic string, partition int32) ([]byte, bool, error) {
	adm := kadm.NewClient(cl)
	starts, err := adm.ListStartOffsets(ctx, topic)
	if err != nil {
		return nil, false, fmt.Errorf("kafkabroker: %s start: %w", topic, err)
	}
	ends, err := adm.ListCommittedOffsets(ctx, topic)
	if err != nil {
		return nil, false, fmt.Errorf("kafkabroker: %s end: %w", topic, err)
	}
	s, _ := starts.Lookup(topic, partition)
	e, _ := ends.Lookup(topic, partition)
	if s.Err != nil || e.Err != nil {
		return nil, false, fmt.Errorf("kafkabroker: %s offsets: %w", topic, errors.Join(s.Err, e.Err))
	}
	start, end := s.Offset, e.Offset
	for window := int64(16); ; window *= 8 {
		if end <= start {
			return nil, false, nil
		}
		from := max(start, end-window)
		v, ok, err := readRange(ctx, cfg, topic, partition, from, end)
		if err != nil || ok || from == start {
			return v, ok, err
		}
	}
}

// readRange returns the value of the last committed data record in
// [from, end) of a partition.
func readRange(ctx context.Context, cfg Config, topic string, partition int32, from, end int64) ([]byte, bool, error) {
	rd, err := kgo.NewClient(append(cfg.opts(),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {partition: kgo.NewOffset().At(from)}}),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.KeepControlRecords(), kgo.FetchMaxWait(100*time.Millisecond))...)
	if err != nil {
		return nil, false, err
	}
	defer rd.Close()
	var value []byte
	found := false
	// A window whose last record was removed (compaction) ends on a read
	// that returns nothing new.
	idle := 0
	for idle < 5 {
		pctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
		fs := rd.PollFetches(pctx)
		cancel()
		if ctx.Err() != nil {
			return nil, false, ctx.Err()
		}
		for _, fe := range fs.Errors() {
			if !errors.Is(fe.Err, context.DeadlineExceeded) {
				return nil, false, fmt.Errorf("kafkabroker: read %s[%d]: %w", topic, partition, fe.Err)
			}
		}
		if fs.NumRecords() == 0 {
			idle++
			continue
		}
		idle = 0
		done := false
		fs.EachRecord(func(r *kgo.Record) {
			if r.Offset >= end {
				done = true
				return
			}
			if !r.Attrs.IsControl() {
				value, found = r.Value, true
			}
			if r.Offset == end-1 {
				done = true
			}
		})
		if done {
			break
		}
	}
	return value, found, nil
}
