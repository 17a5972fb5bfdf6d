package kafkabroker_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shopstack/inventory/internal/broker"
	"github.com/shopstack/inventory/internal/broker/brokertest"
	"github.com/shopstack/inventory/internal/broker/kafkabroker"
	"github.com/shopstack/inventory/internal/testenv/kafkatest"
)

// The suite runs against kfake, franz-go's in-process Kafka cluster (the
// Kafka protocol, transactions and consumer groups included): no Kafka
// broker can be installed on the machines the tests run on.
func TestConformance(t *testing.T) {
	c := kafkatest.Start(t)
	brokertest.Run(t, brokertest.Backend{New: func(t *testing.T) brokertest.Namespace { return newNamespace(t, c.Addrs) }, Dedupes: true})
}

var names atomic.Int64

// namespace is one test's topics and group on a cluster.
type namespace struct {
	cfg    kafkabroker.Config
	client *kafkabroker.Client
}

func newNamespace(t *testing.T, addrs []string) *namespace {
	t.Helper()
	prefix := fmt.Sprintf("t%d", names.Add(1))
	cfg := kafkabroker.ConfigFor(addrs, prefix, nil)
	cfg.Partitions = 3
	client := kafkabroker.NewClient(cfg)
	t.Cleanup(client.Close)
	return &namespace{cfg: cfg, client: client}
}

func (n *namespace) Publisher(t *testing.T) broker.Publisher {
	p, err := kafkabroker.New(n.cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p
}

func (n *namespace) Commands(t *testing.T) broker.CommandSource {
	c, err := kafkabroker.NewCommands(n.cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func (n *namespace) Events(t *testing.T, want int) []brokertest.Received {
	t.Helper()
	return readEvents(t, n.client, want)
}

// readEvents reads the committed events from the start until want stock
// events have come or 30 s have passed.
func readEvents(t *testing.T, client *kafkabroker.Client, want int) []brokertest.Received {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch, err := client.Events(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var got []brokertest.Received
	stock := 0
	deadline := time.After(30 * time.Second)
	for stock < want {
		select {
		case e := <-ch:
			got = append(got, brokertest.Received{Alert: e.Alert, ID: e.ID, Data: e.Data})
			if !e.Alert {
				stock++
			}
		case <-deadline:
			return got
		}
	}
	// Anything more (a duplicate) shows within a moment.
	for {
		select {
		case e := <-ch:
			got = append(got, brokertest.Received{Alert: e.Alert, ID: e.ID, Data: e.Data})
		case <-time.After(300 * time.Millisecond):
			return got
		}
	}
}

func (n *namespace) Send(t *testing.T, data []byte, header map[string]string) {
	if err := n.client.Send(context.Background(), data, header); err != nil {
		t.Error(err)
	}
}

func (n *namespace) Outcomes(t *testing.T) <-chan []byte {
	return brokertest.Open(t, func(ctx context.Context) (<-chan []byte, error) { return n.client.Outcomes(ctx, "") })
}

func (n *namespace) DeadLetters(t *testing.T) <-chan broker.DeadLetter {
	return brokertest.Open(t, n.client.DeadLetters)
}
