// Package feed publishes an ordered log's entries to subscribers in
// sequence order, once each, live and from any earlier point.
//
// A Feed never trusts in-memory hand-offs from writers: a writer only
// wakes it (Notify), and it reads the log itself, so what it publishes is
// exactly what committed, in commit order, whichever process wrote it.
// Other processes' commits reach it through a Fanout's nudges, or its poll
// at worst. A subscriber that joins from an earlier point is replayed the
// log up to where it joined the live stream, then relayed live events
// after that, without gap or duplicate. A slow subscriber never stalls the
// feed: its channel is closed, and it resumes from the log.
//
// The package knows nothing of stock: what an entry is, its sequence and
// how the log is read come from the Feed's Config (the inventory's ledger
// is its one log).
package feed

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// Fanout carries "the log advanced" between processes, so that a commit in
// one wakes the feeds of the others at once. It is only a wake-up: the log
// is the source of truth, and the feeds also poll it, so a lost or late
// message delays events but never loses them.
type Fanout interface {
	// Announce tells the other processes that the log reached seq. It
	// never blocks for long: implementations coalesce and send in the
	// background, the latest sequence winning.
	Announce(seq int64)
	// Wakeups receives a value whenever another process announced
	// (coalesced).
	Wakeups() <-chan struct{}
}

// Config is what a Feed reads and how. E is an entry of the log.
type Config[E any] struct {
	// Last returns the log's watermark: every entry up to it that will
	// ever exist is readable.
	Last func(ctx context.Context) (int64, error)
	// Read returns up to limit entries after seq, in order, up to the
	// watermark, and whether more follow.
	Read func(ctx context.Context, after int64, limit int) ([]E, bool, error)
	// Seq is an entry's sequence.
	Seq func(E) int64
	// Poll is how often the log is read for entries no one announced;
	// zero means 1s.
	Poll time.Duration
	// Fanout wakes the feeds of other processes when this one commits, and
	// this one's when they do; nil for a single process.
	Fanout Fanout
	// WakeOthers, if set, is called (and must not block) whenever the log
	// may have advanced in another process: a nudge, or a tick of the poll.
	WakeOthers func()
	Logger     *slog.Logger
}

// ErrStopped refuses a subscription while the feed is not running.
var ErrStopped = errors.New("feed: not running")

const (
	pageSize = 512
	backlog  = 1024
)

// Feed publishes a log's entries to subscribers. Its zero value is not
// usable; call New.
type Feed[E any] struct {
	cfg  Config[E]
	wake chan struct{}

	// committed is the highest sequence this process committed: what it
	// announces to the others, who read the log up to their own watermark.
	committed atomic.Int64

	mu      sync.Mutex
	last    int64 // highest sequence published
	subs    map[*subscriber[E]]struct{}
	started bool

	cancel context.CancelFunc
	done   chan struct{}
}

type subscriber[E any] struct {
	match func(E) bool
	ch    chan E
}

// New returns a feed of cfg's log; Start starts it.
func New[E any](cfg Config[E]) *Feed[E] {
	if cfg.Poll <= 0 {
		cfg.Poll = time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Feed[E]{cfg: cfg, wake: make(chan struct{}, 1), subs: make(map[*subscriber[E]]struct{})}
}

// Start starts following the log from its current end.
func (f *Feed[E]) Start(ctx context.Context) error {
	last, err := f.cfg.Last(ctx)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	f.mu.Lock()
	f.last, f.started, f.cancel, f.done = last, true, cancel, make(chan struct{})
	f.mu.Unlock()
	go f.run(ctx)
	return nil
}

// Stop stops the feed and ends every subscription.
func (f *Feed[E]) Stop() {
	f.mu.Lock()
	cancel, done := f.cancel, f.done
	f.mu.Unlock()
	if cancel == nil {
		return
	}
	cancel()
	<-done
}

// Notify wakes the feed after a commit of this process whose highest
// sequence is seq. It never blocks.
func (f *Feed[E]) Notify(seq int64) {
	for cur := f.committed.Load(); seq > cur && !f.committed.CompareAndSwap(cur, seq); cur = f.committed.Load() {
	}
	f.wakeUp()
}

func (f *Feed[E]) wakeUp() {
	select {
	case f.wake <- struct{}{}:
	default:
	}
}

func (f *Feed[E]) run(ctx context.Context) {
	defer close(f.done)
	defer f.CloseAll()
	tick := time.NewTicker(f.cfg.Poll)
	defer tick.Stop()
	var remote <-chan struct{}
	if f.cfg.Fanout != nil {
		remote = f.cfg.Fanout.Wakeups()
	}
	for {
		local, ticked := false, false
		select {
		case <-ctx.Done():
			return
		case <-f.wake:
			local = true
		case <-remote:
		case <-tick.C:
			ticked = true
		}
		f.catchUp(ctx, ticked)
		if !local && f.cfg.WakeOthers != nil {
			f.cfg.WakeOthers()
		}
		if local && f.cfg.Fanout != nil {
			// This process committed: tell the others (coalesced: one
			// announce for a burst of commits).
			f.cfg.Fanout.Announce(f.committed.Load())
		}
	}
}

// catchUp publishes the log's entries after the feed's position, up to the
// watermark. With nobody subscribed it only moves the position to the
// watermark, and only on the poll's tick: finding the watermark may wait
// for the writers in flight, and no one is waiting for these entries.
func (f *Feed[E]) catchUp(ctx context.Context, ticked bool) {
	if f.Count() == 0 {
		if ticked {
			f.skipToEnd(ctx)
		}
		return
	}
	for {
		f.mu.Lock()
		last := f.last
		f.mu.Unlock()
		page, more, err := f.cfg.Read(ctx, last, pageSize)
		if err != nil {
			if ctx.Err() == nil {
				f.cfg.Logger.Warn("event feed: reading the log failed; will retry", "after", last, "err", err)
			}
			return
		}
		for _, e := range page {
			f.publish(e)
		}
		if !more {
			return
		}
	}
}

// skipToEnd moves the feed to the log's watermark without reading the
// entries in between, if nobody is subscribed. A subscriber registering
// meanwhile either stops the skip (it holds f.mu first) or registers at
// the new end and replays what it asks for from the log.
func (f *Feed[E]) skipToEnd(ctx context.Context) {
	end, err := f.cfg.Last(ctx)
	if err != nil {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.subs) > 0 {
		return
	}
	f.last = max(f.last, end)
}

func (f *Feed[E]) publish(e E) {
	f.mu.Lock()
	defer f.mu.Unlock()
	seq := f.cfg.Seq(e)
	if seq <= f.last {
		return
	}
	f.last = seq
	for s := range f.subs {
		if !s.match(e) {
			continue
		}
		select {
		case s.ch <- e:
		default:
			// A slow subscriber never stalls the feed: it is dropped and
			// resumes from the log.
			f.cfg.Logger.Warn("event feed: subscriber lagged; closing it", "seq", seq)
			delete(f.subs, s)
			close(s.ch)
		}
	}
}

// Count returns how many subscribers the feed serves.
func (f *Feed[E]) Count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.subs)
}

