package pubsub

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	grpcbackoff "google.golang.org/grpc/backoff"

	"github.com/shopstack/inventory/internal/retry"
)

// Defaults of EtcdConfig fields left zero.
const (
	DefaultEtcdKey         = "/inventory/ledger/last"
	DefaultEtcdDialTimeout = 2 * time.Second
)

const (
	// etcdKeepAliveTime is the gRPC keepalive ping interval, which detects
	// a dead member's connection; etcd refuses pings more frequent than
	// every 5s by default.
	etcdKeepAliveTime = 5 * time.Second
	// etcdReconnectMax caps gRPC's reconnect backoff (120s by default), so
	// a member that comes back is used again soon.
	etcdReconnectMax = time.Second
)

// EtcdConfig configures an etcd fan-out.
type EtcdConfig struct {
	// Endpoints are the etcd members' client URLs.
	Endpoints []string
	// Username and Password, if set, authenticate to an etcd with
	// authentication enabled; TLS, if set, encrypts the connections.
	Username, Password string
	TLS                *tls.Config
	// Key is the key announcements are put on and watched. Default
	// DefaultEtcdKey.
	Key string
	// DialTimeout bounds each Put and Get, and a connection's keepalive.
	// Default DefaultEtcdDialTimeout.
	DialTimeout time.Duration
	// StartTimeout bounds NewEtcd's connection (with authentication, which
	// etcd checks with bcrypt) and its first read. Default DialTimeout.
	StartTimeout time.Duration
	// Logger receives debug messages about failed sends and watches; nil
	// discards.
	Logger *slog.Logger

	// dialOptions are added to the client's (tests pin the member used).
	dialOptions []grpc.DialOption
}

// Etcd is a fan-out over an etcd key: Announce puts "<id> <seq>" on it and
// every instance watches it. It implements feed.Fanout.
//
// The watch is made with clientv3.WithRequireLeader: a member cut off from
// its cluster then cancels it (after a few election timeouts without a
// leader) instead of keeping it open and silent, and the watch is made
// again, possibly on another member. The key's history lets a new watch
// resume where the old one stopped; when that history was compacted away,
// a Get of the key tells whether an announcement was missed meanwhile.
type Etcd struct {
	id     string
	key    string
	opTime time.Duration
	log    *slog.Logger
	client *clientv3.Client
	latest *latest
	wake   *wakeups
	kicks  chan struct{}

	wg sync.WaitGroup // the sender and the watch, both ended by client.Ctx()

	closeOnce sync.Once
	closeErr  error
}

// NewEtcd validates cfg, connects to etcd and starts watching and sending
// in the background. It fails if etcd does not answer a read of the key
// within DialTimeout. Later, while etcd is unreachable, sends and the watch
// are retried with backoff until Close.
func NewEtcd(ctx context.Context, cfg EtcdConfig) (*Etcd, error) {
	if len(cfg.Endpoints) == 0 {
		return nil, errors.New("pubsub: no etcd endpoints")
	}
	if cfg.Key == "" {
		cfg.Key = DefaultEtcdKey
	}
	switch {
	case cfg.DialTimeout == 0:
		cfg.DialTimeout = DefaultEtcdDialTimeout
	case cfg.DialTimeout < 0:
		return nil, fmt.Errorf("pubsub: negative etcd DialTimeout %v", cfg.DialTimeout)
	}
	if cfg.StartTimeout <= 0 {
		cfg.StartTimeout = cfg.DialTimeout
	}
	log := cfg.Logger
	if log == nil {
		log = discard()
	}
	dialOptions := append([]grpc.DialOption{grpc.WithConnectParams(grpc.ConnectParams{
		Backoff:           grpcbackoff.Config{BaseDelay: 100 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: etcdReconnectMax},
		MinConnectTimeout: cfg.DialTimeout,
	})}, cfg.dialOptions...)
	client, err := clientv3.New(clientv3.Config{
		Endpoints:            slices.Clone(cfg.Endpoints),
		Username:             cfg.Username,
		Password:             cfg.Password,
		TLS:                  cfg.TLS,
		DialTimeout:          cfg.StartTimeout,
		DialKeepAliveTime:    etcdKeepAliveTime,
		DialKeepAliveTimeout: cfg.DialTimeout,
		// Failures are logged here, at debug level; the client's own
		// retry warnings would only repeat them.
		Logger:      zap.NewNop(),
		DialOptions: dialOptions,
	})
	if err != nil {
		return nil, fmt.Errorf("pubsub: connect to etcd at %v: %w", cfg.Endpoints, err)
	}
	// clientv3.New does not wait for a connection: a read does. A
	// serializable one answers during an election too. Its revision is
	// where the watch starts: announcements made before are past.
	rctx, cancel := context.WithTimeout(ctx, cfg.StartTimeout)
	resp, err := client.Get(rctx, cfg.Key, clientv3.WithSerializable())
	cancel()
	if err != nil {
		_ = client.Close()
		return nil, fmt.Errorf("pubsub: etcd at %v did not answer within %v: %w", cfg.Endpoints, cfg.StartTimeout, err)
	}
	e := &Etcd{
		id:     newID(),
		key:    cfg.Key,
		opTime: cfg.DialTimeout,
		client: client,
		latest: newLatest(),
		kicks:  make(chan struct{}, 1),
	}
	e.log = log.With("fanout", "etcd", "id", e.id)
	e.wake = newWakeups(e.id, e.log)
	e.wg.Add(2)
	go func() {
		defer e.wg.Done()
		sendLoop(e.client.Ctx(), e.kicks, e.latest, e.put, e.log)
	}()
	go e.watch(resp.Header.Revision)
	return e, nil
}

