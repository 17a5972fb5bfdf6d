package etcdlock

import (
	"context"
	"fmt"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
)

// session returns the shared session, starting one if there is none or the
// last one was lost (its lease expired or was revoked). Starting is
// serialized: concurrent callers wait for one grant instead of each making
// their own.
func (l *Locker) session(ctx context.Context) (*concurrency.Session, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil, errClosed
	}
	if l.sess != nil && l.sess.Ctx().Err() == nil {
		return l.sess, nil
	}
	l.sess = nil
	// Grant here rather than in NewSession: NewSession would grant with
	// the context the keepalive then lives on, so bounding it would end
	// the session.
	ctx, cancel := context.WithTimeout(clientv3.WithRequireLeader(ctx), l.cfg.OpTimeout)
	defer cancel()
	ttl := int64(l.cfg.TTL / time.Second)
	grant, err := l.client.Grant(ctx, ttl)
	if err != nil {
		return nil, fmt.Errorf("grant session lease: %w", err)
	}
	s, err := concurrency.NewSession(l.client, concurrency.WithTTL(int(ttl)), concurrency.WithLease(grant.ID))
	if err != nil {
		_, _ = l.client.Revoke(ctx, grant.ID)
		return nil, fmt.Errorf("start session: %w", err)
	}
	l.sess = s
	return s, nil
}

// dropSession gives up s after etcd said its lease is gone, so the next
// acquisition starts a new session instead of waiting for s's keepalive to
// notice. Orphaning s fires the Done of every lease held through it, which
// were lost with the lease.
func (l *Locker) dropSession(s *concurrency.Session) {
	l.mu.Lock()
	if l.sess == s {
		l.sess = nil
	}
	l.mu.Unlock()
	s.Orphan()
}
