package redislock

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Defaults of Config fields left zero.
const (
	DefaultTTL          = 8 * time.Second
	DefaultRetryMin     = 5 * time.Millisecond
	DefaultRetryMax     = 100 * time.Millisecond
	DefaultErrorRetries = 3
	maxDefaultOpTimeout = time.Second
	// DefaultNamespace is the namespace of a Config without one.
	DefaultNamespace = "inventory"
	// MinTTL is the shortest TTL New accepts: a lease must outlive a few
	// round trips and the safety margin.
	MinTTL = 100 * time.Millisecond
)

// Config configures a Locker. Zero fields take the documented defaults.
type Config struct {
	// Addrs are the Redis servers, host:port. One address is one Redis;
	// several are independent masters (not replicas of each other) and a
	// lease needs a quorum of len(Addrs)/2+1 of them. With Cluster, they
	// are seed nodes of one Redis Cluster.
	Addrs []string
	// Cluster says Addrs are nodes of a Redis Cluster: leases and fencing
	// tokens live on the master of their key's slot, and a lease needs
	// that master only.
	Cluster bool
	// Username and Password, if set, authenticate every connection (AUTH;
	// a username for an ACL user); TLS, if set, encrypts it.
	Username, Password string
	TLS                *tls.Config
	// Namespace prefixes every key: a lease on key is the Redis key
	// <Namespace>:lock:{key} and its fencing counter
	// <Namespace>:fence:{key}, in one hash slot (one cluster master).
	// Default DefaultNamespace; no braces.
	Namespace string
	// TTL is the lease time to live; leases are extended while held.
	// Default 8s, at least MinTTL.
	TTL time.Duration
	// RetryMin and RetryMax bound the exponential backoff, with jitter,
	// between attempts on a taken key or after a backend error. Defaults
	// 5ms and 100ms.
	RetryMin, RetryMax time.Duration
	// Tries is the number of attempts on a taken key before Lock gives up
	// with lock.ErrNotAcquired; 0 retries until the context ends.
	Tries int
	// ErrorRetries is the number of consecutive attempts failing on backend
	// errors before Lock gives up with lock.ErrUnavailable. Default 3.
	ErrorRetries int
	// OpTimeout bounds each Redis command (dial, read, write). Default
	// min(1s, TTL/4); at most TTL/2.
	OpTimeout time.Duration
	// Instrument, if set, is applied to each Redis client (tracing).
	Instrument func(redis.UniversalClient) error
}

// withDefaults returns cfg with defaults filled in, or an error naming the
// first invalid field.
func (cfg Config) withDefaults() (Config, error) {
	if len(cfg.Addrs) == 0 {
		return cfg, errors.New("redislock: no Redis addresses")
	}
	cfg.Addrs = slices.Clone(cfg.Addrs)
	seen := make(map[string]bool, len(cfg.Addrs))
	for _, a := range cfg.Addrs {
		if _, _, err := net.SplitHostPort(a); err != nil {
			return cfg, fmt.Errorf("redislock: address %q: want host:port: %w", a, err)
		}
		// Two entries for one server would count it twice in the quorum
		// (or, as seeds, are a typo).
		if seen[a] {
			return cfg, fmt.Errorf("redislock: address %s listed twice", a)
		}
		seen[a] = true
	}
	switch {
	case cfg.Namespace == "":
		cfg.Namespace = DefaultNamespace
	case strings.ContainsAny(cfg.Namespace, "{}"):
		// A brace would move the hash tag: a lease's keys could land in
		// two slots.
		return cfg, fmt.Errorf("redislock: namespace %q has a brace", cfg.Namespace)
	}
	switch {
	case cfg.TTL == 0:
		cfg.TTL = DefaultTTL
	case cfg.TTL < MinTTL:
		return cfg, fmt.Errorf("redislock: TTL %v is below the minimum %v", cfg.TTL, MinTTL)
	}
	if cfg.RetryMin < 0 || cfg.RetryMax < 0 {
		return cfg, fmt.Errorf("redislock: negative retry delay (RetryMin %v, RetryMax %v)", cfg.RetryMin, cfg.RetryMax)
	}
	switch {
	case cfg.RetryMin == 0 && cfg.RetryMax == 0:
		cfg.RetryMin, cfg.RetryMax = DefaultRetryMin, DefaultRetryMax
	case cfg.RetryMin == 0:
		cfg.RetryMin = min(DefaultRetryMin, cfg.RetryMax)
	case cfg.RetryMax == 0:
		cfg.RetryMax = max(DefaultRetryMax, cfg.RetryMin)
	}
	if cfg.RetryMin > cfg.RetryMax {
		return cfg, fmt.Errorf("redislock: RetryMin %v is above RetryMax %v", cfg.RetryMin, cfg.RetryMax)
	}
	if cfg.Tries < 0 {
		return cfg, fmt.Errorf("redislock: negative Tries %d", cfg.Tries)
	}
	switch {
	case cfg.ErrorRetries == 0:
		cfg.ErrorRetries = DefaultErrorRetries
	case cfg.ErrorRetries < 0:
		return cfg, fmt.Errorf("redislock: negative ErrorRetries %d", cfg.ErrorRetries)
	}
	switch {
	case cfg.OpTimeout == 0:
		cfg.OpTimeout = min(maxDefaultOpTimeout, cfg.TTL/4)
	case cfg.OpTimeout < 0:
		return cfg, fmt.Errorf("redislock: negative OpTimeout %v", cfg.OpTimeout)
	case cfg.OpTimeout > cfg.TTL/2:
		return cfg, fmt.Errorf("redislock: OpTimeout %v is above half the TTL %v", cfg.OpTimeout, cfg.TTL)
	}
	return cfg, nil
}
