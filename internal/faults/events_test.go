//go:build faults

package faults

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/shopstack/inventory/internal/broker/kafkabroker"
	"github.com/shopstack/inventory/internal/testenv/natstest"
)

// event is a stock event as a broker's consumer reads it: its sequence,
// and the unit within which the broker keeps order.
type event struct {
	seq   int64
	order int32
}

// eventReader reads every stock event the broker holds, once it holds at
// least want (or gives up trying).
type eventReader func(t *testing.T, want int) []event

// natsStream reads the default stream INVENTORY on the server at url: one
// order.
func natsStream(url string) eventReader {
	return func(t *testing.T, _ int) []event {
		nc, err := nats.Connect(url)
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		var out []event
		for _, seq := range natstest.StockSequences(t, nc, "INVENTORY") {
			out = append(out, event{seq: seq})
		}
		return out
	}
}

// kafkaStream reads the default namespace's events from the cluster,
// read_committed, from the start: order per partition.
func kafkaStream(addrs []string) eventReader {
	return func(t *testing.T, want int) []event {
		c := kafkabroker.NewClient(kafkabroker.ConfigFor(addrs, "inventory", nil))
		defer c.Close()
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		ch, err := c.Events(ctx)
		if err != nil {
			t.Fatalf("kafka at %s: %v", strings.Join(addrs, ","), err)
		}
		var out []event
		quiet := 2 * time.Second
		for {
			select {
			case e := <-ch:
				if !e.Alert {
					out = append(out, event{seq: e.Seq, order: e.Partition})
				}
				if len(out) >= want {
					quiet = 500 * time.Millisecond // a duplicate would show within it
				}
				continue
			case <-time.After(quiet):
			}
			return out
		}
	}
}
