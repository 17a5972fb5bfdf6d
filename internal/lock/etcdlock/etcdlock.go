// Package etcdlock is the etcd lock backend: one etcd session (a lease kept
// alive) per Locker, and a concurrency.Mutex per acquisition, whose store
// revision is the fencing token.
//
// A concurrency.Mutex key is prefix/<session lease id>, so two goroutines
// locking the same key through one session would both be granted it. Every
// acquisition therefore goes through a lock.Gate first: per key, one
// goroutine of the process at a time talks to etcd.
//
// Mutex.TryLock takes a free key in one request. On a busy key the Locker
// queues in Mutex's own key layout and waits for its predecessor with a
// live watch, then TryLock takes the key (see queue for why not
// Mutex.Lock). Lock keys are path-escaped under Config.Prefix.
//
// All leases of a Locker end with its session: when the session's lease
// expires or is revoked, or its keepalives got no answer for a TTL, every
// lease's Done fires and the next Lock starts a new session. The client
// cannot learn of an expiry before the server acts on it, so Done may fire
// a little after another replica could take the key; the fencing token is
// what keeps that safe.
package etcdlock

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	grpcbackoff "google.golang.org/grpc/backoff"
	"google.golang.org/grpc/connectivity"

	"github.com/shopstack/inventory/internal/gather"
	"github.com/shopstack/inventory/internal/lock"
)

// Config configures a Locker. Zero fields take the documented defaults.
type Config struct {
	// Endpoints are the etcd client URLs, e.g. "127.0.0.1:2379".
	Endpoints []string
	// Username and Password, if set, authenticate to an etcd with
	// authentication enabled; TLS, if set, encrypts the connections.
	Username, Password string
	TLS                *tls.Config
	// TTL is the session lease's time to live: how long the keys of a
	// replica that stopped keeping its session alive stay taken. Default
	// 8s; rounded up to whole seconds (etcd leases are in seconds); at
	// least 2s.
	TTL time.Duration
	// DialTimeout bounds connecting to etcd in New. Default 2s.
	DialTimeout time.Duration
	// OpTimeout bounds each etcd call that does not wait for another
	// holder: session grant, acquisition attempt, release, health check.
	// Default 2s.
	OpTimeout time.Duration
	// RetryMin and RetryMax bound the exponential backoff, with jitter,
	// between attempts after a transient error (no leader, leader
	// changed, unreachable). Defaults 5ms and 200ms.
	RetryMin, RetryMax time.Duration
	// ErrorRetries is how many consecutive failed attempts make Lock give
	// up with lock.ErrUnavailable. Default 3.
	ErrorRetries int
	// Prefix is prepended to every lock key. Default "/inventory/lock/".
	Prefix string
	// DialOptions are added to the etcd client's (tracing).
	DialOptions []grpc.DialOption
}

const (
	defaultTTL          = 8 * time.Second
	minTTL              = 2 * time.Second
	defaultDialTimeout  = 2 * time.Second
	defaultOpTimeout    = 2 * time.Second
	defaultRetryMin     = 5 * time.Millisecond
	defaultRetryMax     = 200 * time.Millisecond
	defaultErrorRetries = 3
	defaultPrefix       = "/inventory/lock/"

	// keepAliveTime is the gRPC keepalive ping interval, which detects a
	// dead connection so the client moves to another member before the
	// session lapses. etcd refuses pings more frequent than 5s.
	keepAliveTime = 5 * time.Second
	// reconnectMax caps gRPC's reconnect backoff (120s by default), so a
	// cluster that comes back is noticed within a second.
	reconnectMax = time.Second
)

