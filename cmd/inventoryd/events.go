package main

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/shopstack/inventory/internal/broker"
	"github.com/shopstack/inventory/internal/broker/natsbroker"
	"github.com/shopstack/inventory/internal/config"
	"github.com/shopstack/inventory/internal/gormstore"
	"github.com/shopstack/inventory/internal/lock"
)

// startEvents publishes the ledger to the configured broker from the
// replica that leads broker.Duty, and registers its metrics. stop ends it;
// ready reports the broker connection for /readyz (nil without a broker).
// Nothing waits for the broker: it may come up later, or go away, and the
// relay resumes from what it holds.
func startEvents(ctx context.Context, cfg config.Config, store *gormstore.Store, el lock.Elector, reg prometheus.Registerer,
	log *slog.Logger) (stop func(), ready *check, err error) {
	if cfg.Broker != config.BrokerNATS {
		return func() {}, nil, nil
	}
	nc, err := nats.Connect(cfg.NATSURL, nats.Name("inventoryd"), nats.RetryOnFailedConnect(true), nats.MaxReconnects(-1),
		nats.ReconnectWait(250*time.Millisecond))
	if err != nil {
		return nil, nil, err
	}
	p, err := natsbroker.New(nc, natsbroker.Config{Stream: cfg.BrokerStream, Prefix: cfg.BrokerPrefix})
	if err != nil {
		nc.Close()
		return nil, nil, err
	}
	relay := &broker.Relay{Ledger: store, Publisher: p, Log: log.With("component", "events")}
	reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "inventory_events_published_sequence",
			Help: "The last ledger sequence the broker confirmed, on the replica that publishes (0 on the others)."},
			func() float64 { return float64(relay.Published()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "inventory_events_lag_seconds",
			Help: "How long the last published change waited from its commit to the broker's confirmation."},
			func() float64 { return relay.Lag().Seconds() }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "inventory_events_lag_sequences",
			Help: "Ledger sequences committed and not yet confirmed by the broker, on the replica that publishes."},
			func() float64 {
				if relay.Published() == 0 {
					return 0
				}
				lctx, cancel := context.WithTimeout(context.Background(), time.Second)
				defer cancel()
				last, err := store.LastSeq(lctx)
				if err != nil {
					return 0
				}
				return float64(max(last-relay.Published(), 0))
			}),
	)
	ctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan struct{})
	go func() {
		defer close(done)
		broker.RunElected(ctx, el, relay, log.With("component", "events"))
	}()
	log.Info("publishing events", "broker", cfg.Broker, "url", cfg.NATSURL, "stream", cfg.BrokerStream, "prefix", cfg.BrokerPrefix)
	ready = &check{name: "broker", optional: true, fn: func(context.Context) error {
		if st := nc.Status(); st != nats.CONNECTED {
			return errors.New(st.String())
		}
		return nil
	}}
	return func() {
		cancel()
		<-done
		nc.Close()
	}, ready, nil
}
