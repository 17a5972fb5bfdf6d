// Package config loads the server's settings from flags and INVENTORY_*
// environment variables (a flag wins over its variable) and validates them,
// so a bad setting fails at start-up with a message naming it.
package config

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/shopstack/inventory/internal/app"
	"github.com/shopstack/inventory/internal/inventory"
)

// Config is the server's configuration.
type Config struct {
	Addr string
	// GRPCAddr, if set, serves the gRPC API on grpc-go's own server there
	// too (it is always on Addr, through connect-go).
	GRPCAddr    string
	DBDriver    string
	DBDSN       string
	DBMaxConns  int
	LockBackend string
	// Namespace names this deployment on shared infrastructure: it
	// prefixes every Redis and etcd key, lock and election, the NATS
	// stream and subjects, the RabbitMQ exchanges and queues, and the
	// Kafka topics, consumer group and transactional ID, so two
	// deployments with different namespaces never share any of them.
	Namespace string
	// Broker is where committed changes are published and stock commands
	// are taken from: BrokerNone, BrokerNATS, BrokerRabbitMQ or
	// BrokerKafka; NATSURL, RabbitMQURL or KafkaBrokers say where,
	// Namespace under which names.
	Broker, NATSURL, RabbitMQURL string
	// KafkaBrokers are Kafka's seed brokers; KafkaSASLMechanism (PLAIN,
	// SCRAM-SHA-256, SCRAM-SHA-512) with KafkaUsername and KafkaPassword
	// authenticates; KafkaTLS encrypts, trusting the system's CAs and
	// KafkaCAFile's. KafkaPartitions and KafkaReplicationFactor are for
	// the topics the service creates (-1: the cluster's default).
	KafkaBrokers                                                  []string
	KafkaSASLMechanism, KafkaUsername, KafkaPassword, KafkaCAFile string
	KafkaTLS                                                      bool
	KafkaPartitions, KafkaReplicationFactor                       int
	// BrokerCommands turns the command consumer on; commands act as
	// BrokerActor (role operator), at most BrokerInFlight at once, and a
	// transient failure is retried after each of BrokerRetry, then
	// dead-lettered.
	BrokerCommands bool
	BrokerActor    string
	BrokerInFlight int
	BrokerRetry    []time.Duration
	RedisAddrs     []string
	// RedisMode is RedisStandalone (one Redis, or independent Redlock
	// masters) or RedisCluster (RedisAddrs are seed nodes of a cluster).
	RedisMode string
	// RedisUsername and RedisPassword authenticate to Redis (AUTH; the
	// username for an ACL user); RedisTLS encrypts the connections,
	// trusting the system's CAs and RedisCAFile's.
	RedisUsername, RedisPassword, RedisCAFile string
	RedisTLS                                  bool
	EtcdEndpoints                             []string
	// EtcdUsername and EtcdPassword authenticate to etcd; https://
	// endpoints encrypt the connections, trusting the system's CAs and
	// EtcdCAFile's.
	EtcdUsername, EtcdPassword, EtcdCAFile string
	LockTTL                                time.Duration
	LockTimeout                            time.Duration
	LeaseIdle                              time.Duration
	// LockRetryMin and LockRetryMax bound the exponential backoff (with
	// jitter) between attempts to take a busy key or to reach the backend.
	LockRetryMin time.Duration
	LockRetryMax time.Duration
	// StockStrategy is how stock mutations are applied; anything but
	// "combine" exists only to reproduce the seed's comparison.
	StockStrategy     string
	CombineMaxBatch   int
	CombineMaxWaiting int
	LogLevel          slog.Level
	ShutdownTimeout   time.Duration
	// ShutdownDrain is how long the server keeps serving after the
	// shutdown signal, with /readyz answering 503, before it stops
	// accepting.
	ShutdownDrain time.Duration
	// PprofAddr, if set, serves net/http/pprof on a listener of its own.
	PprofAddr string
	// GCPercent is the garbage collector's GOGC, unless the GOGC variable
	// is set.
	GCPercent         int
	EventPollInterval time.Duration
	// ReadModelProducts bounds the products the read model holds; zero
	// turns it off (every read goes to the database).
	ReadModelProducts int
	// AnswerCacheMB bounds the cached answers of root fields served from
	// the read model, in MiB; zero turns the cache off.
	AnswerCacheMB int
	// PersistedQueries bounds the automatic persisted queries learned;
	// TrustedDocuments, if set, is a manifest of the only operations run
	// (and then nothing is learned). HTTPCacheMaxAge is the max-age of
	// GET answers served from the read model to callers without a token;
	// zero: no GET answer may be cached.
	PersistedQueries  int
	TrustedDocuments  string
	HTTPCacheMaxAge   time.Duration
	ReservationMaxTTL time.Duration
	ReapInterval      time.Duration
	// FlowRules is the flow-control rules file; empty means the defaults.
	FlowRules string
	// FlowCheckInterval is how often the rules file is checked for changes.
	FlowCheckInterval time.Duration
	// OTLPEndpoint is where traces go (OTLP); empty leaves tracing to the
	// standard OTEL_* variables, and off without them.
	OTLPEndpoint string
	// AuthTokens lists the bearer tokens, "name:role:token,…"; empty: no
	// authentication, and the server listens on loopback only.
	AuthTokens string
	// OIDCIssuer, if set, accepts the access tokens (JWTs) this OpenID
	// provider issues for OIDCAudience, beside AuthTokens; their roles come
	// from their scopes, or from the claim OIDCRolesClaim names.
	OIDCIssuer, OIDCAudience, OIDCRolesClaim string
	// AllowAnonymous, without AuthTokens, listens on Addr as given (every
	// caller is admin) instead of on loopback: an operator's explicit
	// choice, for a container on a private network.
	AllowAnonymous bool
	// Introspection answers __schema and __type queries.
	Introspection bool
	// MaxQueryDepth and MaxQueryComplexity bound one GraphQL operation.
	MaxQueryDepth, MaxQueryComplexity int
	// ClockSkew pretends this host's clock is off by this much (fault
	// tests only): the service corrects it to the database's clock.
	ClockSkew time.Duration
	// WSOrigins are the host patterns of other origins whose pages may
	// open WebSocket subscriptions; none: same origin only.
	WSOrigins []string
}

