package rabbitbroker_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/shopstack/inventory/internal/broker"
	"github.com/shopstack/inventory/internal/broker/brokertest"
	"github.com/shopstack/inventory/internal/broker/rabbitbroker"
	"github.com/shopstack/inventory/internal/testenv"
)

// rabbitURL is the broker the tests use (the machine's own, with names
// unique to each test).
func rabbitURL() string {
	if u := os.Getenv("INVENTORY_TEST_RABBITMQ_URL"); u != "" {
		return u
	}
	return "amqp://guest:guest@127.0.0.1:5672/"
}

// mustConfig returns names of t's own on the broker, deleted when t ends,
// with a retry schedule as short as the suite's consumer's. It skips t
// when the broker is not reachable.
func mustConfig(t *testing.T) rabbitbroker.Config {
	t.Helper()
	admin, err := amqp.DialConfig(rabbitURL(), amqp.Config{Dial: amqp.DefaultDial(2 * time.Second)})
	if err != nil {
		testenv.SkipOrFail(t, "RabbitMQ is not reachable at "+redacted(rabbitURL())+": "+err.Error())
		return rabbitbroker.Config{}
	}
	name := fmt.Sprintf("invtest.%d.%d", os.Getpid(), time.Now().UnixNano())
	cfg := rabbitbroker.ConfigFor(rabbitURL(), name, []time.Duration{50 * time.Millisecond, 100 * time.Millisecond})
	t.Cleanup(func() {
		defer func() { _ = admin.Close() }()
		for _, q := range cfg.Queues() {
			withChannel(t, admin, func(ch *amqp.Channel) error { _, err := ch.QueueDelete(q, false, false, false); return err })
		}
		withChannel(t, admin, func(ch *amqp.Channel) error { return ch.ExchangeDelete(cfg.Exchange, false, false) })
	})
	return cfg
}

// withChannel runs fn on a channel of its own (a failure closes it).
func withChannel(t *testing.T, conn *amqp.Connection, fn func(*amqp.Channel) error) {
	t.Helper()
	ch, err := conn.Channel()
	if err == nil {
		err = fn(ch)
		_ = ch.Close()
	}
	if err != nil {
		t.Logf("clean-up: %v", err)
	}
}

func redacted(u string) string {
	if p, err := url.Parse(u); err == nil {
		return p.Redacted()
	}
	return "the configured URL"
}

func TestConformance(t *testing.T) {
	brokertest.Run(t, brokertest.Backend{New: newNamespace, Dedupes: false})
}

// namespace is one test's exchange and queues on the machine's RabbitMQ.
type namespace struct {
	cfg    rabbitbroker.Config
	client *rabbitbroker.Client

	once   sync.Once
	mu     sync.Mutex
	events []brokertest.Received
	seqs   map[int64]bool // the stock events' sequences received
}

func newNamespace(t *testing.T) brokertest.Namespace {
	t.Helper()
	cfg := mustConfig(t)
	client, err := rabbitbroker.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = client.Close() })
	return &namespace{cfg: cfg, client: client, seqs: map[int64]bool{}}
}

func (n *namespace) Publisher(t *testing.T) broker.Publisher {
	p, err := rabbitbroker.New(n.cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	return p
}

func (n *namespace) Commands(t *testing.T) broker.CommandSource {
	c, err := rabbitbroker.NewCommands(n.cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// Events consumes the events queue from the first call on, and waits
// until n distinct stock events are in.
func (n *namespace) Events(t *testing.T, want int) []brokertest.Received {
	t.Helper()
	n.once.Do(func() { n.consumeEvents(t) })
	var got []brokertest.Received
	testenv.Poll(30*time.Second, func() bool {
		n.mu.Lock()
		defer n.mu.Unlock()
		got = append([]brokertest.Received(nil), n.events...)
		return len(n.seqs) >= want
	})
	return got
}

func (n *namespace) consumeEvents(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	msgs, err := n.client.Events(ctx, "")
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan struct{})
	t.Cleanup(func() { cancel(); <-done })
	go func() {
		defer close(done)
		for m := range msgs {
			r := brokertest.Received{ID: m.ID, Data: m.Data, Alert: strings.HasPrefix(m.RoutingKey, "alert.")}
			var ev struct{ Sequence int64 }
			_ = json.Unmarshal(m.Data, &ev) // the suite checks the event
			n.mu.Lock()
			n.events = append(n.events, r)
			if !r.Alert {
				n.seqs[ev.Sequence] = true
			}
			n.mu.Unlock()
		}
	}()
}

func (n *namespace) Send(t *testing.T, data []byte, header map[string]string) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := n.client.Send(ctx, data, header); err != nil {
		t.Error(err) // Fatal is not allowed where the suite sends from goroutines
	}
}

func (n *namespace) Outcomes(t *testing.T) <-chan []byte {
	return brokertest.Open(t, func(ctx context.Context) (<-chan []byte, error) { return n.client.Outcomes(ctx, "") })
}

func (n *namespace) DeadLetters(t *testing.T) <-chan broker.DeadLetter {
	return brokertest.Open(t, n.client.DeadLetters)
}

// TestPublishUnroutableFails: with no events queue and nothing bound, an
// event is returned, and Publish fails rather than lose it.
func TestPublishUnroutableFails(t *testing.T) {
	cfg := mustConfig(t)
	cfg.EventsQueue = "-"
	p, err := rabbitbroker.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = p.Close() }()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if last, err := p.Last(ctx); err != nil || last != 0 {
		t.Fatalf("Last: %d, %v; want 0", last, err)
	}
	err = p.Publish(ctx, 0, []broker.Event{{Seq: 1, ProductID: 7, Data: []byte(`{}`)}})
	if err == nil || !strings.Contains(err.Error(), "no queue took") {
		t.Fatalf("Publish: %v, want the message returned", err)
	}
	if err := p.Publish(ctx, 0, []broker.Event{{Seq: 1, ProductID: 7, Data: []byte(`{}`)}}); err == nil {
		t.Fatal("Publish after a failure, without Last: no error")
	}
}
