package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/shopstack/inventory/cmd/invbench/internal/load"
	"github.com/shopstack/inventory/cmd/invbench/internal/transport"
)

// errHelp is returned by parseConfig for -h: usage was printed, exit 0.
var errHelp = errors.New("help requested")

// config is the tool's command line.
type config struct {
	check      bool // only check the flags and rows, and say what would run
	url        string
	scenario   string
	clients    int
	duration   time.Duration
	requests   int
	stock      int
	products   int
	timeout    time.Duration
	ledgerDSN  string
	compare    bool
	rows       []string
	serverBin  string
	pgAdminDSN string
	redis      string
	etcd       string
	format     string
	quiet      bool
	cpuProfile string
	token      string
	soak       time.Duration
	soakLoad   float64
	soakSample time.Duration
	writers    int
	transport  string
	grpcAddr   string
	// natsURL, rabbitURL and kafkaBrokers are the brokers of the broker
	// rows and of -transport nats, rabbitmq and kafka (no kafkaBrokers:
	// the kafka rows run on kfake in this process); with -url, namespace
	// is the server's INVENTORY_NAMESPACE.
	natsURL      string
	rabbitURL    string
	kafkaBrokers string
	namespace    string
	eventsLag    bool
}

// brokerURL is where the broker of kind is: -nats-url, -rabbitmq-url or
// -kafka-brokers.
func (c config) brokerURL(kind string) string {
	switch kind {
	case transport.RabbitMQ:
		return c.rabbitURL
	case transport.Kafka:
		return c.kafkaBrokers
	}
	return c.natsURL
}

// defaultPGAdminDSN is the local PostgreSQL the tests use too.
const defaultPGAdminDSN = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"

// parseConfig reads the flags. The PostgreSQL admin DSN defaults to
// INVENTORY_TEST_POSTGRES_ADMIN_DSN, as for `make test`.
func parseConfig(args []string, getenv func(string) string, stderr io.Writer) (config, error) {
	var c config
	fs := flag.NewFlagSet("invbench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage:\n  invbench -url http://127.0.0.1:8080 [-scenario flash] [-clients 64] [-duration 10s | -requests N]\n  invbench -compare [-rows %s] [-duration 10s] [-clients 64] [-format markdown]\n\nflags:\n",
			strings.Join(rowNames(compareRows()), ","))
		fs.PrintDefaults()
	}
	pgAdmin := getenv("INVENTORY_TEST_POSTGRES_ADMIN_DSN")
	if pgAdmin == "" {
		pgAdmin = defaultPGAdminDSN
	}
	var rows string
	fs.StringVar(&c.url, "url", "", "base URL of a running server (its GraphQL endpoint is URL/query)")
	fs.StringVar(&c.scenario, "scenario", "flash", "with -url: "+strings.Join(load.Scenarios(), ", "))
	fs.StringVar(&c.transport, "transport", transport.GraphQL, "with -url: what the timed requests speak: "+strings.Join(transport.Names(), ", ")+
		" (rest and grpc: flash, spread and ceiling only; nats, rabbitmq and kafka: flash and spread, as stock-out commands through the broker)")
	fs.StringVar(&c.grpcAddr, "grpc-addr", "", "with -url -transport grpc: the server's INVENTORY_GRPC_ADDR (grpc-go's own server); empty: gRPC on -url's port")
	fs.StringVar(&c.natsURL, "nats-url", "nats://127.0.0.1:4222", "NATS of -transport nats and, with -compare, of the nats rows (skipped if it does not answer)")
	fs.StringVar(&c.rabbitURL, "rabbitmq-url", "amqp://guest:guest@127.0.0.1:5672/", "RabbitMQ of -transport rabbitmq and, with -compare, of the rabbitmq rows (skipped if it does not answer)")
	fs.StringVar(&c.kafkaBrokers, "kafka-brokers", "", "Kafka's seed brokers, host:port, comma-separated, of -transport kafka (needed there) and, with -compare, of the kafka rows; "+
		"empty with -compare: the kafka rows run on kfake, franz-go's in-process emulation of Kafka, started in this tool for each row (its CPU is the tool's, its performance is not Kafka's)")
	fs.StringVar(&c.namespace, "namespace", "inventory", "with -url: the server's INVENTORY_NAMESPACE (-transport nats, rabbitmq, kafka; rabbitmq: the server's INVENTORY_BROKER_RETRY must be the default)")
	fs.BoolVar(&c.eventsLag, "events-lag", false, "with -url: sample the server's inventory_events_lag_seconds every 100ms during the run (a server with INVENTORY_BROKER); the broker rows of -compare always do")
	fs.IntVar(&c.writers, "writers", 8, "flash-reads: clients that sell the hot product; the others read its page")
	fs.IntVar(&c.clients, "clients", 64, "concurrent clients, each with one request in flight")
	fs.DurationVar(&c.duration, "duration", 10*time.Second, "how long each run sends requests")
	fs.IntVar(&c.requests, "requests", 0, "if positive, send this many requests per run instead of running for -duration")
	fs.IntVar(&c.stock, "stock", 10_000_000, "initial stock of each product (large, so a run never sells out)")
	fs.IntVar(&c.products, "products", 0, "products of spread, mixed and product (0: 1000 for spread, 100 for the others)")
	fs.DurationVar(&c.timeout, "timeout", 30*time.Second, "longest wait for one response")
	fs.StringVar(&c.ledgerDSN, "db-dsn", "", "with -url: the server's INVENTORY_DB_DSN (PostgreSQL), to count the ledger with SQL instead of paging through GraphQL")
	fs.BoolVar(&c.check, "check", false, "check the flags and rows, print what would run, and exit without running it")
	fs.BoolVar(&c.compare, "compare", false, "start a fresh server per row (strategy, database, lock) and compare them")
	fs.StringVar(&rows, "rows", "", "with -compare: comma-separated rows to run (default: all)")
	fs.StringVar(&c.serverBin, "server-bin", "", "with -compare: inventoryd binary to run (default: build ./cmd/inventoryd with -tags benchstrategies, which the rows of other strategies need)")
	fs.StringVar(&c.pgAdminDSN, "pg-admin-dsn", pgAdmin, "with -compare: PostgreSQL URL allowed to create and drop databases (default from INVENTORY_TEST_POSTGRES_ADMIN_DSN)")
	fs.StringVar(&c.redis, "redis-addrs", "127.0.0.1:6379", "with -compare: the servers' INVENTORY_REDIS_ADDRS for the redsync rows (used only by the server)")
	fs.StringVar(&c.etcd, "etcd-endpoints", "127.0.0.1:2379", "with -compare: the servers' INVENTORY_ETCD_ENDPOINTS (comma-separated); the etcd rows are skipped if none answers")
	// The names before they were inventoryd's, for scripts that use them.
	fs.StringVar(&c.ledgerDSN, "ledger-dsn", "", "deprecated: -db-dsn")
	fs.StringVar(&c.redis, "redis", "127.0.0.1:6379", "deprecated: -redis-addrs")
	fs.StringVar(&c.etcd, "etcd", "127.0.0.1:2379", "deprecated: -etcd-endpoints")
	fs.StringVar(&c.format, "format", "text", "report format: text or markdown")
	fs.BoolVar(&c.quiet, "quiet", false, "no progress lines on stderr")
	fs.StringVar(&c.cpuProfile, "cpuprofile", "", "write the tool's own CPU profile to this file")
	fs.StringVar(&c.token, "token", "", "with -url: a bearer token (admin, since the tool creates its products) for a server with INVENTORY_AUTH_TOKENS; default from INVENTORY_TOKEN")
	fs.DurationVar(&c.soak, "soak", 0, "with -url: measure the peak for 10s, then hold -soak-load of it this long, checking the server's goroutines and memory stay flat")
	fs.Float64Var(&c.soakLoad, "soak-load", 0.8, "with -soak: the fraction of the peak to hold")
	fs.DurationVar(&c.soakSample, "soak-sample", 30*time.Second, "with -soak: how often the server's /metrics are read")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return c, errHelp
		}
		return c, err
	}
	if c.token == "" {
		c.token = getenv("INVENTORY_TOKEN")
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if rows != "" {
		c.rows = strings.Split(rows, ",")
	}
	return c, c.validate()
}

