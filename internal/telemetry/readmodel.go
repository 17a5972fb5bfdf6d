package telemetry

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/shopstack/inventory/internal/inventory"
)

// ReadModelStats is what a read model reports at scrape time.
type ReadModelStats interface {
	Stats() inventory.ReadModelStats
}

// WatchReadModel adds the read model's metrics, read from rm at scrape
// time. Call it before the metrics are registered.
func (m *Metrics) WatchReadModel(rm ReadModelStats) {
	m.stats = append(m.stats, &readModelCollector{rm: rm,
		hits: prometheus.NewDesc("inventory_read_model_hits_total",
			"Products the read model answered from memory.", nil, nil),
		misses: prometheus.NewDesc("inventory_read_model_misses_total",
			"Products the read model read from the database (and kept).", nil, nil),
		size: prometheus.NewDesc("inventory_read_model_products",
			"Products the read model holds.", nil, nil),
		capacity: prometheus.NewDesc("inventory_read_model_capacity",
			"Most products the read model holds (INVENTORY_READ_MODEL_PRODUCTS).", nil, nil),
		seq: prometheus.NewDesc("inventory_read_model_sequence",
			"The ledger sequence the read model is at: every change up to it is in it.", nil, nil),
		lag: prometheus.NewDesc("inventory_read_model_lag_sequences",
			"Ledger sequences committed that the read model has not followed yet (the highest it knows of, less the one it is at).", nil, nil),
	})
}

type readModelCollector struct {
	rm                                     ReadModelStats
	hits, misses, size, capacity, seq, lag *prometheus.Desc
}

func (c *readModelCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.hits, c.misses, c.size, c.capacity, c.seq, c.lag} {
		ch <- d
	}
}

func (c *readModelCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.rm.Stats()
	ch <- prometheus.MustNewConstMetric(c.hits, prometheus.CounterValue, float64(s.Hits))
	ch <- prometheus.MustNewConstMetric(c.misses, prometheus.CounterValue, float64(s.Misses))
	ch <- prometheus.MustNewConstMetric(c.size, prometheus.GaugeValue, float64(s.Products))
	ch <- prometheus.MustNewConstMetric(c.capacity, prometheus.GaugeValue, float64(s.Capacity))
	ch <- prometheus.MustNewConstMetric(c.seq, prometheus.GaugeValue, float64(s.Seq))
	ch <- prometheus.MustNewConstMetric(c.lag, prometheus.GaugeValue, float64(max(s.LedgerSeq-s.Seq, 0)))
}

// CacheStats describe the cache of rendered answers.
type CacheStats struct {
	Hits, Misses   int64
	Entries, Bytes int
}

// WatchAnswers adds the metrics of the cache of rendered answers, read
// from stats at scrape time. Call it before the metrics are registered.
func (m *Metrics) WatchAnswers(stats func() CacheStats) {
	m.stats = append(m.stats, &answersCollector{stats: stats,
		hits: prometheus.NewDesc("inventory_answer_cache_hits_total",
			"GraphQL root fields answered with an answer rendered before, its read-model products unchanged.", nil, nil),
		misses: prometheus.NewDesc("inventory_answer_cache_misses_total",
			"GraphQL root fields the answer cache could serve but had no current answer for.", nil, nil),
		entries: prometheus.NewDesc("inventory_answer_cache_answers", "Answers cached.", nil, nil),
		bytes:   prometheus.NewDesc("inventory_answer_cache_bytes", "Bytes of answers cached (INVENTORY_ANSWER_CACHE_MB bounds them).", nil, nil),
	})
}

type answersCollector struct {
	stats                        func() CacheStats
	hits, misses, entries, bytes *prometheus.Desc
}

func (c *answersCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.hits, c.misses, c.entries, c.bytes} {
		ch <- d
	}
}

func (c *answersCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.stats()
	ch <- prometheus.MustNewConstMetric(c.hits, prometheus.CounterValue, float64(s.Hits))
	ch <- prometheus.MustNewConstMetric(c.misses, prometheus.CounterValue, float64(s.Misses))
	ch <- prometheus.MustNewConstMetric(c.entries, prometheus.GaugeValue, float64(s.Entries))
	ch <- prometheus.MustNewConstMetric(c.bytes, prometheus.GaugeValue, float64(s.Bytes))
}
