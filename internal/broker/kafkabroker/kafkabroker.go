// Package kafkabroker is the Kafka broker: events go to the topic
// PREFIX.stock, keyed by product so a product's events keep their order
// in one partition, and the low-stock alerts to PREFIX.alerts; commands
// come in on PREFIX.commands through a consumer group (see Commands).
//
// Kafka cannot refuse a record whose predecessor is not the partition's
// last, so order and uniqueness come from transactions. The relay's
// producer has one transactional ID for the deployment (PREFIX-relay):
// each Publish is one transaction holding its events, their alerts and a
// checkpoint record (the batch's last sequence, on the compacted
// one-partition topic PREFIX.stock.last). Last first initializes the
// producer ID, which fences every other producer with that ID (a second
// publisher during a leader change, or one that lost its connection mid
// transaction) and aborts its open transaction, and only then reads the
// last committed checkpoint. So a reader with isolation.level
// read_committed sees every change once and in order per product, across
// publisher restarts, broker restarts and two publishers at once; a
// read_uncommitted reader may also see aborted events again.
package kafkabroker

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/shopstack/inventory/internal/broker"
)

// Config says where the cluster is and names the topics and the group.
type Config struct {
	// Brokers are the seed brokers, host:port (default 127.0.0.1:9092).
	Brokers []string
	// SASL, if Mechanism is set (PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512),
	// authenticates as User with Password.
	SASL SASL
	// TLS, if not nil, is used to dial the brokers.
	TLS *tls.Config
	// Prefix starts every topic name (default "inventory").
	Prefix string
	// Partitions and ReplicationFactor are for the topics the adapter
	// creates when they do not exist (default 6 partitions, the broker's
	// default replication factor); topics an operator created are used as
	// they are.
	Partitions        int32
	ReplicationFactor int16
	// Group is the commands' consumer group (default PREFIX-commands); the
	// replicas share it.
	Group string
	// Retry is the consumer's retry schedule (default
	// broker.DefaultRetry): the n-th retry waits in
	// PREFIX.commands.retry.<n>.
	Retry []time.Duration
}

// SASL is a SASL mechanism and its credentials.
type SASL struct {
	Mechanism, User, Password string
}

// SASL mechanisms.
const (
	SASLPlain       = "PLAIN"
	SASLScramSHA256 = "SCRAM-SHA-256"
	SASLScramSHA512 = "SCRAM-SHA-512"
)

// ConfigFor names everything of a deployment's namespace: topics start
// with the namespace and the group is namespace-commands.
func ConfigFor(brokers []string, namespace string, retry []time.Duration) Config {
	return Config{Brokers: brokers, Prefix: namespace, Group: namespace + "-commands", Retry: retry}
}

func (c Config) withDefaults() Config {
	if len(c.Brokers) == 0 {
		c.Brokers = []string{"127.0.0.1:9092"}
	}
	if c.Prefix == "" {
		c.Prefix = "inventory"
	}
	if c.Partitions <= 0 {
		c.Partitions = 6
	}
	if c.ReplicationFactor == 0 {
		c.ReplicationFactor = -1
	}
	if c.Group == "" {
		c.Group = c.Prefix + "-commands"
	}
	if c.Retry == nil {
		c.Retry = broker.DefaultRetry
	}
	return c
}

// Check reports a configuration the adapter cannot use.
func (c Config) Check() error {
	switch strings.ToUpper(c.SASL.Mechanism) {
	case "", SASLPlain, SASLScramSHA256, SASLScramSHA512:
	default:
		return fmt.Errorf("SASL mechanism %q: want %s, %s or %s", c.SASL.Mechanism, SASLPlain, SASLScramSHA256, SASLScramSHA512)
	}
	if c.SASL.Mechanism != "" && c.SASL.User == "" {
		return errors.New("SASL needs a user")
	}
	return nil
}

// Topic names.
func (c Config) stockTopic() string      { return c.Prefix + ".stock" }
func (c Config) alertTopic() string      { return c.Prefix + ".alerts" }
func (c Config) checkpointTopic() string { return c.Prefix + ".stock.last" }
func (c Config) commandTopic() string    { return c.Prefix + ".commands" }
func (c Config) deadTopic() string       { return c.Prefix + ".commands.dead" }
func (c Config) retryTopic(n int) string { return c.Prefix + ".commands.retry." + strconv.Itoa(n) }
func (c Config) transactionalID() string { return c.Prefix + "-relay" }

