package pubsub

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"

	"github.com/shopstack/inventory/internal/redisconn"
)

// DefaultRedisChannel is the channel of a RedisConfig without one.
const DefaultRedisChannel = "inventory:ledger"

// redisTimeout bounds every Redis dial, read and write, so that a dead or
// stalled server delays neither the other servers nor Close for long.
const redisTimeout = time.Second

// RedisConfig configures a Redis fan-out.
type RedisConfig struct {
	// Addrs are the Redis servers, host:port: typically the independent
	// Redlock masters. Every announcement is published on each of them and
	// every one is listened on; any one delivering is enough. With
	// Cluster, they are seed nodes of one Redis Cluster.
	Addrs []string
	// Cluster says Addrs are nodes of a Redis Cluster. A PUBLISH on any
	// node reaches the subscribers of every node, so announcements are
	// published once, on any node that answers, and one subscription
	// listens on the master of the channel's slot; when that master dies,
	// the subscription is made again on the node that took its slot.
	Cluster bool
	// Username and Password, if set, authenticate every connection (AUTH;
	// a username for an ACL user); TLS, if set, encrypts it.
	Username, Password string
	TLS                *tls.Config
	// Channel is the Pub/Sub channel. Default DefaultRedisChannel.
	Channel string
	// Logger receives debug messages about failed sends; nil discards.
	Logger *slog.Logger
}

// Redis is a fan-out over Redis Pub/Sub. It implements feed.Fanout.
type Redis struct {
	id      string
	channel string
	log     *slog.Logger
	latest  *latest
	wake    *wakeups
	servers []*redisServer

	ctx    context.Context // canceled by Close
	cancel context.CancelFunc
	wg     sync.WaitGroup

	closeOnce sync.Once
	closeErr  error
}

// redisServer is one address: its client, its subscription, and the kicks
// of its own sender.
type redisServer struct {
	addr   string
	client redis.UniversalClient
	sub    *redis.PubSub
	kicks  chan struct{}
}

// NewRedis validates cfg and starts listening and sending in the
// background. It does not need any Redis to be up: subscriptions and sends
// to a server that is down are retried until it answers, and re-made after
// it restarts.
func NewRedis(cfg RedisConfig) (*Redis, error) {
	if len(cfg.Addrs) == 0 {
		return nil, errors.New("pubsub: no Redis addresses")
	}
	seen := make(map[string]bool, len(cfg.Addrs))
	for _, a := range cfg.Addrs {
		if _, _, err := net.SplitHostPort(a); err != nil {
			return nil, fmt.Errorf("pubsub: Redis address %q: want host:port: %w", a, err)
		}
		if seen[a] {
			return nil, fmt.Errorf("pubsub: Redis address %s listed twice", a)
		}
		seen[a] = true
	}
	if cfg.Channel == "" {
		cfg.Channel = DefaultRedisChannel
	}
	log := cfg.Logger
	if log == nil {
		log = discard()
	}
	r := &Redis{
		id:      newID(),
		channel: cfg.Channel,
		latest:  newLatest(),
	}
	r.log = log.With("fanout", "redis", "id", r.id)
	r.wake = newWakeups(r.id, r.log)
	r.ctx, r.cancel = context.WithCancel(context.Background())
	if cfg.Cluster {
		r.addServer(strings.Join(cfg.Addrs, ","), redis.NewClusterClient(clusterOptions(cfg)))
	} else {
		for _, addr := range slices.Clone(cfg.Addrs) {
			r.addServer(addr, redis.NewClient(clientOptions(cfg, addr)))
		}
	}
	for _, s := range r.servers {
		r.wg.Add(2)
		go r.listen(s)
		go func() {
			defer r.wg.Done()
			log := r.log.With("addr", s.addr)
			sendLoop(r.ctx, s.kicks, r.latest, func(seq int64) error { return r.publish(s, seq) }, log)
		}()
	}
	return r, nil
}

