package etcdlock

import (
	"context"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// boundedKV bounds every KV call by a timeout and makes it fail fast with
// "no leader" on a member that has none. It replaces the client's KV (the
// documented way to wrap it, as namespace.NewKV does) so that the calls
// concurrency.Mutex makes are bounded too: they get the caller's context,
// which may have no deadline, and the client waits for a connection by
// default (gRPC WaitForReady), so against an unreachable cluster an
// unbounded call would block until that context ends. (Mutex.Lock is worse:
// after a failed wait it deletes its key with client.Ctx(), which never
// ends.)
//
// Watches are not KV calls: waiting for another holder stays bounded by
// the caller's context only.
type boundedKV struct {
	clientv3.KV
	timeout time.Duration
}

func (kv boundedKV) bound(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(clientv3.WithRequireLeader(ctx), kv.timeout)
}

func (kv boundedKV) Put(ctx context.Context, key, val string, opts ...clientv3.OpOption) (*clientv3.PutResponse, error) {
	ctx, cancel := kv.bound(ctx)
	defer cancel()
	return kv.KV.Put(ctx, key, val, opts...)
}

func (kv boundedKV) Get(ctx context.Context, key string, opts ...clientv3.OpOption) (*clientv3.GetResponse, error) {
	ctx, cancel := kv.bound(ctx)
	defer cancel()
	return kv.KV.Get(ctx, key, opts...)
}

func (kv boundedKV) Delete(ctx context.Context, key string, opts ...clientv3.OpOption) (*clientv3.DeleteResponse, error) {
	ctx, cancel := kv.bound(ctx)
	defer cancel()
	return kv.KV.Delete(ctx, key, opts...)
}

func (kv boundedKV) Do(ctx context.Context, op clientv3.Op) (clientv3.OpResponse, error) {
	ctx, cancel := kv.bound(ctx)
	defer cancel()
	return kv.KV.Do(ctx, op)
}

// Txn starts the timeout when the transaction is built; callers build and
// commit in one expression. A transaction never committed releases its
// timer when the timeout fires.
func (kv boundedKV) Txn(ctx context.Context) clientv3.Txn {
	ctx, cancel := kv.bound(ctx)
	return &boundedTxn{Txn: kv.KV.Txn(ctx), cancel: cancel}
}

type boundedTxn struct {
	clientv3.Txn
	cancel context.CancelFunc
}

func (t *boundedTxn) If(cs ...clientv3.Cmp) clientv3.Txn {
	t.Txn = t.Txn.If(cs...)
	return t
}

func (t *boundedTxn) Then(ops ...clientv3.Op) clientv3.Txn {
	t.Txn = t.Txn.Then(ops...)
	return t
}

func (t *boundedTxn) Else(ops ...clientv3.Op) clientv3.Txn {
	t.Txn = t.Txn.Else(ops...)
	return t
}

func (t *boundedTxn) Commit() (*clientv3.TxnResponse, error) {
	defer t.cancel()
	return t.Txn.Commit()
}
