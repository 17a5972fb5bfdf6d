package etcdlock

import (
	"context"
	"fmt"
	"sync"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"

	"github.com/shopstack/inventory/internal/lock"
)

// lease is one acquisition of a key through the Locker's shared session.
type lease struct {
	l    *Locker
	key  string
	sess *concurrency.Session
	// etcdKey is the key in etcd that holds the lock while owned holds.
	etcdKey string
	owned   clientv3.Cmp
	token   int64
	leave   func() // leaves the gate; set by acquire

	done     chan struct{}
	doneOnce sync.Once
	stopDone func() bool // stops closing done when the session ends
	// wanted is closed when a replica queues for key; unwant stops
	// listening.
	wanted <-chan struct{}
	unwant func()

	unlockOnce sync.Once
	unlockErr  error
}

// newLease is the lease on key held through sess by the etcd key etcdKey
// while owned holds, with token.
func newLease(l *Locker, key string, sess *concurrency.Session, etcdKey string, owned clientv3.Cmp, token int64) *lease {
	le := &lease{
		l:       l,
		key:     key,
		sess:    sess,
		etcdKey: etcdKey,
		owned:   owned,
		// The token is the store revision at acquisition (the header of
		// the request that found this waiter first). Tokens increase
		// strictly per key: the next holder acquires only after this
		// holder's key is deleted (by Unlock or by lease expiry), that
		// delete is a write with a greater revision than any this holder
		// observed, and the next holder's acquiring request comes after
		// it, so its header revision is at least the delete's.
		token: token,
		done:  make(chan struct{}),
	}
	// One session serves many leases: each lease's Done follows it. The
	// session's context ends when its lease expires or is revoked, when
	// keepalives got no answer for a TTL, and on Orphan or Close.
	le.wanted, le.unwant = l.wanted.Listen(key)
	le.stopDone = context.AfterFunc(sess.Ctx(), le.closeDone)
	return le
}

func (le *lease) Token() int64          { return le.token }
func (le *lease) Done() <-chan struct{} { return le.done }

// Wanted is closed once a replica queued for the key.
func (le *lease) Wanted() <-chan struct{} { return le.wanted }

func (le *lease) closeDone() {
	le.doneOnce.Do(func() {
		le.unwant()
		close(le.done)
	})
}

// Unlock deletes the mutex key if this lease still owns it, retrying
// transient errors as Lock does. It returns lock.ErrLeaseLost if the
// session was lost or the key is gone (its lease expired or was revoked),
// and an error wrapping lock.ErrUnavailable (or ctx.Err()) if etcd could
// not be told; the key is then deleted in the background, and the gate left
// once that is done. Done is closed in every case. Later calls return the
// first result.
func (le *lease) Unlock(ctx context.Context) error {
	le.unlockOnce.Do(func() {
		le.stopDone()
		le.closeDone()
		if err := le.release(ctx); err != nil {
			le.unlockErr = fmt.Errorf("etcdlock: unlock %s: %w", le.key, err)
		}
	})
	return le.unlockErr
}

// release deletes the lease's key while it is still ours (like
// Mutex.Unlock, but a lost key is reported rather than deleted blindly).
// Leases released at about the same time share one transaction (one
// nested transaction each, as TryLock takes them): etcd pays per
// transaction, so a spread of many levels, each let go about once per
// request, costs it far less. If that transaction fails, the key is
// deleted alone, with retries, as if its first try had been that one.
func (le *lease) release(ctx context.Context) error {
	l := le.l
	if le.sess.Ctx().Err() != nil || !l.connected() || l.isClosed() {
		return l.deleteOwned(ctx, le.sess, le.etcdKey, le.owned, le.leave, false)
	}
	r := &release{ctx: ctx, key: le.etcdKey, owned: le.owned, done: make(chan releaseResult, 1)}
	l.releases.Add(r)
	res := <-r.done
	if res.err != nil {
		return l.deleteOwned(ctx, le.sess, le.etcdKey, le.owned, le.leave, true)
	}
	le.leave()
	if !res.deleted {
		return lock.ErrLeaseLost // the key was gone: its session's lease lapsed
	}
	return nil
}

// release is a key to delete in releaseGroup's transaction, and then the
// outcome.
type release struct {
	ctx   context.Context
	key   string
	owned clientv3.Cmp
	done  chan releaseResult // buffered
}

type releaseResult struct {
	deleted bool  // owned held, and the key was deleted
	err     error // the transaction's
}

// takeReleases takes up to maxTxnOps releases for one transaction.
func takeReleases(waiting []*release) (group, rest []*release) {
	n := min(len(waiting), maxTxnOps)
	return waiting[:n:n], waiting[n:]
}

// releaseGroup deletes the keys of group in one transaction, each while
// its lease still owns it, bounded by OpTimeout.
func (l *Locker) releaseGroup(group []*release) {
	ops := make([]clientv3.Op, len(group))
	for i, r := range group {
		ops[i] = clientv3.OpTxn([]clientv3.Cmp{r.owned}, []clientv3.Op{clientv3.OpDelete(r.key)}, nil)
	}
	ctx, cancel := context.WithTimeout(clientv3.WithRequireLeader(context.WithoutCancel(group[0].ctx)), l.cfg.OpTimeout)
	resp, err := l.client.Txn(ctx).Then(ops...).Commit()
	cancel()
	for i, r := range group {
		if err != nil {
			r.done <- releaseResult{err: err}
			continue
		}
		r.done <- releaseResult{deleted: resp.Responses[i].GetResponseTxn().GetSucceeded()}
	}
}

// deleteOwned deletes key, held through sess, while owned holds, retrying
// transient errors as Lock does, and leaves the gate (leave) once the key
// is gone; maybeApplied says an earlier try failed after it may have
// deleted the key. It returns lock.ErrLeaseLost if the session was lost or
// the key is gone already, and the retrier's error if etcd could not be
// told; the key is then deleted in the background, since a live session's
// key is never released by its lease.
func (l *Locker) deleteOwned(ctx context.Context, sess *concurrency.Session, key string, owned clientv3.Cmp, leave func(), maybeApplied bool) error {
	r := l.newRetrier()
	for {
		if sess.Ctx().Err() != nil {
			leave()
			return lock.ErrLeaseLost
		}
		err := errNotConnected
		if l.connected() {
			var resp *clientv3.TxnResponse
			resp, err = l.client.Txn(ctx).If(owned).Then(clientv3.OpDelete(key)).Commit()
			switch {
			case err == nil && (resp.Succeeded || maybeApplied):
				// A key gone after a try whose answer was lost was most
				// likely deleted by that try: the session is alive.
				leave()
				return nil
			case err == nil:
				leave()
				return lock.ErrLeaseLost
			}
			maybeApplied = true
		}
		if err := r.next(ctx, err); err != nil {
			l.cleanupLater(sess, key, leave)
			return err
		}
	}
}