// Lock backends.
const (
	LockLocal   = "local"
	LockRedsync = "redsync"
	LockEtcd    = "etcd"

	// Brokers.
	BrokerNone     = "none"
	BrokerNATS     = "nats"
	BrokerRabbitMQ = "rabbitmq"
	BrokerKafka    = "kafka"

	// Redis modes.
	RedisStandalone = "standalone"
	RedisCluster    = "cluster"
)

// NamespacePattern is what INVENTORY_NAMESPACE may be: a name that is a
// valid Redis key and etcd path segment, NATS subject token and stream
// name (upper-cased), RabbitMQ name part, and Kafka topic, group and
// transactional ID prefix as it stands.
var NamespacePattern = regexp.MustCompile(`^[a-z][a-z0-9-]{0,39}$`)

// setting is one configuration entry: a flag, its environment variable and
// its default, all documented in one place.
type setting struct {
	flag, env, def, usage string
	set                   func(c *Config, v string) error
}

var settings = []setting{
	{"addr", "INVENTORY_ADDR", "127.0.0.1:8080", "listen address (host:port; port 0 picks a free one)",
		func(c *Config, v string) error { c.Addr = v; return nil }},
	{"grpc-addr", "INVENTORY_GRPC_ADDR", "", "also serve the gRPC API on grpc-go's own server at this address (faster for service calls than the main port; empty: main port only)",
		func(c *Config, v string) error { c.GRPCAddr = v; return nil }},
	{"namespace", "INVENTORY_NAMESPACE", "inventory", "this deployment's name on shared infrastructure: prefixes every Redis and etcd key, lock and election, the NATS stream (upper-cased) and subjects, the RabbitMQ exchanges and queues, and the Kafka topics, consumer group and transactional ID; lowercase letters, digits and '-', at most 40",
		func(c *Config, v string) error { c.Namespace = v; return nil }},
	{"db-driver", "INVENTORY_DB_DRIVER", "sqlite", "database: sqlite or postgres",
		func(c *Config, v string) error { c.DBDriver = v; return nil }},
	{"db-dsn", "INVENTORY_DB_DSN", "inventory.db", "SQLite file path, or PostgreSQL DSN (postgres://user@host:5432/db)",
		func(c *Config, v string) error { c.DBDSN = v; return nil }},
	{"db-max-conns", "INVENTORY_DB_MAX_CONNS", "16", "database connection pool size",
		func(c *Config, v string) (err error) { c.DBMaxConns, err = strconv.Atoi(v); return err }},
	{"broker", "INVENTORY_BROKER", BrokerNone, "message broker for stock events out and stock commands in: none, nats (JetStream), rabbitmq or kafka",
		func(c *Config, v string) error { c.Broker = v; return nil }},
	{"nats-url", "INVENTORY_NATS_URL", "nats://127.0.0.1:4222", "nats broker: the NATS server(s), comma-separated URLs",
		func(c *Config, v string) error { c.NATSURL = v; return nil }},
	{"rabbitmq-url", "INVENTORY_RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672/", "rabbitmq broker: the AMQP 0-9-1 URL",
		func(c *Config, v string) error { c.RabbitMQURL = v; return nil }},
	{"kafka-brokers", "INVENTORY_KAFKA_BROKERS", "127.0.0.1:9092", "kafka broker: seed brokers, host:port, comma-separated",
		func(c *Config, v string) (err error) { c.KafkaBrokers, err = hostPorts(v); return err }},
	{"kafka-sasl-mechanism", "INVENTORY_KAFKA_SASL_MECHANISM", "", "kafka: SASL mechanism, PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512 (empty: none)",
		func(c *Config, v string) error { c.KafkaSASLMechanism = strings.ToUpper(v); return nil }},
	{"kafka-username", "INVENTORY_KAFKA_USERNAME", "", "kafka with SASL: the user",
		func(c *Config, v string) error { c.KafkaUsername = v; return nil }},
	{"kafka-password", "INVENTORY_KAFKA_PASSWORD", "", "kafka with SASL: the password; prefer the variable to the flag, which shows in the process list",
		func(c *Config, v string) error { c.KafkaPassword = v; return nil }},
	{"kafka-tls", "INVENTORY_KAFKA_TLS", "false", "kafka: connect over TLS (trusting the system's CAs and INVENTORY_KAFKA_CA_FILE's)",
		func(c *Config, v string) (err error) { c.KafkaTLS, err = strconv.ParseBool(v); return err }},
	{"kafka-ca-file", "INVENTORY_KAFKA_CA_FILE", "", "kafka with TLS: a PEM file of CA certificates to trust beside the system's",
		func(c *Config, v string) error { c.KafkaCAFile = v; return nil }},
	{"kafka-partitions", "INVENTORY_KAFKA_PARTITIONS", "6", "kafka: partitions of the topics the service creates when they do not exist (events keyed by product, commands)",
		func(c *Config, v string) (err error) { c.KafkaPartitions, err = strconv.Atoi(v); return err }},
	{"kafka-replication-factor", "INVENTORY_KAFKA_REPLICATION_FACTOR", "-1", "kafka: replication factor of the topics the service creates (-1: the cluster's default)",
		func(c *Config, v string) (err error) { c.KafkaReplicationFactor, err = strconv.Atoi(v); return err }},
	{"broker-commands", "INVENTORY_BROKER_COMMANDS", "true", "with a broker: take stock commands from it (false: publish events only)",
		func(c *Config, v string) (err error) { c.BrokerCommands, err = strconv.ParseBool(v); return err }},
	{"broker-actor", "INVENTORY_BROKER_ACTOR", "broker", "the principal broker commands act as (role operator), recorded on their ledger rows",
		func(c *Config, v string) error { c.BrokerActor = v; return nil }},
	{"broker-in-flight", "INVENTORY_BROKER_IN_FLIGHT", "64", "broker commands run at once, at most",
		func(c *Config, v string) (err error) { c.BrokerInFlight, err = strconv.Atoi(v); return err }},
	{"broker-retry", "INVENTORY_BROKER_RETRY", "1s,2s,4s,8s", "delays before each retry of a broker command that failed transiently (comma-separated durations); after the last, it goes to the dead letters",
		func(c *Config, v string) (err error) { c.BrokerRetry, err = durations(v); return err }},
	{"lock-backend", "INVENTORY_LOCK_BACKEND", LockLocal, "lock backend for stock mutations: local (in-process, one replica), redsync (Redis) or etcd",
		func(c *Config, v string) error { c.LockBackend = v; return nil }},
	{"redis-addrs", "INVENTORY_REDIS_ADDRS", "127.0.0.1:6379", "redsync: Redis host:port list, comma-separated; several independent masters form a Redlock quorum",
		func(c *Config, v string) (err error) { c.RedisAddrs, err = hostPorts(v); return err }},
	{"redis-mode", "INVENTORY_REDIS_MODE", RedisStandalone, "redsync: standalone (one Redis, or several independent masters as a Redlock quorum) or cluster (Redis Cluster; INVENTORY_REDIS_ADDRS are seed nodes)",
		func(c *Config, v string) error { c.RedisMode = v; return nil }},
	{"redis-username", "INVENTORY_REDIS_USERNAME", "", "redsync: the Redis ACL user (empty: the default user)",
		func(c *Config, v string) error { c.RedisUsername = v; return nil }},
	{"redis-password", "INVENTORY_REDIS_PASSWORD", "", "redsync: the Redis password (AUTH); prefer the variable to the flag, which shows in the process list",
		func(c *Config, v string) error { c.RedisPassword = v; return nil }},
	{"redis-tls", "INVENTORY_REDIS_TLS", "false", "redsync: connect to Redis over TLS (trusting the system's CAs and INVENTORY_REDIS_CA_FILE's)",
		func(c *Config, v string) (err error) { c.RedisTLS, err = strconv.ParseBool(v); return err }},
	{"redis-ca-file", "INVENTORY_REDIS_CA_FILE", "", "redsync with TLS: a PEM file of CA certificates to trust beside the system's (a managed Redis's own CA)",
		func(c *Config, v string) error { c.RedisCAFile = v; return nil }},
	{"etcd-endpoints", "INVENTORY_ETCD_ENDPOINTS", "127.0.0.1:2379", "etcd: client endpoints (host:port or http://host:port), comma-separated",
		func(c *Config, v string) (err error) { c.EtcdEndpoints, err = endpoints(v); return err }},
	{"etcd-username", "INVENTORY_ETCD_USERNAME", "", "etcd: the user, when etcd has authentication enabled",
		func(c *Config, v string) error { c.EtcdUsername = v; return nil }},
	{"etcd-password", "INVENTORY_ETCD_PASSWORD", "", "etcd: the user's password; prefer the variable to the flag, which shows in the process list",
		func(c *Config, v string) error { c.EtcdPassword = v; return nil }},
	{"etcd-ca-file", "INVENTORY_ETCD_CA_FILE", "", "etcd with https:// endpoints: a PEM file of CA certificates to trust beside the system's",
		func(c *Config, v string) error { c.EtcdCAFile = v; return nil }},
	{"lock-ttl", "INVENTORY_LOCK_TTL", "8s", "lease time to live of redsync and etcd locks (etcd: whole seconds, at least 2s); a holder that stops renewing loses the key after it",
		func(c *Config, v string) (err error) { c.LockTTL, err = time.ParseDuration(v); return err }},
	{"lock-timeout", "INVENTORY_LOCK_TIMEOUT", "10s", "longest wait for a stock lock, or a combined stock transaction, before answering UNAVAILABLE",
		func(c *Config, v string) (err error) { c.LockTimeout, err = time.ParseDuration(v); return err }},
	{"lease-idle", "INVENTORY_LEASE_IDLE", "5s", "how long a level's lock is kept after its last stock request, for its next ones; let go at once when another replica waits for it",
		func(c *Config, v string) (err error) { c.LeaseIdle, err = time.ParseDuration(v); return err }},
	{"lock-retry-min", "INVENTORY_LOCK_RETRY_MIN", "5ms", "first delay of the exponential backoff (with jitter) between lock attempts",
		func(c *Config, v string) (err error) { c.LockRetryMin, err = time.ParseDuration(v); return err }},
	{"lock-retry-max", "INVENTORY_LOCK_RETRY_MAX", "100ms", "largest delay between lock attempts",
		func(c *Config, v string) (err error) { c.LockRetryMax, err = time.ParseDuration(v); return err }},
	{"stock-strategy", "INVENTORY_STOCK_STRATEGY", "combine", "how stock mutations run: combine; a benchmark build (-tags benchstrategies, as invbench -compare makes) also knows lock-per-request, rowlock and unsafe (oversells!)",
		func(c *Config, v string) error { c.StockStrategy = v; return nil }},
	{"combine-max-batch", "INVENTORY_COMBINE_MAX_BATCH", "256", "combine: most requests for one product and location applied in one transaction",
		func(c *Config, v string) (err error) { c.CombineMaxBatch, err = strconv.Atoi(v); return err }},
	{"combine-max-waiting", "INVENTORY_COMBINE_MAX_WAITING", "10000", "combine: most stock requests waiting in this replica; beyond it they get a retryable UNAVAILABLE",
		func(c *Config, v string) (err error) { c.CombineMaxWaiting, err = strconv.Atoi(v); return err }},
	{"log-level", "INVENTORY_LOG_LEVEL", "info", "log level: debug, info, warn or error",
		func(c *Config, v string) error { return c.LogLevel.UnmarshalText([]byte(v)) }},
	{"reservation-max-ttl", "INVENTORY_RESERVATION_MAX_TTL", "24h", "longest a reservation holds stock in one go (at creation and at each extension)",
		func(c *Config, v string) (err error) { c.ReservationMaxTTL, err = time.ParseDuration(v); return err }},
	{"reap-interval", "INVENTORY_REAP_INTERVAL", "1s", "how often the elected replica releases expired reservations (reads and writes stop counting them at once anyway)",
		func(c *Config, v string) (err error) { c.ReapInterval, err = time.ParseDuration(v); return err }},
	{"event-poll-interval", "INVENTORY_EVENT_POLL_INTERVAL", "1s", "how often the event feed reads the ledger without being woken (by a local commit, or another replica's through Redis or etcd)",
		func(c *Config, v string) (err error) { c.EventPollInterval, err = time.ParseDuration(v); return err }},
	{"read-model-products", "INVENTORY_READ_MODEL_PRODUCTS", "100000", "most products the read model keeps in memory to answer product reads (least recently used go first); 0: every read goes to the database",
		func(c *Config, v string) (err error) { c.ReadModelProducts, err = nonNegative(v); return err }},
	{"persisted-queries", "INVENTORY_PERSISTED_QUERIES", "1000", "automatic persisted queries learned from clients (their SHA-256 stands for their text, so queries fit in GET URLs), the most recently used kept",
		func(c *Config, v string) (err error) { c.PersistedQueries, err = strconv.Atoi(v); return err }},
	{"trusted-documents", "INVENTORY_TRUSTED_DOCUMENTS", "", "a persisted query manifest (apollo-persisted-query-manifest JSON): run only its operations, by hash or text, and learn none; empty: automatic persisted queries",
		func(c *Config, v string) error { c.TrustedDocuments = v; return nil }},
	{"http-cache-max-age", "INVENTORY_HTTP_CACHE_MAX_AGE", "5s", "Cache-Control max-age (with an ETag; 304 on If-None-Match) of GraphQL GET answers made only of read-model reads, for callers without a token; anything else over GET is no-store; 0: none cached",
		func(c *Config, v string) (err error) { c.HTTPCacheMaxAge, err = time.ParseDuration(v); return err }},
	{"answer-cache-mb", "INVENTORY_ANSWER_CACHE_MB", "32", "MiB of rendered GraphQL answers kept while the read-model products they show are unchanged (a category page is read far more often than it changes); 0: off",
		func(c *Config, v string) (err error) { c.AnswerCacheMB, err = nonNegative(v); return err }},
	{"flow-rules", "INVENTORY_FLOW_RULES", "", "flow-control rules file (YAML or JSON, see deploy/flow-rules.yaml); reloaded when it changes; empty: breakers only, no limits",
		func(c *Config, v string) error { c.FlowRules = v; return nil }},
	{"flow-check-interval", "INVENTORY_FLOW_CHECK_INTERVAL", "1s", "how often the flow-control rules file is checked for changes",
		func(c *Config, v string) (err error) { c.FlowCheckInterval, err = time.ParseDuration(v); return err }},
	{"auth-tokens", "INVENTORY_AUTH_TOKENS", "", "bearer tokens as name:role:token,… (roles reader, operator, admin; tokens of 16+ characters); empty: no authentication and loopback only",
		func(c *Config, v string) error { c.AuthTokens = v; return nil }},
	{"oidc-issuer", "INVENTORY_OIDC_ISSUER", "", "accept access tokens (JWTs) from this OpenID provider, beside INVENTORY_AUTH_TOKENS: its issuer URL (discovery at <issuer>/.well-known/openid-configuration)",
		func(c *Config, v string) error { c.OIDCIssuer = v; return nil }},
	{"oidc-audience", "INVENTORY_OIDC_AUDIENCE", "", "with INVENTORY_OIDC_ISSUER: the audience (aud) tokens must be issued for, the provider's identifier of this API",
		func(c *Config, v string) error { c.OIDCAudience = v; return nil }},
	{"oidc-roles-claim", "INVENTORY_OIDC_ROLES_CLAIM", "", "with INVENTORY_OIDC_ISSUER: the claim naming the role (reader, operator or admin; a string or an array; a dotted path reaches into objects); empty: the scopes inventory:read, inventory:write, inventory:admin",
		func(c *Config, v string) error { c.OIDCRolesClaim = v; return nil }},
	{"allow-anonymous", "INVENTORY_ALLOW_ANONYMOUS", "false", "without INVENTORY_AUTH_TOKENS or INVENTORY_OIDC_ISSUER, listen on INVENTORY_ADDR as given instead of loopback only: every caller is admin (a container on a private network)",
		func(c *Config, v string) (err error) { c.AllowAnonymous, err = strconv.ParseBool(v); return err }},
	{"introspection", "INVENTORY_INTROSPECTION", "true", "answer GraphQL introspection (__schema, __type); GraphiQL needs it",
		func(c *Config, v string) (err error) { c.Introspection, err = strconv.ParseBool(v); return err }},
	{"max-query-depth", "INVENTORY_MAX_QUERY_DEPTH", "10", "deepest nesting of a GraphQL operation (introspection aside); deeper ones get DEPTH_LIMIT_EXCEEDED",
		func(c *Config, v string) (err error) { c.MaxQueryDepth, err = positive(v); return err }},
	{"max-query-complexity", "INVENTORY_MAX_QUERY_COMPLEXITY", "10000", "largest cost of a GraphQL operation (a field 1, a page its size times its items); costlier ones get COMPLEXITY_LIMIT_EXCEEDED",
		func(c *Config, v string) (err error) { c.MaxQueryComplexity, err = positive(v); return err }},
	{"ws-origins", "INVENTORY_WS_ORIGINS", "", "comma-separated host patterns (e.g. shop.example.com,*.example.com) of other origins whose pages may open WebSocket subscriptions; empty: same origin only",
		func(c *Config, v string) error { c.WSOrigins = splitList(v); return nil }},
	{"clock-skew", "INVENTORY_CLOCK_SKEW", "0s", "fault testing only: pretend this host's clock is off by this much; the service follows the database's clock anyway",
		func(c *Config, v string) (err error) { c.ClockSkew, err = time.ParseDuration(v); return err }},
	{"otlp-endpoint", "INVENTORY_OTLP_ENDPOINT", "", "send traces over OTLP to this collector: host:port (gRPC, plain text) or a URL; OTEL_EXPORTER_OTLP_* variables are honoured too; empty and unset: tracing off",
		func(c *Config, v string) error { c.OTLPEndpoint = v; return nil }},
	{"pprof-addr", "INVENTORY_PPROF_ADDR", "", "if set, serve Go profiles (/debug/pprof/) on this address, e.g. 127.0.0.1:6060; keep it private",
		func(c *Config, v string) error { c.PprofAddr = v; return nil }},
	{"gc-percent", "INVENTORY_GC_PERCENT", "400", "the garbage collector's GOGC (a GOGC variable wins): 400 collects a fifth as often as Go's 100, for up to five times the live heap; a small heap and a busy storefront spend most of their time collecting otherwise",
		func(c *Config, v string) (err error) { c.GCPercent, err = positive(v); return err }},
	{"shutdown-drain", "INVENTORY_SHUTDOWN_DRAIN", "0s", "after SIGTERM, keep serving this long with /readyz answering 503, so load balancers that watch readiness stop sending first (0: stop accepting at once, as behind Kubernetes, which removes a terminating pod from its Service itself)",
		func(c *Config, v string) (err error) { c.ShutdownDrain, err = time.ParseDuration(v); return err }},
	{"shutdown-timeout", "INVENTORY_SHUTDOWN_TIMEOUT", "30s", "how long shutdown waits for in-flight requests (after the drain)",
		func(c *Config, v string) (err error) { c.ShutdownTimeout, err = time.ParseDuration(v); return err }},
}

