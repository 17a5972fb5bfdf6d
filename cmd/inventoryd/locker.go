package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cenkalti/backoff/v5"
	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"

	"github.com/shopstack/inventory/internal/config"
	"github.com/shopstack/inventory/internal/feed"
	"github.com/shopstack/inventory/internal/gormstore"
	"github.com/shopstack/inventory/internal/lock"
	"github.com/shopstack/inventory/internal/lock/etcdlock"
	"github.com/shopstack/inventory/internal/lock/memlock"
	"github.com/shopstack/inventory/internal/lock/redislock"
	"github.com/shopstack/inventory/internal/pubsub"
	"github.com/shopstack/inventory/internal/retry"
	"github.com/shopstack/inventory/internal/telemetry"
)

// lockBackend is the configured lock backend and how to release it.
type lockBackend interface {
	lock.Locker
	Close() error
}

// openLocker builds the lock backend cfg names and waits, up to the lock
// timeout, until it answers, so a wrong address fails at start-up rather than
// on the first sale.
// With tracing on (tp not nil), the backend's Redis or etcd calls made for
// a traced request get spans.
func openLocker(ctx context.Context, cfg config.Config, store *gormstore.Store, tp trace.TracerProvider, log *slog.Logger) (lockBackend, error) {
	var l lockBackend
	switch cfg.LockBackend {
	case config.LockRedsync:
		installRedisLogger(log)
		access, err := redisAccessOf(cfg)
		if err != nil {
			return nil, err
		}
		rcfg := redislock.Config{
			Addrs: cfg.RedisAddrs, Cluster: cfg.RedisMode == config.RedisCluster, Namespace: cfg.Namespace,
			Username: access.username, Password: access.password, TLS: access.tls,
			TTL: cfg.LockTTL, RetryMin: cfg.LockRetryMin, RetryMax: cfg.LockRetryMax,
		}
		if tp != nil {
			rcfg.Instrument = telemetry.InstrumentRedis(tp)
		}
		rl, err := redislock.New(rcfg)
		if err != nil {
			return nil, fmt.Errorf("lock backend redsync: %w", err)
		}
		l = rl
	case config.LockEtcd:
		ectx, cancel := context.WithTimeout(ctx, cfg.LockTimeout)
		defer cancel()
		access, err := etcdAccessOf(cfg)
		if err != nil {
			return nil, err
		}
		ecfg := etcdlock.Config{
			Endpoints: cfg.EtcdEndpoints, TTL: cfg.LockTTL, RetryMin: cfg.LockRetryMin, RetryMax: cfg.LockRetryMax,
			Prefix: etcdPath(cfg.Namespace, "lock/"),
			// Connecting (TLS, authentication) may take as long as the
			// lock backend is given to answer at start-up.
			DialTimeout: cfg.LockTimeout,
			Username:    access.username, Password: access.password, TLS: access.tls,
		}
		if tp != nil {
			ecfg.DialOptions = []grpc.DialOption{telemetry.GRPCDialOption(tp)}
		}
		el, err := etcdlock.New(ectx, ecfg)
		if err != nil {
			// The etcd client reports a refused certificate as a timeout.
			if why := tlsProblem(ctx, cfg.EtcdEndpoints, access.tls); why != nil {
				return nil, fmt.Errorf("lock backend etcd: %w (%v)", err, why)
			}
			return nil, fmt.Errorf("lock backend etcd: %w", err)
		}
		l = el
	default:
		// In-process tokens continue above every token already written, so
		// they keep increasing across restarts.
		base, err := store.MaxLeaseToken(ctx)
		if err != nil {
			return nil, fmt.Errorf("read lease tokens: %w", err)
		}
		return closeless{memlock.New(base)}, nil
	}
	if err := waitReady(ctx, l, cfg.LockTimeout, log); err != nil {
		_ = l.Close()
		return nil, fmt.Errorf("lock backend %s: %w", cfg.LockBackend, err)
	}
	return l, nil
}

