// Package redislock is the Redis lock backend: Redlock through redsync on
// one Redis, on several independent masters, or on a Redis Cluster, with
// fencing tokens from a per-key counter that survives a Redis losing its
// data.
//
// On a cluster, a lease and its counter live on the master of the key's
// slot, and a failover can lose their latest writes (replication is
// asynchronous): the lock can then be granted twice, and the counter can
// go back. The database refuses a write under a token it has seen passed,
// and Advance moves the counter past that token.
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

	"github.com/shopstack/inventory/internal/gather"
	"github.com/shopstack/inventory/internal/lock"
	"github.com/shopstack/inventory/internal/redisconn"
	"github.com/shopstack/inventory/internal/retry"
)

// Locker is a lock.Locker on Redis.
type Locker struct {
	cfg Config
	// clients are one client per master, or the one cluster client.
	clients []redis.UniversalClient
	cluster *redis.ClusterClient // nil unless cfg.Cluster
	rs      *redsync.Redsync
	quorum  int
	gate    lock.Gate
	// releases releases the leases unlocked at about the same time
	// together (releaseGroup).
	releases gather.Gatherer[*release]
	// wanted tells the leases held here that a Lock elsewhere was refused
	// their key; freed tells the Locks waiting here that a holder
	// elsewhere let go of theirs; yields are the keys let go to a waiter
	// elsewhere (wanted.go). subs are the subscriptions they listen on.
	wanted, freed lock.Signals
	yields        yields
	subs          []*redis.PubSub

	closeOnce sync.Once
	closeErr  error
}

var (
	_ lock.Locker   = (*Locker)(nil)
	_ lock.Checker  = (*Locker)(nil)
	_ lock.Advancer = (*Locker)(nil)
)

// New returns a Locker on the Redis servers of cfg. It does not connect:
// Redis need not be up yet.
func New(cfg Config) (*Locker, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	l := &Locker{cfg: cfg}
	l.releases = gather.Gatherer[*release]{Take: takeReleases, Run: l.releaseGroup, Labels: []string{"redislock", "release"}}
	if cfg.Cluster {
		l.cluster = redis.NewClusterClient(clusterOptions(cfg))
		l.clients = []redis.UniversalClient{l.cluster}
	} else {
		for _, addr := range cfg.Addrs {
			l.clients = append(l.clients, redis.NewClient(clientOptions(cfg, addr)))
		}
	}
	l.quorum = len(l.clients)/2 + 1
	pools := make([]redsyncredis.Pool, 0, len(l.clients))
	for _, c := range l.clients {
		if cfg.Instrument != nil {
			if err := cfg.Instrument(c); err != nil {
				_ = l.Close()
				return nil, fmt.Errorf("redislock: instrument Redis client: %w", err)
			}
		}
		pools = append(pools, goredis.NewPool(c))
	}
	l.rs = redsync.New(pools...)
	l.listen()
	return l, nil
}

func clientOptions(cfg Config, addr string) *redis.Options {
	return &redis.Options{
		Addr:         addr,
		Username:     cfg.Username,
		Password:     cfg.Password,
		TLSConfig:    cfg.TLS,
		DialTimeout:  cfg.OpTimeout,
		ReadTimeout:  cfg.OpTimeout,
		WriteTimeout: cfg.OpTimeout,
		PoolTimeout:  cfg.OpTimeout,
		// Deadlines of the contexts redsync and Lock pass apply to the
		// socket, so one slow server cannot hold an attempt.
		ContextTimeoutEnabled: true,
		// Lock has its own retry loop; hidden retries inside a command
		// would only delay telling a dead server apart.
		MaxRetries:    -1,
		DialerRetries: 1,
		// No CLIENT SETINFO or maintenance-notification handshake: fewer
		// round trips on connect, and nothing that older servers reject.
		DisableIdentity:          true,
		MaintNotificationsConfig: &maintnotifications.Config{Mode: maintnotifications.ModeDisabled},
	}
}

// clusterOptions are the standalone client's options for a cluster
// client, which routes each command to the master of its key's slot.
// MOVED and ASK redirects are followed (MaxRedirects keeps go-redis's
// default of 3, which also bounds its attempts on a failing node, all
// within the command's context). Reads go to masters only: a replica may
// lag, and a lease must be read where it was written. The client learns a
// failover when a node redirects it, and, since a dead master redirects
// nothing, when Lock, a renewal or Check fails (see refresh).
func clusterOptions(cfg Config) *redis.ClusterOptions {
	return redisconn.ClusterOptions(clientOptions(cfg, ""), cfg.Addrs)
}

// Domain returns "redsync", or "redis-cluster" on a cluster: tokens are
// comparable with tokens of every Locker on the same Redis servers in the
// same mode.
func (l *Locker) Domain() string {
	if l.cfg.Cluster {
		return "redis-cluster"
	}
	return "redsync"
}

