package etcdlock

import (
	"net/url"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// A replica that queues for a key another holds says so: the transaction
// that queues it also puts <Prefix without its slash>.wanted/<key> (path
// escaped), under its session's lease. Every Locker watches that prefix
// and tells its lease on the key (lock.Contended), so a holder that keeps
// a lease through idle stretches lets it go at once. The queue is FIFO: a
// holder that let go cannot take the key back before the waiter.

// wantedKey is the key a waiter for the lock key escaped (path escaped)
// puts.
func (l *Locker) wantedKey(escaped string) string { return l.wantedPrefix() + escaped }

func (l *Locker) wantedPrefix() string { return strings.TrimSuffix(l.cfg.Prefix, "/") + ".wanted/" }

// watchWanted tells the leases held here of every waiter that queues,
// until Close. A watch that fails is started again from the revision
// after the last it reported, so no waiter goes unheard (unless etcd
// compacted that revision away meanwhile).
func (l *Locker) watchWanted() {
	l.bg.Go(func() {
		pfx := l.wantedPrefix()
		var rev int64
		for l.bgCtx.Err() == nil {
			opts := []clientv3.OpOption{clientv3.WithPrefix(), clientv3.WithFilterDelete()}
			if rev > 0 {
				opts = append(opts, clientv3.WithRev(rev+1))
			}
			for wr := range l.client.Watch(l.bgCtx, pfx, opts...) {
				switch {
				case wr.CompactRevision > 0:
					rev = 0 // compacted past rev: from now on
				case wr.Err() == nil:
					rev = max(rev, wr.Header.Revision)
				}
				for _, ev := range wr.Events {
					if key, err := url.PathUnescape(strings.TrimPrefix(string(ev.Kv.Key), pfx)); err == nil {
						l.wanted.Signal(key)
					}
				}
			}
			select {
			case <-l.bgCtx.Done():
			case <-time.After(l.cfg.RetryMax):
			}
		}
	})
}