// clientOptions are the options of the client of one server.
func clientOptions(cfg RedisConfig, addr string) *redis.Options {
	return &redis.Options{
		Addr:         addr,
		Username:     cfg.Username,
		Password:     cfg.Password,
		TLSConfig:    cfg.TLS,
		DialTimeout:  redisTimeout,
		ReadTimeout:  redisTimeout,
		WriteTimeout: redisTimeout,
		PoolTimeout:  redisTimeout,
		// One PUBLISH at a time per server: a small pool also makes
		// go-redis stop dialing a dead server after two failures and probe
		// it in the background instead.
		PoolSize:              2,
		ContextTimeoutEnabled: true,
		// The sender retries with backoff; go-redis's own retries would
		// only hold the one send in flight longer.
		MaxRetries:    -1,
		DialerRetries: 1,
		// No CLIENT SETINFO or maintenance-notification handshake: fewer
		// round trips and goroutines, nothing older servers reject.
		DisableIdentity:          true,
		MaintNotificationsConfig: &maintnotifications.Config{Mode: maintnotifications.ModeDisabled},
	}
}

// clusterOptions are clientOptions for a cluster client, whose slot map is
// read again at least every clusterReload while it is used: a dead master
// redirects no one, and the subscription, re-made every 100ms while it is
// down, must find the node that took over the channel's slot.
func clusterOptions(cfg RedisConfig) *redis.ClusterOptions {
	o := redisconn.ClusterOptions(clientOptions(cfg, ""), cfg.Addrs)
	o.ClusterStateReloadInterval = clusterReload
	return o
}

// clusterReload bounds how stale a cluster client's slot map gets.
const clusterReload = time.Second

// addServer adds a server (or a cluster) to r. Without channels Subscribe
// does no I/O; the listener subscribes in the background, so that a down
// server delays nothing here.
func (r *Redis) addServer(addr string, c redis.UniversalClient) {
	r.servers = append(r.servers, &redisServer{
		addr:   addr,
		client: c,
		sub:    c.Subscribe(r.ctx),
		kicks:  make(chan struct{}, 1),
	})
}

// Announce tells the other replicas that the ledger reached seq. It never
// blocks: each server's sender publishes the latest value in the
// background. Each server has a sender of its own, so that a server that
// is down or stalled holds up none of the others.
func (r *Redis) Announce(seq int64) {
	if !r.latest.raise(seq) {
		return
	}
	for _, s := range r.servers {
		kick(s.kicks)
	}
}

// Wakeups receives a value whenever another replica announced a sequence;
// wake-ups coalesce. It is closed by Close.
func (r *Redis) Wakeups() <-chan struct{} { return r.wake.ch }

// Close stops every goroutine of r, closes its connections and then the
// Wakeups channel. It waits at most about one Redis timeout (a second) for
// a dial or command in flight.
func (r *Redis) Close() error {
	r.closeOnce.Do(func() {
		r.cancel()
		var errs []error
		// Closing a subscription ends its go-redis goroutines and the
		// channel listen reads; see listen.
		for _, s := range r.servers {
			if err := s.sub.Close(); err != nil {
				errs = append(errs, fmt.Errorf("pubsub: close subscription on %s: %w", s.addr, err))
			}
		}
		r.wg.Wait()
		for _, s := range r.servers {
			if err := s.client.Close(); err != nil {
				errs = append(errs, fmt.Errorf("pubsub: close client of %s: %w", s.addr, err))
			}
		}
		r.wake.close()
		r.closeErr = errors.Join(errs...)
	})
	return r.closeErr
}

// publish sends seq on one server.
func (r *Redis) publish(s *redisServer, seq int64) error {
	ctx, cancel := context.WithTimeout(r.ctx, redisTimeout)
	defer cancel()
	return s.client.Publish(ctx, r.channel, encode(r.id, seq)).Err()
}

// listen subscribes on one server and delivers its messages until Close.
// go-redis's PubSub reconnects and resubscribes by itself after a network
// error (retrying every 100ms while the server is down), and pings the
// server when nothing arrived for a while.
func (r *Redis) listen(s *redisServer) {
	defer r.wg.Done()
	// If the server is down this fails, but the channel is remembered and
	// subscribed to as soon as the connection is made.
	if err := s.sub.Subscribe(r.ctx, r.channel); err != nil {
		r.log.Debug("pubsub: subscribe failed; retrying in the background", "addr", s.addr, "err", err)
	}
	// After Close (even a Close racing with this), the channel's
	// goroutines find the subscription closed: they close msgs and end.
	msgs := s.sub.Channel(redis.WithChannelSize(16))
	for m := range msgs {
		r.wake.deliver(m.Payload)
	}
}
