package telemetry

import (
	"context"
	"errors"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/shopstack/inventory/internal/inventory"
	"github.com/shopstack/inventory/internal/lock"
)

// Span attributes of a lock acquisition.
const (
	attrLockBackend = attribute.Key("lock.backend")
	attrLockKey     = attribute.Key("lock.key")
	attrLockWait    = attribute.Key("lock.wait_ms")
	attrLockToken   = attribute.Key("lock.fencing_token")
	attrLockOutcome = attribute.Key("lock.outcome")
	attrLockKeys    = attribute.Key("lock.keys")
	attrLockGranted = attribute.Key("lock.granted")
)

// Lock outcomes, the values of lock.outcome and of the outcome label.
const (
	LockAcquired    = "acquired"
	LockTimeout     = "timeout"
	LockCancelled   = "cancelled"
	LockUnavailable = "unavailable"
	LockRefused     = "refused"
)

// Locker returns next with each acquisition traced (a "lock.acquire"
// span: backend, key, wait, fencing token, outcome) and, if m is not nil,
// counted and timed by backend. tp may be nil (no spans).
func Locker(next lock.Locker, backend string, tp trace.TracerProvider, m *Metrics) lock.Locker {
	if tp == nil {
		tp = noop.NewTracerProvider()
	}
	return observedLocker{Locker: next, backend: backend, tracer: tp.Tracer(scope), m: m}
}

// scope is the instrumentation scope of the spans this package makes.
const scope = "github.com/shopstack/inventory/internal/telemetry"

type observedLocker struct {
	lock.Locker
	backend string
	tracer  trace.Tracer
	m       *Metrics
}

func (l observedLocker) Lock(ctx context.Context, key string) (lock.Lease, error) {
	ctx, span := l.tracer.Start(ctx, "lock.acquire", trace.WithAttributes(attrLockBackend.String(l.backend), attrLockKey.String(key)))
	start := time.Now()
	lease, err := l.Locker.Lock(ctx, key)
	wait := time.Since(start)
	outcome := lockOutcome(ctx, err)
	if l.m != nil {
		l.m.lockAcquires.WithLabelValues(l.backend, outcome).Inc()
		l.m.lockWait.WithLabelValues(l.backend).Observe(wait.Seconds())
	}
	if span.IsRecording() {
		span.SetAttributes(attrLockWait.Float64(float64(wait.Microseconds())/1000), attrLockOutcome.String(outcome))
		if err == nil {
			span.SetAttributes(attrLockToken.Int64(lease.Token()))
		} else if outcome == LockUnavailable {
			span.SetStatus(codes.Error, "lock backend unavailable")
		}
	}
	span.End()
	return lease, err
}

// TryLock is traced as one "lock.acquire" span for all keys (backend, key
// count, how many were granted; the key, token and outcome as Lock's for
// one key) and counts each key's outcome as Lock's.
func (l observedLocker) TryLock(ctx context.Context, keys []string) []lock.Grant {
	ctx, span := l.tracer.Start(ctx, "lock.acquire", trace.WithAttributes(attrLockBackend.String(l.backend), attrLockKeys.Int(len(keys))))
	start := time.Now()
	grants := l.Locker.TryLock(ctx, keys)
	wait := time.Since(start)
	granted := 0
	for _, g := range grants {
		if g.Err == nil {
			granted++
		}
		if l.m != nil {
			l.m.lockAcquires.WithLabelValues(l.backend, lockOutcome(ctx, g.Err)).Inc()
		}
	}
	if l.m != nil {
		l.m.lockWait.WithLabelValues(l.backend).Observe(wait.Seconds())
	}
	if span.IsRecording() {
		span.SetAttributes(attrLockWait.Float64(float64(wait.Microseconds())/1000), attrLockGranted.Int(granted))
		if len(keys) == 1 {
			span.SetAttributes(attrLockKey.String(keys[0]), attrLockOutcome.String(lockOutcome(ctx, grants[0].Err)))
			if grants[0].Err == nil {
				span.SetAttributes(attrLockToken.Int64(grants[0].Lease.Token()))
			}
		}
	}
	span.End()
	return grants
}

// lockOutcome classifies the result of an acquisition made with ctx.
func lockOutcome(ctx context.Context, err error) string {
	switch {
	case err == nil:
		return LockAcquired
	case errors.Is(err, lock.ErrUnavailable):
		return LockUnavailable
	case ctx.Err() == context.Canceled:
		return LockCancelled
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, lock.ErrNotAcquired):
		return LockTimeout
	}
	if _, ok := errors.AsType[*inventory.Error](err); ok {
		// A circuit breaker in front of the backend said no.
		return LockRefused
	}
	return LockUnavailable
}
