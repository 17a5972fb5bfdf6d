package flow

import (
	"sort"
	"sync"
	"sync/atomic"

	"github.com/alibaba/sentinel-golang/core/circuitbreaker"
	"github.com/prometheus/client_golang/prometheus"
)

// metrics counts what the controller decided. It keeps its own counters
// (the status query reads them too) and presents them to Prometheus as a
// Collector.
type metrics struct {
	mu      sync.RWMutex
	passed  map[string]*atomic.Int64    // by operation
	refused map[[2]string]*atomic.Int64 // by operation and rule
	reloads [2]atomic.Int64             // refused, applied
}

func newMetrics() *metrics {
	return &metrics{passed: map[string]*atomic.Int64{}, refused: map[[2]string]*atomic.Int64{}}
}

func (m *metrics) admitted(op string) { counter(m, m.passed, op).Add(1) }

func (m *metrics) blocked(op, rule string) { counter(m, m.refused, [2]string{op, rule}).Add(1) }

func (m *metrics) reloaded(ok bool) {
	if ok {
		m.reloads[1].Add(1)
	} else {
		m.reloads[0].Add(1)
	}
}

func counter[K comparable](m *metrics, counters map[K]*atomic.Int64, k K) *atomic.Int64 {
	m.mu.RLock()
	c := counters[k]
	m.mu.RUnlock()
	if c != nil {
		return c
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if c = counters[k]; c == nil {
		c = new(atomic.Int64)
		counters[k] = c
	}
	return c
}

// BlockedCount is how many requests one rule refused for one operation (or
// one breaker for its resource) since start.
type BlockedCount struct {
	Resource string
	Rule     string
	Count    int64
}

func (m *metrics) blockedCounts() []BlockedCount {
	m.mu.RLock()
	out := make([]BlockedCount, 0, len(m.refused))
	for k, c := range m.refused {
		out = append(out, BlockedCount{Resource: k[0], Rule: k[1], Count: c.Load()})
	}
	m.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool {
		if out[i].Resource != out[j].Resource {
			return out[i].Resource < out[j].Resource
		}
		return out[i].Rule < out[j].Rule
	})
	return out
}

var (
	descAdmitted = prometheus.NewDesc("inventory_flow_admitted_total",
		"Requests flow control admitted, by operation.", []string{"operation"}, nil)
	descBlocked = prometheus.NewDesc("inventory_flow_blocked_total",
		"Requests flow control refused, by operation (or breaker resource) and rule: qps, concurrency, hotspot or breaker.",
		[]string{"resource", "rule"}, nil)
	descBreaker = prometheus.NewDesc("inventory_flow_breaker_state",
		"Circuit breaker state by resource: 0 closed, 1 half-open (probing), 2 open.", []string{"resource"}, nil)
	descReloads = prometheus.NewDesc("inventory_flow_rules_reloads_total",
		"Rules file reloads by result: applied, or refused (the rules in force stay).", []string{"result"}, nil)
	descLoaded = prometheus.NewDesc("inventory_flow_rules_loaded_timestamp_seconds",
		"When the rules in force were loaded (Unix time).", nil, nil)
)

// Describe implements prometheus.Collector.
func (c *Controller) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descAdmitted, descBlocked, descBreaker, descReloads, descLoaded} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *Controller) Collect(ch chan<- prometheus.Metric) {
	m := c.metrics
	m.mu.RLock()
	for op, n := range m.passed {
		ch <- prometheus.MustNewConstMetric(descAdmitted, prometheus.CounterValue, float64(n.Load()), op)
	}
	for k, n := range m.refused {
		ch <- prometheus.MustNewConstMetric(descBlocked, prometheus.CounterValue, float64(n.Load()), k[0], k[1])
	}
	m.mu.RUnlock()
	ch <- prometheus.MustNewConstMetric(descReloads, prometheus.CounterValue, float64(m.reloads[1].Load()), "applied")
	ch <- prometheus.MustNewConstMetric(descReloads, prometheus.CounterValue, float64(m.reloads[0].Load()), "refused")
	c.mu.RLock()
	defer c.mu.RUnlock()
	for res, b := range c.breakers {
		state := map[circuitbreaker.State]float64{circuitbreaker.Closed: 0, circuitbreaker.HalfOpen: 1, circuitbreaker.Open: 2}[b.state]
		ch <- prometheus.MustNewConstMetric(descBreaker, prometheus.GaugeValue, state, res)
	}
	ch <- prometheus.MustNewConstMetric(descLoaded, prometheus.GaugeValue, float64(c.loadedAt.UnixNano())/1e9)
}
