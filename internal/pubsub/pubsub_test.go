package pubsub

import (
	"context"
	"errors"
	"log/slog"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shopstack/inventory/internal/testenv"
)

// wakeTimeout is the generous bound for a wake-up to arrive; the test
// machines may be small and run under -race.
const wakeTimeout = 5 * time.Second

// fanout is what both implementations offer (feed.Fanout plus Close).
type fanout interface {
	Announce(seq int64)
	Wakeups() <-chan struct{}
	Close() error
}

var (
	_ fanout = (*Redis)(nil)
	_ fanout = (*Etcd)(nil)
)

// waitWake fails the test unless f wakes within d.
func waitWake(t *testing.T, name string, f fanout, d time.Duration) {
	t.Helper()
	start := time.Now()
	select {
	case _, ok := <-f.Wakeups():
		if !ok {
			t.Fatalf("%s: Wakeups closed", name)
		}
		t.Logf("%s woke after %v", name, time.Since(start).Round(time.Millisecond))
	case <-time.After(d):
		t.Fatalf("%s: no wake-up within %v", name, d)
	}
}

// noWake fails the test if f wakes within d.
func noWake(t *testing.T, name string, f fanout, d time.Duration) {
	t.Helper()
	select {
	case <-f.Wakeups():
		t.Fatalf("%s woke up, but nobody else announced", name)
	case <-time.After(d):
	}
}

// drain empties a pending wake-up, if any.
func drain(f fanout) {
	select {
	case <-f.Wakeups():
	default:
	}
}

// closeAndCheck closes f, checks that a second Close is harmless and that
// Wakeups gets closed (after at most one pending wake-up).
func closeAndCheck(t *testing.T, name string, f fanout) {
	t.Helper()
	start := time.Now()
	if err := f.Close(); err != nil {
		t.Errorf("%s: Close: %v", name, err)
	}
	t.Logf("%s: Close took %v", name, time.Since(start).Round(time.Millisecond))
	_ = f.Close()
	f.Announce(1 << 40) // after Close: must neither block nor panic
	for range 2 {
		select {
		case _, ok := <-f.Wakeups():
			if !ok {
				return
			}
		case <-time.After(time.Second):
			t.Fatalf("%s: Wakeups not closed after Close", name)
		}
	}
	t.Fatalf("%s: Wakeups still delivers after Close", name)
}

// ownFrames are stack frames of this package's goroutines (not the tests').
var ownFrames = []string{
	"internal/pubsub.(*Redis)",
	"internal/pubsub.(*Etcd)",
	"internal/pubsub.NewRedis",
	"internal/pubsub.NewEtcd",
	"internal/pubsub.sendLoop",
}

// goroutines returns the stacks of all goroutines but the caller's that
// contain one of the frames.
func goroutines(frames ...string) []string {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	stacks := strings.Split(string(buf), "\n\n")[1:] // [0] is the caller
	var found []string
	for _, s := range stacks {
		for _, f := range frames {
			if strings.Contains(s, f) {
				found = append(found, s)
				break
			}
		}
	}
	return found
}

// leakCheck records the goroutines now and returns a check, to be called
// after everything started since was closed: it waits up to 10s until no
// goroutine of this package is left, the goroutines with one of libFrames
// are no more than before, and the total is within slack of before.
func leakCheck(t *testing.T, slack int, libFrames ...string) func() {
	t.Helper()
	before := runtime.NumGoroutine()
	libBefore := len(goroutines(libFrames...))
	return func() {
		t.Helper()
		start := time.Now()
		var own, lib []string
		var now int
		if !testenv.Poll(10*time.Second, func() bool {
			own, lib, now = goroutines(ownFrames...), goroutines(libFrames...), runtime.NumGoroutine()
			return len(own) == 0 && len(lib) <= libBefore && now <= before+slack
		}) {
			t.Fatalf("goroutines left after Close: total %d (before %d, slack %d); ours:\n%s\nclient libraries' (%d before):\n%s",
				now, before, slack, strings.Join(own, "\n\n"), libBefore, strings.Join(lib, "\n\n"))
		}
		t.Logf("goroutines: %d before, %d after (%d/%d of the clients), gone %v after the check began",
			before, now, libBefore, len(lib), time.Since(start).Round(time.Millisecond))
	}
}

