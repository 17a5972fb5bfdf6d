package etcdlock

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"

	"github.com/cenkalti/backoff/v5"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"

	"github.com/shopstack/inventory/internal/lock"
	"github.com/shopstack/inventory/internal/retry"
)

// Elections use etcd's own recipe, concurrency.Election, through the
// Locker's shared session: each candidate puts the key
// <election prefix>/<session lease id>, the candidate with the oldest key
// leads, and the others wait for the deletion of the key created just
// before their own. A replica that dies stops keeping its session alive,
// and its key goes with the session's lease a TTL later.
//
// Where: elections live beside the locks, under Config.Prefix without its
// trailing "/" plus ".elect/" ("/inventory/lock.elect/" by default), as the
// incarnation key lives at Prefix+".incarnation". That name differs from
// the lock prefix at the character after it ("." against "/"), so no lock
// key and no election key share a prefix; and it follows Prefix, so two
// installations with different prefixes do not share their elections.
// (Replacing Prefix's last segment, "lock/", by "elect/" would collide with
// a Prefix that ends in "elect/", and merge the elections of prefixes that
// differ only there.) Election names are path-escaped, so that "a" does
// not wait for the candidates of "a/b". If Prefix does not end in "/", a
// lock on the key ".elect" would share keys with elections: do not do that.

var (
	_ lock.Elector = (*Locker)(nil)

	errLeaderKeyGone = errors.New("election key gone while campaigning")
)

// electValue is the value of this process's election keys, which tells
// who leads: hostname:pid.
var electValue = sync.OnceValue(func() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "unknown"
	}
	return host + ":" + strconv.Itoa(os.Getpid())
})

// electPrefix returns the etcd prefix of election name (see above);
// concurrency.Election appends "/" and the session's lease id.
func (l *Locker) electPrefix(name string) string {
	return strings.TrimSuffix(l.cfg.Prefix, "/") + ".elect/" + url.PathEscape(name)
}

// electGateKey is the key of election name in the Locker's gate. Lock keys
// share the gate; the NUL keeps a lock on "elect/x" from waiting for the
// leader of "x".
func electGateKey(name string) string { return "\x00elect/" + name }

// electKey is the election key sess campaigns with, as
// concurrency.Election names it.
func electKey(pfx string, sess *concurrency.Session) string {
	return fmt.Sprintf("%s/%x", pfx, sess.Lease())
}

// Campaign blocks until this replica leads name or ctx ends; the error then
// wraps ctx.Err(). Transient etcd errors, and an unreachable cluster, are
// retried with backoff (Config.RetryMin to RetryMax) for as long as ctx
// lasts: unlike Lock, Campaign does not give up with lock.ErrUnavailable.
// It fails before ctx ends only if the Locker is closed or etcd refuses the
// request itself (permissions).
//
// The returned lease's Token is the create revision of the leader key,
// which increases from one leader to the next. Its Done closes when the
// session is lost (leadership can no longer be assumed: another replica
// may lead a TTL after the session's last keepalive) or on Unlock, which
// resigns.
//
// The election key belongs to the session, which all leases of the Locker
// share, so two campaigns for one name through one Locker would both win.
// Campaigns for one name therefore take turns in the Locker's gate: a
// second Campaign waits in memory until the first one's lease is unlocked
// or lost.
func (l *Locker) Campaign(ctx context.Context, name string) (lock.Lease, error) {
	leave, err := l.gate.Enter(ctx, electGateKey(name))
	if err != nil {
		return nil, fmt.Errorf("etcdlock: campaign %s: %w", name, err)
	}
	le, err := l.campaign(ctx, name, leave)
	if err != nil {
		return nil, fmt.Errorf("etcdlock: campaign %s: %w", name, err)
	}
	return le, nil
}

// campaign runs attempts until one wins, ctx ends or an error is not worth
// retrying. The caller holds the gate for name; campaign hands it to the
// lease, or leaves it (directly, or once a leftover key is deleted).
func (l *Locker) campaign(ctx context.Context, name string, leave func()) (*electLease, error) {
	pfx := l.electPrefix(name)
	bo := &backoff.ExponentialBackOff{
		InitialInterval:     l.cfg.RetryMin,
		RandomizationFactor: 0.5,
		Multiplier:          2,
		MaxInterval:         l.cfg.RetryMax,
	}
	bo.Reset()
	// left is the last session an attempt went through: its election key
	// may be in etcd (a waiting candidate's, or one whose request timed
	// out after it was applied). Attempts through one session all use the
	// same key, so only the last session matters; the keys of a lost
	// session go with its lease.
	var left *concurrency.Session
	giveUp := func(err error) (*electLease, error) {
		if left != nil && left.Ctx().Err() == nil {
			l.cleanupLater(left, electKey(pfx, left), leave)
		} else {
			leave()
		}
		return nil, err
	}
	for {
		err := errNotConnected
		if l.connected() {
			var sess *concurrency.Session
			if sess, err = l.session(ctx); err == nil {
				left = sess
				var le *electLease
				var handedOff bool
				le, handedOff, err = l.campaignOnce(ctx, pfx, name, sess, leave)
				switch {
				case handedOff:
					// ctx ended; the attempt finishes, and its key is
					// deleted, in the background.
					return nil, err
				case err == nil:
					return le, nil
				case errors.Is(err, rpctypes.ErrLeaseNotFound):
					// etcd says the lease is gone; the session has not
					// noticed yet.
					l.dropSession(sess)
				}
			}
		}
		switch {
		case ctx.Err() != nil:
			return giveUp(ctxErr(ctx, err))
		case l.isClosed():
			return giveUp(errClosed)
		case !transient(err):
			return giveUp(err)
		}
		wait := min(max(bo.NextBackOff(), l.cfg.RetryMin), l.cfg.RetryMax)
		if !retry.Sleep(ctx, wait) {
			return giveUp(ctxErr(ctx, err))
		}
	}
}