// Announce tells the other replicas that the ledger reached seq. It never
// blocks: a background sender puts the latest value.
func (e *Etcd) Announce(seq int64) {
	if e.latest.raise(seq) {
		kick(e.kicks)
	}
}

// Wakeups receives a value whenever another replica announced a sequence;
// wake-ups coalesce. It is closed by Close.
func (e *Etcd) Wakeups() <-chan struct{} { return e.wake.ch }

// Close stops every goroutine of e, closes the client and then the
// Wakeups channel.
func (e *Etcd) Close() error {
	e.closeOnce.Do(func() {
		// Closing the client cancels its context: the sender, the Put
		// in flight and the watch end.
		err := e.client.Close()
		e.wg.Wait()
		e.wake.close()
		if err != nil && !errors.Is(err, context.Canceled) {
			e.closeErr = fmt.Errorf("pubsub: close etcd client: %w", err)
		}
	})
	return e.closeErr
}

// put sends seq. It needs a leader: without one it fails at once rather
// than waiting for the timeout, and the sender retries.
func (e *Etcd) put(seq int64) error {
	ctx, cancel := context.WithTimeout(clientv3.WithRequireLeader(e.client.Ctx()), e.opTime)
	defer cancel()
	_, err := e.client.Put(ctx, e.key, encode(e.id, seq))
	return err
}

// watch delivers the puts on the key after revision rev until Close,
// making the watch again, with backoff, whenever it ends.
func (e *Etcd) watch(rev int64) {
	defer e.wg.Done()
	ctx := e.client.Ctx() // canceled by Close
	bo := retry.Doubling(retryMin, retryMax)
	var err error
	// watchFrom returns only when the watch ended, so this ends only with
	// ctx.
	_ = retry.Forever(ctx, bo, func() error {
		if errors.Is(err, errCompacted) {
			rev = e.resync(ctx, rev)
		}
		var created bool
		rev, created, err = e.watchFrom(ctx, rev)
		if created {
			// It watched: a new failure starts the backoff over.
			bo.Reset()
		}
		return err
	}, func(err error, wait time.Duration) {
		e.log.Debug("pubsub: etcd watch ended; watching again", "rev", rev, "retry_in", wait, "err", err)
	})
}

var errCompacted = errors.New("history compacted")

// watchFrom watches the key from revision rev+1 until the watch ends, and
// returns the revision of the last event seen, whether the watch was
// established, and why it ended. The etcd client itself resumes a watch
// whose connection broke, on any member; it ends the watch on a halting
// error, a compaction, a lost leader (WithRequireLeader), or Close.
func (e *Etcd) watchFrom(ctx context.Context, rev int64) (last int64, created bool, err error) {
	wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
	defer cancel()
	wch := e.client.Watch(wctx, e.key, clientv3.WithRev(rev+1), clientv3.WithCreatedNotify())
	for resp := range wch {
		if resp.CompactRevision != 0 {
			return rev, created, fmt.Errorf("%w: revision %d is gone, compacted at %d", errCompacted, rev+1, resp.CompactRevision)
		}
		if err := resp.Err(); err != nil {
			return rev, created, err
		}
		created = true
		for _, ev := range resp.Events {
			rev = max(rev, ev.Kv.ModRevision)
			if ev.Type == mvccpb.PUT {
				e.wake.deliver(string(ev.Kv.Value))
			}
		}
	}
	return rev, created, errors.New("watch channel closed")
}

// resync reads the key after its history since rev was compacted away: a
// put after rev was missed, so it is delivered now (deliver drops it if it
// is the instance's own or was seen already). It returns the revision to
// watch from next, or rev if the read failed: the next watch then fails
// again and resync is retried.
func (e *Etcd) resync(ctx context.Context, rev int64) int64 {
	gctx, cancel := context.WithTimeout(ctx, e.opTime)
	defer cancel()
	resp, err := e.client.Get(gctx, e.key, clientv3.WithSerializable())
	if err != nil {
		e.log.Debug("pubsub: etcd read after compaction failed", "err", err)
		return rev
	}
	if len(resp.Kvs) == 1 && resp.Kvs[0].ModRevision > rev {
		e.wake.deliver(string(resp.Kvs[0].Value))
	}
	return resp.Header.Revision
}