// ErrHelp is returned by Load when -h or --help was given; the usage has
// been written.
var ErrHelp = flag.ErrHelp

// Load reads the configuration from args (without the program name) and
// getenv. Usage goes to usage on -h/--help.
func Load(args []string, getenv func(string) string, usage io.Writer) (Config, error) {
	fs := flag.NewFlagSet("inventoryd", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	values := make([]string, len(settings))
	for i, s := range settings {
		values[i] = s.def
		if v := getenv(s.env); v != "" {
			values[i] = v
		}
		fs.StringVar(&values[i], s.flag, values[i], s.usage)
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			writeUsage(usage)
		}
		return Config{}, err
	}
	if fs.NArg() > 0 {
		return Config{}, fmt.Errorf("unexpected argument %q (see --help)", fs.Arg(0))
	}
	var c Config
	for i, s := range settings {
		if err := s.set(&c, strings.TrimSpace(values[i])); err != nil {
			return Config{}, fmt.Errorf("-%s / %s: invalid value %q: %w", s.flag, s.env, values[i], err)
		}
	}
	return c, c.validate()
}

func (c Config) validate() error {
	if _, port, err := net.SplitHostPort(c.Addr); err != nil || port == "" {
		return fmt.Errorf("INVENTORY_ADDR: %q is not host:port", c.Addr)
	}
	switch c.DBDriver {
	case "sqlite":
	case "postgres":
		if c.DBDSN == "inventory.db" {
			return errors.New("INVENTORY_DB_DRIVER=postgres needs INVENTORY_DB_DSN set to a PostgreSQL DSN, e.g. postgres://user@127.0.0.1:5432/inventory")
		}
	default:
		return fmt.Errorf("INVENTORY_DB_DRIVER: %q is not supported (want sqlite or postgres)", c.DBDriver)
	}
	if c.FlowCheckInterval <= 0 {
		return errors.New("INVENTORY_FLOW_CHECK_INTERVAL must be a positive duration")
	}
	if c.ReservationMaxTTL < time.Second || c.ReapInterval <= 0 || c.EventPollInterval <= 0 {
		return errors.New("INVENTORY_RESERVATION_MAX_TTL (at least 1s), INVENTORY_REAP_INTERVAL and INVENTORY_EVENT_POLL_INTERVAL must be positive durations")
	}
	if c.PprofAddr != "" {
		if _, port, err := net.SplitHostPort(c.PprofAddr); err != nil || port == "" {
			return fmt.Errorf("INVENTORY_PPROF_ADDR: %q is not host:port", c.PprofAddr)
		}
	}
	if c.DBDSN == "" {
		return errors.New("INVENTORY_DB_DSN must not be empty")
	}
	if c.PersistedQueries < 1 || c.PersistedQueries > 1_000_000 {
		return fmt.Errorf("INVENTORY_PERSISTED_QUERIES: must be between 1 and 1000000, got %d", c.PersistedQueries)
	}
	if c.HTTPCacheMaxAge < 0 || c.HTTPCacheMaxAge%time.Second != 0 {
		return fmt.Errorf("INVENTORY_HTTP_CACHE_MAX_AGE: whole seconds, 0 or more, got %s", c.HTTPCacheMaxAge)
	}
	if c.DBMaxConns < 1 {
		return fmt.Errorf("INVENTORY_DB_MAX_CONNS: must be at least 1, got %d", c.DBMaxConns)
	}
	switch c.Broker {
	case BrokerNone, BrokerNATS, BrokerRabbitMQ, BrokerKafka:
	default:
		return fmt.Errorf("INVENTORY_BROKER: %q is not a broker (want %s, %s, %s or %s)", c.Broker, BrokerNone, BrokerNATS, BrokerRabbitMQ, BrokerKafka)
	}
	if err := c.validateKafka(); err != nil {
		return err
	}
	if c.BrokerInFlight < 1 || c.BrokerInFlight > 10_000 {
		return fmt.Errorf("INVENTORY_BROKER_IN_FLIGHT: must be between 1 and 10000, got %d", c.BrokerInFlight)
	}
	if err := c.validateOIDC(); err != nil {
		return err
	}
	if c.BrokerActor == "" {
		return errors.New("INVENTORY_BROKER_ACTOR must not be empty")
	}
	if !NamespacePattern.MatchString(c.Namespace) {
		return fmt.Errorf("INVENTORY_NAMESPACE: %q must be lowercase letters, digits and '-', start with a letter, and be at most 40 long", c.Namespace)
	}
	if c.RedisCAFile != "" && !c.RedisTLS {
		return errors.New("INVENTORY_REDIS_CA_FILE needs INVENTORY_REDIS_TLS=true")
	}
	if (c.RedisUsername != "" && c.RedisPassword == "") || (c.EtcdUsername == "") != (c.EtcdPassword == "") {
		return errors.New("INVENTORY_REDIS_USERNAME needs INVENTORY_REDIS_PASSWORD, and INVENTORY_ETCD_USERNAME and INVENTORY_ETCD_PASSWORD go together")
	}
	if secure := c.EtcdTLS(); slices.ContainsFunc(c.EtcdEndpoints, func(e string) bool { return strings.HasPrefix(e, "https://") != secure }) {
		return errors.New("INVENTORY_ETCD_ENDPOINTS: https:// and plain endpoints mixed; use https:// for every member or none")
	} else if c.EtcdCAFile != "" && !secure {
		return errors.New("INVENTORY_ETCD_CA_FILE needs https:// INVENTORY_ETCD_ENDPOINTS")
	}
	if c.RedisMode != RedisStandalone && c.RedisMode != RedisCluster {
		return fmt.Errorf("INVENTORY_REDIS_MODE: %q is not a mode (want %s or %s)", c.RedisMode, RedisStandalone, RedisCluster)
	}
	switch c.LockBackend {
	case LockLocal, LockRedsync:
	case LockEtcd:
		if c.LockTTL < 2*time.Second {
			return fmt.Errorf("INVENTORY_LOCK_TTL: etcd leases last whole seconds, at least 2s; got %v", c.LockTTL)
		}
	default:
		return fmt.Errorf("INVENTORY_LOCK_BACKEND: %q is not supported (want local, redsync or etcd)", c.LockBackend)
	}
	if c.LockTTL < 100*time.Millisecond || c.LockTTL > time.Hour {
		return fmt.Errorf("INVENTORY_LOCK_TTL: must be between 100ms and 1h, got %v", c.LockTTL)
	}
	if c.ShutdownDrain < 0 || c.ShutdownDrain > 10*time.Minute {
		return fmt.Errorf("INVENTORY_SHUTDOWN_DRAIN: must be between 0 and 10m, got %v", c.ShutdownDrain)
	}
	if c.LeaseIdle < time.Millisecond || c.LeaseIdle > 10*time.Second {
		return fmt.Errorf("INVENTORY_LEASE_IDLE: must be between 1ms and 10s, got %v", c.LeaseIdle)
	}
	if c.LockTimeout <= 0 || c.ShutdownTimeout <= 0 {
		return errors.New("INVENTORY_LOCK_TIMEOUT and INVENTORY_SHUTDOWN_TIMEOUT must be positive durations such as 10s")
	}
	if !app.Strategy(c.StockStrategy).Valid() {
		return fmt.Errorf("INVENTORY_STOCK_STRATEGY: %q is not supported by this binary (it knows %v; the benchmark-only ones "+
			"are built with -tags benchstrategies)", c.StockStrategy, app.Strategies())
	}
	if c.CombineMaxBatch < 1 || c.CombineMaxBatch > inventory.MaxBatchLimit || c.CombineMaxWaiting < 1 {
		return fmt.Errorf("INVENTORY_COMBINE_MAX_BATCH must be 1..%d (got %d) and INVENTORY_COMBINE_MAX_WAITING at least 1 (got %d)",
			inventory.MaxBatchLimit, c.CombineMaxBatch, c.CombineMaxWaiting)
	}
	if c.LockRetryMin <= 0 || c.LockRetryMax < c.LockRetryMin {
		return fmt.Errorf("INVENTORY_LOCK_RETRY_MIN (%v) must be positive and INVENTORY_LOCK_RETRY_MAX (%v) at least as large", c.LockRetryMin, c.LockRetryMax)
	}
	return nil
}