// ctxErr is the error of a campaign that ctx ended: it wraps ctx.Err(),
// and tells what went wrong last if etcd was failing rather than another
// replica leading.
func ctxErr(ctx context.Context, last error) error {
	if last == nil || errors.Is(last, context.Canceled) || errors.Is(last, context.DeadlineExceeded) {
		return ctx.Err()
	}
	return fmt.Errorf("%w (last etcd error: %v)", ctx.Err(), last)
}

// campaignOnce makes one attempt through sess. Election.Campaign runs in a
// goroutine, because on cancellation it resigns before it returns, with a
// request that may take OpTimeout if etcd is unreachable: when ctx ends
// the attempt is handed off (handedOff is true) and finishes in the
// background, which then deletes its key and leaves the gate.
func (l *Locker) campaignOnce(ctx context.Context, pfx, name string, sess *concurrency.Session, leave func()) (le *electLease, handedOff bool, err error) {
	e := concurrency.NewElection(sess, pfx)
	key := electKey(pfx, sess)
	wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
	defer cancel()
	res := make(chan error, 1)
	go func() { res <- e.Campaign(wctx, electValue()) }()
	select {
	case err = <-res:
	case <-ctx.Done():
		go func() {
			// Won or not, the key may be there; a lost session's keys go
			// with its lease.
			<-res
			if sess.Ctx().Err() == nil {
				l.cleanupLater(sess, key, leave)
			} else {
				leave()
			}
		}()
		return nil, true, ctx.Err()
	case <-sess.Ctx().Done():
		// The candidate key went with the session's lease, so waiting on
		// could only end in a win without a key. The attempt's
		// resignation, which has nothing to delete, finishes in the
		// background; the next attempt starts a new session and no
		// longer needs this one's key deleted.
		return nil, false, errSessionLost
	}
	if err != nil {
		return nil, false, err
	}
	// Election.Campaign waits until the keys created before ours are gone,
	// but not whether ours is still there: if the session's lease expired
	// meanwhile, it lost the place in line it reports as won. Confirm the
	// key, so that two leaders never overlap and tokens increase.
	resp, err := l.client.Get(ctx, key)
	switch {
	case err != nil:
		// The next attempt finds the key and keeps its place.
		return nil, false, err
	case sess.Ctx().Err() != nil:
		return nil, false, errSessionLost
	case len(resp.Kvs) == 0 || resp.Kvs[0].CreateRevision != e.Rev():
		// Gone with the lease (the next attempt's put then fails with
		// ErrLeaseNotFound and drops the session), or deleted by someone
		// else (the next attempt queues again).
		return nil, false, errLeaderKeyGone
	}
	return newElectLease(l, name, sess, key, e.Rev(), leave), false, nil
}

// electLease is the leadership of one election, won through the Locker's
// shared session.
type electLease struct {
	l     *Locker
	name  string
	sess  *concurrency.Session
	key   string // the leader key
	rev   int64  // its create revision: the token
	leave func() // leaves the gate

	done     chan struct{}
	doneOnce sync.Once
	stopDone func() bool // stops closing done when the session ends

	unlockOnce sync.Once
	unlockErr  error
}

func newElectLease(l *Locker, name string, sess *concurrency.Session, key string, rev int64, leave func()) *electLease {
	le := &electLease{l: l, name: name, sess: sess, key: key, rev: rev, leave: leave, done: make(chan struct{})}
	le.stopDone = context.AfterFunc(sess.Ctx(), le.closeDone)
	return le
}

// Token is the create revision of the leader key. Tokens increase from
// one leader to the next: a leader is confirmed while its key exists and
// no older key does, so the next leader's key, which exists from its
// creation until that leader is confirmed, was created after this one was
// confirmed, or else it is newer than this one's key.
func (le *electLease) Token() int64          { return le.rev }
func (le *electLease) Done() <-chan struct{} { return le.done }

func (le *electLease) closeDone() { le.doneOnce.Do(func() { close(le.done) }) }

// Unlock resigns: it deletes the leader key if it is still this lease's,
// each request bounded by OpTimeout and transient errors retried as Lock's
// Unlock does. It returns lock.ErrLeaseLost if the session was lost or the
// key is gone, and an error wrapping lock.ErrUnavailable (or ctx.Err()) if
// etcd could not be told; the key is then deleted in the background, and
// the next campaign for the name through this Locker waits for that. Done
// is closed in every case. Later calls return the first result.
func (le *electLease) Unlock(ctx context.Context) error {
	le.unlockOnce.Do(func() {
		le.stopDone()
		le.closeDone()
		if err := le.resign(ctx); err != nil {
			le.unlockErr = fmt.Errorf("etcdlock: resign %s: %w", le.name, err)
		}
	})
	return le.unlockErr
}

// resign commits the transaction Election.Resign commits (delete the
// leader key if its create revision is still ours) but, unlike Resign,
// looks at whether it succeeded, to report a lost key, and can retry:
// Resign forgets the key after its first request, failed or not.
func (le *electLease) resign(ctx context.Context) error {
	return le.l.deleteOwned(ctx, le.sess, le.key, clientv3.Compare(clientv3.CreateRevision(le.key), "=", le.rev), le.leave, false)
}