// CloseAll ends every subscription (their channels close) and refuses new
// ones.
func (f *Feed[E]) CloseAll() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for s := range f.subs {
		delete(f.subs, s)
		close(s.ch)
	}
	f.started = false
}

// Replay reads a subscriber's entries after seq, up to upTo, in order:
// up to a page of them, and whether more follow.
type Replay[E any] func(ctx context.Context, after, upTo int64, limit int) ([]E, bool, error)

// Subscribe streams the entries that match, in sequence order, until ctx
// is done. With after set, replay first gives what the log holds after it,
// then the stream continues live without gap or duplicate; without, it
// starts at the log's committed end. The channel is closed when ctx is
// done, when the feed stops, or when the subscriber falls too far behind
// (it may then subscribe again from the last sequence it saw). Refused
// with ErrStopped while the feed is not running.
func (f *Feed[E]) Subscribe(ctx context.Context, match func(E) bool, after *int64, replay Replay[E]) (<-chan E, error) {
	sub, live, err := f.register(match)
	if err != nil {
		return nil, err
	}
	var start int64
	if after != nil {
		start = *after
	} else if start, err = f.cfg.Last(ctx); err != nil {
		// "From now" means from the log's committed end, which the feed may
		// not have published yet. Read after registering, so nothing
		// committed later can be missed.
		f.unregister(sub)
		return nil, err
	}
	out := make(chan E)
	go f.forward(ctx, sub, live, start, after != nil, replay, out)
	return out, nil
}

// register adds a subscriber and returns the sequence from which it
// receives entries live: every later entry goes to its channel.
func (f *Feed[E]) register(match func(E) bool) (*subscriber[E], int64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.started {
		return nil, 0, ErrStopped
	}
	s := &subscriber[E]{match: match, ch: make(chan E, backlog)}
	f.subs[s] = struct{}{}
	// An idle feed's position may be behind the log (it is moved on the
	// poll's tick only): catch up now, rather than at the next commit.
	f.wakeUp()
	return s, f.last, nil
}

func (f *Feed[E]) unregister(s *subscriber[E]) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.subs[s]; ok {
		delete(f.subs, s)
		close(s.ch)
	}
}

// forward replays the log after start up to the live point (the feed's
// position when sub registered), if asked to, then relays live entries
// after start. It owns out and the subscription, and ends with ctx.
func (f *Feed[E]) forward(ctx context.Context, sub *subscriber[E], live, start int64, replaying bool, replay Replay[E], out chan<- E) {
	defer close(out)
	defer f.unregister(sub)
	send := func(e E) bool {
		select {
		case out <- e:
			return true
		case <-ctx.Done():
			return false
		}
	}
	last := start
	for replaying && last < live {
		page, more, err := replay(ctx, last, live, pageSize)
		if err != nil {
			f.cfg.Logger.Warn("subscription replay failed; closing it", "after", last, "err", err)
			return
		}
		for _, e := range page {
			if !send(e) {
				return
			}
			last = f.cfg.Seq(e)
		}
		if !more {
			break
		}
	}
	for {
		select {
		case e, ok := <-sub.ch:
			if !ok {
				return
			}
			if f.cfg.Seq(e) <= last {
				continue
			}
			if !send(e) {
				return
			}
			last = f.cfg.Seq(e)
		case <-ctx.Done():
			return
		}
	}
}
