package transport

import (
	"bytes"
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/shopstack/inventory/internal/broker"
	"github.com/shopstack/inventory/internal/broker/kafkabroker"
)

// TestKafkaRow: a kafka row as -compare runs it without -kafka-brokers,
// on kfake in the test's process. A stock-out sent through Kafka gets its
// outcome from the server's consumer (the adapter's, answering every
// command itself here); the run leaves nothing on the cluster (the
// sender's reply topic is gone when it closes, the server's topics and
// group after the row's clean-up); and stopping the emulation closes it.
func TestKafkaRow(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	bt, stop, err := EmulateKafka()
	if err != nil {
		t.Fatal(err)
	}
	stopped := false
	defer func() {
		if !stopped {
			stop()
		}
	}()
	if !bt.Emulated || bt.Kind != Kafka || len(bt.seeds()) != 3 {
		t.Fatalf("emulated broker %+v: want Kafka on three seed brokers", bt)
	}
	cleanup, err := bt.Claim(ctx)
	if err != nil {
		t.Fatal(err)
	}
	cleaned := false
	defer func() {
		if !cleaned {
			_ = cleanup()
		}
	}()

	// The server's side: the adapter's consumer group, selling every unit.
	cmds, err := kafkabroker.NewCommands(bt.kafkaConfig(), nil)
	if err != nil {
		t.Fatal(err)
	}
	cctx, stopConsuming := context.WithCancel(ctx)
	consumed := make(chan error, 1)
	go func() {
		consumed <- cmds.Consume(cctx, 8, func(_ context.Context, d broker.Delivery) broker.Disposition {
			var c broker.Command
			_ = json.Unmarshal(d.Data, &c)
			out, _ := json.Marshal(broker.Outcome{CommandID: c.ID, OK: true, Sequence: 1})
			return broker.Disposition{CommandID: c.ID, Outcome: out, ReplyTo: c.ReplyTo}
		})
	}()

	c := New(1, 30*time.Second)
	if err := c.Speak(Kafka, "", Broker{Kind: NATS, URL: bt.URL}); err == nil {
		t.Error("commands through Kafka to a NATS broker: no error")
	}
	if err := c.Speak(Kafka, "", bt); err != nil {
		t.Fatal(err)
	}
	replyTo := bt.kafkaConfig().OutcomeTopic(c.commands.replyTo)
	var buf bytes.Buffer
	for i := range 3 {
		if got := c.StockOut(ctx, 0, &buf, "7", "invbench-test-"+string(rune('a'+i))); got != OK {
			t.Fatalf("stock-out %d: %q, want %q", i, got, OK)
		}
	}
	// A client of its own for each look: an admin client's topic list is
	// its cached metadata.
	admin := func() *kadm.Client {
		t.Helper()
		adm, err := bt.kafkaAdmin()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(adm.Close)
		return adm
	}
	topics := func() []string {
		t.Helper()
		ts, err := admin().ListTopics(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, n := range ts.Names() {
			if strings.HasPrefix(n, bt.Namespace+".") {
				names = append(names, n)
			}
		}
		return names
	}
	if got := topics(); !slices.Contains(got, replyTo) || !slices.Contains(got, bt.Namespace+".commands") {
		t.Errorf("topics %v: want the commands and %s", got, replyTo)
	}
	if err := c.Speak(GraphQL, "", Broker{}); err != nil {
		t.Fatal(err)
	}
	if got := topics(); slices.Contains(got, replyTo) {
		t.Errorf("the reply topic %s outlived its sender", replyTo)
	}
	stopConsuming()
	if err := <-consumed; err != nil {
		t.Errorf("consume: %v", err)
	}

	cleaned = true
	if err := cleanup(); err != nil {
		t.Fatal(err)
	}
	if got := topics(); len(got) > 0 {
		t.Errorf("topics %v outlived the clean-up", got)
	}
	groups, err := admin().ListGroups(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if g := bt.kafkaConfig().Group; slices.Contains(groups.Groups(), g) {
		t.Errorf("group %s outlived the clean-up", g)
	}
	if err := cleanup(); err != nil {
		t.Errorf("a second clean-up: %v", err)
	}

	stopped = true
	stop()
	if _, err := bt.Claim(ctx); err == nil {
		t.Error("the emulation answers after it stopped")
	}
}
