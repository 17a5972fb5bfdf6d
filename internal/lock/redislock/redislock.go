// Package redislock is the Redis lock backend: Redlock through redsync on
// one Redis or on several independent masters, with fencing tokens from a
// per-key counter that survives a Redis losing its data.
//
// A lease is kept alive while its holder works, and its Done channel closes
// a safety margin (TTL/10) before the lease could lapse in Redis, so a
// holder cut off from Redis normally learns it lost ownership before
// another holder is granted the key. A paused process or a jumping clock
// can still defeat that; the fencing token is what protects the data.
package redislock

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/cenkalti/backoff/v5"
	"github.com/go-redsync/redsync/v4"
	redsyncredis "github.com/go-redsync/redsync/v4/redis"
	"github.com/go-redsync/redsync/v4/redis/goredis/v9"
	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"

	"github.com/shopstack/inventory/internal/lock"
	"github.com/shopstack/inventory/internal/retry"
)

const (
	lockPrefix  = "inventory:lock:"
	fencePrefix = "inventory:fence:"
)

// Locker is a lock.Locker on Redis.
type Locker struct {
	cfg     Config
	clients []*redis.Client
	rs      *redsync.Redsync
	quorum  int
	gate    lock.Gate

	closeOnce sync.Once
	closeErr  error
}

var (
	_ lock.Locker  = (*Locker)(nil)
	_ lock.Checker = (*Locker)(nil)
)

// New returns a Locker on the Redis servers of cfg. It does not connect:
// Redis need not be up yet.
func New(cfg Config) (*Locker, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	l := &Locker{cfg: cfg, quorum: len(cfg.Addrs)/2 + 1}
	pools := make([]redsyncredis.Pool, 0, len(cfg.Addrs))
	for _, addr := range cfg.Addrs {
		c := redis.NewClient(&redis.Options{
			Addr:         addr,
			DialTimeout:  cfg.OpTimeout,
			ReadTimeout:  cfg.OpTimeout,
			WriteTimeout: cfg.OpTimeout,
			PoolTimeout:  cfg.OpTimeout,
			// Deadlines of the contexts redsync and Lock pass apply to
			// the socket, so one slow server cannot hold an attempt.
			ContextTimeoutEnabled: true,
			// Lock has its own retry loop; hidden retries inside a
			// command would only delay telling a dead server apart.
			MaxRetries:    -1,
			DialerRetries: 1,
			// No CLIENT SETINFO or maintenance-notification handshake:
			// fewer round trips on connect, and nothing that older
			// servers reject.
			DisableIdentity:          true,
			MaintNotificationsConfig: &maintnotifications.Config{Mode: maintnotifications.ModeDisabled},
		})
		if cfg.Instrument != nil {
			if err := cfg.Instrument(c); err != nil {
				return nil, fmt.Errorf("redislock: instrument client of %s: %w", addr, err)
			}
		}
		l.clients = append(l.clients, c)
		pools = append(pools, goredis.NewPool(c))
	}
	l.rs = redsync.New(pools...)
	return l, nil
}

// Domain returns "redsync": tokens are comparable with tokens of every
// Locker on the same Redis servers.
func (l *Locker) Domain() string { return "redsync" }

// Close closes the connections to Redis. Leases still held then lapse:
// they can no longer be extended and their Done channels close.
func (l *Locker) Close() error {
	l.closeOnce.Do(func() {
		var errs []error
		for _, c := range l.clients {
			errs = append(errs, c.Close())
		}
		l.closeErr = errors.Join(errs...)
	})
	return l.closeErr
}

// Lock acquires key: first in this process (callers of one Locker queue in
// memory), then in Redis, retrying with backoff while the key is taken.
func (l *Locker) Lock(ctx context.Context, key string) (lock.Lease, error) {
	leave, err := l.gate.Enter(ctx, key)
	if err != nil {
		return nil, fmt.Errorf("redislock: lock %s: %w", key, err)
	}
	le, err := l.acquire(ctx, key)
	if err != nil {
		leave()
		return nil, fmt.Errorf("redislock: lock %s: %w", key, err)
	}
	le.start(leave)
	return le, nil
}

