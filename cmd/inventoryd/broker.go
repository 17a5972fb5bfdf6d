package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/shopstack/inventory/internal/app"
	"github.com/shopstack/inventory/internal/auth"
	"github.com/shopstack/inventory/internal/broker"
	"github.com/shopstack/inventory/internal/broker/kafkabroker"
	"github.com/shopstack/inventory/internal/broker/natsbroker"
	"github.com/shopstack/inventory/internal/broker/rabbitbroker"
	"github.com/shopstack/inventory/internal/config"
	"github.com/shopstack/inventory/internal/gormstore"
	"github.com/shopstack/inventory/internal/inventory"
	"github.com/shopstack/inventory/internal/lock"
)

// brokerAdapter is a configured broker: where events go, where commands
// come from, and how to tell it is reachable.
type brokerAdapter struct {
	publisher broker.Publisher
	commands  broker.CommandSource
	reachable func() error
	close     func()
	where     []any // for the log
}

// newBrokerAdapter connects to the configured broker. It does not wait for
// it: the broker may come up later, or go away, and both sides resume.
func newBrokerAdapter(cfg config.Config, log *slog.Logger) (brokerAdapter, error) {
	switch cfg.Broker {
	case config.BrokerNATS:
		nc, err := nats.Connect(cfg.NATSURL, nats.Name("inventoryd"), nats.RetryOnFailedConnect(true), nats.MaxReconnects(-1),
			nats.ReconnectWait(250*time.Millisecond))
		if err != nil {
			return brokerAdapter{}, err
		}
		nb := natsbroker.ConfigFor(cfg.Namespace, cfg.BrokerRetry)
		p, err := natsbroker.New(nc, nb)
		if err != nil {
			nc.Close()
			return brokerAdapter{}, err
		}
		c, err := natsbroker.NewCommands(nc, nb)
		if err != nil {
			nc.Close()
			return brokerAdapter{}, err
		}
		return brokerAdapter{publisher: p, commands: c, close: nc.Close,
			reachable: func() error {
				if st := nc.Status(); st != nats.CONNECTED {
					return errors.New(st.String())
				}
				return nil
			},
			where: []any{"url", cfg.NATSURL, "stream", nb.Stream, "subjects", nb.Prefix + ".>"}}, nil
	case config.BrokerRabbitMQ:
		rb := rabbitbroker.ConfigFor(cfg.RabbitMQURL, cfg.Namespace, cfg.BrokerRetry)
		pub, err := rabbitbroker.New(rb)
		if err != nil {
			return brokerAdapter{}, err
		}
		c, err := rabbitbroker.NewCommands(rb)
		if err != nil {
			_ = pub.Close()
			return brokerAdapter{}, err
		}
		return brokerAdapter{publisher: pub, commands: c, reachable: pub.Ping,
			close: func() { _ = c.Close(); _ = pub.Close() },
			where: []any{"url", redactURL(cfg.RabbitMQURL), "exchange", rb.Exchange, "commands", rb.CommandQueue}}, nil
	case config.BrokerKafka:
		kb, err := kafkaConfig(cfg)
		if err != nil {
			return brokerAdapter{}, err
		}
		pub, err := kafkabroker.New(kb)
		if err != nil {
			return brokerAdapter{}, err
		}
		c, err := kafkabroker.NewCommands(kb, log.With("component", "commands"))
		if err != nil {
			return brokerAdapter{}, err
		}
		return brokerAdapter{publisher: pub, commands: c, reachable: func() error { return pub.Ping(context.Background()) }, close: pub.Close,
			where: []any{"brokers", strings.Join(kb.Brokers, ","), "topics", cfg.Namespace + ".*", "group", kb.Group}}, nil
	}
	return brokerAdapter{}, fmt.Errorf("no broker %q", cfg.Broker)
}