func (c Config) withDefaults() (Config, error) {
	if len(c.Endpoints) == 0 {
		return c, errors.New("etcdlock: no endpoints")
	}
	for _, ep := range c.Endpoints {
		if ep == "" {
			return c, fmt.Errorf("etcdlock: empty endpoint in %q", c.Endpoints)
		}
	}
	for _, d := range []struct {
		name string
		v    *time.Duration
		def  time.Duration
	}{
		{"TTL", &c.TTL, defaultTTL},
		{"DialTimeout", &c.DialTimeout, defaultDialTimeout},
		{"OpTimeout", &c.OpTimeout, defaultOpTimeout},
		{"RetryMin", &c.RetryMin, defaultRetryMin},
		{"RetryMax", &c.RetryMax, defaultRetryMax},
	} {
		if *d.v < 0 {
			return c, fmt.Errorf("etcdlock: %s %v is negative", d.name, *d.v)
		}
		if *d.v == 0 {
			*d.v = d.def
		}
	}
	if c.TTL < minTTL {
		return c, fmt.Errorf("etcdlock: TTL %v is below the %v minimum", c.TTL, minTTL)
	}
	if r := c.TTL % time.Second; r != 0 {
		c.TTL += time.Second - r
	}
	if c.RetryMin > c.RetryMax {
		return c, fmt.Errorf("etcdlock: RetryMin %v is above RetryMax %v", c.RetryMin, c.RetryMax)
	}
	if c.ErrorRetries < 0 {
		return c, fmt.Errorf("etcdlock: ErrorRetries %d is negative", c.ErrorRetries)
	}
	if c.ErrorRetries == 0 {
		c.ErrorRetries = defaultErrorRetries
	}
	if c.Prefix == "" {
		c.Prefix = defaultPrefix
	}
	return c, nil
}

// Locker is a lock.Locker on etcd. Each Locker is one client and one
// session: create one per replica, not per acquisition.
type Locker struct {
	cfg    Config
	client *clientv3.Client
	domain string
	gate   lock.Gate

	mu     sync.Mutex
	sess   *concurrency.Session // nil until the first Lock, or after it was lost
	closed bool

	// releases deletes the keys of leases unlocked at about the same time
	// in one transaction (see lease.release).
	releases gather.Gatherer[*release]
	// wanted tells the leases held here that a replica queued for their
	// key (wanted.go).
	wanted lock.Signals

	// Background cleanups (see cleanupLater) run under bg until Close
	// cancels bgCtx.
	bg       sync.WaitGroup
	bgCtx    context.Context
	bgCancel context.CancelFunc
}

var (
	_ lock.Locker    = (*Locker)(nil)
	_ lock.Checker   = (*Locker)(nil)
	_ lock.Contended = (*lease)(nil)
)

// New validates cfg, connects to etcd and reads the cluster ID. It fails if
// etcd does not answer within DialTimeout plus OpTimeout (the error then
// wraps lock.ErrUnavailable).
func New(ctx context.Context, cfg Config) (*Locker, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	client, err := clientv3.New(clientv3.Config{
		Endpoints:            cfg.Endpoints,
		Username:             cfg.Username,
		Password:             cfg.Password,
		TLS:                  cfg.TLS,
		DialTimeout:          cfg.DialTimeout,
		DialKeepAliveTime:    keepAliveTime,
		DialKeepAliveTimeout: cfg.OpTimeout,
		// Failures reach callers as errors; the client's own retry
		// warnings would only repeat them in the log.
		Logger: zap.NewNop(),
		DialOptions: append([]grpc.DialOption{grpc.WithConnectParams(grpc.ConnectParams{
			Backoff: grpcbackoff.Config{BaseDelay: 100 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: reconnectMax},
			// A long DialTimeout (for a slow first connection) must not
			// let a black-holed member hold each reconnect that long.
			MinConnectTimeout: min(cfg.DialTimeout, defaultDialTimeout),
		})}, cfg.DialOptions...),
	})
	if err != nil {
		return nil, fmt.Errorf("etcdlock: connect to %v: %w", cfg.Endpoints, err)
	}
	// The cluster ID is in every response header. A serializable read
	// answers without a leader, so a replica can start during an election;
	// Check tells when locks can be granted.
	idCtx, cancel := context.WithTimeout(ctx, cfg.DialTimeout+cfg.OpTimeout)
	resp, err := client.Get(idCtx, cfg.Prefix, clientv3.WithSerializable(), clientv3.WithCountOnly())
	cancel()
	if err != nil {
		_ = client.Close()
		return nil, fmt.Errorf("etcdlock: etcd at %v did not answer: %w: %v", cfg.Endpoints, lock.ErrUnavailable, err)
	}
	inc, err := incarnation(ctx, client, cfg)
	if err != nil {
		_ = client.Close()
		return nil, err
	}
	// From here on every KV call, including those concurrency.Mutex makes
	// with contexts it chooses, is bounded and needs a leader.
	client.KV = boundedKV{KV: client.KV, timeout: cfg.OpTimeout}
	l := &Locker{
		cfg:    cfg,
		client: client,
		domain: fmt.Sprintf("etcd/%x/%s", resp.Header.GetClusterId(), inc),
	}
	l.bgCtx, l.bgCancel = context.WithCancel(context.Background())
	l.releases = gather.Gatherer[*release]{Take: takeReleases, Run: l.releaseGroup, Labels: []string{"etcdlock", "release"}}
	l.watchWanted()
	return l, nil
}

