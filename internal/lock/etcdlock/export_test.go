package etcdlock

import (
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/shopstack/inventory/internal/lock"
)

// Abandon stops keeping alive the session le was acquired through, as a
// paused or dead process would: nothing is released, the lease expires on
// the server after its TTL and takes the key with it. Done fires at once.
func Abandon(le lock.Lease) { le.(*lease).sess.Orphan() }

// LeaseID returns the etcd lease of the session le was acquired through.
func LeaseID(le lock.Lease) clientv3.LeaseID { return le.(*lease).sess.Lease() }

// GateLen returns how many keys are held or waited for in l's gate.
func (l *Locker) GateLen() int { return l.gate.Len() }

// AbandonLeader is Abandon for a lease Campaign returned: the leader's
// session is no longer kept alive, its key lapses a TTL later.
func AbandonLeader(le lock.Lease) { le.(*electLease).sess.Orphan() }

// LeaderLeaseID returns the etcd lease of the session le, a lease Campaign
// returned, was won through.
func LeaderLeaseID(le lock.Lease) clientv3.LeaseID { return le.(*electLease).sess.Lease() }
