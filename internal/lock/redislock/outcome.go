package redislock

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/go-redsync/redsync/v4"
)

// quorumContext returns the context of one operation on every server.
// redsync (in fail-fast mode) and onQuorum return as soon as a quorum
// answers, leaving the other servers' commands in flight; this context ends
// after d, not when the caller returns or its context ends, so those
// commands finish. Cutting them off would leave a lease on a bare quorum,
// lost with any one of its servers, and a released key behind on a
// straggler, blocking the key there for a TTL: with one server down, that
// denies the quorum.
func quorumContext(ctx context.Context, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), d)
	time.AfterFunc(d, cancel)
	return ctx
}

// redsync reports a failed operation as one error joining an outcome per
// server; the functions here read those outcomes.

// unreachable reports whether err, from a redsync attempt, means too few
// servers answered for a quorum, as opposed to the key being taken (or
// being split between contenders), which is never a backend failure.
func (l *Locker) unreachable(err error) bool {
	var t *redsync.ErrTaken
	if errors.As(err, &t) {
		return false
	}
	c := countNodes(err)
	if c.redisErrs == 0 && c.taken == 0 {
		// ErrFailed: a quorum said yes, but too late for the lease to
		// be valid. The servers are too slow.
		return true
	}
	return len(l.clients)-c.redisErrs < l.quorum
}

// nodeCounts sorts the per-server outcomes redsync joins into one error.
type nodeCounts struct {
	redisErrs int // the server did not answer or failed the command
	taken     int // the server answered: not ours, or no such key
}

func countNodes(err error) nodeCounts {
	var c nodeCounts
	var walk func(error)
	walk = func(err error) {
		switch e := err.(type) {
		case *redsync.RedisError:
			c.redisErrs++
		case *redsync.ErrNodeTaken:
			c.taken++
		case interface{ Unwrap() []error }:
			for _, e := range e.Unwrap() {
				walk(e)
			}
		}
	}
	walk(err)
	return c
}

// gone reports whether err, from a failed extension, means so many servers
// no longer hold this lock that a quorum cannot.
func (l *Locker) gone(err error) bool {
	var t *redsync.ErrTaken
	if errors.As(err, &t) {
		return true
	}
	return countNodes(err).taken > len(l.clients)-l.quorum
}

// flat returns the message of err with the errors redsync joins (one per
// server) on one line.
func flat(err error) string {
	var parts []string
	var walk func(error)
	walk = func(err error) {
		if j, ok := err.(interface{ Unwrap() []error }); ok {
			for _, e := range j.Unwrap() {
				walk(e)
			}
		} else if err != nil {
			parts = append(parts, err.Error())
		}
	}
	walk(err)
	return strings.Join(parts, "; ")
}