func (c Config) validateOIDC() error {
	if c.OIDCIssuer == "" {
		if c.OIDCAudience != "" || c.OIDCRolesClaim != "" {
			return errors.New("INVENTORY_OIDC_AUDIENCE and INVENTORY_OIDC_ROLES_CLAIM need INVENTORY_OIDC_ISSUER")
		}
		return nil
	}
	if u, err := url.Parse(c.OIDCIssuer); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("INVENTORY_OIDC_ISSUER: %q is not an http(s) URL without query or fragment", c.OIDCIssuer)
	}
	if c.OIDCAudience == "" {
		return errors.New("INVENTORY_OIDC_ISSUER needs INVENTORY_OIDC_AUDIENCE: without it a token the provider issued for any other API would be accepted")
	}
	return nil
}

// EtcdTLS reports whether the etcd endpoints are https:// (all of them,
// once validated).
func (c Config) EtcdTLS() bool {
	return len(c.EtcdEndpoints) > 0 && strings.HasPrefix(c.EtcdEndpoints[0], "https://")
}

// splitList returns the non-empty items of a comma-separated list.
func splitList(v string) []string {
	var out []string
	for item := range strings.SplitSeq(v, ",") {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	return out
}

// positive parses a whole number of at least 1.
func nonNegative(v string) (int, error) {
	n, err := strconv.Atoi(v)
	if err == nil && n < 0 {
		err = fmt.Errorf("must not be negative")
	}
	return n, err
}

func positive(v string) (int, error) {
	n, err := strconv.Atoi(v)
	if err == nil && n < 1 {
		err = fmt.Errorf("must be at least 1")
	}
	return n, err
}

// endpoints parses a comma-separated list of distinct etcd endpoints:
// host:port, or a URL with scheme http or https.
func endpoints(v string) ([]string, error) {
	var out []string
	for e := range strings.SplitSeq(v, ",") {
		e = strings.TrimSpace(e)
		hp := e
		if u, err := url.Parse(e); err == nil && (u.Scheme == "http" || u.Scheme == "https") && (u.Path == "" || u.Path == "/") {
			hp = u.Host
		}
		if _, err := hostPorts(hp); err != nil {
			return nil, fmt.Errorf("%q is not host:port or http(s)://host:port", e)
		}
		if slices.Contains(out, e) {
			return nil, fmt.Errorf("%s is listed twice", e)
		}
		out = append(out, e)
	}
	return out, nil
}

// hostPorts parses a comma-separated list of distinct host:port addresses.
// durations parses a comma-separated list of positive durations (at most
// 20, each at most an hour).
func durations(v string) ([]time.Duration, error) {
	var out []time.Duration
	for f := range strings.SplitSeq(v, ",") {
		d, err := time.ParseDuration(strings.TrimSpace(f))
		if err != nil || d <= 0 || d > time.Hour {
			return nil, fmt.Errorf("%q is not a duration between 0 and 1h", strings.TrimSpace(f))
		}
		out = append(out, d)
	}
	if len(out) > 20 {
		return nil, errors.New("at most 20 retries")
	}
	return out, nil
}

func hostPorts(v string) ([]string, error) {
	var out []string
	for a := range strings.SplitSeq(v, ",") {
		a = strings.TrimSpace(a)
		host, port, err := net.SplitHostPort(a)
		if n, perr := strconv.Atoi(port); err != nil || host == "" || perr != nil || n < 1 || n > 65535 {
			return nil, fmt.Errorf("%q is not host:port", a)
		}
		if slices.Contains(out, a) {
			return nil, fmt.Errorf("%s is listed twice", a)
		}
		out = append(out, a)
	}
	return out, nil
}

func writeUsage(w io.Writer) {
	fmt.Fprintln(w, "Usage: inventoryd [flags]")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Runs the inventory service: GraphQL at /query (GraphiQL at /), REST routes, /healthz, /readyz.")
	fmt.Fprintln(w, "Settings for a lock backend other than the chosen one are ignored.")
	fmt.Fprintln(w, "Each flag can also be set by its environment variable; a flag wins.")
	fmt.Fprintln(w, "inventoryd -version prints the build's version, commit time and Go release.")
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "FLAG\tENVIRONMENT\tDEFAULT\tMEANING")
	for _, s := range settings {
		fmt.Fprintf(tw, "-%s\t%s\t%s\t%s\n", s.flag, s.env, s.def, s.usage)
	}
	_ = tw.Flush()
}

