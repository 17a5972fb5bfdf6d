package pipeline_test

import (
	"context"
	"errors"
	"fmt"
	"runtime/pprof"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/shopstack/inventory/internal/lock"
	"github.com/shopstack/inventory/internal/lock/memlock"
	"github.com/shopstack/inventory/internal/pipeline"
	"github.com/shopstack/inventory/internal/testenv"
)

// key is a counter on a row; op adds to its counter.
type key struct{ row, n int64 }

type op struct {
	add    int64
	serial int64
	// across, if set, are the keys the op adds to (SubmitAcross), each of
	// which must be a level of its job.
	across []key
	// unlocked ops need no lease.
	unlocked bool
}

// counters is a Backend whose "transaction" adds each op to its key's
// counter and answers with the new value. It records what it was asked
// to do, so the tests can check how requests were combined.
type counters struct {
	locker *memlock.Locker

	mu     sync.Mutex
	values map[key]int64
	groups [][]*pipeline.Job[key, op, int64]
	// busyRows are rows a transaction with skipLocked finds held.
	busyRows map[int64]bool
	alone    int
	// gate, when set, holds every Commit until it is closed; committing
	// counts the Commits that began.
	gate       chan struct{}
	committing atomic.Int32
	// locks counts the Lock and TryLock calls of each key; tries counts
	// the TryLock calls, each of which waits tryDelay first.
	locks    map[key]int
	tries    atomic.Int32
	tryDelay time.Duration
	// leases are the last lease granted for each key.
	leases map[key]lock.Lease
}

func newCounters() *counters {
	return &counters{locker: memlock.New(1), values: map[key]int64{}, busyRows: map[int64]bool{}, locks: map[key]int{},
		leases: map[key]lock.Lease{}}
}

func (c *counters) Lock(ctx context.Context, k key) (lock.Lease, error) {
	c.mu.Lock()
	c.locks[k]++
	c.mu.Unlock()
	l, err := c.locker.Lock(ctx, fmt.Sprint(k))
	if err == nil {
		c.mu.Lock()
		c.leases[k] = l
		c.mu.Unlock()
	}
	return l, err
}

// lease returns the last lease granted for k.
func (c *counters) lease(k key) lock.Lease {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.leases[k]
}

func (c *counters) TryLock(ctx context.Context, ks []key) []lock.Grant {
	c.tries.Add(1)
	time.Sleep(c.tryDelay)
	names := make([]string, len(ks))
	c.mu.Lock()
	for i, k := range ks {
		c.locks[k]++
		names[i] = fmt.Sprint(k)
	}
	c.mu.Unlock()
	grants := c.locker.TryLock(ctx, names)
	c.mu.Lock()
	for i, g := range grants {
		if g.Err == nil {
			c.leases[ks[i]] = g.Lease
		}
	}
	c.mu.Unlock()
	return grants
}

// lockCalls returns how many times k's lease was asked for.
func (c *counters) lockCalls(k key) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.locks[k]
}

func (c *counters) Unlock(ctx context.Context, _ key, l lock.Lease) { _ = l.Unlock(ctx) }

func (c *counters) StartBatch(ctx context.Context, _ key, _ []trace.SpanContext, _ lock.Lease) (context.Context, trace.Span) {
	return noop.NewTracerProvider().Tracer("").Start(ctx, "batch")
}