func (c config) validate() error {
	if c.url != "" {
		if err := transport.Check(c.transport, c.scenario); err != nil {
			return err
		}
		if c.transport == transport.Kafka && c.kafkaBrokers == "" {
			return errors.New("-transport kafka needs -kafka-brokers (the server's INVENTORY_KAFKA_BROKERS)")
		}
	}
	switch {
	case c.compare == (c.url != ""):
		return errors.New("give either -url (a running server) or -compare")
	case c.clients < 1:
		return errors.New("-clients must be at least 1")
	case c.requests < 0 || (c.requests == 0 && c.duration <= 0):
		return errors.New("-duration must be positive, or -requests at least 1")
	case c.stock < 1 || c.stock > 1_000_000_000:
		return errors.New("-stock must be 1..1000000000")
	case c.products < 0:
		return errors.New("-products must not be negative")
	case c.writers < 0 || c.writers > c.clients && (c.compare || c.scenario == "flash-reads"):
		return errors.New("-writers must be 0..-clients")
	case c.timeout <= 0:
		return errors.New("-timeout must be positive")
	case c.soak > 0 && (c.url == "" || c.soakLoad <= 0 || c.soakLoad > 1 || c.soakSample <= 0):
		return errors.New("-soak needs -url, -soak-load in (0, 1] and a positive -soak-sample")
	case c.format != "text" && c.format != "markdown":
		return fmt.Errorf("-format %q: want text or markdown", c.format)
	}
	if !c.compare {
		if !slices.Contains(load.Scenarios(), c.scenario) {
			return fmt.Errorf("-scenario %q: want one of %s", c.scenario, strings.Join(load.Scenarios(), ", "))
		}
		return nil
	}
	_, err := selectRows(compareRows(), c.rows)
	return err
}
