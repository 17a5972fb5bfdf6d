package etcdlock

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"time"

	"github.com/cenkalti/backoff/v5"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/shopstack/inventory/internal/lock"
	"github.com/shopstack/inventory/internal/retry"
)

var (
	errClosed       = fmt.Errorf("%w: locker closed", lock.ErrUnavailable)
	errNotConnected = errors.New("no connection to any etcd endpoint")
	errSessionLost  = errors.New("session lost")
)

// Lock acquires key, waiting while another replica holds it until ctx
// ends. Transient etcd errors are retried; see Config.ErrorRetries.
func (l *Locker) Lock(ctx context.Context, key string) (lock.Lease, error) {
	leave, err := l.gate.Enter(ctx, key)
	if err != nil {
		return nil, fmt.Errorf("etcdlock: lock %s: %w", key, err)
	}
	le, err := l.acquire(ctx, key, leave)
	if err != nil {
		return nil, fmt.Errorf("etcdlock: lock %s: %w", key, err)
	}
	return le, nil
}

// leftover is a waiter key an attempt may have left in etcd: its request
// timed out (it may have been applied) or its cleanup failed.
type leftover struct {
	sess *concurrency.Session
	key  string
}

// acquire retries attempts until one succeeds, ctx ends or etcd stays
// unavailable (see retrier). The caller holds the gate for key; acquire
// hands it to the lease, or leaves it (directly, or once a leftover key is
// deleted).
func (l *Locker) acquire(ctx context.Context, key string, leave func()) (*lease, error) {
	r := l.newRetrier()
	var left *leftover
	for {
		le, lo, err := l.try(ctx, key)
		if err == nil {
			le.leave = leave
			return le, nil
		}
		if lo != nil {
			// Attempts through one session all use the same key name, so
			// only the last leftover matters.
			left = lo
		}
		if err := r.next(ctx, err); err != nil {
			if left != nil && left.sess.Ctx().Err() == nil {
				l.cleanupLater(left.sess, left.key, leave)
			} else {
				leave() // keys of a lost session go with its lease
			}
			return nil, err
		}
	}
}

// retrier decides, after a failed attempt, whether to try again.
//
// An attempt fails fast when etcd has no leader, and an election takes a
// second or two. So fast failures are retried, with backoff, for OpTimeout
// before they count as one failed attempt; an attempt that timed out, or
// found no connection at all, counts at once. After ErrorRetries failed
// attempts it gives up with lock.ErrUnavailable: an unreachable cluster
// fails within about OpTimeout, an unresponsive one within
// ErrorRetries×OpTimeout.
type retrier struct {
	l        *Locker
	bo       *backoff.ExponentialBackOff
	failures int
	window   time.Time
}

func (l *Locker) newRetrier() *retrier {
	bo := &backoff.ExponentialBackOff{
		InitialInterval:     l.cfg.RetryMin,
		RandomizationFactor: 0.5,
		Multiplier:          2,
		MaxInterval:         l.cfg.RetryMax,
	}
	bo.Reset()
	return &retrier{l: l, bo: bo, window: time.Now()}
}

// next returns nil, after a backoff, if err is worth another attempt, and
// else the error to give up with.
func (r *retrier) next(ctx context.Context, err error) error {
	switch {
	case ctx.Err() != nil:
		return ctx.Err()
	case r.l.isClosed():
		return errClosed
	case !transient(err):
		return err
	}
	counted := errors.Is(err, errNotConnected) || time.Since(r.window) >= r.l.cfg.OpTimeout
	if counted {
		r.failures++
		if r.failures >= r.l.cfg.ErrorRetries {
			return unavailable(err)
		}
	}
	wait := min(max(r.bo.NextBackOff(), r.l.cfg.RetryMin), r.l.cfg.RetryMax)
	if !retry.Sleep(ctx, wait) {
		return ctx.Err()
	}
	if counted {
		r.window = time.Now()
	}
	return nil
}