func (c Config) validateKafka() error {
	switch c.KafkaSASLMechanism {
	case "", "PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512":
	default:
		return fmt.Errorf("INVENTORY_KAFKA_SASL_MECHANISM: %q is not a mechanism (want PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512)", c.KafkaSASLMechanism)
	}
	if (c.KafkaSASLMechanism == "") != (c.KafkaUsername == "") || (c.KafkaSASLMechanism == "") != (c.KafkaPassword == "") {
		return errors.New("INVENTORY_KAFKA_SASL_MECHANISM, INVENTORY_KAFKA_USERNAME and INVENTORY_KAFKA_PASSWORD go together")
	}
	if c.KafkaCAFile != "" && !c.KafkaTLS {
		return errors.New("INVENTORY_KAFKA_CA_FILE needs INVENTORY_KAFKA_TLS=true")
	}
	if c.KafkaPartitions < 1 || c.KafkaPartitions > 10_000 {
		return fmt.Errorf("INVENTORY_KAFKA_PARTITIONS: must be between 1 and 10000, got %d", c.KafkaPartitions)
	}
	if c.KafkaReplicationFactor == 0 || c.KafkaReplicationFactor < -1 || c.KafkaReplicationFactor > 100 {
		return fmt.Errorf("INVENTORY_KAFKA_REPLICATION_FACTOR: -1 (the cluster's default) or between 1 and 100, got %d", c.KafkaReplicationFactor)
	}
	return nil
}