func (c *counters) Commit(_ context.Context, jobs []*pipeline.Job[key, op, int64], skipLocked bool) {
	c.committing.Add(1)
	if c.gate != nil {
		<-c.gate
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.groups = append(c.groups, jobs)
	if !skipLocked {
		c.alone++
	}
	for _, j := range jobs {
		k := j.Levels[0].Key
		if skipLocked && c.busyRows[k.row] {
			j.Busy = true
			continue
		}
		j.Results = make([]int64, len(j.Ops))
		for i, o := range j.Ops {
			if o.across == nil {
				c.values[k] += o.add
				j.Results[i] = c.values[k]
				continue
			}
			for _, ak := range o.across {
				if !slices.ContainsFunc(j.Levels, func(h pipeline.Held[key]) bool { return h.Key == ak && h.Lease != nil }) {
					panic(fmt.Sprintf("a request across %v ran in a job without the lease of %v", o.across, ak))
				}
				c.values[ak] += o.add
			}
		}
	}
}

func (c *counters) Row(k key) int64 { return k.row }

func (c *counters) Serial(o op) int64 { return o.serial }

func (c *counters) Unlocked(o op) bool { return o.unlocked }

func TestCombinesAndGroups(t *testing.T) {
	c := newCounters()
	p := pipeline.New[key, op, int64](c, pipeline.Config{MaxBatch: 64})
	defer p.Wait()
	keys := []key{{1, 1}, {1, 2}, {2, 1}, {3, 1}}
	const each = 200
	var wg sync.WaitGroup
	seen := make(map[key]map[int64]bool)
	var mu sync.Mutex
	for _, k := range keys {
		seen[k] = map[int64]bool{}
	}
	for _, k := range keys {
		for range each {
			wg.Go(func() {
				v, err := p.Submit(context.Background(), k, op{add: 1})
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				seen[k][v] = true
				mu.Unlock()
			})
		}
	}
	wg.Wait()
	for _, k := range keys {
		if c.values[k] != each || len(seen[k]) != each {
			t.Errorf("key %v: value %d, %d distinct answers; want %d each", k, c.values[k], len(seen[k]), each)
		}
	}
	jobs := 0
	for _, g := range c.groups {
		rows := map[int64]bool{}
		for _, j := range g {
			jobs++
			if r := j.Levels[0].Key.row; rows[r] {
				t.Fatalf("a group holds two jobs on row %d", r)
			} else {
				rows[r] = true
			}
		}
	}
	if jobs >= len(keys)*each {
		t.Errorf("%d requests ran in %d jobs: nothing was combined", len(keys)*each, jobs)
	}
	if p.Waiting() != 0 {
		t.Errorf("Waiting = %d after every request was answered", p.Waiting())
	}
}

func TestSerialRequestsNeverShareABatch(t *testing.T) {
	c := newCounters()
	c.gate = make(chan struct{})
	p := pipeline.New[key, op, int64](c, pipeline.Config{})
	defer p.Wait()
	k := key{1, 1}
	var wg sync.WaitGroup
	// The first request holds the committer; the next three queue behind it.
	wg.Go(func() { _, _ = p.Submit(context.Background(), k, op{add: 1}) })
	// (Waiting alone would not do: a worker that has not taken the first
	// request yet would take the second with it.)
	testenv.Eventually(t, "the first request in the committer", func() bool { return c.committing.Load() == 1 })
	for _, o := range []op{{add: 1, serial: 7}, {add: 1, serial: 7}, {add: 1}} {
		wg.Go(func() { _, _ = p.Submit(context.Background(), k, o) })
	}
	testenv.Eventually(t, "three requests queued behind the first", func() bool { return p.Waiting() == 4 })
	close(c.gate)
	wg.Wait()
	for _, g := range c.groups {
		n := 0
		for _, o := range g[0].Ops {
			if o.serial == 7 {
				n++
			}
		}
		if n > 1 {
			t.Fatalf("two requests with one serial in a batch: %+v", g[0].Ops)
		}
	}
	if c.values[k] != 4 {
		t.Fatalf("value %d, want 4", c.values[k])
	}
}

func TestBusyRowRunsAlone(t *testing.T) {
	c := newCounters()
	c.busyRows[2] = true
	p := pipeline.New[key, op, int64](c, pipeline.Config{})
	defer p.Wait()
	for _, k := range []key{{1, 1}, {2, 1}} {
		if v, err := p.Submit(context.Background(), k, op{add: 5}); err != nil || v != 5 {
			t.Fatalf("key %v: %d, %v", k, v, err)
		}
	}
	if c.alone != 1 {
		t.Fatalf("%d transactions ran alone, want 1 (the busy row's)", c.alone)
	}
}

func TestRefusals(t *testing.T) {
	c := newCounters()
	c.gate = make(chan struct{})
	p := pipeline.New[key, op, int64](c, pipeline.Config{MaxWaiting: 2})
	k := key{1, 1}
	var wg sync.WaitGroup
	wg.Go(func() { _, _ = p.Submit(context.Background(), k, op{add: 1}) })
	testenv.Eventually(t, "the first request in the committer", func() bool { return p.Waiting() == 1 })
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { _, err := p.Submit(ctx, k, op{add: 100}); errc <- err }()
	testenv.Eventually(t, "a second request queued", func() bool { return p.Waiting() == 2 })
	if _, err := p.Submit(context.Background(), k, op{add: 1000}); !errors.Is(err, pipeline.ErrFull) {
		t.Fatalf("third request: %v, want ErrFull", err)
	}
	cancel()
	if err := <-errc; !errors.Is(err, pipeline.ErrCancelled) {
		t.Fatalf("cancelled request: %v, want ErrCancelled", err)
	}
	close(c.gate)
	wg.Wait()
	p.Wait()
	if c.values[k] != 1 {
		t.Fatalf("value %d: a refused or cancelled request had an effect", c.values[k])
	}
	if p.Waiting() != 0 {
		t.Fatalf("Waiting = %d at the end", p.Waiting())
	}
}

// TestAcross: a request over two keys joins the busy queue of one, whose
// worker takes the other's lease for the batch; if another holds that
// lease, the request fails with ErrAcross and changed nothing.
func TestAcross(t *testing.T) {
	c := newCounters()
	c.gate = make(chan struct{})
	p := pipeline.New[key, op, int64](c, pipeline.Config{MaxBatch: 16})
	defer p.Wait()
	hot, cold := key{1, 1}, key{1, 2}
	var wg sync.WaitGroup
	submit := func() {
		wg.Go(func() {
			if _, err := p.Submit(context.Background(), hot, op{add: 1}); err != nil {
				t.Error(err)
			}
		})
	}
	// The hot key's worker is committing a batch while ten more requests
	// queue behind it; then comes a request across both keys.
	submit()
	testenv.Eventually(t, "a batch of the hot key in the committer", func() bool { return c.committing.Load() == 1 })
	for range 10 {
		submit()
	}
	testenv.Eventually(t, "ten requests queued", func() bool { return p.Waiting() == 11 })
	wg.Go(func() {
		if _, err := p.SubmitAcross(context.Background(), []key{cold, hot}, op{add: 1, across: []key{hot, cold}}); err != nil {
			t.Error(err)
		}
	})
	testenv.Eventually(t, "the request across both queued", func() bool { return p.Waiting() == 12 })
	close(c.gate)
	wg.Wait()
	if c.values[hot] != 12 || c.values[cold] != 1 {
		t.Fatalf("hot %d, cold %d; want 12 and 1", c.values[hot], c.values[cold])
	}
	joined := false
	for _, g := range c.groups {
		for _, j := range g {
			joined = joined || len(j.Levels) == 2 && len(j.Ops) == 11
		}
	}
	if !joined {
		t.Errorf("the request across both keys did not join the hot key's batch: %d groups", len(c.groups))
	}

	t.Run("MovesToTheHolder", func(t *testing.T) {
		// The cold key's lease is held elsewhere: the request, queued on
		// the hot key, moves to the cold key's queue, whose worker waits
		// for that lease and then takes the hot one.
		held, err := c.locker.Lock(context.Background(), fmt.Sprint(cold))
		if err != nil {
			t.Fatal(err)
		}
		hotBefore, coldBefore := c.values[hot], c.values[cold]
		calls := c.lockCalls(cold)
		done := make(chan error, 1)
		go func() {
			_, err := p.SubmitAcross(context.Background(), []key{hot, cold}, op{add: 1, across: []key{hot, cold}})
			done <- err
		}()
		// Asked for by the hot key's worker, then by the cold key's own.
		testenv.Eventually(t, "the request waiting in the cold key's queue", func() bool { return c.lockCalls(cold) > calls+1 })
		if err := held.Unlock(context.Background()); err != nil {
			t.Fatal(err)
		}
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if c.values[hot] != hotBefore+1 || c.values[cold] != coldBefore+1 {
			t.Fatalf("hot %d -> %d, cold %d -> %d", hotBefore, c.values[hot], coldBefore, c.values[cold])
		}
	})
	t.Run("ErrAcross", func(t *testing.T) {
		// Refused at both keys' workers: ErrAcross, and nothing changed.
		heldCold, err := c.locker.Lock(context.Background(), fmt.Sprint(cold))
		if err != nil {
			t.Fatal(err)
		}
		before := c.values[hot]
		calls := c.lockCalls(cold)
		done := make(chan error, 1)
		go func() {
			_, err := p.SubmitAcross(context.Background(), []key{hot, cold}, op{add: 1, across: []key{hot, cold}})
			done <- err
		}()
		testenv.Eventually(t, "the request waiting in the cold key's queue", func() bool { return c.lockCalls(cold) > calls+1 })
		heldHot, err := c.locker.Lock(context.Background(), fmt.Sprint(hot)) // once the hot worker lets it go
		if err != nil {
			t.Fatal(err)
		}
		defer heldHot.Unlock(context.Background())
		if err := heldCold.Unlock(context.Background()); err != nil {
			t.Fatal(err)
		}
		if err := <-done; !errors.Is(err, pipeline.ErrAcross) || c.values[hot] != before {
			t.Fatalf("across a held key: %v, hot %d -> %d", err, before, c.values[hot])
		}
		if p.Waiting() != 0 {
			t.Errorf("Waiting = %d after every request was answered", p.Waiting())
		}
	})
}

// The committer's goroutine carries the pprof label pipeline=committer,
// so a CPU profile of a server tells the serial work of the group
// commits from the rest (go tool pprof -tagfocus pipeline=committer).
func TestCommitterIsLabelled(t *testing.T) {
	c := newCounters()
	c.gate = make(chan struct{})
	p := pipeline.New[key, op, int64](c, pipeline.Config{})
	defer p.Wait()
	done := make(chan error, 1)
	go func() {
		_, err := p.Submit(context.Background(), key{1, 1}, op{add: 1})
		done <- err
	}()
	for c.committing.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	var b strings.Builder
	if err := pprof.Lookup("goroutine").WriteTo(&b, 1); err != nil {
		t.Fatal(err)
	}
	close(c.gate)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), `labels: {"pipeline":"committer"}`) {
		t.Fatalf("no goroutine labelled pipeline=committer while a commit ran:\n%s", b.String())
	}
}

