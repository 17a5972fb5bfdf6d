package flow

import (
	"context"
	"errors"
	"time"

	"github.com/alibaba/sentinel-golang/api"
	"github.com/alibaba/sentinel-golang/core/base"
	"github.com/alibaba/sentinel-golang/core/circuitbreaker"

	"github.com/shopstack/inventory/internal/inventory"
	"github.com/shopstack/inventory/internal/lock"
)

// breakerState is what the controller knows of one resource's breakers.
type breakerState struct {
	state   circuitbreaker.State
	since   time.Time
	retryMs uint32 // of the breaker that opened
	probing bool   // a prober checks the backend while the breaker is open
}

// While a breaker is open, its backend is checked every probeInterval
// (when it can be: a lock backend with a health check, the database), and
// the breaker closes as soon as a check succeeds: a short outage costs
// about its own length, not the breaker's whole open time. An outage that
// lasts keeps the breaker open, and costs one check per interval.
const (
	probeInterval = 200 * time.Millisecond
	probeTimeout  = 500 * time.Millisecond
)

// breakerListener follows every breaker of the process and tells the
// controller owning it.
type breakerListener struct{}

func (breakerListener) OnTransformToClosed(_ circuitbreaker.State, r circuitbreaker.Rule) {
	transition(r, circuitbreaker.Closed)
}

func (breakerListener) OnTransformToOpen(_ circuitbreaker.State, r circuitbreaker.Rule, snapshot any) {
	transition(r, circuitbreaker.Open)
}

func (breakerListener) OnTransformToHalfOpen(_ circuitbreaker.State, r circuitbreaker.Rule) {
	transition(r, circuitbreaker.HalfOpen)
}

func transition(r circuitbreaker.Rule, to circuitbreaker.State) {
	c, res := controllerOf(r.Resource)
	if c == nil {
		return
	}
	c.mu.Lock()
	b := c.breakers[res]
	if b == nil {
		b = &breakerState{}
		c.breakers[res] = b
	}
	b.state, b.since, b.retryMs = to, time.Now(), r.RetryTimeoutMs
	probe := c.probes[res]
	startProbe := to == circuitbreaker.Open && probe != nil && !b.probing
	if startProbe {
		b.probing = true
		c.probers.Add(1)
	}
	c.mu.Unlock()
	if startProbe {
		go c.probeWhileOpen(res, probe)
	}
	switch to {
	case circuitbreaker.Open:
		c.log.Warn("circuit breaker open: calls fail fast until a probe succeeds", "resource", res,
			"strategy", r.Strategy.String(), "openFor", (time.Duration(r.RetryTimeoutMs) * time.Millisecond).String(),
			"healthChecks", probe != nil)
	case circuitbreaker.HalfOpen:
		c.log.Info("circuit breaker half-open: probing", "resource", res)
	default:
		c.log.Info("circuit breaker closed", "resource", res)
	}
}

// probeWhileOpen checks res's backend while its breaker is open, and
// closes the breaker once the backend answers.
func (c *Controller) probeWhileOpen(res string, probe func(context.Context) error) {
	defer c.probers.Done()
	t := time.NewTicker(probeInterval)
	defer t.Stop()
	for {
		select {
		case <-c.stop:
			c.endProbe(res)
			return
		case <-t.C:
		}
		c.mu.RLock()
		open := c.breakers[res] != nil && c.breakers[res].state == circuitbreaker.Open
		c.mu.RUnlock()
		if !open { // half-open or closed by a call, or its rules changed
			c.endProbe(res)
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), probeTimeout)
		err := probe(ctx)
		cancel()
		if err == nil {
			c.closeBreakers(res)
			return
		}
	}
}

func (c *Controller) endProbe(res string) {
	c.mu.Lock()
	if b := c.breakers[res]; b != nil {
		b.probing = false
	}
	c.mu.Unlock()
}

// closeBreakers closes res's breakers by loading its rules anew: Sentinel
// has no call to close a breaker, and new breakers start closed.
func (c *Controller) closeBreakers(res string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	b := c.breakers[res]
	if b == nil {
		return
	}
	b.probing = false
	if b.state != circuitbreaker.Open {
		return
	}
	var rules []*circuitbreaker.Rule
	for _, r := range c.breakerRules(c.cur) {
		if r.Resource == c.scope+res {
			rules = append(rules, r)
		}
	}
	if _, err := circuitbreaker.LoadRulesOfResource(c.scope+res, nil); err != nil {
		c.log.Warn("circuit breaker: reset failed", "resource", res, "err", err)
		return
	}
	if _, err := circuitbreaker.LoadRulesOfResource(c.scope+res, rules); err != nil {
		c.log.Warn("circuit breaker: reset failed", "resource", res, "err", err)
		return
	}
	b.state, b.since = circuitbreaker.Closed, time.Now()
	c.log.Info("circuit breaker closed: the backend answers its health check again", "resource", res)
}

// guard runs call under the breakers of resource: refused at once while
// open, and its error counted when failed says it is one.
func (c *Controller) guard(resource string, call func() error, failed func(error) bool) error {
	e, b := api.Entry(c.scope+resource, api.WithTrafficType(base.Outbound))
	if b != nil {
		c.metrics.blocked(resource, ruleBreaker)
		return c.breakerOpen(resource, b)
	}
	err := call()
	if err != nil && failed(err) {
		api.TraceError(e, err)
	}
	e.Exit()
	return err
}