// try makes one attempt through the current session.
func (l *Locker) try(ctx context.Context, key string) (*lease, *leftover, error) {
	if !l.connected() {
		return nil, nil, errNotConnected
	}
	sess, err := l.session(ctx)
	if err != nil {
		return nil, nil, err
	}
	// Path-escaping keeps "/" out of the key, so that no key's mutex
	// prefix is a prefix of another's ("a/" of "a/b/"), which would make
	// "a" wait for holders of "a/b".
	q := queue{l: l, sess: sess, pfx: l.cfg.Prefix + url.PathEscape(key), want: l.wantedKey(url.PathEscape(key))}
	m := concurrency.NewMutex(sess, q.pfx)

	// The wait also ends when the session is lost: the waiter key went
	// with the lease, so waiting on could only end in ErrSessionExpired.
	wctx, cancel := context.WithCancelCause(clientv3.WithRequireLeader(ctx))
	stop := context.AfterFunc(sess.Ctx(), func() { cancel(errSessionLost) })
	err = q.lock(wctx, m)
	stop()
	if err != nil && ctx.Err() == nil && errors.Is(context.Cause(wctx), errSessionLost) {
		err = errSessionLost
	}
	cancel(nil)
	if err == nil && sess.Ctx().Err() != nil {
		// Granted, but the lease can no longer be kept alive.
		err = errSessionLost
	}
	if err == nil {
		return newLease(l, key, sess, m.Key(), m.IsOwner(), m.Header().Revision), nil, nil
	}
	if errors.Is(err, concurrency.ErrSessionExpired) || errors.Is(err, rpctypes.ErrLeaseNotFound) {
		// etcd says the lease is gone; the session has not noticed yet.
		l.dropSession(sess)
	}
	if sess.Ctx().Err() != nil {
		return nil, nil, err // keys of a lost session go with its lease
	}
	// The waiter key may be in etcd: queued, or written by a request that
	// timed out after it was applied.
	return nil, &leftover{sess: sess, key: q.myKey()}, err
}

// cleanupLater deletes etcdKey, a key of sess left behind by a failed
// acquisition or release, then leaves the gate. Until then the gate stays
// held: a key of a live session is never released by its lease, so it would
// block other replicas for as long as this one runs, and a new acquisition
// here would reuse it (Mutex looks for its own key first) while the delete
// is pending. It retries until the delete succeeds, the session is lost
// (its keys go with the lease) or the Locker closes (which revokes it).
func (l *Locker) cleanupLater(sess *concurrency.Session, etcdKey string, leave func()) {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		leave()
		return
	}
	l.bg.Add(1)
	l.mu.Unlock()
	go func() {
		defer l.bg.Done()
		defer leave()
		ctx, cancel := context.WithCancel(l.bgCtx)
		defer cancel()
		defer context.AfterFunc(sess.Ctx(), cancel)()
		bo := retry.Doubling(min(2*l.cfg.RetryMin, l.cfg.RetryMax), l.cfg.RetryMax)
		_ = retry.Forever(ctx, bo, func() error {
			// The session's end stops the retries, not a delete
			// already sent: only the Locker's close does.
			_, err := l.client.Delete(l.bgCtx, etcdKey)
			return err
		}, nil)
	}()
}

// transient reports whether err may go away on retry. Errors from the
// client's own timeouts (context errors) and from gRPC without a status
// count as transient; etcd's refusals of the request itself do not.
func transient(err error) bool {
	var ee rpctypes.EtcdError
	code := codes.Unknown
	if errors.As(err, &ee) {
		code = ee.Code()
	} else if s, ok := status.FromError(err); ok {
		code = s.Code()
	}
	switch code {
	case codes.InvalidArgument, codes.PermissionDenied, codes.Unauthenticated, codes.Unimplemented:
		return false
	}
	return true
}

// unavailable wraps err in lock.ErrUnavailable. A context error comes from
// an OpTimeout, not from the caller's context, so it is not wrapped: the
// caller must not take it for its own deadline.
func unavailable(err error) error {
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return fmt.Errorf("%w: no answer in time (%v)", lock.ErrUnavailable, err)
	}
	return fmt.Errorf("%w: %w", lock.ErrUnavailable, err)
}
