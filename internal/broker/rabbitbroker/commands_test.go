package rabbitbroker_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/shopstack/inventory/internal/broker"
	"github.com/shopstack/inventory/internal/broker/rabbitbroker"
)

// TestAttemptCountsRedeliveries: a command whose consumer died holding it
// comes back as the next attempt (the quorum queue's delivery count).
func TestAttemptCountsRedeliveries(t *testing.T) {
	cfg := mustConfig(t)
	client := newClient(t, cfg)
	if err := client.Send(context.Background(), []byte(`{"id":"a1"}`), map[string]string{"traceparent": "tp"}); err != nil {
		t.Fatal(err)
	}
	// A consumer that dies: it takes the command and closes its channel.
	conn, err := amqp.Dial(cfg.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = conn.Close() }()
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	if _, ok, err := ch.Get(cfg.CommandQueue, false); err != nil || !ok {
		t.Fatalf("get: %v %v", ok, err)
	}
	_ = ch.Close()

	src, err := rabbitbroker.NewCommands(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = src.Close() }()
	got := make(chan broker.Delivery, 1)
	stop := run(func(ctx context.Context) {
		_ = src.Consume(ctx, 1, func(_ context.Context, d broker.Delivery) broker.Disposition {
			got <- d
			return broker.Disposition{CommandID: "a1"}
		})
	})
	defer stop()
	select {
	case d := <-got:
		if d.Attempt != 2 || d.Header["traceparent"] != "tp" {
			t.Fatalf("delivery: attempt %d, header %v; want attempt 2 and the traceparent", d.Attempt, d.Header)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("not delivered again")
	}
}

// TestOutcomeReplyTo: an outcome goes to the queue its command names if
// it exists and is not the adapter's own, else to the default queue.
func TestOutcomeReplyTo(t *testing.T) {
	cfg := mustConfig(t)
	mine := cfg.OutcomeQueue + ".mine"
	t.Cleanup(func() {
		if conn, err := amqp.Dial(cfg.URL); err == nil {
			withChannel(t, conn, func(ch *amqp.Channel) error { _, err := ch.QueueDelete(mine, false, false, false); return err })
			_ = conn.Close()
		}
	})
	client := newClient(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	mineOut, err := client.Outcomes(ctx, mine)
	if err != nil {
		t.Fatal(err)
	}
	defaultOut, err := client.Outcomes(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []broker.Command{{ID: "r1", ReplyTo: mine}, {ID: "r2", ReplyTo: cfg.OutcomeQueue + ".nowhere"}, {ID: "r3", ReplyTo: cfg.CommandQueue}} {
		data, _ := json.Marshal(c)
		if err := client.Send(ctx, data, nil); err != nil {
			t.Fatal(err)
		}
	}
	src, err := rabbitbroker.NewCommands(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = src.Close() }()
	stop := run(func(ctx context.Context) {
		_ = src.Consume(ctx, 4, func(_ context.Context, d broker.Delivery) broker.Disposition {
			var c broker.Command
			_ = json.Unmarshal(d.Data, &c)
			return broker.Disposition{CommandID: c.ID, ReplyTo: c.ReplyTo, Outcome: []byte(c.ID)}
		})
	})
	defer stop()
	got := map[string]string{}
	for len(got) < 3 {
		select {
		case b := <-mineOut:
			got[string(b)] = "mine"
		case b := <-defaultOut:
			got[string(b)] = "default"
		case <-ctx.Done():
			t.Fatalf("outcomes %v after 30s", got)
		}
	}
	if got["r1"] != "mine" || got["r2"] != "default" || got["r3"] != "default" {
		t.Fatalf("outcomes went to %v; want r1 to mine, r2 (no such queue) and r3 (the command queue) to the default", got)
	}
}