// waitReady polls the backend's health until it answers or timeout passes.
func waitReady(ctx context.Context, l lock.Locker, timeout time.Duration, log *slog.Logger) error {
	c, ok := l.(lock.Checker)
	if !ok {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var last error
	err := retry.Forever(ctx, backoff.NewConstantBackOff(500*time.Millisecond), func() error {
		last = c.Check(ctx)
		return last
	}, func(err error, _ time.Duration) {
		log.Warn("waiting for the lock backend", "err", err)
	})
	if err != nil {
		return fmt.Errorf("not reachable within %v: %w", timeout, last)
	}
	return nil
}

// elector is the backend's own election if it has one (etcd), else
// leadership through its lock.
func elector(l lock.Locker) lock.Elector {
	if e, ok := l.(lock.Elector); ok {
		return e
	}
	return lock.LockElector{Locker: l}
}

// advancer is the backend's lock.Advancer if its token counters can go
// back (Redis), else nil. The service gets it apart from its Locker, which
// decorators wrap.
func advancer(l lock.Locker) lock.Advancer {
	if a, ok := l.(lock.Advancer); ok {
		return a
	}
	return nil
}

// fanout is a cross-replica fan-out that can be closed.
type fanout interface {
	feed.Fanout
	Close() error
}

// openFanout returns the fan-out of the configured backend: Redis pub/sub
// for redsync, an etcd watch for etcd, none for the in-process lock (one
// replica).
func openFanout(ctx context.Context, cfg config.Config, log *slog.Logger) (fanout, error) {
	switch cfg.LockBackend {
	case config.LockRedsync:
		access, err := redisAccessOf(cfg)
		if err != nil {
			return nil, err
		}
		f, err := pubsub.NewRedis(pubsub.RedisConfig{Addrs: cfg.RedisAddrs, Cluster: cfg.RedisMode == config.RedisCluster,
			Username: access.username, Password: access.password, TLS: access.tls,
			Channel: cfg.Namespace + ":ledger", Logger: log})
		if err != nil {
			return nil, fmt.Errorf("event fan-out over Redis: %w", err)
		}
		return f, nil
	case config.LockEtcd:
		access, err := etcdAccessOf(cfg)
		if err != nil {
			return nil, err
		}
		// Start-up waits for etcd as long as for the lock (the same
		// cluster): with TLS and a password (etcd checks it with bcrypt) a
		// busy member can take longer than pubsub's 2 s default to answer
		// at first.
		f, err := pubsub.NewEtcd(ctx, pubsub.EtcdConfig{Endpoints: cfg.EtcdEndpoints, Key: etcdPath(cfg.Namespace, "ledger/last"),
			Username: access.username, Password: access.password, TLS: access.tls, Logger: log, StartTimeout: cfg.LockTimeout})
		if err != nil {
			return nil, fmt.Errorf("event fan-out over etcd: %w", err)
		}
		return f, nil
	}
	return nil, nil
}

// access is how to reach a Redis or etcd that asks for credentials or TLS.
type access struct {
	username, password string
	tls                *tls.Config // nil: plain text
}

// redisAccessOf is the Redis credentials and TLS of cfg.
func redisAccessOf(cfg config.Config) (access, error) {
	a := access{username: cfg.RedisUsername, password: cfg.RedisPassword}
	if cfg.RedisTLS {
		t, err := tlsTrusting(cfg.RedisCAFile)
		if err != nil {
			return access{}, fmt.Errorf("INVENTORY_REDIS_CA_FILE: %w", err)
		}
		a.tls = t
	}
	return a, nil
}

// etcdAccessOf is the etcd credentials and TLS of cfg.
func etcdAccessOf(cfg config.Config) (access, error) {
	a := access{username: cfg.EtcdUsername, password: cfg.EtcdPassword}
	if cfg.EtcdTLS() {
		t, err := tlsTrusting(cfg.EtcdCAFile)
		if err != nil {
			return access{}, fmt.Errorf("INVENTORY_ETCD_CA_FILE: %w", err)
		}
		a.tls = t
	}
	return a, nil
}

// tlsTrusting is a client TLS configuration trusting the system's CAs and
// those in caFile, if set.
func tlsTrusting(caFile string) (*tls.Config, error) {
	pool, err := x509.SystemCertPool()
	if err != nil {
		pool = x509.NewCertPool()
	}
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, err
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("%s holds no PEM certificate", caFile)
		}
	}
	return &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}, nil
}

// tlsProblem tries a TLS handshake with each https:// endpoint and returns
// the first refusal of the server's certificate (or of the handshake), nil
// when there is no TLS or every handshake succeeds: a clearer reason for a
// failed start than the client's timeout.
func tlsProblem(ctx context.Context, endpoints []string, conf *tls.Config) error {
	if conf == nil {
		return nil
	}
	for _, e := range endpoints {
		u, err := url.Parse(e)
		if err != nil || u.Scheme != "https" {
			continue
		}
		d := tls.Dialer{NetDialer: &net.Dialer{Timeout: 2 * time.Second}, Config: conf.Clone()}
		hctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		c, err := d.DialContext(hctx, "tcp", u.Host)
		cancel()
		if err != nil {
			var certErr *tls.CertificateVerificationError
			if errors.As(err, &certErr) || strings.Contains(err.Error(), "tls:") {
				return fmt.Errorf("TLS with %s: %w", u.Host, err)
			}
			continue // unreachable: the timeout says enough
		}
		_ = c.Close()
	}
	return nil
}

// etcdPath is the etcd key of name in namespace: every key a deployment
// uses in etcd lies under /<namespace>/, its locks and elections included.
func etcdPath(namespace, name string) string { return "/" + namespace + "/" + name }

// fanoutOrNil keeps a nil fan-out a nil interface.
func fanoutOrNil(f fanout) feed.Fanout {
	if f == nil {
		return nil
	}
	return f
}

// closeless gives the in-process lock a no-op Close.
type closeless struct{ *memlock.Locker }

func (closeless) Close() error { return nil }

// redisLog routes go-redis's own messages (one per failed dial while Redis
// is down) to the service's JSON log at debug level: the lock backend
// reports outages itself, once per failed request. go-redis has one
// process-wide logger, so it is installed once and follows the latest run.
var redisLog struct {
	once   sync.Once
	logger atomic.Pointer[slog.Logger]
}

type redisLogger struct{}

func (redisLogger) Printf(ctx context.Context, format string, v ...any) {
	if l := redisLog.logger.Load(); l != nil {
		l.DebugContext(ctx, "redis client: "+fmt.Sprintf(format, v...))
	}
}

func installRedisLogger(log *slog.Logger) {
	redisLog.logger.Store(log)
	redisLog.once.Do(func() { redis.SetLogger(redisLogger{}) })
}
