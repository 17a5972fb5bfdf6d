// Package redisconn holds what the service's Redis clients (the lock
// backend's and the fan-out's) share about connecting.
package redisconn

import "github.com/redis/go-redis/v9"

// ClusterOptions are a cluster client's options with every per-node
// connection setting of o (credentials, TLS, timeouts, pool, retries,
// handshake), for the seed nodes addrs. What only a cluster has (slot map
// reloads, routing) stays at go-redis's defaults for the caller to set:
// reads go to masters, redirects are followed.
func ClusterOptions(o *redis.Options, addrs []string) *redis.ClusterOptions {
	return &redis.ClusterOptions{
		Addrs:                    append([]string(nil), addrs...),
		Username:                 o.Username,
		Password:                 o.Password,
		TLSConfig:                o.TLSConfig,
		DialTimeout:              o.DialTimeout,
		ReadTimeout:              o.ReadTimeout,
		WriteTimeout:             o.WriteTimeout,
		PoolTimeout:              o.PoolTimeout,
		PoolSize:                 o.PoolSize,
		ContextTimeoutEnabled:    o.ContextTimeoutEnabled,
		MaxRetries:               o.MaxRetries,
		DialerRetries:            o.DialerRetries,
		DisableIdentity:          o.DisableIdentity,
		MaintNotificationsConfig: o.MaintNotificationsConfig,
	}
}