// breakerOpen is the client's error while a breaker refuses calls.
func (c *Controller) breakerOpen(resource string, b *base.BlockError) *inventory.Error {
	what := map[string]string{ResourceLock: "the lock service", ResourceDatabase: "the database"}[resource]
	e := inventory.Unavailable(what+" is failing, so calls to it are paused for a moment; retry", b)
	e.RetryAfter = time.Second
	c.mu.RLock()
	if s := c.breakers[resource]; s != nil && s.state == circuitbreaker.Open {
		open := time.Duration(s.retryMs)*time.Millisecond - time.Since(s.since)
		if s.probing { // it may close at any check
			open = min(open, time.Second)
		}
		e.RetryAfter = max(open, 10*time.Millisecond)
	}
	c.mu.RUnlock()
	return e
}

// GuardLocker returns l with its acquisitions under the lock breaker. A
// failure is an unreachable backend (lock.ErrUnavailable); waiting for a
// busy key is not.
//
// If l has a health check (lock.Checker), an open breaker probes it and
// closes as soon as it answers.
func (c *Controller) GuardLocker(l lock.Locker) lock.Locker {
	if ch, ok := l.(lock.Checker); ok {
		c.setProbe(ResourceLock, ch.Check)
	}
	return guardedLocker{l, c}
}

func (c *Controller) setProbe(res string, probe func(context.Context) error) {
	c.mu.Lock()
	c.probes[res] = probe
	c.mu.Unlock()
}

type guardedLocker struct {
	lock.Locker
	c *Controller
}

func (g guardedLocker) Lock(ctx context.Context, key string) (lock.Lease, error) {
	var lease lock.Lease
	err := g.c.guard(ResourceLock, func() (err error) {
		lease, err = g.Locker.Lock(ctx, key)
		return err
	}, func(err error) bool { return errors.Is(err, lock.ErrUnavailable) })
	return lease, err
}

// TryLock is one guarded call: it fails when the backend was unreachable
// for some key.
func (g guardedLocker) TryLock(ctx context.Context, keys []string) []lock.Grant {
	var grants []lock.Grant
	err := g.c.guard(ResourceLock, func() error {
		grants = g.Locker.TryLock(ctx, keys)
		for _, gr := range grants {
			if errors.Is(gr.Err, lock.ErrUnavailable) {
				return gr.Err
			}
		}
		return nil
	}, func(err error) bool { return errors.Is(err, lock.ErrUnavailable) })
	if grants == nil && err != nil {
		grants = make([]lock.Grant, len(keys))
		for i := range grants {
			grants[i].Err = err
		}
	}
	return grants
}

// GuardWriter returns w with every write under the database breaker. A
// failure is an unavailable or internal error; domain outcomes, version
// conflicts, duplicate keys, lost leases and cancelled requests are not.
// The guard implements inventory.Writer method by method, so a write
// added to the interface does not compile until it is guarded here.
//
// If w can be pinged, an open breaker probes it and closes as soon as it
// answers.
func (c *Controller) GuardWriter(w inventory.Writer) inventory.Writer {
	if p, ok := w.(interface{ Ping(context.Context) error }); ok {
		c.setProbe(ResourceDatabase, p.Ping)
	}
	return guardedWriter{w: w, c: c}
}

type guardedWriter struct {
	w inventory.Writer
	c *Controller
}

var _ inventory.Writer = guardedWriter{}

func storeFailed(err error) bool {
	switch {
	case errors.Is(err, context.Canceled), errors.Is(err, inventory.ErrVersionConflict),
		errors.Is(err, inventory.ErrDuplicateKey), errors.Is(err, lock.ErrLeaseLost):
		return false
	}
	code := inventory.ErrorCode(err)
	return code == inventory.CodeUnavailable || code == inventory.CodeInternal
}

func (g guardedWriter) UpdateStocks(ctx context.Context, works []inventory.LevelWork, opts inventory.StockOptions, cb inventory.StockCallbacks) error {
	return g.c.guard(ResourceDatabase, func() error { return g.w.UpdateStocks(ctx, works, opts, cb) }, storeFailed)
}

func (g guardedWriter) CreateProduct(ctx context.Context, p *inventory.Product, initial *inventory.StockTx, key inventory.IdempotencyRecord) error {
	return g.c.guard(ResourceDatabase, func() error { return g.w.CreateProduct(ctx, p, initial, key) }, storeFailed)
}

func (g guardedWriter) UpdateProduct(ctx context.Context, id int64, key inventory.IdempotencyRecord, fn func(p *inventory.Product) (bool, error)) (inventory.Product, error) {
	var p inventory.Product
	err := g.c.guard(ResourceDatabase, func() (err error) {
		p, err = g.w.UpdateProduct(ctx, id, key, fn)
		return err
	}, storeFailed)
	return p, err
}

func (g guardedWriter) CreateLocation(ctx context.Context, l *inventory.Location) error {
	return g.c.guard(ResourceDatabase, func() error { return g.w.CreateLocation(ctx, l) }, storeFailed)
}

func (g guardedWriter) CreateTransfer(ctx context.Context, t *inventory.Transfer) error {
	return g.c.guard(ResourceDatabase, func() error { return g.w.CreateTransfer(ctx, t) }, storeFailed)
}

func (g guardedWriter) LockEpoch(ctx context.Context, domain string) (int64, error) {
	var epoch int64
	err := g.c.guard(ResourceDatabase, func() (err error) {
		epoch, err = g.w.LockEpoch(ctx, domain)
		return err
	}, storeFailed)
	return epoch, err
}
