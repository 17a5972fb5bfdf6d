package transport

import (
	"context"
	"errors"
	"os"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/shopstack/inventory/internal/broker/rabbitbroker"
	"github.com/shopstack/inventory/internal/testenv"
)

// rabbitURLForTest is the machine's RabbitMQ, or INVENTORY_TEST_RABBITMQ_URL.
func rabbitURLForTest() string {
	if url := os.Getenv("INVENTORY_TEST_RABBITMQ_URL"); url != "" {
		return url
	}
	return "amqp://guest:guest@127.0.0.1:5672/"
}

// TestRabbitMQCleanup: a row run leaves nothing on RabbitMQ. The sender's
// reply queue is gone when it closes; the exchange and every queue a
// server and the client declare under the row's prefix are gone after
// the row's clean-up.
func TestRabbitMQCleanup(t *testing.T) {
	bt := Row(RabbitMQ, rabbitURLForTest())
	cleanup, err := bt.Claim(context.Background())
	if err != nil {
		testenv.SkipOrFail(t, "RabbitMQ is not reachable at "+bt.URL+": "+err.Error())
	}
	cleaned := false
	defer func() {
		if !cleaned {
			_ = cleanup()
		}
	}()
	cfg := bt.rabbitConfig()
	// What a server declares: the events' exchange and queues (Last), and
	// the command queues (which the client's Send declares too).
	pub, err := rabbitbroker.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := pub.Last(ctx); err != nil {
		t.Fatal(err)
	}
	_ = pub.Close()
	s, err := dialRabbitMQ(bt)
	if err != nil {
		t.Fatal(err)
	}
	sctx, scancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer scancel()
	if got := s.send(sctx, "no-server", []byte(`{}`)); got != NoAnswer { // no server: no outcome
		t.Errorf("a command without a server: %q, want %q", got, NoAnswer)
	}

	conn, err := dialAMQP(bt.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	for _, q := range append(cfg.Queues(), s.replyTo) {
		if !rabbitExists(t, conn, q, false) {
			t.Errorf("queue %s was not declared", q)
		}
	}
	s.close()
	if rabbitExists(t, conn, s.replyTo, false) {
		t.Errorf("the reply queue %s outlived its sender", s.replyTo)
	}
	cleaned = true
	if err := cleanup(); err != nil {
		t.Fatal(err)
	}
	for _, q := range cfg.Queues() {
		if rabbitExists(t, conn, q, false) {
			t.Errorf("queue %s outlived the clean-up", q)
		}
	}
	if rabbitExists(t, conn, cfg.Exchange, true) {
		t.Errorf("exchange %s outlived the clean-up", cfg.Exchange)
	}
	if err := cleanup(); err != nil {
		t.Errorf("a second clean-up: %v", err)
	}
}

// rabbitExists reports whether a queue (or an exchange) of that name
// exists, by declaring it passively on a channel of its own.
func rabbitExists(t *testing.T, conn *amqp.Connection, name string, exchange bool) bool {
	t.Helper()
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = ch.Close() }()
	if exchange {
		err = ch.ExchangeDeclarePassive(name, amqp.ExchangeTopic, true, false, false, false, nil)
	} else {
		_, err = ch.QueueDeclarePassive(name, true, false, false, false, nil)
	}
	var aerr *amqp.Error
	if errors.As(err, &aerr) && aerr.Code == amqp.NotFound {
		return false
	}
	if err != nil {
		t.Fatalf("declare %s passively: %v", name, err)
	}
	return true
}