// Close closes the connections to Redis. Leases still held then lapse:
// they can no longer be extended and their Done channels close.
func (l *Locker) Close() error {
	l.closeOnce.Do(func() {
		var errs []error
		for _, ps := range l.subs {
			_ = ps.Close()
		}
		for _, c := range l.clients {
			if c != nil {
				errs = append(errs, c.Close())
			}
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
	le.start(leave, le.m.Until())
	return le, nil
}

// acquire retries one Redlock attempt and the fencing token until it has
// both, the key stayed taken for cfg.Tries attempts, the backend failed
// cfg.ErrorRetries attempts in a row, or ctx ended. Refused, it tells the
// holder that the key is wanted, and tries again once the holder says it
// let go, or after a backoff.
func (l *Locker) acquire(ctx context.Context, key string) (*lease, error) {
	if d := l.yields.wait(key); d > 0 && !retry.Sleep(ctx, d) {
		return nil, ctx.Err()
	}
	freed, stop := l.freed.Listen(key)
	defer func() { stop() }()
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
			l.refresh()
			failed++
			if failed >= l.cfg.ErrorRetries {
				return nil, err
			}
		} else {
			taken, failed = taken+1, 0
			if l.cfg.Tries > 0 && taken >= l.cfg.Tries {
				return nil, fmt.Errorf("%w after %d tries", lock.ErrNotAcquired, taken)
			}
			l.tell(msgWanted, key)
		}
		t := time.NewTimer(bo.NextBackOff())
		select {
		case <-t.C:
		case <-freed:
			t.Stop()
			freed, stop = l.freed.Listen(key)
		case <-ctx.Done():
			t.Stop()
			return nil, ctxErr(ctx.Err(), last)
		}
	}
}

// attempt tries once to take the Redlock on key and then its fencing
// token. Its error wraps lock.ErrUnavailable when too few servers answered;
// any other error means the key is taken.
func (l *Locker) attempt(ctx context.Context, key string) (*lease, error) {
	m := l.mutex(key)
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

// mutex is the Redlock on key: one attempt per call, over in OpTimeout.
// opts add to those, WithValue for a lock TryLock took.
func (l *Locker) mutex(key string, opts ...redsync.Option) *redsync.Mutex {
	return l.rs.NewMutex(l.lockKey(key), append([]redsync.Option{
		redsync.WithExpiry(l.cfg.TTL),
		redsync.WithTries(1),
		redsync.WithFailFast(true),
		// redsync bounds each attempt by TTL*factor: make that OpTimeout.
		redsync.WithTimeoutFactor(float64(l.cfg.OpTimeout) / float64(l.cfg.TTL)),
	}, opts...)...)
}

// Check pings every server. It returns nil when a quorum answers, else an
// error wrapping lock.ErrUnavailable naming the servers that did not. On a
// cluster, see checkCluster.
func (l *Locker) Check(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, l.cfg.OpTimeout)
	defer cancel()
	if l.cluster != nil {
		return l.checkCluster(ctx)
	}
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

// checkCluster reads the slot map afresh and pings every master in it. It
// returns nil when a majority of the masters answer: a cluster with one
// master failing over is ready, since its replica takes over within a few
// seconds, and leases on the other masters' slots are granted meanwhile
// (unless the cluster requires full coverage; then Lock fails, retryably,
// for those seconds). A cluster that lost most masters cannot fail over by
// itself and is unavailable, as is one no seed node answers or one that
// serves no slot.
func (l *Locker) checkCluster(ctx context.Context) error {
	var mu sync.Mutex
	var masters int
	var failed []string
	err := l.cluster.ForEachMaster(ctx, func(ctx context.Context, c *redis.Client) error {
		err := c.Ping(ctx).Err()
		mu.Lock()
		defer mu.Unlock()
		masters++
		if err != nil {
			failed = append(failed, fmt.Sprintf("%s: %v", c.Options().Addr, err))
		}
		return nil
	})
	switch {
	case err != nil:
		return fmt.Errorf("redislock: check: %w: no seed node answers: %v", lock.ErrUnavailable, err)
	case masters == 0:
		return fmt.Errorf("redislock: check: %w: no master serves a slot", lock.ErrUnavailable)
	case len(failed) > 0:
		l.refresh()
	}
	if answer := masters - len(failed); answer > masters/2 {
		return nil
	}
	return fmt.Errorf("redislock: check: %w: %d of %d cluster masters answer; %s",
		lock.ErrUnavailable, masters-len(failed), masters, strings.Join(failed, "; "))
}

// refresh makes a cluster client reload its slot map (in the background,
// at most every 200ms), after a command failed in a way that may mean a
// failover.
func (l *Locker) refresh() {
	if l.cluster != nil {
		l.cluster.ReloadState(context.Background())
	}
}

// lockKey and fenceKey are the Redis keys of the lease on key and of its
// fencing counter: the hash tag {key} puts both in one slot.
func (l *Locker) lockKey(key string) string  { return l.cfg.Namespace + ":lock:{" + key + "}" }
func (l *Locker) fenceKey(key string) string { return l.cfg.Namespace + ":fence:{" + key + "}" }

// ctxErr wraps the context's error, with the last attempt's outcome as
// explanation.
func ctxErr(err, last error) error {
	if last == nil {
		return err
	}
	return fmt.Errorf("%w (last attempt: %v)", err, last)
}
