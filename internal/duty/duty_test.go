package duty_test

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shopstack/inventory/internal/duty"
	"github.com/shopstack/inventory/internal/lock"
	"github.com/shopstack/inventory/internal/lock/memlock"
)

// timeout bounds the wait for something that must happen; quiet is how
// long the tests watch for something that must not.
const (
	timeout = 5 * time.Second
	quiet   = 50 * time.Millisecond
)

// recorder is an Elector over a real one that keeps the lease it granted
// last, so that a test can take it away as a lapse would; it fails the
// first fail campaigns, and holds campaigns back while held is open.
type recorder struct {
	lock.Elector

	mu        sync.Mutex
	fail      int
	campaigns int
	last      lock.Lease
	held      chan struct{} // closed to let campaigns through
	arrived   chan struct{} // told of each campaign held back
}

var errRefused = errors.New("backend refused the campaign")

func (r *recorder) Campaign(ctx context.Context, name string) (lock.Lease, error) {
	r.mu.Lock()
	r.campaigns++
	if r.fail > 0 {
		r.fail--
		r.mu.Unlock()
		return nil, errRefused
	}
	held, arrived := r.held, r.arrived
	r.mu.Unlock()
	if held != nil {
		select {
		case arrived <- struct{}{}:
		default:
		}
		select {
		case <-held:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	le, err := r.Elector.Campaign(ctx, name)
	if err == nil {
		r.mu.Lock()
		r.last = le
		r.mu.Unlock()
	}
	return le, err
}

// hold holds the next campaigns back until release is called; arrived
// tells when one is.
func (r *recorder) hold() (arrived <-chan struct{}, release func()) {
	held, ch := make(chan struct{}), make(chan struct{}, 1)
	r.mu.Lock()
	r.held, r.arrived = held, ch
	r.mu.Unlock()
	return ch, func() { close(held) }
}

func (r *recorder) lease() lock.Lease {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.last
}

// contender runs one replica's duty. Its Lead reports each start and end,
// and waits for its context unless told to return at once.
type contender struct {
	d       *duty.Duty
	el      *recorder
	started chan struct{}
	ended   chan struct{}
	stop    context.CancelFunc
	done    chan struct{}
}

// leaders counts the Leads of one test that run at once.
type leaders struct {
	now, overlaps atomic.Int32
}

func (l *leaders) enter() {
	if l.now.Add(1) > 1 {
		l.overlaps.Add(1)
	}
}

func (l *leaders) leave() { l.now.Add(-1) }

// setup is how a test wants a contender: zero fields mean none.
type setup struct {
	leads *leaders     // counts its Leads while they run
	log   *slog.Logger // the duty's log
	fail  int          // campaigns that fail before the elector is asked
	// returnAt, while it returns true, makes a Lead return at once.
	returnAt func() bool
}

// run starts a contender for the duty "test" through el.
func run(t *testing.T, el lock.Elector, s setup) *contender {
	t.Helper()
	c := &contender{el: &recorder{Elector: el, fail: s.fail},
		started: make(chan struct{}, 16), ended: make(chan struct{}, 16), done: make(chan struct{})}
	c.d = &duty.Duty{Name: "test", Elector: c.el, Title: "test duty", Retry: 10 * time.Millisecond, Log: s.log,
		Lead: func(ctx context.Context) {
			if s.leads != nil {
				s.leads.enter()
				defer s.leads.leave()
			}
			c.started <- struct{}{}
			defer func() { c.ended <- struct{}{} }()
			if s.returnAt != nil && s.returnAt() {
				return
			}
			<-ctx.Done()
		}}
	ctx, cancel := context.WithCancel(context.Background())
	c.stop = func() {
		cancel()
		select {
		case <-c.done:
		case <-time.After(timeout):
			t.Fatal("Run did not return after its context ended")
		}
	}
	go func() {
		defer close(c.done)
		c.d.Run(ctx)
	}()
	t.Cleanup(c.stop)
	return c
}

func await(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(timeout):
		t.Fatalf("gave up waiting for %s", what)
	}
}

func none(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
		t.Fatalf("%s", what)
	case <-time.After(quiet):
	}
}

// first returns the contender that leads first, and the other.
func first(t *testing.T, a, b *contender) (leader, other *contender) {
	t.Helper()
	select {
	case <-a.started:
		return a, b
	case <-b.started:
		return b, a
	case <-time.After(timeout):
		t.Fatal("no contender leads")
	}
	return nil, nil
}