// logBuffer collects a logger's output, for tests that check what was
// logged.
type logBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// logger returns a debug logger writing to l.
func (l *logBuffer) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(l, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func TestEncodeDecode(t *testing.T) {
	id := newID()
	if len(id) != 16 || strings.Contains(id, " ") {
		t.Fatalf("newID() = %q", id)
	}
	if newID() == id {
		t.Fatal("two IDs alike")
	}
	got, seq, ok := decode(encode(id, 1234567890123))
	if !ok || got != id || seq != 1234567890123 {
		t.Fatalf("decode(encode) = %q %d %v", got, seq, ok)
	}
	for _, bad := range []string{"", "abc", " 12", "abc x", "abc 12 13"} {
		if _, _, ok := decode(bad); ok {
			t.Errorf("decode(%q) ok", bad)
		}
	}
}

func TestWakeupsDeliver(t *testing.T) {
	w := newWakeups("self", discard())
	woke := func() bool {
		select {
		case <-w.ch:
			return true
		default:
			return false
		}
	}
	steps := []struct {
		msg  string
		want bool
	}{
		{"self 5", false},   // our own
		{"other 5", true},   // first from other
		{"other 5", false},  // the same over another server
		{"other 4", false},  // late, already covered
		{"other 6", true},   // newer
		{"third 1", true},   // another sender
		{"garbage", true},   // unparsable: wake rather than miss
		{"self 100", false}, // our own again
	}
	for _, s := range steps {
		w.deliver(s.msg)
		if got := woke(); got != s.want {
			t.Errorf("deliver(%q) woke = %v, want %v", s.msg, got, s.want)
		}
	}
	// Wake-ups coalesce and never block.
	for i := range 10 {
		w.deliver(encode("x", int64(i)))
	}
	if !woke() || woke() {
		t.Error("ten deliveries did not coalesce into one wake-up")
	}
	w.close()
}

// TestSendLoop checks the sender alone: a burst becomes few sends, the
// last value is sent, failures are retried, and the end of its context
// ends it.
func TestSendLoop(t *testing.T) {
	l := newLatest()
	kicks := make(chan struct{}, 1)
	ctx, stop := context.WithCancel(context.Background())
	var (
		mu    sync.Mutex
		sent  []int64
		fails atomic.Int32
	)
	fails.Store(2)
	slow := make(chan struct{}) // the first send blocks until closed
	first := true
	send := func(seq int64) error {
		if first {
			first = false
			<-slow
		}
		if fails.Load() > 0 && seq == 10000 {
			fails.Add(-1)
			return errors.New("refused")
		}
		mu.Lock()
		sent = append(sent, seq)
		mu.Unlock()
		return nil
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		sendLoop(ctx, kicks, l, send, discard())
	}()
	for i := int64(1); i <= 10000; i++ {
		if l.raise(i) {
			kick(kicks)
		}
		if i == 1 {
			time.Sleep(10 * time.Millisecond) // let the first send start
		}
	}
	l.raise(3) // lower: ignored
	close(slow)
	if !testenv.Poll(5*time.Second, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(sent) > 0 && sent[len(sent)-1] == 10000
	}) {
		mu.Lock()
		defer mu.Unlock()
		t.Fatalf("10000 not sent; sent %v", sent)
	}
	stop()
	<-done
	mu.Lock()
	defer mu.Unlock()
	if !slices.Equal(sent, []int64{1, 10000}) {
		t.Errorf("sent %v, want [1 10000]: the burst behind a send in flight is one send", sent)
	}
	if fails.Load() != 0 {
		t.Errorf("%d failures left: the failed send was not retried", fails.Load())
	}
}