// TestAcrossFindsABusyKeyBetweenBatches: a busy key's queue empties
// between its batches; a request across it and another key, listed
// second, still joins it there (its lease kept for it says it is the
// busy one), so that the next requests of that key and the request
// across keys share a worker rather than contend for its lease.
func TestAcrossFindsABusyKeyBetweenBatches(t *testing.T) {
	c := newCounters()
	p := pipeline.New[key, op, int64](c, pipeline.Config{Idle: time.Minute, MaxKeep: time.Minute})
	defer p.Wait()
	ctx := context.Background()
	hot, cold := key{1, 1}, key{2, 1}
	if _, err := p.Submit(ctx, hot, op{add: 1}); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, "the hot key's queue emptied", func() bool { return p.Waiting() == 0 })
	if _, err := p.SubmitAcross(ctx, []key{cold, hot}, op{add: 1, across: []key{cold, hot}}); err != nil {
		t.Fatal(err)
	}
	c.mu.Lock()
	last := c.groups[len(c.groups)-1]
	c.mu.Unlock()
	if host := last[0].Levels[0].Key; host != hot {
		t.Errorf("the request across both keys ran on %v's worker, want the busy key %v's", host, hot)
	}
	if n := c.lockCalls(hot); n != 1 {
		t.Errorf("the hot key's lease was asked for %d times, want 1 (kept between its requests)", n)
	}
}
