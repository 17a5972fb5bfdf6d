package telemetry

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/shopstack/inventory/internal/inventory"
)

// Metrics are the service's Prometheus metrics. Register it in the registry
// /metrics serves; it keeps no global state. Feed it by wrapping the
// admission control (Admission) and the lock backend (Locker), and by
// giving it to the service as its inventory.Observer.
type Metrics struct {
	requests       *prometheus.CounterVec
	duration       *prometheus.HistogramVec
	lockAcquires   *prometheus.CounterVec
	lockWait       *prometheus.HistogramVec
	txRequests     prometheus.Histogram
	movements      *prometheus.CounterVec
	lowStockAlerts prometheus.Counter
	stats          []prometheus.Collector
}

var _ inventory.Observer = (*Metrics)(nil)

// NewMetrics returns the service's metrics, all zero.
func NewMetrics() *Metrics {
	return &Metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "inventory_requests_total",
			Help: "API operations (GraphQL root fields, REST routes and gRPC methods, named as the GraphQL field) by the transport they came by and outcome: OK or the error code.",
		}, []string{"operation", "transport", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "inventory_request_duration_seconds",
			Help:    "Time from admission to the end of an API operation, queueing and throttling included.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"operation"}),
		lockAcquires: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "inventory_lock_acquisitions_total",
			Help: "Stock lock acquisitions by backend and outcome: acquired, timeout, cancelled, unavailable (the backend failed) or refused (its circuit breaker is open).",
		}, []string{"backend", "outcome"}),
		lockWait: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "inventory_lock_wait_seconds",
			Help:    "Time spent acquiring a stock lock, by backend, whatever the outcome.",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"backend"}),
		txRequests: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "inventory_stock_transaction_requests",
			Help:    "Requests served by one committed stock transaction (the batch size of combined requests).",
			Buckets: []float64{1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1000},
		}),
		movements: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "inventory_movements_total",
			Help: "Ledger rows committed by this replica, by movement type (IN, OUT, ADJUST, RESERVE, COMMIT, RELEASE, EXPIRE).",
		}, []string{"type"}),
		lowStockAlerts: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "inventory_low_stock_alerts_total",
			Help: "Low-stock alerts raised by changes this replica committed (each alert is raised once, cluster-wide).",
		}),
	}
}

// Committed counts a committed stock transaction.
func (m *Metrics) Committed(requests int, movements []inventory.Movement) {
	if requests > 0 {
		m.txRequests.Observe(float64(requests))
	}
	// A combined transaction writes hundreds of rows of a few types:
	// count them first, and touch each labelled counter once.
	byType := make(map[inventory.MovementType]int, 2)
	alerts := 0
	for i := range movements {
		byType[movements[i].Type]++
		if movements[i].LowStockAlert {
			alerts++
		}
	}
	for t, n := range byType {
		m.movements.WithLabelValues(string(t)).Add(float64(n))
	}
	if alerts > 0 {
		m.lowStockAlerts.Add(float64(alerts))
	}
}

// ServiceStats is what the service reports at scrape time.
type ServiceStats interface {
	// Subscriptions is how many subscriptions this replica serves.
	Subscriptions() int
	// ActiveReservations is how many reservations hold stock, cluster-wide.
	ActiveReservations(ctx context.Context) (int64, error)
}

// statsTimeout bounds the database read of a scrape.
const statsTimeout = 2 * time.Second

// WatchService adds the gauges read from svc at scrape time. Call it before
// the metrics are registered.
func (m *Metrics) WatchService(svc ServiceStats) {
	m.stats = append(m.stats,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "inventory_subscriptions_active",
			Help: "GraphQL subscriptions this replica serves.",
		}, func() float64 { return float64(svc.Subscriptions()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "inventory_reservations_active",
			Help: "Reservations holding stock (status ACTIVE), read from the database at scrape time; -1 if the read failed.",
		}, func() float64 {
			ctx, cancel := context.WithTimeout(context.Background(), statsTimeout)
			defer cancel()
			n, err := svc.ActiveReservations(ctx)
			if err != nil {
				return -1
			}
			return float64(n)
		}),
	)
}

func (m *Metrics) collectors() []prometheus.Collector {
	return append([]prometheus.Collector{m.requests, m.duration, m.lockAcquires, m.lockWait, m.txRequests, m.movements, m.lowStockAlerts}, m.stats...)
}

// Describe implements prometheus.Collector.
func (m *Metrics) Describe(ch chan<- *prometheus.Desc) {
	for _, c := range m.collectors() {
		c.Describe(ch)
	}
}

// Collect implements prometheus.Collector.
func (m *Metrics) Collect(ch chan<- prometheus.Metric) {
	for _, c := range m.collectors() {
		c.Collect(ch)
	}
}

// Admission returns next with every operation it admits or refuses
// counted and timed.
func (m *Metrics) Admission(next inventory.Admission) inventory.Admission {
	return meteredAdmission{next: next, m: m}
}

type meteredAdmission struct {
	next inventory.Admission
	m    *Metrics
}

func (a meteredAdmission) Admit(ctx context.Context, op string, productIDs []int64) (func(error), error) {
	start := time.Now()
	transport := inventory.TransportFrom(ctx)
	if transport == "" {
		transport = "other"
	}
	done, err := a.next.Admit(ctx, op, productIDs)
	if err != nil {
		a.m.requestDone(op, transport, err, start)
		return nil, err
	}
	return func(err error) {
		done(err)
		a.m.requestDone(op, transport, err, start)
	}, nil
}

func (m *Metrics) requestDone(op, transport string, err error, start time.Time) {
	code := "OK"
	if err != nil {
		code = string(inventory.ErrorCode(err))
	}
	m.requests.WithLabelValues(op, transport, code).Inc()
	m.duration.WithLabelValues(op).Observe(time.Since(start).Seconds())
}
