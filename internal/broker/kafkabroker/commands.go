package kafkabroker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/shopstack/inventory/internal/broker"
	"github.com/shopstack/inventory/internal/retry"
)

// Commands in:
//
//   - PREFIX.commands is read by the consumer group (Config.Group); each
//     replica handles the records of its partitions, many at once, and
//     commits a partition's offset only past records whose outcome (or
//     retry, or dead letter) the cluster has acknowledged.
//   - A transient failure is not retried in place, which would hold the
//     partition: the command is copied to PREFIX.commands.retry.<n> with
//     HeaderAttempt and HeaderDue, and the original is committed. The
//     group reads the retry topics too, and holds a retry partition
//     (paused, the waiting records in memory) until its first record is
//     due. Each retry topic has one delay, so its records come due in
//     order.
//   - Outcomes go to Config.OutcomeTopic(replyTo), keyed by command ID;
//     dead letters to PREFIX.commands.dead, with HeaderDeadReason and
//     HeaderAttempts.
//
// Kafka does not count deliveries, so the consumer does: a partition's
// committed offset carries metadata "started/redelivered", the highest
// offset a handler started on and how many times the record at the
// committed offset has been delivered again. Both are committed before a
// handler starts on a record beyond them. A replica that takes the
// partition over after a crash counts a record at or below started as
// delivered again, so a command that kills its consumer every time is
// dead-lettered after its attempts, not delivered for ever.
//
// Outcomes are at least once: a crash between an outcome acknowledged and
// its offset committed runs the command again, and the service's
// idempotency makes that run a replay with the same result.

// Commands consumes commands from Kafka.
type Commands struct {
	cfg    Config
	topics *topics
	log    *slog.Logger
}

var _ broker.CommandSource = (*Commands)(nil)

