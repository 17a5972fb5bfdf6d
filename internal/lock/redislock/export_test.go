package redislock

import "github.com/shopstack/inventory/internal/lock"

// LockKey and FenceKey are the Redis keys of the Redlock on key and of its
// fencing counter.
func (l *Locker) LockKey(key string) string  { return l.lockKey(key) }
func (l *Locker) FenceKey(key string) string { return l.fenceKey(key) }

// Abandon stops the renewals of l without releasing it, as if its holder
// were paused or dead; its Done still closes at its deadline.
func Abandon(l lock.Lease) {
	le := l.(*lease)
	le.mu.Lock()
	defer le.mu.Unlock()
	le.stopped = true
	le.extend.Stop()
}

// Slot is the cluster hash slot of a Redis key.
func Slot(key string) int { return slot(key) }
