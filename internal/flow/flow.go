// Package flow is admission control in front of the inventory service,
// built on Sentinel (sentinel-golang): per-operation QPS and concurrency
// limits, a per-product hot-spot limit, and circuit breakers around the
// lock backend and the database. Rules come from a YAML or JSON file that
// is reloaded when it changes.
//
// Flow control never decides correctness: a request it admits is judged by
// the database as usual, and one it refuses changed nothing.
package flow

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/alibaba/sentinel-golang/api"
	"github.com/alibaba/sentinel-golang/core/base"
	"github.com/alibaba/sentinel-golang/core/circuitbreaker"
	sentinelcfg "github.com/alibaba/sentinel-golang/core/config"
	sflow "github.com/alibaba/sentinel-golang/core/flow"
	"github.com/alibaba/sentinel-golang/core/hotspot"
	"github.com/alibaba/sentinel-golang/core/isolation"

	"github.com/shopstack/inventory/internal/inventory"
)

// Config configures a Controller.
type Config struct {
	// RulesFile is the rules file; empty means Defaults().
	RulesFile string
	// Operations are the operation names rules may limit (the GraphQL root
	// query and mutation fields).
	Operations []string
	// ResolveSKU finds the product of a SKU named by a hot-spot override.
	// Nil refuses overrides by SKU.
	ResolveSKU func(ctx context.Context, sku string) (int64, error)
	// Logger receives reloads, refused files and breaker changes; nil
	// discards.
	Logger *slog.Logger
	// LogDir is Sentinel's log directory; empty means
	// $TMPDIR/inventory-sentinel. (Sentinel's messages themselves go to
	// Logger.)
	LogDir string
	// CheckInterval is how often the rules file is checked for changes;
	// zero means 1s.
	CheckInterval time.Duration
}

// Controller admits or refuses operations under the current rules. It
// implements inventory.Admission.
type Controller struct {
	cfg     Config
	log     *slog.Logger
	scope   string // prefix of this controller's Sentinel resources
	hot     *hotProducts
	metrics *metrics

	mu       sync.RWMutex
	cur      compiled
	source   string
	loadedAt time.Time
	lastErr  string
	errAt    time.Time
	lastData []byte // the file's bytes when last checked
	skuRetry time.Time
	breakers map[string]*breakerState
	// probes check a guarded backend's health, by resource (set by
	// GuardLocker and GuardWriter when the backend can tell).
	probes  map[string]func(context.Context) error
	probers sync.WaitGroup

	stop      chan struct{}
	done      chan struct{}
	closeOnce sync.Once
}

// compiled is a Rules with what Admit needs at hand.
type compiled struct {
	rules      Rules
	hotOps     map[string]bool
	overrides  map[int64]int64 // resolved hot-spot overrides
	unresolved []string        // override SKUs not found (yet)
	flowRes    []string        // operations with QPS rules
	isoRes     []string        // operations with concurrency rules
	breakerRes []string
}

var (
	initOnce sync.Once
	initErr  error

	registryMu sync.Mutex
	registry   = map[string]*Controller{} // live controllers by scope
)

