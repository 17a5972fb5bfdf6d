package redislock

import "github.com/shopstack/inventory/internal/lock"

// LockKey is the Redis key of the Redlock on key.
func LockKey(key string) string { return lockPrefix + key }

// Abandon stops the renewals of l without releasing it, as if its holder
// were paused or dead; its Done still closes at its deadline.
func Abandon(l lock.Lease) {
	le := l.(*lease)
	le.mu.Lock()
	defer le.mu.Unlock()
	le.stopped = true
	le.extend.Stop()
}
