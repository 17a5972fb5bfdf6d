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
	le.stopDone = context.AfterFunc(sess.Ctx(), le.closeDone)
	return le
}

func (le *lease) Token() int64          { return le.token }
func (le *lease) Done() <-chan struct{} { return le.done }

func (le *lease) closeDone() { le.doneOnce.Do(func() { close(le.done) }) }

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

func (le *lease) release(ctx context.Context) error {
	// Like Mutex.Unlock, but only while the key is still ours, so that a
	// lost key is reported rather than deleted blindly.
	return le.l.deleteOwned(ctx, le.sess, le.etcdKey, le.owned, le.leave)
}

// deleteOwned deletes key, held through sess, while owned holds, retrying
// transient errors as Lock does, and leaves the gate (leave) once the key
// is gone. It returns lock.ErrLeaseLost if the session was lost or the key
// is gone already, and the retrier's error if etcd could not be told; the
// key is then deleted in the background, since a live session's key is
// never released by its lease.
func (l *Locker) deleteOwned(ctx context.Context, sess *concurrency.Session, key string, owned clientv3.Cmp, leave func()) error {
	r := l.newRetrier()
	maybeApplied := false // a failed try may have deleted the key
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
