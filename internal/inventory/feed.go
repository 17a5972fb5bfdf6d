package inventory

import (
	"context"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// The feed publishes committed ledger rows to subscribers in sequence order.
// It never trusts in-memory hand-offs from writers: a writer only wakes it,
// and it reads the ledger itself, so what it publishes is exactly what
// committed, in commit order (the store assigns sequences in commit order),
// whichever replica wrote it.
type feed struct {
	store  Ledger
	log    *slog.Logger
	poll   time.Duration
	wake   chan struct{}
	fanout Fanout // nil: one replica
	// wakeOthers, if set, is called (and must not block) whenever the
	// ledger may have advanced on another replica: a nudge, or a tick of
	// the poll.
	wakeOthers func()

	// committed is the highest sequence this replica committed: what it
	// announces to the others, who read the ledger up to their own
	// watermark.
	committed atomic.Int64

	mu      sync.Mutex
	last    int64 // highest sequence published
	subs    map[*subscriber]struct{}
	started bool

	cancel context.CancelFunc
	done   chan struct{}
}

const (
	feedPageSize      = 512
	subscriberBacklog = 1024
)

type subscriber struct {
	filter EventFilter
	ch     chan Movement
}

// Fanout carries "the ledger advanced" between replicas, so that a commit
// on one replica wakes the event feeds of the others at once. It is only a
// wake-up: the ledger is the source of truth, and the feeds also poll it,
// so a lost or late message delays events but never loses them.
type Fanout interface {
	// Announce tells the other replicas that the ledger reached seq. It
	// never blocks for long: implementations coalesce and send in the
	// background, the latest sequence winning.
	Announce(seq int64)
	// Wakeups receives a value whenever another replica announced
	// (coalesced).
	Wakeups() <-chan struct{}
}

func newFeed(store Ledger, log *slog.Logger, poll time.Duration, fanout Fanout) *feed {
	return &feed{store: store, log: log, poll: poll, wake: make(chan struct{}, 1), fanout: fanout, subs: make(map[*subscriber]struct{})}
}

func (f *feed) start(ctx context.Context) error {
	last, err := f.store.LastSeq(ctx)
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

func (f *feed) stop() {
	f.mu.Lock()
	cancel, done := f.cancel, f.done
	f.mu.Unlock()
	if cancel == nil {
		return
	}
	cancel()
	<-done
}

// notify wakes the feed after a commit whose highest sequence is seq. It
// never blocks.
func (f *feed) notify(seq int64) {
	for cur := f.committed.Load(); seq > cur && !f.committed.CompareAndSwap(cur, seq); cur = f.committed.Load() {
	}
	f.wakeUp()
}

func (f *feed) wakeUp() {
	select {
	case f.wake <- struct{}{}:
	default:
	}
}

func (f *feed) run(ctx context.Context) {
	defer close(f.done)
	defer f.closeAll()
	tick := time.NewTicker(f.poll)
	defer tick.Stop()
	var remote <-chan struct{}
	if f.fanout != nil {
		remote = f.fanout.Wakeups()
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
		if !local && f.wakeOthers != nil {
			f.wakeOthers()
		}
		if local && f.fanout != nil {
			// This replica committed: tell the others (coalesced: one
			// announce for a burst of commits).
			f.fanout.Announce(f.committed.Load())
		}
	}
}

// catchUp publishes the ledger's rows after the feed's position, up to the
// watermark. With nobody subscribed it only moves the position to the
// watermark, and only on the poll's tick: finding the watermark waits for
// the writers in flight, and no one is waiting for these events.
func (f *feed) catchUp(ctx context.Context, ticked bool) {
	if f.idle() {
		if ticked {
			f.skipToEnd(ctx)
		}
		return
	}
	for {
		f.mu.Lock()
		last := f.last
		f.mu.Unlock()
		page, err := f.store.Movements(ctx, MovementQuery{After: last, HasAfter: true, Limit: feedPageSize})
		if err != nil {
			if ctx.Err() == nil {
				f.log.Warn("event feed: reading the ledger failed; will retry", "after", last, "err", err)
			}
			return
		}
		for _, m := range page.Movements {
			f.publish(m)
		}
		if !page.HasNext {
			return
		}
	}
}

func (f *feed) idle() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.subs) == 0
}

// skipToEnd moves the feed to the ledger's watermark without reading the
// rows in between, if nobody is subscribed. A subscriber registering
// meanwhile either stops the skip (it holds f.mu first) or registers at
// the new end and replays what it asks for from the ledger.
func (f *feed) skipToEnd(ctx context.Context) {
	end, err := f.store.LastSeq(ctx)
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

func (f *feed) publish(m Movement) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if m.Seq <= f.last {
		return
	}
	f.last = m.Seq
	for s := range f.subs {
		if !s.filter.match(m) {
			continue
		}
		select {
		case s.ch <- m:
		default:
			// A slow subscriber never stalls the feed: it is dropped and
			// resumes from the ledger with afterSequence.
			f.log.Warn("event feed: subscriber lagged; closing it", "seq", m.Seq)
			delete(f.subs, s)
			close(s.ch)
		}
	}
}

