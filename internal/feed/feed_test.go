package feed_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/shopstack/inventory/internal/feed"
)

// log is an ordered log in memory: entries are their sequences.
type log struct {
	mu      sync.Mutex
	entries []int64
}

func (l *log) append(n int) int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	for range n {
		l.entries = append(l.entries, int64(len(l.entries)+1))
	}
	return int64(len(l.entries))
}

func (l *log) last(context.Context) (int64, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return int64(len(l.entries)), nil
}

func (l *log) read(_ context.Context, after, upTo int64, limit int) ([]int64, bool, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []int64
	for _, e := range l.entries {
		if e > after && (upTo == 0 || e <= upTo) {
			if len(out) == limit {
				return out, true, nil
			}
			out = append(out, e)
		}
	}
	return out, false, nil
}

func start(t *testing.T, l *log) *feed.Feed[int64] {
	f := feed.New(feed.Config[int64]{
		Last: l.last,
		Read: func(ctx context.Context, after int64, limit int) ([]int64, bool, error) {
			return l.read(ctx, after, 0, limit)
		},
		Seq:  func(e int64) int64 { return e },
		Poll: time.Hour, // only Notify wakes it
	})
	if err := f.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.Stop)
	return f
}

func recvN(t *testing.T, ch <-chan int64, n int) []int64 {
	t.Helper()
	var got []int64
	for len(got) < n {
		select {
		case e, ok := <-ch:
			if !ok {
				t.Fatalf("closed after %v", got)
			}
			got = append(got, e)
		case <-time.After(10 * time.Second):
			t.Fatalf("%d of %d entries: %v", len(got), n, got)
		}
	}
	return got
}

// TestReplayThenLive subscribes from an earlier point while entries keep
// coming: the subscriber gets every matching entry after it, in order,
// once each, across the switch from replay to live.
func TestReplayThenLive(t *testing.T) {
	l := &log{}
	l.append(50)
	f := start(t, l)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	even := func(e int64) bool { return e%2 == 0 }
	after := int64(10)
	ch, err := f.Subscribe(ctx, even, &after, func(ctx context.Context, after, upTo int64, limit int) ([]int64, bool, error) {
		es, more, err := l.read(ctx, after, upTo, limit)
		var out []int64
		for _, e := range es {
			if even(e) {
				out = append(out, e)
			}
		}
		return out, more, err
	})
	if err != nil {
		t.Fatal(err)
	}
	for range 5 {
		f.Notify(l.append(10))
	}
	got := recvN(t, ch, 45) // 12, 14, …, 100
	for i, e := range got {
		if want := int64(12 + 2*i); e != want {
			t.Fatalf("entry %d is %d, want %d: %v", i, e, want, got)
		}
	}
}

// TestFromNow subscribes without a starting point: the stream begins
// after the log's end, and a subscription is refused once the feed stops.
func TestFromNow(t *testing.T) {
	l := &log{}
	l.append(3)
	f := start(t, l)
	ch, err := f.Subscribe(context.Background(), func(int64) bool { return true }, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	f.Notify(l.append(2))
	if got := recvN(t, ch, 2); got[0] != 4 || got[1] != 5 {
		t.Fatalf("from now: %v, want [4 5]", got)
	}
	f.Stop()
	if _, ok := <-ch; ok {
		t.Fatal("a subscription outlived its feed")
	}
	if _, err := f.Subscribe(context.Background(), func(int64) bool { return true }, nil, nil); err != feed.ErrStopped {
		t.Fatalf("subscribe to a stopped feed: %v, want ErrStopped", err)
	}
}