// NewCommands returns the command source on cfg's cluster; it needs the
// cluster only when Consume runs.
func NewCommands(cfg Config, log *slog.Logger) (*Commands, error) {
	cfg = cfg.withDefaults()
	if err := cfg.Check(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Commands{cfg: cfg, topics: newTopics(cfg), log: log}, nil
}

// Consume joins the group and handles its partitions' records, at most
// inFlight at once, until ctx ends (nil) or the cluster fails.
func (c *Commands) Consume(ctx context.Context, inFlight int, handle func(context.Context, broker.Delivery) broker.Disposition) error {
	retries := make([]string, len(c.cfg.Retry))
	for n := range retries {
		retries[n] = c.cfg.retryTopic(n + 1)
	}
	prod, err := kgo.NewClient(append(c.cfg.opts(), kgo.ProducerLinger(0), kgo.RecordDeliveryTimeout(10*time.Second))...)
	if err != nil {
		return err
	}
	defer prod.Close()
	if err := c.topics.ensure(ctx, prod, append([]string{c.cfg.commandTopic(), c.cfg.deadTopic(), c.cfg.OutcomeTopic("")}, retries...)...); err != nil {
		return err
	}
	r := &run{cfg: c.cfg, topics: c.topics, log: c.log, prod: prod, handle: handle, sem: make(chan struct{}, inFlight),
		parts: map[tp]*part{}, failed: make(chan error, 1), wake: make(chan struct{}, 1)}
	r.ctx, r.cancel = context.WithCancel(ctx)
	defer r.cancel()
	cl, err := kgo.NewClient(append(c.cfg.opts(),
		kgo.ConsumerGroup(c.cfg.Group), kgo.ConsumeTopics(append([]string{c.cfg.commandTopic()}, retries...)...),
		kgo.DisableAutoCommit(), kgo.BlockRebalanceOnPoll(), kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(250*time.Millisecond),
		kgo.SessionTimeout(10*time.Second), kgo.RebalanceTimeout(30*time.Second),
		kgo.OnPartitionsAssigned(r.assigned), kgo.OnPartitionsRevoked(r.revoked), kgo.OnPartitionsLost(r.lost))...)
	if err != nil {
		return err
	}
	r.cl = cl
	committed := make(chan struct{})
	go func() { defer close(committed); r.committer() }()
	err = r.poll()
	// Stopping: the handlers running carry out their dispositions, the
	// offsets past them are committed, and the group is left.
	r.handlers.Wait()
	r.cancel()
	<-committed
	r.commit(context.WithoutCancel(ctx))
	cl.Close()
	if ctx.Err() != nil {
		return nil
	}
	return err
}

// tp is a topic partition.
type tp struct {
	topic     string
	partition int32
}

// part is what the consumer knows of one of its partitions.
type part struct {
	mu sync.Mutex
	// next is the offset to commit: every record below it is done (-1
	// until known); committed what was last committed.
	next, committed int64
	// started and redelivered are the metadata (see Commands); metaGen
	// counts their changes, metaSaved the change last committed.
	started, redelivered int64
	metaGen, metaSaved   int
	// firstAgain is the offset delivered again after a takeover (the
	// committed one), -1 if none; again is every offset up to started then.
	firstAgain, again int64
	pending           []int64 // started, not done, ascending
	done              map[int64]bool
	held              []*kgo.Record // retry records waiting until due
	gone              bool          // revoked or lost
	running           sync.WaitGroup
}

type run struct {
	cfg    Config
	topics *topics
	log    *slog.Logger
	cl     *kgo.Client
	prod   *kgo.Client
	handle func(context.Context, broker.Delivery) broker.Disposition
	ctx    context.Context
	cancel context.CancelFunc
	sem    chan struct{}

	mu       sync.Mutex
	parts    map[tp]*part
	handlers sync.WaitGroup
	failed   chan error
	wake     chan struct{} // a partition's next moved
	commitMu sync.Mutex
}

func (r *run) fail(err error) {
	select {
	case r.failed <- err:
	default:
	}
	r.cancel()
}

// poll hands records to handlers until the run ends.
func (r *run) poll() error {
	for {
		// Wait for a free slot, so a poll takes no more than can run.
		select {
		case r.sem <- struct{}{}:
			<-r.sem
		case <-r.ctx.Done():
			return r.failure()
		}
		free := cap(r.sem) - len(r.sem)
		fs := r.cl.PollRecords(r.ctx, max(free, 1))
		if fs.IsClientClosed() || r.ctx.Err() != nil {
			r.cl.AllowRebalance()
			return r.failure()
		}
		for _, fe := range fs.Errors() {
			if errors.Is(fe.Err, context.Canceled) {
				continue
			}
			r.log.Warn("command consumer: fetch failed", "topic", fe.Topic, "partition", fe.Partition, "err", fe.Err)
		}
		fs.EachPartition(func(f kgo.FetchTopicPartition) {
			if len(f.Records) > 0 {
				r.take(tp{f.Topic, f.Partition}, f.Records)
			}
		})
		r.cl.AllowRebalance()
	}
}

func (r *run) failure() error {
	select {
	case err := <-r.failed:
		return err
	default:
		return nil
	}
}

func (r *run) part(k tp) *part {
	r.mu.Lock()
	defer r.mu.Unlock()
	p := r.parts[k]
	if p == nil {
		p = &part{next: -1, committed: -1, started: -1, firstAgain: -1, again: -1, done: map[int64]bool{}}
		r.parts[k] = p
	}
	return p
}

// take starts handlers on a partition's polled records, or holds retry
// records until they are due.
func (r *run) take(k tp, records []*kgo.Record) {
	p := r.part(k)
	p.mu.Lock()
	if p.gone {
		p.mu.Unlock()
		return
	}
	if p.next < 0 {
		p.next = records[0].Offset
	}
	if len(p.held) > 0 || due(records[0]).After(time.Now()) {
		// A retry partition whose first record is not due: hold its
		// records and stop fetching it until they have run.
		first := len(p.held) == 0
		p.held = append(p.held, records...)
		p.mu.Unlock()
		if first {
			r.cl.PauseFetchPartitions(map[string][]int32{k.topic: {k.partition}})
			r.handlers.Go(func() { r.release(k, p) })
		}
		return
	}
	p.mu.Unlock()
	r.start(k, p, records)
}

// release runs a paused partition's held records as they come due, then
// fetches it again.
func (r *run) release(k tp, p *part) {
	defer r.cl.ResumeFetchPartitions(map[string][]int32{k.topic: {k.partition}})
	for {
		p.mu.Lock()
		if p.gone || len(p.held) == 0 {
			p.held = nil
			p.mu.Unlock()
			return
		}
		rec := p.held[0]
		p.mu.Unlock()
		if !retry.Sleep(r.ctx, time.Until(due(rec))) {
			return
		}
		select {
		case r.sem <- struct{}{}:
			<-r.sem
		case <-r.ctx.Done():
			return
		}
		p.mu.Lock()
		if p.gone {
			p.mu.Unlock()
			return
		}
		p.held = p.held[1:]
		p.mu.Unlock()
		r.start(k, p, []*kgo.Record{rec})
	}
}

// due is when a record may run: HeaderDue, or now.
func due(rec *kgo.Record) time.Time {
	ms, err := strconv.ParseInt(header(rec, HeaderDue), 10, 64)
	if err != nil {
		return time.Time{}
	}
	return time.UnixMilli(ms)
}

// start records that handlers start on records (committing the new
// started mark first), and starts them.
func (r *run) start(k tp, p *part, records []*kgo.Record) {
	p.mu.Lock()
	last := records[len(records)-1].Offset
	if last > p.started {
		p.started = last
		p.metaGen++
	}
	mustStore := p.metaSaved != p.metaGen
	for _, rec := range records {
		p.pending = append(p.pending, rec.Offset)
	}
	p.running.Add(len(records))
	p.mu.Unlock()
	if mustStore {
		r.commit(r.ctx)
	}
	for _, rec := range records {
		r.sem <- struct{}{}
		r.handlers.Go(func() {
			defer func() { <-r.sem }()
			defer p.running.Done()
			r.run(k, p, rec)
		})
	}
}

// run handles one record and carries out its disposition.
func (r *run) run(k tp, p *part, rec *kgo.Record) {
	attempt := 1
	if n, err := strconv.Atoi(header(rec, HeaderAttempt)); err == nil && n > 0 {
		attempt = n
	}
	p.mu.Lock()
	switch {
	case rec.Offset == p.firstAgain:
		attempt += int(p.redelivered)
	case rec.Offset <= p.again:
		attempt++
	}
	p.mu.Unlock()
	d := broker.Delivery{Data: rec.Value, Attempt: attempt, Header: map[string]string{}}
	for _, h := range rec.Headers {
		d.Header[strings.ToLower(h.Key)] = string(h.Value)
	}
	disp := r.handle(r.ctx, d)
	// The disposition is carried out even when the consumer is stopping:
	// what was decided is stored, or the command comes again.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.ctx), 15*time.Second)
	defer cancel()
	out := r.records(rec, d, disp)
	err := retry.Forever(ctx, retry.Doubling(50*time.Millisecond, time.Second), func() error {
		return r.store(ctx, out)
	}, nil)
	if err != nil {
		// Not stored: the partition must not be committed past it. The
		// consumer starts again from the committed offsets.
		r.fail(fmt.Errorf("kafkabroker: store the outcome of command %q: %w", disp.CommandID, err))
		return
	}
	p.mu.Lock()
	p.done[rec.Offset] = true
	moved := false
	for len(p.pending) > 0 && p.done[p.pending[0]] {
		delete(p.done, p.pending[0])
		p.next = p.pending[0] + 1
		p.pending = p.pending[1:]
		moved = true
	}
	p.mu.Unlock()
	if moved {
		select {
		case r.wake <- struct{}{}:
		default:
		}
	}
}

// records are what a disposition publishes.
func (r *run) records(rec *kgo.Record, d broker.Delivery, disp broker.Disposition) []*kgo.Record {
	var out []*kgo.Record
	if disp.Retry {
		n := min(d.Attempt, len(r.cfg.Retry))
		h := []kgo.RecordHeader{{Key: HeaderAttempt, Value: []byte(strconv.Itoa(d.Attempt + 1))},
			{Key: HeaderDue, Value: []byte(strconv.FormatInt(time.Now().Add(disp.Delay).UnixMilli(), 10))}}
		for _, x := range rec.Headers {
			if x.Key != HeaderAttempt && x.Key != HeaderDue {
				h = append(h, x)
			}
		}
		return append(out, &kgo.Record{Topic: r.cfg.retryTopic(max(n, 1)), Key: rec.Key, Value: rec.Value, Headers: h})
	}
	if disp.Dead != nil {
		out = append(out, &kgo.Record{Topic: r.cfg.deadTopic(), Key: rec.Key, Value: disp.Dead.Data, Headers: []kgo.RecordHeader{
			{Key: HeaderDeadReason, Value: []byte(disp.Dead.Reason)},
			{Key: HeaderAttempts, Value: []byte(strconv.Itoa(disp.Dead.Attempts))}}})
	}
	if disp.Outcome != nil {
		out = append(out, &kgo.Record{Topic: r.cfg.OutcomeTopic(disp.ReplyTo), Key: []byte(disp.CommandID), Value: disp.Outcome,
			Headers: []kgo.RecordHeader{{Key: "content-type", Value: []byte("application/json")}}})
	}
	return out
}

// store produces records and waits for the cluster's acknowledgements,
// creating a reply topic a command named the first time. A reply topic
// the cluster refuses for good (not authorized, an invalid name, a
// policy) gets the default outcome topic instead, as it would block its
// command's partition for ever otherwise.
func (r *run) store(ctx context.Context, out []*kgo.Record) error {
	for _, rec := range out {
		err := r.topics.ensure(ctx, r.prod, rec.Topic)
		if ke, ok := errors.AsType[*kerr.Error](err); ok && !ke.Retriable && rec.Topic != r.cfg.OutcomeTopic("") &&
			strings.HasPrefix(rec.Topic, r.cfg.OutcomeTopic("")) {
			r.log.Warn("command consumer: the reply topic is refused; the outcome goes to the default", "topic", rec.Topic, "err", err)
			rec.Topic = r.cfg.OutcomeTopic("")
			err = r.topics.ensure(ctx, r.prod, rec.Topic)
		}
		if err != nil {
			return err
		}
	}
	actx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	return r.prod.ProduceSync(actx, out...).FirstErr()
}

// committer commits the offsets that moved, until the run ends.
func (r *run) committer() {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-r.ctx.Done():
			return
		case <-r.wake:
		case <-t.C:
		}
		r.commit(r.ctx)
	}
}