// Domain returns "etcd/<cluster id in hex>/<incarnation>": revisions, and
// so tokens, are comparable only within one cluster's data. The cluster ID
// alone does not tell: etcd derives it from the configuration, so a cluster
// rebuilt from scratch with the same settings has the same ID while its
// revisions start again from 1.
func (l *Locker) Domain() string { return l.domain }

// incarnation returns the random name this cluster's data was given when a
// Locker first met it, creating it if missing: it is lost with the data,
// so a cluster rebuilt from scratch gets a new one. Reading it needs no
// leader; creating it, once per cluster lifetime, does.
func incarnation(ctx context.Context, client *clientv3.Client, cfg Config) (string, error) {
	key := strings.TrimSuffix(cfg.Prefix, "/") + ".incarnation"
	fail := func(err error) (string, error) {
		return "", fmt.Errorf("etcdlock: read the cluster incarnation at %v: %w: %v", cfg.Endpoints, lock.ErrUnavailable, err)
	}
	rctx, cancel := context.WithTimeout(ctx, cfg.DialTimeout+cfg.OpTimeout)
	defer cancel()
	resp, err := client.Get(rctx, key, clientv3.WithSerializable())
	if err != nil {
		return fail(err)
	}
	if len(resp.Kvs) == 1 {
		return string(resp.Kvs[0].Value), nil
	}
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	txn, err := client.Txn(clientv3.WithRequireLeader(rctx)).
		If(clientv3.Compare(clientv3.CreateRevision(key), "=", 0)).
		Then(clientv3.OpPut(key, hex.EncodeToString(b))).
		Else(clientv3.OpGet(key)).
		Commit()
	if err != nil {
		return fail(err)
	}
	if txn.Succeeded {
		return hex.EncodeToString(b), nil
	}
	return string(txn.Responses[0].GetResponseRange().Kvs[0].Value), nil
}

// Check returns nil if a quorum read answers within OpTimeout, and an error
// wrapping lock.ErrUnavailable if not.
func (l *Locker) Check(ctx context.Context) error {
	if l.isClosed() {
		return fmt.Errorf("etcdlock: check: %w", errClosed)
	}
	if !l.connected() {
		return fmt.Errorf("etcdlock: check: %w", unavailable(errNotConnected))
	}
	// Get is linearizable by default: it needs the leader and a quorum.
	if _, err := l.client.Get(ctx, l.cfg.Prefix); err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("etcdlock: check: %w", ctx.Err())
		}
		return fmt.Errorf("etcdlock: check: %w", unavailable(err))
	}
	return nil
}

// Close stops background work, closes the session (revoking its lease, so
// the keys it still holds are released and their leases' Done fire) and
// closes the client. Later calls return nil.
func (l *Locker) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	sess := l.sess
	l.sess = nil
	l.mu.Unlock()

	l.bgCancel()
	l.bg.Wait()
	var errs []error
	if sess != nil {
		sess.Orphan()
		ctx, cancel := context.WithTimeout(context.Background(), l.cfg.OpTimeout)
		if _, err := l.client.Revoke(ctx, sess.Lease()); err != nil && !errors.Is(err, rpctypes.ErrLeaseNotFound) {
			errs = append(errs, fmt.Errorf("revoke session: %w", err))
		}
		cancel()
	}
	if err := l.client.Close(); err != nil && !errors.Is(err, context.Canceled) {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("etcdlock: close: %w", err)
	}
	return nil
}

func (l *Locker) isClosed() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.closed
}

// connected reports whether the client has, or may soon have, a
// connection: false once gRPC failed to connect to every endpoint.
func (l *Locker) connected() bool {
	return l.client.ActiveConnection().GetState() != connectivity.TransientFailure
}
