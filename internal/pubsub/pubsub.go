// Package pubsub carries "the ledger advanced" between replicas, so that a
// commit on one replica wakes the event feeds of the others at once instead
// of at their next poll. It implements feed.Fanout twice: over Redis
// PUBLISH/SUBSCRIBE (Redis) and over an etcd key and its watch (Etcd).
//
// A message is only a wake-up. The ledger stays the source of truth: the
// feed reads it itself and still polls, so a lost, late or duplicated
// message costs latency at worst, never correctness. Both implementations
// lean on that: nothing is acknowledged or replayed, and failures are
// logged at debug level and retried in the background, never returned.
//
// Every instance has a random ID. A message is "<id> <seq>": the sender's
// ID and the highest sequence it announced. An instance ignores its own
// messages (a replica's own commits already wake its feed), and messages of
// a sender that carry no higher sequence than one already seen from it
// (the same announcement arriving over several Redis servers, or a resent
// one).
//
// Announce never blocks: it raises the instance's highest sequence and
// kicks a background sender, which sends the latest value whenever it
// changed, one send at a time. A burst of announces thus becomes a few
// sends, and the last sequence is always sent eventually (a failed send is
// retried with backoff until it succeeds, a newer value replaces it, or the
// instance is closed).
package pubsub

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"math"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/shopstack/inventory/internal/feed"
	"github.com/shopstack/inventory/internal/retry"
)

// Backoff between retries of a failed send or a failed watch.
const (
	retryMin = 50 * time.Millisecond
	retryMax = 2 * time.Second
)

// maxSenders bounds the per-sender memory of wakeups; see deliver.
const maxSenders = 1024

// newID returns a random instance ID: 16 hex digits, no spaces.
func newID() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b) // never fails (crypto/rand panics instead)
	return hex.EncodeToString(b)
}

// encode is the message announcing seq from the instance id.
func encode(id string, seq int64) string {
	return id + " " + strconv.FormatInt(seq, 10)
}

// decode parses a message made by encode.
func decode(msg string) (id string, seq int64, ok bool) {
	id, s, ok := strings.Cut(msg, " ")
	if !ok || id == "" {
		return "", 0, false
	}
	seq, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return "", 0, false
	}
	return id, seq, true
}

// discard is the logger of a nil Config.Logger.
func discard() *slog.Logger { return slog.New(slog.DiscardHandler) }

// latest holds the highest sequence announced; Announce raises it.
type latest struct {
	v atomic.Int64 // math.MinInt64 until the first Announce
}

func newLatest() *latest {
	l := &latest{}
	l.v.Store(math.MinInt64)
	return l
}

// raise sets the value to max(value, seq) and reports whether it changed.
func (l *latest) raise(seq int64) bool {
	for {
		cur := l.v.Load()
		if seq <= cur {
			return false
		}
		if l.v.CompareAndSwap(cur, seq) {
			return true
		}
	}
}

func (l *latest) load() int64 { return l.v.Load() }

// kick wakes a sender without blocking; kicks coalesce.
func kick(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// sendLoop is a background sender: whenever kicked, it sends the latest
// value if it differs from the last one sent, one send at a time, until
// ctx ends. A failed send is logged at debug level and retried with
// backoff, with the then latest value.
func sendLoop(ctx context.Context, kicks <-chan struct{}, l *latest, send func(seq int64) error, log *slog.Logger) {
	sent := int64(math.MinInt64)
	bo := retry.Doubling(retryMin, retryMax)
	for {
		select {
		case <-ctx.Done():
			return
		case <-kicks:
		}
		for seq := l.load(); seq != sent; seq = l.load() {
			err := retry.Forever(ctx, bo, func() error {
				seq = l.load()
				return send(seq)
			}, func(err error, wait time.Duration) {
				log.Debug("pubsub: send failed; retrying", "seq", seq, "retry_in", wait, "err", err)
			})
			if err != nil {
				return // ctx ended
			}
			sent = seq
		}
	}
}

// wakeups turns received messages into wake-ups on a coalescing channel.
type wakeups struct {
	self string
	ch   chan struct{} // buffer 1; closed by close once no deliver can run
	log  *slog.Logger

	mu   sync.Mutex
	seen map[string]int64 // highest sequence delivered per sender ID
}

func newWakeups(self string, log *slog.Logger) *wakeups {
	return &wakeups{self: self, ch: make(chan struct{}, 1), log: log, seen: make(map[string]int64)}
}

// deliver handles one received message: it wakes the channel unless the
// message is the instance's own, or its sender already announced this
// sequence or a higher one (an instance announces its running maximum, so
// such a message is a duplicate of one that already woke us). A message
// that cannot be parsed wakes the channel: a spurious wake-up is harmless,
// a missed one costs a poll interval.
func (w *wakeups) deliver(msg string) {
	id, seq, ok := decode(msg)
	switch {
	case !ok:
		w.log.Debug("pubsub: malformed message", "msg", msg)
	case id == w.self:
		return
	default:
		w.mu.Lock()
		last, found := w.seen[id]
		if found && seq <= last {
			w.mu.Unlock()
			return
		}
		// Every replica restart brings a new ID; forgetting them all now
		// and then costs at most one duplicate wake-up per sender.
		if !found && len(w.seen) >= maxSenders {
			clear(w.seen)
		}
		w.seen[id] = seq
		w.mu.Unlock()
	}
	select {
	case w.ch <- struct{}{}:
	default:
	}
}

// close closes the channel; no deliver may run then or later.
func (w *wakeups) close() { close(w.ch) }

var (
	_ feed.Fanout = (*Redis)(nil)
	_ feed.Fanout = (*Etcd)(nil)
)