// TestDuty runs two contenders, two replicas' worth, electing through one
// in-process lock.
func TestElectedDuty(t *testing.T) {
	t.Run("OneLeadsThenTheOtherAfterResign", func(t *testing.T) {
		el := lock.LockElector{Locker: memlock.New(0)}
		var leads leaders
		a, b := run(t, el, setup{leads: &leads}), run(t, el, setup{leads: &leads})
		leader, other := first(t, a, b)
		none(t, other.started, "both contenders lead")
		if !leader.d.Leading() || other.d.Leading() {
			t.Fatalf("Leading: leader %v, other %v; want true, false", leader.d.Leading(), other.d.Leading())
		}
		leader.stop() // resigns
		select {
		case <-leader.ended:
		default:
			t.Fatal("Run returned before its Lead")
		}
		if leader.d.Leading() {
			t.Fatal("Leading after Run returned")
		}
		await(t, other.started, "the other contender to lead after the leader resigned")
		if !other.d.Leading() {
			t.Fatal("the new leader does not report Leading")
		}
		if n := leads.overlaps.Load(); n != 0 {
			t.Fatalf("a Lead started %d times while another ran", n)
		}
	})

	// A lease taken away (as a lapse takes it: Done closes and the key is
	// free) ends the leader's Lead; another contender leads, and the old
	// leader campaigns again. The old leader's next campaign is held back
	// until the other leads: it could otherwise win the free key first.
	t.Run("LeaseLost", func(t *testing.T) {
		var logged messages
		el := lock.LockElector{Locker: memlock.New(0)}
		a, b := run(t, el, setup{log: slog.New(&logged)}), run(t, el, setup{log: slog.New(&logged)})
		leader, other := first(t, a, b)
		campaigning, release := leader.el.hold()
		if err := leader.el.lease().Unlock(context.Background()); err != nil {
			t.Fatalf("take the lease away: %v", err)
		}
		await(t, leader.ended, "the leader's Lead to end after its lease was lost")
		await(t, other.started, "the other contender to lead after the leader's lease was lost")
		await(t, campaigning, "the old leader to campaign again")
		if leader.d.Leading() {
			t.Error("the old leader reports Leading while it campaigns")
		}
		release()
		if n := logged.count("test duty: leadership lost"); n != 1 {
			t.Errorf("the lost leadership logged %d times, want once", n)
		}
		other.stop()
		await(t, leader.started, "the old leader to lead again")
	})

	t.Run("CampaignFailureRetried", func(t *testing.T) {
		var logged messages
		a := run(t, lock.LockElector{Locker: memlock.New(0)}, setup{log: slog.New(&logged), fail: 2})
		await(t, a.started, "a lead after two failed campaigns")
		a.el.mu.Lock()
		campaigns := a.el.campaigns
		a.el.mu.Unlock()
		if campaigns != 3 {
			t.Errorf("%d campaigns, want 3 (two failed)", campaigns)
		}
		if n := logged.count("test duty: campaign failed; will retry"); n != 2 {
			t.Errorf("%d campaign failures logged, want 2", n)
		}
	})

	// A Lead that returns resigns: the same replica (or another) can lead
	// again at once, without the lease lapsing first.
	t.Run("LeadReturnsResigns", func(t *testing.T) {
		var early atomic.Int32
		early.Store(1)
		a := run(t, lock.LockElector{Locker: memlock.New(0)}, setup{returnAt: func() bool { return early.Add(-1) >= 0 }})
		await(t, a.started, "a lead")
		await(t, a.ended, "the first Lead to return")
		await(t, a.started, "a lead again after the first Lead returned")
	})
}

// messages is a slog.Handler that keeps the messages logged.
type messages struct {
	mu   sync.Mutex
	list []string
}

func (m *messages) Enabled(context.Context, slog.Level) bool { return true }
func (m *messages) WithAttrs([]slog.Attr) slog.Handler       { return m }
func (m *messages) WithGroup(string) slog.Handler            { return m }

func (m *messages) Handle(_ context.Context, r slog.Record) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.list = append(m.list, r.Message)
	return nil
}

// count returns how often msg was logged.
func (m *messages) count(msg string) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(slices.DeleteFunc(slices.Clone(m.list), func(s string) bool { return s != msg }))
}
