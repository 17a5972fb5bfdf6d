package flow

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/alibaba/sentinel-golang/core/circuitbreaker"
)

// Status is what an operator sees of flow control on this replica.
type Status struct {
	// Source is the rules file, or "defaults".
	Source   string
	LoadedAt time.Time
	// LastError says why the rules file was last refused, if it was since
	// the rules in force were loaded; those rules stay.
	LastError   string
	LastErrorAt time.Time
	Rules       Rules
	// UnresolvedSKUs are hot-spot override SKUs no product has (yet);
	// they are looked up again every ten checks of the rules file.
	UnresolvedSKUs []string
	Breakers       []BreakerStatus
	Blocked        []BlockedCount
}

// BreakerStatus is one resource's breaker state.
type BreakerStatus struct {
	Resource string
	// State is CLOSED, OPEN or HALF_OPEN.
	State string
	Since time.Time
}

// Status returns the rules in force, the breakers and the refusals so far.
func (c *Controller) Status() Status {
	c.mu.RLock()
	s := Status{Source: c.source, LoadedAt: c.loadedAt, LastError: c.lastErr, LastErrorAt: c.errAt,
		Rules: c.cur.rules, UnresolvedSKUs: slices.Clone(c.cur.unresolved)}
	for res, b := range c.breakers {
		s.Breakers = append(s.Breakers, BreakerStatus{Resource: res, State: stateName(b.state), Since: b.since})
	}
	c.mu.RUnlock()
	slices.SortFunc(s.Breakers, func(a, b BreakerStatus) int { return cmp.Compare(a.Resource, b.Resource) })
	s.Blocked = c.metrics.blockedCounts()
	return s
}

// HotProducts returns up to n products with the most stock requests on
// this replica over the last ten seconds, admitted and refused.
func (c *Controller) HotProducts(n int) []HotProduct { return c.hot.top(time.Now(), n) }

func stateName(s circuitbreaker.State) string {
	switch s {
	case circuitbreaker.Open:
		return "OPEN"
	case circuitbreaker.HalfOpen:
		return "HALF_OPEN"
	}
	return "CLOSED"
}

// sentinelLogger sends Sentinel's own messages to our log: its info as
// debug (it is chatty about every rule load), the rest as they are.
type sentinelLogger struct{ log *slog.Logger }

func (l sentinelLogger) Debug(msg string, kv ...any) { l.log.Debug(msg, kv...) }
func (l sentinelLogger) DebugEnabled() bool {
	return l.log.Enabled(context.Background(), slog.LevelDebug)
}
func (l sentinelLogger) Info(msg string, kv ...any) { l.log.Debug(msg, kv...) }
func (l sentinelLogger) InfoEnabled() bool {
	return l.log.Enabled(context.Background(), slog.LevelDebug)
}
func (l sentinelLogger) Warn(msg string, kv ...any) { l.log.Warn(msg, kv...) }
func (l sentinelLogger) WarnEnabled() bool {
	return l.log.Enabled(context.Background(), slog.LevelWarn)
}
func (l sentinelLogger) Error(err error, msg string, kv ...any) {
	l.log.Error(msg, append([]any{"err", fmt.Sprint(err)}, kv...)...)
}
func (l sentinelLogger) ErrorEnabled() bool {
	return l.log.Enabled(context.Background(), slog.LevelError)
}