// OutcomeTopic is where the outcome of a command with replyTo goes:
// PREFIX.outcomes, or PREFIX.outcomes.<replyTo> for a replyTo of letters,
// digits, '.', '_' and '-' (at most 100); any other replyTo means the
// default.
func (c Config) OutcomeTopic(replyTo string) string {
	c = c.withDefaults()
	if replyTo == "" || len(replyTo) > 100 || strings.Trim(replyTo, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") != "" {
		return c.Prefix + ".outcomes"
	}
	return c.Prefix + ".outcomes." + replyTo
}

// Topics lists the topics c names, beside the reply topics commands name.
func (c Config) Topics() []string {
	c = c.withDefaults()
	t := []string{c.stockTopic(), c.alertTopic(), c.checkpointTopic(), c.commandTopic(), c.deadTopic(), c.OutcomeTopic("")}
	for n := range c.Retry {
		t = append(t, c.retryTopic(n+1))
	}
	return t
}

// opts are the client options every client of c shares.
func (c Config) opts() []kgo.Opt {
	opts := []kgo.Opt{kgo.SeedBrokers(c.Brokers...), kgo.ClientID("inventoryd"), kgo.RetryTimeout(10 * time.Second),
		kgo.DialTimeout(3 * time.Second), kgo.RequestTimeoutOverhead(5 * time.Second)}
	if c.TLS != nil {
		opts = append(opts, kgo.DialTLSConfig(c.TLS))
	}
	switch strings.ToUpper(c.SASL.Mechanism) {
	case SASLPlain:
		opts = append(opts, kgo.SASL(plain.Auth{User: c.SASL.User, Pass: c.SASL.Password}.AsMechanism()))
	case SASLScramSHA256:
		opts = append(opts, kgo.SASL(scram.Auth{User: c.SASL.User, Pass: c.SASL.Password}.AsSha256Mechanism()))
	case SASLScramSHA512:
		opts = append(opts, kgo.SASL(scram.Auth{User: c.SASL.User, Pass: c.SASL.Password}.AsSha512Mechanism()))
	}
	return opts
}

// topics creates the topics a client needs when they do not exist, once
// each per process: the broker may have auto-creation off, and the
// checkpoint topic must be compacted.
type topics struct {
	cfg Config

	mu    sync.Mutex
	known map[string]bool
}

func newTopics(cfg Config) *topics { return &topics{cfg: cfg, known: map[string]bool{}} }

// ensure creates names that are missing, with cl's connection.
func (t *topics) ensure(ctx context.Context, cl *kgo.Client, names ...string) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	adm := kadm.NewClient(cl)
	for _, name := range names {
		if t.known[name] {
			continue
		}
		partitions, configs := t.cfg.Partitions, map[string]*string(nil)
		switch {
		case name == t.cfg.checkpointTopic():
			compact := "compact"
			partitions, configs = 1, map[string]*string{"cleanup.policy": &compact}
		case strings.HasPrefix(name, t.cfg.Prefix+".outcomes"), name == t.cfg.deadTopic():
			// Answers are read by their senders; a week is plenty.
			week := strconv.FormatInt((7 * 24 * time.Hour).Milliseconds(), 10)
			configs = map[string]*string{"retention.ms": &week}
		}
		resp, err := adm.CreateTopic(ctx, partitions, t.cfg.ReplicationFactor, configs, name)
		if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) && !errors.Is(resp.Err, kerr.TopicAlreadyExists) {
			return fmt.Errorf("kafkabroker: create topic %s: %w", name, err)
		}
		t.known[name] = true
	}
	return nil
}

// Headers the adapter sets.
const (
	// HeaderSequence is an event's ledger sequence; HeaderMessageID its
	// ID as the other brokers give it (the sequence, alert-<sequence> for
	// an alert's copy).
	HeaderSequence  = "inventory-sequence"
	HeaderMessageID = "inventory-message-id"
	// HeaderAttempt is the attempt a command record's first delivery is
	// (absent: 1), set on a retry's copy; HeaderDue is when that copy may
	// run (Unix milliseconds).
	HeaderAttempt = "inventory-attempt"
	HeaderDue     = "inventory-due"
	// HeaderDeadReason and HeaderAttempts describe a dead letter.
	HeaderDeadReason = "inventory-dead-reason"
	HeaderAttempts   = "inventory-attempts"
)

// header returns the value of a record's header, or "".
func header(r *kgo.Record, key string) string {
	for _, h := range r.Headers {
		if h.Key == key {
			return string(h.Value)
		}
	}
	return ""
}