// startBroker publishes the ledger to the configured broker from the
// replica that leads broker.Duty, consumes stock commands on every replica
// (unless turned off), and registers their metrics. stop ends both; ready
// reports the broker for /readyz (nil without a broker).
func startBroker(ctx context.Context, cfg config.Config, store *gormstore.Store, svc *app.Service,
	gate *inventory.Gate, authn *auth.Authenticator, el lock.Elector, reg prometheus.Registerer, log *slog.Logger) (stop func(), ready *check, err error) {
	if cfg.Broker == config.BrokerNone {
		return func() {}, nil, nil
	}
	a, err := newBrokerAdapter(cfg, log)
	if err != nil {
		return nil, nil, err
	}
	relay := &broker.Relay{Ledger: store, Publisher: a.publisher, Log: log.With("component", "events")}
	metrics := newBrokerMetrics(relay, store.LastSeq)
	reg.MustRegister(metrics.collectors()...)
	publisher := broker.Elected(el, relay, log.With("component", "events"))
	reg.MustRegister(dutyLeading("events", publisher.Leading))
	ctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan struct{})
	go func() {
		defer close(done)
		publisher.Run(ctx)
	}()
	log.Info("publishing events", append([]any{"broker", cfg.Broker}, a.where...)...)
	consumed := make(chan struct{})
	if cfg.BrokerCommands {
		consumer := &broker.Consumer{Service: svc, Gate: gate, Principal: inventory.Principal{Name: cfg.BrokerActor, Role: inventory.RoleOperator},
			Retry: cfg.BrokerRetry, InFlight: cfg.BrokerInFlight, Log: log.With("component", "commands"),
			Counts: func(typ, result string) { metrics.commands.WithLabelValues(typ, result).Inc() }}
		if authn.Enabled() {
			consumer.Authenticate = authn.FromHeader
		}
		go func() {
			defer close(consumed)
			consumer.Run(ctx, a.commands)
		}()
		log.Info("taking stock commands", "broker", cfg.Broker, "actor", cfg.BrokerActor, "inFlight", cfg.BrokerInFlight)
	} else {
		close(consumed)
	}
	ready = &check{name: "broker", optional: true, fn: func(context.Context) error { return a.reachable() }}
	return func() {
		cancel()
		<-done
		<-consumed
		a.close()
	}, ready, nil
}

// kafkaConfig is the Kafka adapter's configuration.
func kafkaConfig(cfg config.Config) (kafkabroker.Config, error) {
	kb := kafkabroker.ConfigFor(cfg.KafkaBrokers, cfg.Namespace, cfg.BrokerRetry)
	kb.SASL = kafkabroker.SASL{Mechanism: cfg.KafkaSASLMechanism, User: cfg.KafkaUsername, Password: cfg.KafkaPassword}
	kb.Partitions, kb.ReplicationFactor = int32(cfg.KafkaPartitions), int16(cfg.KafkaReplicationFactor)
	if cfg.KafkaTLS {
		t, err := tlsTrusting(cfg.KafkaCAFile)
		if err != nil {
			return kafkabroker.Config{}, fmt.Errorf("INVENTORY_KAFKA_CA_FILE: %w", err)
		}
		kb.TLS = t
	}
	return kb, nil
}

// redactURL hides a URL's password for the log.
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(not a URL)"
	}
	return u.Redacted()
}

// brokerMetrics are the event publisher's progress and the commands
// handled.
type brokerMetrics struct {
	published, lagSeconds, lagSequences prometheus.Collector
	commands                            *prometheus.CounterVec
}

func newBrokerMetrics(relay *broker.Relay, lastSeq func(context.Context) (int64, error)) brokerMetrics {
	return brokerMetrics{
		published: prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "inventory_events_published_sequence",
			Help: "The last ledger sequence the broker confirmed, on the replica that publishes (0 on the others)."},
			func() float64 { return float64(relay.Published()) }),
		lagSeconds: prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "inventory_events_lag_seconds",
			Help: "How long the last published change waited from its commit to the broker's confirmation."},
			func() float64 { return relay.Lag().Seconds() }),
		lagSequences: prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "inventory_events_lag_sequences",
			Help: "Ledger sequences committed and not yet confirmed by the broker, on the replica that publishes."},
			func() float64 {
				if relay.Published() == 0 {
					return 0
				}
				ctx, cancel := context.WithTimeout(context.Background(), time.Second)
				defer cancel()
				last, err := lastSeq(ctx)
				if err != nil {
					return 0
				}
				return float64(max(last-relay.Published(), 0))
			}),
		commands: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "inventory_broker_commands_total",
			Help: "Broker command deliveries handled, by command type and result: OK, a permanent error code, RETRY (a transient failure, delivered again later) or DEAD (dead-lettered)."},
			[]string{"type", "result"}),
	}
}

func (m brokerMetrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{m.published, m.lagSeconds, m.lagSequences, m.commands}
}
