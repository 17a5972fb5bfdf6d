package main

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/shopstack/inventory/cmd/invbench/internal/transport"
)

// rowSpec is one row of the comparison: a scenario against a server with a
// stock strategy, a database and a lock backend.
type rowSpec struct {
	name     string
	scenario string
	strategy string // INVENTORY_STOCK_STRATEGY
	db       string // sqlite or postgres
	lock     string // local, redsync, etcd, or none (the strategy takes no lock)
	// seed is the seed document's figure for the row, if it has one.
	seed string
	// alone, for flash-reads, runs one part of it on its own: "reads" (the
	// readers, no sale) or "writes" (the writers, no reader).
	alone string
	// products, if positive, replaces -products for the row.
	products int
	// transport is what the timed requests speak; empty: GraphQL.
	transport string
	// broker is INVENTORY_BROKER (nats, rabbitmq, kafka), or empty for
	// none. The server takes commands from it only when the row speaks to
	// it.
	broker string
}

// Brokers a row's server can publish to (INVENTORY_BROKER), named as the
// transports that speak to them.
const (
	brokerNATS     = transport.NATS
	brokerRabbitMQ = transport.RabbitMQ
	brokerKafka    = transport.Kafka
)

// brokerURLEnv is the server's variable saying where each broker is.
func brokerURLEnv(kind string) string {
	switch kind {
	case brokerNATS:
		return "INVENTORY_NATS_URL"
	case brokerRabbitMQ:
		return "INVENTORY_RABBITMQ_URL"
	case brokerKafka:
		return "INVENTORY_KAFKA_BROKERS"
	}
	return ""
}

// commands reports whether the row's timed stock-outs are commands
// through its broker.
func (r rowSpec) commands() bool { return r.broker != "" && transport.ViaBroker(r.transport) }

// load returns how many clients the row runs, and how many of them sell
// in flash-reads, from the tool's -clients and -writers.
func (r rowSpec) load(clients, writers int) (int, int) {
	switch r.alone {
	case "reads":
		return clients - writers, 0
	case "writes":
		return writers, writers
	}
	return clients, writers
}

// safe reports whether the strategy claims never to oversell.
func (r rowSpec) safe() bool { return r.strategy != "unsafe" }

// production reports whether the row runs the production strategy on a
// stock scenario, and so gets the speed-up ratios.
func (r rowSpec) production() bool { return r.strategy == "combine" && r.scenario != "ceiling" }