// commit commits every partition whose offset or metadata changed.
func (r *run) commit(ctx context.Context) {
	r.commitMu.Lock()
	defer r.commitMu.Unlock()
	offsets := map[string]map[int32]kgo.EpochOffset{}
	meta := map[tp]string{}
	var changed []*part
	var sent, gens []int64
	r.mu.Lock()
	for k, p := range r.parts {
		p.mu.Lock()
		if !p.gone && p.next >= 0 && (p.next != p.committed || p.metaSaved != p.metaGen) {
			if p.next > p.firstAgain {
				p.redelivered = 0
			}
			if offsets[k.topic] == nil {
				offsets[k.topic] = map[int32]kgo.EpochOffset{}
			}
			offsets[k.topic][k.partition] = kgo.EpochOffset{Epoch: -1, Offset: p.next}
			meta[k] = strconv.FormatInt(p.started, 10) + "/" + strconv.FormatInt(p.redelivered, 10)
			changed, sent, gens = append(changed, p), append(sent, p.next), append(gens, int64(p.metaGen))
		}
		p.mu.Unlock()
	}
	r.mu.Unlock()
	if len(offsets) == 0 {
		return
	}
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	cctx = kgo.PreCommitFnContext(cctx, func(req *kmsg.OffsetCommitRequest) error {
		for i := range req.Topics {
			for j := range req.Topics[i].Partitions {
				pt := &req.Topics[i].Partitions[j]
				pt.Metadata = kmsg.StringPtr(meta[tp{req.Topics[i].Topic, pt.Partition}])
			}
		}
		return nil
	})
	var cerr error
	r.cl.CommitOffsetsSync(cctx, offsets, func(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, resp *kmsg.OffsetCommitResponse, err error) {
		cerr = err
		if resp != nil {
			for _, t := range resp.Topics {
				for _, pt := range t.Partitions {
					if pt.ErrorCode != 0 && cerr == nil {
						cerr = fmt.Errorf("%s[%d]: error code %d", t.Topic, pt.Partition, pt.ErrorCode)
					}
				}
			}
		}
	})
	if cerr != nil {
		r.log.Warn("command consumer: commit failed; committing again later", "err", cerr)
		return
	}
	for i, p := range changed {
		p.mu.Lock()
		p.committed = max(p.committed, sent[i])
		p.metaSaved = max(p.metaSaved, int(gens[i]))
		p.mu.Unlock()
	}
}