// subscribe registers a subscriber and returns the sequence from which it
// receives events live: every later event goes to its channel.
func (f *feed) subscribe(filter EventFilter) (*subscriber, int64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.started {
		return nil, 0, Errorf(CodeUnavailable, "event feed is not running")
	}
	s := &subscriber{filter: filter, ch: make(chan Movement, subscriberBacklog)}
	f.subs[s] = struct{}{}
	// An idle feed's position may be behind the ledger (it is moved on
	// the poll's tick only): catch up now, rather than at the next commit.
	f.wakeUp()
	return s, f.last, nil
}

// count returns how many subscribers the feed serves.
func (f *feed) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.subs)
}

func (f *feed) unsubscribe(s *subscriber) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.subs[s]; ok {
		delete(f.subs, s)
		close(s.ch)
	}
}

func (f *feed) closeAll() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for s := range f.subs {
		delete(f.subs, s)
		close(s.ch)
	}
	f.started = false
}

// EventFilter selects the ledger events a subscription receives.
type EventFilter struct {
	// ProductIDs keeps only these products; empty means all.
	ProductIDs []int64
	// AlertsOnly keeps only movements that raised a low-stock alert.
	AlertsOnly bool
	// Reservations keeps only reservation movements, of ReservationIDs
	// if not empty.
	Reservations   bool
	ReservationIDs []int64
	// AfterSeq, if set, first replays the ledger rows after this sequence.
	AfterSeq *int64
}

func (f EventFilter) match(m Movement) bool {
	if f.AlertsOnly && !m.LowStockAlert {
		return false
	}
	if f.Reservations && (m.ReservationID == 0 || len(f.ReservationIDs) > 0 && !slices.Contains(f.ReservationIDs, m.ReservationID)) {
		return false
	}
	return len(f.ProductIDs) == 0 || slices.Contains(f.ProductIDs, m.ProductID)
}

// MaxSubscribedProducts bounds EventFilter.ProductIDs.
const MaxSubscribedProducts = 100

// Subscriptions returns how many subscriptions this replica serves.
func (s *Service) Subscriptions() int { return s.feed.count() }

// Subscribe streams ledger events that match filter, in sequence order,
// until ctx is done. With AfterSeq it first replays what the ledger holds
// after that sequence, then continues live without gap or duplicate. The
// channel is closed when ctx is done, when the service stops, or when the
// subscriber falls too far behind (it may then resubscribe with AfterSeq set
// to the last sequence it saw).
func (s *Service) Subscribe(ctx context.Context, filter EventFilter) (<-chan Movement, error) {
	if len(filter.ProductIDs) > MaxSubscribedProducts {
		return nil, invalid("productIds", "at most %d productIds", MaxSubscribedProducts)
	}
	if a := filter.AfterSeq; a != nil && *a < 0 {
		return nil, invalid("afterSequence", "afterSequence must not be negative")
	}
	if len(filter.ReservationIDs) > MaxSubscribedProducts {
		return nil, invalid("reservationIds", "at most %d reservationIds", MaxSubscribedProducts)
	}
	filter.ProductIDs = slices.Clone(filter.ProductIDs)
	filter.ReservationIDs = slices.Clone(filter.ReservationIDs)
	for _, id := range filter.ProductIDs {
		if _, err := s.Product(ctx, id); err != nil {
			return nil, err
		}
	}
	for _, id := range filter.ReservationIDs {
		if _, err := s.Reservation(ctx, id); err != nil {
			return nil, err
		}
	}
	sub, live, err := s.feed.subscribe(filter)
	if err != nil {
		return nil, err
	}
	start := live
	if filter.AfterSeq != nil {
		start = *filter.AfterSeq
	} else {
		// "From now" means from the ledger's committed end, which the feed
		// may not have published yet. Read after registering, so nothing
		// committed later can be missed.
		if start, err = s.ledger.LastSeq(ctx); err != nil {
			s.feed.unsubscribe(sub)
			return nil, err
		}
	}
	out := make(chan Movement)
	go s.forward(ctx, sub, live, start, out)
	return out, nil
}

// forward replays the ledger after start up to the live point (the feed's
// position when sub registered), then relays live events after start. It
// owns out and the subscription, and ends with ctx.
func (s *Service) forward(ctx context.Context, sub *subscriber, live, start int64, out chan<- Movement) {
	defer close(out)
	defer s.feed.unsubscribe(sub)
	send := func(m Movement) bool {
		select {
		case out <- m:
			return true
		case <-ctx.Done():
			return false
		}
	}
	last := start
	if sub.filter.AfterSeq != nil {
		for last < live {
			page, err := s.ledger.Movements(ctx, MovementQuery{
				ProductIDs: sub.filter.ProductIDs, AlertsOnly: sub.filter.AlertsOnly,
				Reservations: sub.filter.Reservations, ReservationIDs: sub.filter.ReservationIDs,
				After: last, HasAfter: true, UpTo: live, Limit: feedPageSize,
			})
			if err != nil {
				s.log.Warn("subscription replay failed; closing it", "after", last, "err", err)
				return
			}
			for _, m := range page.Movements {
				if !send(m) {
					return
				}
				last = m.Seq
			}
			if !page.HasNext {
				break
			}
		}
	}
	for {
		select {
		case m, ok := <-sub.ch:
			if !ok {
				return
			}
			if m.Seq <= last {
				continue
			}
			if !send(m) {
				return
			}
			last = m.Seq
		case <-ctx.Done():
			return
		}
	}
}