// New starts Sentinel (once per process), loads the rules and, with a rules
// file, starts watching it. A rules file that cannot be read or is invalid
// at start-up is an error: the service must not start with rules other
// than the ones it was given.
func New(ctx context.Context, cfg Config) (*Controller, error) {
	if cfg.CheckInterval <= 0 {
		cfg.CheckInterval = time.Second
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	for _, op := range cfg.Operations {
		if op == resourceHotspot || op == ResourceLock || op == ResourceDatabase {
			return nil, fmt.Errorf("flow: operation name %q is reserved", op)
		}
	}
	if err := startSentinel(cfg.LogDir, log); err != nil {
		return nil, fmt.Errorf("flow: start sentinel: %w", err)
	}
	c := &Controller{
		cfg: cfg, log: log, hot: newHotProducts(), metrics: newMetrics(),
		breakers: map[string]*breakerState{}, probes: map[string]func(context.Context) error{},
		stop: make(chan struct{}), done: make(chan struct{}),
	}
	c.register()
	rules, source := Defaults(), "defaults"
	if cfg.RulesFile != "" {
		data, err := os.ReadFile(cfg.RulesFile)
		if err != nil {
			c.unregister()
			return nil, fmt.Errorf("flow rules: %w", err)
		}
		if rules, err = Parse(data, cfg.Operations); err != nil {
			c.unregister()
			return nil, fmt.Errorf("flow rules %s: %w", cfg.RulesFile, err)
		}
		c.lastData, source = data, cfg.RulesFile
	}
	if err := c.apply(ctx, rules, source); err != nil {
		c.unregister()
		return nil, fmt.Errorf("flow rules %s: %w", source, err)
	}
	if cfg.RulesFile != "" {
		go c.watch()
	} else {
		close(c.done)
	}
	return c, nil
}

// Close stops watching the rules file and removes this controller's rules.
func (c *Controller) Close() {
	c.closeOnce.Do(func() {
		close(c.stop)
		<-c.done
		c.probers.Wait()
		c.mu.Lock()
		defer c.mu.Unlock()
		c.load(compiled{})
		c.unregister()
	})
}

// startSentinel initializes Sentinel once per process: its log directory is
// ours (its default is under $HOME), its messages go to log, and it runs
// no metric-log writer or system collectors (metrics are ours).
func startSentinel(dir string, log *slog.Logger) error {
	initOnce.Do(func() {
		if dir == "" {
			dir = filepath.Join(os.TempDir(), "inventory-sentinel")
		}
		conf := sentinelcfg.NewDefaultConfig()
		conf.Sentinel.App.Name = "inventory"
		conf.Sentinel.Log.Dir = dir
		conf.Sentinel.Log.Logger = sentinelLogger{log.With("component", "sentinel")}
		conf.Sentinel.Log.Metric.FlushIntervalSec = 0
		conf.Sentinel.Stat.System.CollectIntervalMs = 0
		conf.Sentinel.Stat.System.CollectLoadIntervalMs = 0
		conf.Sentinel.Stat.System.CollectCpuIntervalMs = 0
		conf.Sentinel.Stat.System.CollectMemoryIntervalMs = 0
		if initErr = api.InitWithConfig(conf); initErr != nil {
			return
		}
		circuitbreaker.RegisterStateChangeListeners(breakerListener{})
	})
	return initErr
}

// register gives c the first free scope: "" for the first controller of
// the process (so production resources carry their plain names), "r2/" and
// so on for more (several servers in one test process).
func (c *Controller) register() {
	registryMu.Lock()
	defer registryMu.Unlock()
	for i := 1; ; i++ {
		scope := ""
		if i > 1 {
			scope = fmt.Sprintf("r%d/", i)
		}
		if _, taken := registry[scope]; !taken {
			c.scope = scope
			registry[scope] = c
			return
		}
	}
}

func (c *Controller) unregister() {
	registryMu.Lock()
	defer registryMu.Unlock()
	if registry[c.scope] == c {
		delete(registry, c.scope)
	}
}

// controllerOf returns the live controller owning a Sentinel resource.
func controllerOf(resource string) (*Controller, string) {
	registryMu.Lock()
	defer registryMu.Unlock()
	for scope, c := range registry {
		if scope != "" && len(resource) > len(scope) && resource[:len(scope)] == scope {
			return c, resource[len(scope):]
		}
	}
	return registry[""], resource
}

// Admit implements inventory.Admission: the hot-spot rule for each product
// (if the operation is covered), then the operation's own rules.
func (c *Controller) Admit(ctx context.Context, op string, productIDs []int64) (func(error), error) {
	c.mu.RLock()
	hot := c.cur.hotOps[op]
	c.mu.RUnlock()
	now := time.Now()
	var entries []*base.SentinelEntry
	if hot {
		for i, id := range productIDs {
			if slices.Contains(productIDs[:i], id) {
				continue
			}
			e, b := api.Entry(c.scope+resourceHotspot, api.WithTrafficType(base.Inbound), api.WithArgs(id))
			if b != nil {
				exitAll(entries)
				c.hot.add(now, id, true)
				c.metrics.blocked(op, ruleHotspot)
				return nil, c.refusal(op, b, id)
			}
			entries = append(entries, e)
		}
	}
	e, b := api.Entry(c.scope+op, api.WithTrafficType(base.Inbound))
	if b != nil {
		exitAll(entries)
		c.metrics.blocked(op, ruleName(b))
		return nil, c.refusal(op, b, 0)
	}
	entries = append(entries, e)
	for i, id := range productIDs {
		if !slices.Contains(productIDs[:i], id) {
			c.hot.add(now, id, false)
		}
	}
	c.metrics.admitted(op)
	return func(error) { exitAll(entries) }, nil
}

func exitAll(entries []*base.SentinelEntry) {
	for _, e := range entries {
		e.Exit()
	}
}

// Rule names in metrics and the status.
const (
	ruleQPS         = "qps"
	ruleConcurrency = "concurrency"
	ruleHotspot     = "hotspot"
	ruleBreaker     = "breaker"
)

func ruleName(b *base.BlockError) string {
	switch b.BlockType() {
	case base.BlockTypeFlow:
		return ruleQPS
	case base.BlockTypeIsolation:
		return ruleConcurrency
	case base.BlockTypeHotSpotParamFlow:
		return ruleHotspot
	case base.BlockTypeCircuitBreaking:
		return ruleBreaker
	}
	return b.BlockType().String()
}

// refusal is the client's error for a blocked operation, with a hint of
// when a retry may pass.
func (c *Controller) refusal(op string, b *base.BlockError, productID int64) *inventory.Error {
	e := &inventory.Error{Code: inventory.CodeRateLimited, Err: b}
	switch r := b.TriggeredRule().(type) {
	case *hotspot.Rule:
		limit := r.Threshold
		if l, ok := r.SpecificItems[productID]; ok {
			limit = l
		}
		e.Message = fmt.Sprintf("too many requests for product %d (limit %d per second); retry later", productID, limit)
		e.RetryAfter = time.Second
		if limit > 0 {
			e.RetryAfter = max(time.Millisecond, time.Second/time.Duration(limit))
		}
		if r.ControlBehavior == hotspot.Throttling {
			e.RetryAfter = max(e.RetryAfter, time.Duration(r.MaxQueueingTimeMs)*time.Millisecond)
		}
	case *sflow.Rule:
		e.Message = fmt.Sprintf("too many %s requests (limit %g per second); retry later", op, r.Threshold)
		if r.ControlBehavior == sflow.Throttling {
			e.RetryAfter = time.Duration(r.MaxQueueingTimeMs) * time.Millisecond
		} else {
			// The window slides in halves of a second: room is made when
			// the older half leaves it.
			half := int64(500)
			e.RetryAfter = time.Duration(half-time.Now().UnixMilli()%half) * time.Millisecond
		}
	case *isolation.Rule:
		e.Message = fmt.Sprintf("too many %s requests in progress (limit %d); retry later", op, r.Threshold)
		e.RetryAfter = 50 * time.Millisecond
	default:
		e.Message = fmt.Sprintf("%s refused by flow control; retry later", op)
		e.RetryAfter = time.Second
	}
	return e
}

// apply compiles rules and puts them in force, atomically: if Sentinel
// refuses one, none changes.
func (c *Controller) apply(ctx context.Context, rules Rules, source string) error {
	next, err := c.compile(ctx, rules)
	if err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.load(next); err != nil {
		c.load(c.cur) // best effort back to the rules in force
		return err
	}
	c.cur, c.source, c.loadedAt = next, source, time.Now()
	return nil
}

// compile turns rules into Sentinel rules and checks them all, resolving
// override SKUs; a SKU not found yet is retried later.
func (c *Controller) compile(ctx context.Context, rules Rules) (compiled, error) {
	next := compiled{rules: rules, hotOps: map[string]bool{}, overrides: map[int64]int64{}}
	if h := rules.Hotspot; h != nil {
		for _, op := range h.Operations {
			next.hotOps[op] = true
		}
		for _, o := range h.Overrides {
			id := int64(o.ProductID)
			if o.SKU != "" {
				if c.cfg.ResolveSKU == nil {
					return compiled{}, fmt.Errorf("hotspot override for SKU %s: SKUs cannot be resolved here", o.SKU)
				}
				var err error
				if id, err = c.cfg.ResolveSKU(ctx, o.SKU); err != nil {
					if inventory.ErrorCode(err) != inventory.CodeNotFound {
						c.log.Warn("flow rules: could not resolve a hot-spot override's SKU; retrying later", "sku", o.SKU, "err", err)
					}
					next.unresolved = append(next.unresolved, o.SKU)
					continue
				}
			}
			next.overrides[id] = o.QPS
		}
	}
	for _, o := range rules.Operations {
		if o.QPS > 0 {
			next.flowRes = append(next.flowRes, o.Resource)
		}
		if o.Concurrency > 0 {
			next.isoRes = append(next.isoRes, o.Resource)
		}
	}
	for _, b := range rules.Breakers {
		if !slices.Contains(next.breakerRes, b.Resource) {
			next.breakerRes = append(next.breakerRes, b.Resource)
		}
	}
	var errs []error
	for _, r := range c.flowRules(next) {
		errs = append(errs, sflow.IsValidRule(r))
	}
	for _, r := range c.isolationRules(next) {
		errs = append(errs, isolation.IsValidRule(r))
	}
	for _, r := range c.hotspotRules(next) {
		errs = append(errs, hotspot.IsValidRule(r))
	}
	for _, r := range c.breakerRules(next) {
		errs = append(errs, circuitbreaker.IsValidRule(r))
	}
	if err := errors.Join(errs...); err != nil {
		return compiled{}, fmt.Errorf("sentinel refused the rules: %w", err)
	}
	return next, nil
}

// load puts next's Sentinel rules in force and clears the rules of
// resources that no longer have any. Callers hold c.mu.
func (c *Controller) load(next compiled) error {
	var errs []error
	byRes := func(res []string) map[string]bool {
		m := map[string]bool{}
		for _, r := range res {
			m[r] = true
		}
		return m
	}
	flowRules := map[string][]*sflow.Rule{}
	for _, r := range c.flowRules(next) {
		flowRules[r.Resource] = append(flowRules[r.Resource], r)
	}
	for res := range union(byRes(c.cur.flowRes), byRes(next.flowRes)) {
		_, err := sflow.LoadRulesOfResource(c.scope+res, flowRules[c.scope+res])
		errs = append(errs, err)
	}
	isoRules := map[string][]*isolation.Rule{}
	for _, r := range c.isolationRules(next) {
		isoRules[r.Resource] = append(isoRules[r.Resource], r)
	}
	for res := range union(byRes(c.cur.isoRes), byRes(next.isoRes)) {
		_, err := isolation.LoadRulesOfResource(c.scope+res, isoRules[c.scope+res])
		errs = append(errs, err)
	}
	_, err := hotspot.LoadRulesOfResource(c.scope+resourceHotspot, c.hotspotRules(next))
	errs = append(errs, err)
	cbRules := map[string][]*circuitbreaker.Rule{}
	for _, r := range c.breakerRules(next) {
		cbRules[r.Resource] = append(cbRules[r.Resource], r)
	}
	for res := range union(byRes(c.cur.breakerRes), byRes(next.breakerRes)) {
		changed, err := circuitbreaker.LoadRulesOfResource(c.scope+res, cbRules[c.scope+res])
		errs = append(errs, err)
		if changed {
			// New breakers start closed.
			c.breakers[res] = &breakerState{state: circuitbreaker.Closed, since: time.Now()}
		}
		if len(cbRules[c.scope+res]) == 0 {
			delete(c.breakers, res)
		}
	}
	return errors.Join(errs...)
}

func union(a, b map[string]bool) map[string]bool {
	for k := range b {
		a[k] = true
	}
	return a
}

func (c *Controller) flowRules(next compiled) []*sflow.Rule {
	var out []*sflow.Rule
	for _, o := range next.rules.Operations {
		if o.QPS <= 0 {
			continue
		}
		r := &sflow.Rule{Resource: c.scope + o.Resource, TokenCalculateStrategy: sflow.Direct,
			ControlBehavior: sflow.Reject, Threshold: o.QPS, StatIntervalInMs: 1000}
		if o.Behaviour == Throttle {
			r.ControlBehavior, r.MaxQueueingTimeMs = sflow.Throttling, o.MaxQueueMs
		}
		out = append(out, r)
	}
	return out
}

func (c *Controller) isolationRules(next compiled) []*isolation.Rule {
	var out []*isolation.Rule
	for _, o := range next.rules.Operations {
		if o.Concurrency > 0 {
			out = append(out, &isolation.Rule{Resource: c.scope + o.Resource, MetricType: isolation.Concurrency, Threshold: o.Concurrency})
		}
	}
	return out
}

func (c *Controller) hotspotRules(next compiled) []*hotspot.Rule {
	h := next.rules.Hotspot
	if h == nil {
		return nil
	}
	items := make(map[any]int64, len(next.overrides))
	for id, qps := range next.overrides {
		items[id] = qps
	}
	r := &hotspot.Rule{Resource: c.scope + resourceHotspot, MetricType: hotspot.QPS, ControlBehavior: hotspot.Reject,
		ParamIndex: 0, Threshold: h.QPS, BurstCount: h.Burst, DurationInSec: 1, ParamsMaxCapacity: 20000, SpecificItems: items}
	if h.Behaviour == Throttle {
		r.ControlBehavior, r.MaxQueueingTimeMs = hotspot.Throttling, h.MaxQueueMs
	}
	return []*hotspot.Rule{r}
}

func (c *Controller) breakerRules(next compiled) []*circuitbreaker.Rule {
	var out []*circuitbreaker.Rule
	for _, b := range next.rules.Breakers {
		buckets := uint32(10)
		if b.WindowMs%buckets != 0 {
			buckets = 1
		}
		base := circuitbreaker.Rule{Resource: c.scope + b.Resource, RetryTimeoutMs: b.OpenMs,
			MinRequestAmount: b.MinRequests, StatIntervalMs: b.WindowMs, StatSlidingWindowBucketCount: buckets}
		if b.ErrorRatio > 0 {
			r := base
			r.Strategy, r.Threshold = circuitbreaker.ErrorRatio, b.ErrorRatio
			out = append(out, &r)
		}
		if b.SlowRatio > 0 {
			r := base
			r.Strategy, r.Threshold, r.MaxAllowedRtMs = circuitbreaker.SlowRequestRatio, b.SlowRatio, b.SlowMs
			out = append(out, &r)
		}
	}
	return out
}