// assigned reads the committed offsets and their metadata of the new
// partitions: records at or below a previous owner's started mark are
// deliveries again.
func (r *run) assigned(ctx context.Context, cl *kgo.Client, assigned map[string][]int32) {
	offsets, err := kadm.NewClient(cl).FetchOffsets(ctx, r.cfg.Group)
	if err != nil {
		r.log.Warn("command consumer: read the committed offsets", "err", err)
	}
	for topic, parts := range assigned {
		for _, n := range parts {
			p := r.part(tp{topic, n})
			p.mu.Lock()
			p.gone = false
			if o, ok := offsets.Lookup(topic, n); ok && o.Err == nil && o.At >= 0 {
				p.next, p.committed = o.At, o.At
				started, redelivered, ok := parseMeta(o.Metadata)
				if ok && started >= o.At {
					p.firstAgain, p.again, p.redelivered = o.At, started, redelivered+1
					p.started = started
				}
			}
			p.metaGen++
			p.mu.Unlock()
		}
	}
}

func parseMeta(s string) (started, redelivered int64, ok bool) {
	a, b, found := strings.Cut(s, "/")
	if !found {
		return 0, 0, false
	}
	started, err1 := strconv.ParseInt(a, 10, 64)
	redelivered, err2 := strconv.ParseInt(b, 10, 64)
	return started, redelivered, err1 == nil && err2 == nil
}

// revoked waits for the handlers of the partitions given up, commits
// past them and forgets the partitions.
func (r *run) revoked(ctx context.Context, cl *kgo.Client, revoked map[string][]int32) {
	var ps []*part
	r.mu.Lock()
	for topic, parts := range revoked {
		for _, n := range parts {
			if p := r.parts[tp{topic, n}]; p != nil {
				ps = append(ps, p)
			}
		}
	}
	r.mu.Unlock()
	for _, p := range ps {
		p.running.Wait()
	}
	r.commit(ctx)
	r.forget(revoked)
}

// lost forgets partitions taken away without a chance to commit.
func (r *run) lost(_ context.Context, _ *kgo.Client, lost map[string][]int32) { r.forget(lost) }

func (r *run) forget(parts map[string][]int32) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for topic, ns := range parts {
		for _, n := range ns {
			k := tp{topic, n}
			if p := r.parts[k]; p != nil {
				p.mu.Lock()
				p.gone, p.held = true, nil
				p.mu.Unlock()
				delete(r.parts, k)
			}
		}
	}
	r.cl.ResumeFetchPartitions(parts)
}
