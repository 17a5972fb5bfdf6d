package natsbroker_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/shopstack/inventory/internal/broker"
	"github.com/shopstack/inventory/internal/broker/brokertest"
	"github.com/shopstack/inventory/internal/broker/natsbroker"
	"github.com/shopstack/inventory/internal/testenv"
	"github.com/shopstack/inventory/internal/testenv/natstest"
)

func TestConformance(t *testing.T) {
	brokertest.Run(t, brokertest.Backend{New: newNamespace, Dedupes: true})
}

// namespace is one test's streams on the machine's JetStream.
type namespace struct {
	nc     *nats.Conn
	cfg    natsbroker.Config
	client *natsbroker.Client
}

func newNamespace(t *testing.T) brokertest.Namespace {
	t.Helper()
	nc, err := nats.Connect(natsURL(), nats.Timeout(2*time.Second))
	if err != nil {
		testenv.SkipOrFail(t, "NATS is not reachable at "+natsURL()+": "+err.Error())
		return nil
	}
	t.Cleanup(nc.Close)
	name := fmt.Sprintf("INVTEST_%d_%d", os.Getpid(), time.Now().UnixNano())
	cfg := natsbroker.Config{Stream: name, Prefix: strings.ToLower(name), Consumer: "c-" + strings.ToLower(name)}
	t.Cleanup(func() {
		js, _ := jetstream.New(nc)
		for _, s := range []string{name, name + "_COMMANDS", name + "_OUTCOMES"} {
			_ = js.DeleteStream(context.Background(), s)
		}
	})
	client, err := natsbroker.NewClient(nc, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return &namespace{nc: nc, cfg: cfg, client: client}
}

func (n *namespace) Publisher(t *testing.T) broker.Publisher {
	p, err := natsbroker.New(n.nc, n.cfg)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func (n *namespace) Commands(t *testing.T) broker.CommandSource {
	c, err := natsbroker.NewCommands(n.nc, n.cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func (n *namespace) Events(t *testing.T, want int) []brokertest.Received {
	t.Helper()
	var got []brokertest.Received
	testenv.Poll(30*time.Second, func() bool {
		got = nil
		stock := 0
		for _, m := range natstest.ReadStream(t, n.nc, n.cfg.Stream) {
			r := brokertest.Received{ID: m.ID, Data: m.Data, Alert: strings.HasPrefix(m.Subject, n.cfg.Prefix+".alert.")}
			if !r.Alert {
				stock++
			}
			got = append(got, r)
		}
		return stock >= want
	})
	return got
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