// compareRows lists the comparison's rows in the order they run: the
// ceiling, the seed's table, the production path, then the other backends.
func compareRows() []rowSpec {
	return []rowSpec{
		{name: "ceiling", scenario: "ceiling", strategy: "combine", db: "postgres", lock: "redsync"},
		{name: "flash/unsafe", scenario: "flash", strategy: "unsafe", db: "postgres", lock: "none", seed: "no lock: 8,500 QPS, 237 oversold"},
		{name: "flash/rowlock", scenario: "flash", strategy: "rowlock", db: "postgres", lock: "none", seed: "row lock: 1,200 QPS, 0 oversold"},
		{name: "flash/lock-per-request", scenario: "flash", strategy: "lock-per-request", db: "postgres", lock: "redsync", seed: "Redsync: 4,500 QPS, 0 oversold"},
		{name: "flash/combine", scenario: "flash", strategy: "combine", db: "postgres", lock: "redsync"},
		{name: "spread/combine", scenario: "spread", strategy: "combine", db: "postgres", lock: "redsync"},
		{name: "product", scenario: "product", strategy: "combine", db: "postgres", lock: "redsync"},
		{name: "storefront", scenario: "storefront", strategy: "combine", db: "postgres", lock: "redsync"},
		{name: "flash-reads", scenario: "flash-reads", strategy: "combine", db: "postgres", lock: "redsync"},
		{name: "flash-reads/reads-alone", scenario: "flash-reads", strategy: "combine", db: "postgres", lock: "redsync", alone: "reads"},
		{name: "flash-reads/writes-alone", scenario: "flash-reads", strategy: "combine", db: "postgres", lock: "redsync", alone: "writes"},
		{name: "reserve", scenario: "reserve", strategy: "combine", db: "postgres", lock: "redsync"},
		{name: "reserve/spread", scenario: "reserve", strategy: "combine", db: "postgres", lock: "redsync", products: 1000},
		{name: "checkout", scenario: "checkout", strategy: "combine", db: "postgres", lock: "redsync"},
		{name: "checkout/spread", scenario: "checkout", strategy: "combine", db: "postgres", lock: "redsync", products: 1000},
		{name: "transfer", scenario: "transfer", strategy: "combine", db: "postgres", lock: "redsync"},
		{name: "bundle", scenario: "bundle", strategy: "combine", db: "postgres", lock: "redsync"},
		{name: "bundle/hot-last", scenario: "bundle-hot-last", strategy: "combine", db: "postgres", lock: "redsync"},
		{name: "flash/combine/rest", scenario: "flash", strategy: "combine", db: "postgres", lock: "redsync", transport: transport.REST},
		{name: "flash/combine/grpc", scenario: "flash", strategy: "combine", db: "postgres", lock: "redsync", transport: transport.GRPC},
		{name: "flash/combine/events", scenario: "flash", strategy: "combine", db: "postgres", lock: "redsync", broker: brokerNATS},
		{name: "flash/combine/nats", scenario: "flash", strategy: "combine", db: "postgres", lock: "redsync", transport: transport.NATS, broker: brokerNATS},
		{name: "flash/combine/events/rabbitmq", scenario: "flash", strategy: "combine", db: "postgres", lock: "redsync", broker: brokerRabbitMQ},
		{name: "flash/combine/rabbitmq", scenario: "flash", strategy: "combine", db: "postgres", lock: "redsync", transport: transport.RabbitMQ, broker: brokerRabbitMQ},
		{name: "flash/combine/events/kafka", scenario: "flash", strategy: "combine", db: "postgres", lock: "redsync", broker: brokerKafka},
		{name: "flash/combine/kafka", scenario: "flash", strategy: "combine", db: "postgres", lock: "redsync", transport: transport.Kafka, broker: brokerKafka},
		{name: "ceiling/grpc", scenario: "ceiling", strategy: "combine", db: "postgres", lock: "redsync", transport: transport.GRPC},
		{name: "flash/combine/sqlite", scenario: "flash", strategy: "combine", db: "sqlite", lock: "local"},
		{name: "flash/combine/etcd", scenario: "flash", strategy: "combine", db: "postgres", lock: "etcd"},
		{name: "spread/combine/etcd", scenario: "spread", strategy: "combine", db: "postgres", lock: "etcd"},
		{name: "flash/lock-per-request/etcd", scenario: "flash", strategy: "lock-per-request", db: "postgres", lock: "etcd"},
	}
}

func rowNames(rows []rowSpec) []string {
	names := make([]string, len(rows))
	for i, r := range rows {
		names[i] = r.name
	}
	return names
}

// selectRows keeps the named rows, in the comparison's order; no names
// keeps all.
func selectRows(all []rowSpec, names []string) ([]rowSpec, error) {
	if len(names) == 0 {
		return all, nil
	}
	known := rowNames(all)
	for _, n := range names {
		if !slices.Contains(known, strings.TrimSpace(n)) {
			return nil, fmt.Errorf("-rows: unknown row %q (rows: %s)", n, strings.Join(known, ", "))
		}
	}
	var out []rowSpec
	for _, r := range all {
		if slices.ContainsFunc(names, func(n string) bool { return strings.TrimSpace(n) == r.name }) {
			out = append(out, r)
		}
	}
	return out, nil
}

// serverEnv is the server's configuration for the row; bt is its broker,
// if it has one.
func (r rowSpec) serverEnv(db *database, redis, etcd string, bt transport.Broker) map[string]string {
	env := map[string]string{
		"INVENTORY_DB_DRIVER":      db.driver,
		"INVENTORY_DB_DSN":         db.dsn,
		"INVENTORY_STOCK_STRATEGY": r.strategy,
		"INVENTORY_LOCK_BACKEND":   r.lock,
		"INVENTORY_LOG_LEVEL":      "info", // the listening line is at info
	}
	if r.transport == transport.GRPC {
		env["INVENTORY_GRPC_ADDR"] = "127.0.0.1:0" // grpc-go's own server
	}
	if r.broker != "" {
		env["INVENTORY_BROKER"] = r.broker
		env["INVENTORY_NAMESPACE"] = bt.Namespace
		env["INVENTORY_BROKER_COMMANDS"] = strconv.FormatBool(r.commands())
		env[brokerURLEnv(r.broker)] = bt.URL
	}
	switch r.lock {
	case "none":
		// The strategy takes no lock; the server still wants a backend.
		env["INVENTORY_LOCK_BACKEND"] = "local"
	case "redsync":
		env["INVENTORY_REDIS_ADDRS"] = redis
	case "etcd":
		env["INVENTORY_ETCD_ENDPOINTS"] = etcd
	}
	return env
}
