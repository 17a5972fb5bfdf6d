package redislock

import (
	"context"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// Lockers of one namespace tell each other, on the Redis channel
// <Namespace>:wanted, when a Lock was refused a key (the holder may let
// it go sooner: lock.Contended) and when a holder let go of a key someone
// wanted (the waiter tries again at once rather than after its backoff).
// A holder that let go of a wanted key leaves it to the waiter for a
// moment (yieldFor): its own next Lock or TryLock of the key would
// otherwise take it back before the waiter hears.
//
// Pub/sub delivers at most once: a message lost on a reconnect delays a
// handoff to the waiter's next refusal, its next message.

const (
	msgWanted = "w:"
	msgFreed  = "f:"
	// maxYields bounds the yield entries kept before expired ones are
	// dropped.
	maxYields = 1024
)

// wantedChannel is the namespace's pub/sub channel.
func (l *Locker) wantedChannel() string { return l.cfg.Namespace + ":wanted" }

// yieldFor is how long a Locker that let go of a wanted key leaves it to
// the waiter: time for the waiter to hear and try, which it does at once.
func (l *Locker) yieldFor() time.Duration { return 2 * l.cfg.RetryMin }

// listen subscribes to the namespace's channel on every server, as soon as
// one answers, until Close. A cluster client subscribes on one node:
// cluster PUBLISH reaches every node.
func (l *Locker) listen() {
	for _, c := range l.clients {
		ps := c.Subscribe(context.Background())
		l.subs = append(l.subs, ps)
		go func() {
			_ = ps.Subscribe(context.Background(), l.wantedChannel()) // kept, and renewed on reconnect, even when it fails now
			for m := range ps.Channel(redis.WithChannelSize(1024)) {
				l.heard(m.Payload)
			}
		}()
	}
}

// heard handles a message on the namespace's channel.
func (l *Locker) heard(payload string) {
	if key, ok := strings.CutPrefix(payload, msgWanted); ok {
		l.wanted.Signal(key)
	} else if key, ok := strings.CutPrefix(payload, msgFreed); ok {
		l.freed.Signal(key)
	}
}

// tell publishes msg+key on every server, without waiting: a lost message
// only delays a handoff.
func (l *Locker) tell(msg, key string) {
	for _, c := range l.clients {
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), l.cfg.OpTimeout)
			defer cancel()
			_ = c.Publish(ctx, l.wantedChannel(), msg+key).Err()
		}()
	}
}

// yields are the keys this Locker let go to a waiter elsewhere, and until
// when it leaves them to it.
type yields struct {
	mu    sync.Mutex
	until map[string]time.Time
}

// add leaves key to a waiter elsewhere for d.
func (y *yields) add(key string, d time.Duration) {
	y.mu.Lock()
	defer y.mu.Unlock()
	now := time.Now()
	if y.until == nil {
		y.until = make(map[string]time.Time)
	}
	if len(y.until) >= maxYields {
		for k, t := range y.until {
			if !now.Before(t) {
				delete(y.until, k)
			}
		}
	}
	y.until[key] = now.Add(d)
}

// wait returns how long key is still left to a waiter elsewhere; zero if
// it is not.
func (y *yields) wait(key string) time.Duration {
	y.mu.Lock()
	defer y.mu.Unlock()
	t, ok := y.until[key]
	if !ok {
		return 0
	}
	d := time.Until(t)
	if d <= 0 {
		delete(y.until, key)
		return 0
	}
	return d
}
