package redislock

import (
	"context"
	"fmt"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/shopstack/inventory/internal/lock"
)

// releaseScript deletes each lock KEYS[i] that still holds its lease's
// value ARGV[i], as redsync's release does for one. It returns, for each,
// "1" if it deleted it, "0" if another value holds it and "-1" if it is
// gone.
var releaseScript = redis.NewScript(`
local out = {}
for i = 1, #KEYS do
	local v = redis.call('GET', KEYS[i])
	if v == ARGV[i] then
		redis.call('DEL', KEYS[i])
		out[i] = '1'
	elseif v == false then
		out[i] = '-1'
	else
		out[i] = '0'
	end
end
return out
`)

// maxReleaseGroup bounds the locks one release script deletes: the server
// runs nothing else meanwhile.
const maxReleaseGroup = 512

// release is a lease to release in releaseGroup's scripts, and then its
// outcome.
type release struct {
	ctx        context.Context // its values (the caller's span) go with the group's scripts
	key, value string
	done       chan error // buffered
}

// takeReleases takes up to maxReleaseGroup releases for one group.
func takeReleases(waiting []*release) (group, rest []*release) {
	n := min(len(waiting), maxReleaseGroup)
	return waiting[:n:n], waiting[n:]
}

// releaseGroup releases the leases of group: on every server at once, one
// script for all of them (one per hash slot on a cluster, in one round trip
// per master), each bounded by OpTimeout. A lease is released when a quorum
// of servers deleted its lock; its outcome is given as soon as that is
// decided, and the servers still running then finish on their own, so a
// stalled server delays no release (as redsync's release in fail-fast
// mode). It returns once every outcome is given.
func (l *Locker) releaseGroup(group []*release) {
	keys := make([]string, len(group))
	values := make([]any, len(group))
	for i, r := range group {
		keys[i], values[i] = r.key, r.value
	}
	ctx := quorumContext(group[0].ctx, l.cfg.OpTimeout)
	type serverAnswers struct {
		server  int
		replies []string
		errs    []error
	}
	answers := make(chan serverAnswers, len(l.clients)) // buffered: stragglers never block
	for s, c := range l.clients {
		go func() {
			a := serverAnswers{server: s, replies: make([]string, len(keys)), errs: make([]error, len(keys))}
			l.evalOn(ctx, c, releaseScript, keys,
				func(i int) []string { return []string{l.lockKey(keys[i])} },
				func(idx []int) []any {
					args := make([]any, len(idx))
					for j, i := range idx {
						args[j] = values[i]
					}
					return args
				},
				func(i int, reply string, err error) { a.replies[i], a.errs[i] = reply, err })
			answers <- a
		}()
	}
	tallies := make([]releaseTally, len(group))
	open := len(group)
	for reported := 1; open > 0 && reported <= len(l.clients); reported++ {
		a := <-answers
		for i, r := range group {
			t := &tallies[i]
			if t.decided {
				continue
			}
			switch {
			case a.errs[i] != nil:
				t.failed = append(t.failed, fmt.Sprintf("%s: %v", l.serverName(a.server), a.errs[i]))
			case a.replies[i] == "1":
				t.deleted++
			default:
				t.notHeld++
			}
			if err, ok := t.outcome(l.quorum, len(l.clients)-reported); ok {
				t.decided = true
				open--
				r.done <- err
			}
		}
	}
}

// releaseTally counts the servers' answers for one lease.
type releaseTally struct {
	deleted, notHeld int
	failed           []string // one per server that did not answer
	decided          bool
}

// outcome is the lease's release outcome, once decided with pending
// servers yet to answer: nil where a quorum deleted its lock; where a
// quorum can no longer, lock.ErrLeaseLost if a quorum answered (the lock
// had lapsed or was taken), lock.ErrUnavailable if too few can.
func (t *releaseTally) outcome(quorum, pending int) (error, bool) {
	answered := t.deleted + t.notHeld
	switch {
	case t.deleted >= quorum:
		return nil, true
	case t.deleted+pending >= quorum:
		return nil, false
	case answered >= quorum:
		return fmt.Errorf("%w: %d of %d servers no longer held it", lock.ErrLeaseLost, t.notHeld, answered), true
	case answered+pending >= quorum:
		return nil, false
	default:
		return fmt.Errorf("%w: %s", lock.ErrUnavailable, strings.Join(t.failed, "; ")), true
	}
}