// acquire retries one Redlock attempt and the fencing token until it has
// both, the key stayed taken for cfg.Tries attempts, the backend failed
// cfg.ErrorRetries attempts in a row, or ctx ended.
func (l *Locker) acquire(ctx context.Context, key string) (*lease, error) {
	bo := &backoff.ExponentialBackOff{
		InitialInterval:     l.cfg.RetryMin,
		RandomizationFactor: backoff.DefaultRandomizationFactor,
		Multiplier:          2,
		MaxInterval:         l.cfg.RetryMax,
	}
	bo.Reset()
	var taken, failed int
	var last error
	for {
		if err := ctx.Err(); err != nil {
			return nil, ctxErr(err, last)
		}
		le, err := l.attempt(ctx, key)
		if err == nil {
			return le, nil
		}
		if ctxDone := ctx.Err(); ctxDone != nil {
			// Whatever the attempt saw, it was cut short by ctx.
			return nil, ctxErr(ctxDone, err)
		}
		last = err
		if errors.Is(err, lock.ErrUnavailable) {
			failed++
			if failed >= l.cfg.ErrorRetries {
				return nil, err
			}
		} else {
			taken, failed = taken+1, 0
			if l.cfg.Tries > 0 && taken >= l.cfg.Tries {
				return nil, fmt.Errorf("%w after %d tries", lock.ErrNotAcquired, taken)
			}
		}
		if !retry.Sleep(ctx, bo.NextBackOff()) {
			return nil, ctxErr(ctx.Err(), last)
		}
	}
}

// attempt tries once to take the Redlock on key and then its fencing
// token. Its error wraps lock.ErrUnavailable when too few servers answered;
// any other error means the key is taken.
func (l *Locker) attempt(ctx context.Context, key string) (*lease, error) {
	m := l.rs.NewMutex(lockPrefix+key,
		redsync.WithExpiry(l.cfg.TTL),
		redsync.WithTries(1),
		redsync.WithFailFast(true),
		// redsync bounds each attempt by TTL*factor: make that OpTimeout.
		redsync.WithTimeoutFactor(float64(l.cfg.OpTimeout)/float64(l.cfg.TTL)),
	)
	// A failed attempt is followed by a release on every server, which
	// redsync bounds separately: one budget for both keeps an attempt on
	// a stalled server at OpTimeout rather than twice that. The caller's
	// cancellation is seen between attempts.
	err := m.TryLockContext(quorumContext(ctx, l.cfg.OpTimeout))
	if err != nil {
		// redsync's errors are kept as text only: their per-server
		// timeouts must not read as the caller's context.DeadlineExceeded.
		if l.unreachable(err) {
			return nil, fmt.Errorf("%w: %s", lock.ErrUnavailable, flat(err))
		}
		return nil, errors.New(flat(err))
	}
	token, err := l.nextToken(ctx, key)
	if err == nil && !time.Now().Before(l.deadlineOf(m.Until())) {
		err = errors.New("lease expired before it was granted")
	}
	if err != nil {
		// Without a token the lease is useless; free the key for others
		// rather than leaving it taken until the TTL.
		_, _ = m.UnlockContext(quorumContext(ctx, l.cfg.OpTimeout))
		return nil, fmt.Errorf("%w: fencing token: %v", lock.ErrUnavailable, err)
	}
	return newLease(l, key, m, token), nil
}

// Check pings every server. It returns nil when a quorum answers, else an
// error wrapping lock.ErrUnavailable naming the servers that did not.
func (l *Locker) Check(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, l.cfg.OpTimeout)
	defer cancel()
	errs := make([]error, len(l.clients))
	var wg sync.WaitGroup
	for i, c := range l.clients {
		wg.Go(func() { errs[i] = c.Ping(ctx).Err() })
	}
	wg.Wait()
	var failed []string
	for i, err := range errs {
		if err != nil {
			failed = append(failed, fmt.Sprintf("%s: %v", l.cfg.Addrs[i], err))
		}
	}
	if len(l.clients)-len(failed) >= l.quorum {
		return nil
	}
	return fmt.Errorf("redislock: check: %w: %d of %d servers answer, %d needed; %s",
		lock.ErrUnavailable, len(l.clients)-len(failed), len(l.clients), l.quorum, strings.Join(failed, "; "))
}

// ctxErr wraps the context's error, with the last attempt's outcome as
// explanation.
func ctxErr(err, last error) error {
	if last == nil {
		return err
	}
	return fmt.Errorf("%w (last attempt: %v)", err, last)
}
