package etcdlock

import (
	"context"
	"errors"
	"fmt"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
)

// queue is the wait line of one mutex prefix, in concurrency.Mutex's own
// layout: each waiter is the key pfx/<lease id>, the oldest key holds the
// lock, and every waiter waits for the deletion of the key created just
// before its own.
//
// Mutex.Lock does the same, but watches for that deletion from the
// revision it last read, which etcd serves late (see waitDelete): each
// handoff between replicas took up to 100ms. Mutex.TryLock still takes the
// lock once it is our turn (it reuses the waiter key of its session), so
// the Mutex has its key, revision and header as after Mutex.Lock.
type queue struct {
	l    *Locker
	sess *concurrency.Session
	pfx  string
	// want is the key that tells the holder it is wanted (wanted.go).
	want string
}

// myKey is the waiter key of the session, as concurrency.Mutex names it.
func (q queue) myKey() string { return fmt.Sprintf("%s/%x", q.pfx, q.sess.Lease()) }

// lock takes m: at once if nobody holds or waits for it, else after
// queueing behind those who do.
func (q queue) lock(ctx context.Context, m *concurrency.Mutex) error {
	for {
		err := m.TryLock(ctx)
		if !errors.Is(err, concurrency.ErrLocked) {
			return err
		}
		// TryLock deleted its waiter key: queue up again, behind every
		// waiter there is now.
		myRev, err := q.enqueue(ctx)
		if err != nil {
			return err
		}
		if err := q.waitTurn(ctx, myRev); err != nil {
			return err
		}
	}
}

// enqueue creates the session's waiter key unless it exists, telling the
// holder (want), and returns
// its create revision, the place in the queue.
func (q queue) enqueue(ctx context.Context) (int64, error) {
	key := q.myKey()
	resp, err := q.l.client.Txn(ctx).
		If(clientv3.Compare(clientv3.CreateRevision(key), "=", 0)).
		Then(clientv3.OpPut(key, "", clientv3.WithLease(q.sess.Lease())),
			clientv3.OpPut(q.want, "", clientv3.WithLease(q.sess.Lease()))).
		Else(clientv3.OpGet(key)).
		Commit()
	if err != nil {
		return 0, err
	}
	if resp.Succeeded {
		return resp.Header.Revision, nil
	}
	kvs := resp.Responses[0].GetResponseRange().Kvs
	if len(kvs) == 0 {
		return 0, concurrency.ErrSessionExpired
	}
	return kvs[0].CreateRevision, nil
}

// waitTurn waits until no waiter key older than myRev is left.
func (q queue) waitTurn(ctx context.Context, myRev int64) error {
	opts := append(clientv3.WithLastCreate(), clientv3.WithMaxCreateRev(myRev-1))
	for {
		resp, err := q.l.client.Get(ctx, q.pfx+"/", opts...)
		if err != nil {
			return err
		}
		if len(resp.Kvs) == 0 {
			return nil
		}
		kv := resp.Kvs[0]
		if err := q.waitDelete(ctx, string(kv.Key), kv.CreateRevision, resp.Header.Revision); err != nil {
			return err
		}
	}
}

// waitDelete waits until key, seen at revision seenRev with create
// revision createRev, is deleted.
//
// It watches from now, not from seenRev+1: etcd treats a watch that starts
// at or below its current revision as "unsynced" and catches it up only
// every 100ms, and any write anywhere since seenRev makes seenRev+1 such a
// revision. A live watch reports every delete after its creation (the
// revision in its created response, read after it was registered); if the
// store moved on since seenRev, a read tells whether the key went in
// between. That read compares create revisions, not mere existence: a
// session's waiter key has the same name for every acquisition, so the key
// may be back already, queued behind us.
func (q queue) waitDelete(ctx context.Context, key string, createRev, seenRev int64) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	wch := q.l.client.Watch(ctx, key, clientv3.WithCreatedNotify(), clientv3.WithFilterPut())
	for wr := range wch {
		if err := wr.Err(); err != nil {
			return err
		}
		if wr.Created {
			if wr.Header.Revision <= seenRev {
				continue
			}
			resp, err := q.l.client.Get(ctx, key, clientv3.WithKeysOnly())
			if err != nil {
				return err
			}
			if len(resp.Kvs) == 0 || resp.Kvs[0].CreateRevision != createRev {
				return nil
			}
			continue
		}
		if len(wr.Events) > 0 {
			return nil // puts are filtered out: this is the delete
		}
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	return errors.New("watch closed")
}
