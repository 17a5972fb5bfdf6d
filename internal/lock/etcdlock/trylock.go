package etcdlock

import (
	"context"
	"fmt"
	"net/url"
	"sync"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"

	"github.com/shopstack/inventory/internal/lock"
)

// maxTxnOps is the most keys TryLock asks for in one transaction: etcd's
// default limit of operations per transaction (--max-txn-ops).
const maxTxnOps = 128

// TryLock tries once to take each of keys, waiting for none held here or
// elsewhere, in one transaction (per 128 keys). For each key the
// transaction holds a nested one: if no waiter key exists under the key's
// prefix, it puts this session's key there, in the layout Lock's
// concurrency.Mutex uses, so each key is granted or refused on its own.
// The token of a granted key is the transaction's revision, the revision
// its key was created at: greater than the revision of the previous
// holder's delete, which came before.
func (l *Locker) TryLock(ctx context.Context, keys []string) []lock.Grant {
	grants := make([]lock.Grant, len(keys))
	var mine []int // indexes of keys entered in the gate
	leaves := make([]func(), len(keys))
	for i, key := range keys {
		leave, ok := l.gate.TryEnter(key)
		if !ok {
			grants[i].Err = fmt.Errorf("etcdlock: lock %s: %w: held in this process", key, lock.ErrNotAcquired)
			continue
		}
		leaves[i], mine = leave, append(mine, i)
	}
	fail := func(idx []int, err error) {
		for _, i := range idx {
			leaves[i]()
			grants[i].Err = fmt.Errorf("etcdlock: lock %s: %w", keys[i], err)
		}
	}
	if len(mine) == 0 {
		return grants
	}
	if err := ctx.Err(); err != nil {
		fail(mine, err)
		return grants
	}
	if !l.connected() {
		fail(mine, unavailable(errNotConnected))
		return grants
	}
	sess, err := l.session(ctx)
	if err != nil {
		fail(mine, unavailable(err))
		return grants
	}
	var wg sync.WaitGroup
	for len(mine) > 0 {
		n := min(len(mine), maxTxnOps)
		chunk := mine[:n]
		mine = mine[n:]
		wg.Go(func() { l.tryTxn(ctx, sess, keys, chunk, leaves, grants) })
	}
	wg.Wait()
	return grants
}

// tryTxn is TryLock's transaction for the keys at idx, whose gates it
// holds (leaves); it sets their grants.
func (l *Locker) tryTxn(ctx context.Context, sess *concurrency.Session, keys []string, idx []int, leaves []func(), grants []lock.Grant) {
	ops := make([]clientv3.Op, len(idx))
	etcdKeys := make([]string, len(idx))
	for j, i := range idx {
		pfx := l.cfg.Prefix + url.PathEscape(keys[i]) + "/"
		etcdKeys[j] = fmt.Sprintf("%s%x", pfx, sess.Lease())
		ops[j] = clientv3.OpTxn(
			[]clientv3.Cmp{clientv3.Compare(clientv3.CreateRevision(pfx), "=", 0).WithPrefix()},
			[]clientv3.Op{clientv3.OpPut(etcdKeys[j], "", clientv3.WithLease(sess.Lease()))},
			nil)
	}
	tctx, cancel := context.WithTimeout(clientv3.WithRequireLeader(ctx), l.cfg.OpTimeout)
	resp, err := l.client.Txn(tctx).Then(ops...).Commit()
	cancel()
	if err == nil && sess.Ctx().Err() != nil {
		err = errSessionLost // granted, but the keys can no longer be kept
	}
	if err != nil {
		for j, i := range idx {
			// The transaction may have been applied: its keys go when
			// deleted, or with a lost session's lease.
			if sess.Ctx().Err() == nil {
				l.cleanupLater(sess, etcdKeys[j], leaves[i])
			} else {
				leaves[i]()
			}
			grants[i].Err = fmt.Errorf("etcdlock: lock %s: %w", keys[i], unavailable(err))
		}
		return
	}
	rev := resp.Header.Revision
	for j, i := range idx {
		if !resp.Responses[j].GetResponseTxn().GetSucceeded() {
			leaves[i]()
			grants[i].Err = fmt.Errorf("etcdlock: lock %s: %w: held by another holder", keys[i], lock.ErrNotAcquired)
			continue
		}
		owned := clientv3.Compare(clientv3.CreateRevision(etcdKeys[j]), "=", rev)
		le := newLease(l, keys[i], sess, etcdKeys[j], owned, rev)
		le.leave = leaves[i]
		grants[i].Lease = le
	}
}
