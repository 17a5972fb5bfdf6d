package natsbroker_test

import (
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/shopstack/inventory/internal/natstest"
)

// TestEventsAcrossBrokerRestart: the broker is killed and started again
// while sales go on; every change reaches the stream once, in order.
func TestEventsAcrossBrokerRestart(t *testing.T) {
	srv := natstest.Start(t)
	t.Setenv("INVENTORY_TEST_NATS_URL", srv.URL) // newEnv's connection
	e := newEnv(t)
	e.nc.Close()
	// The relay's connection reconnects for ever, as the server's does.
	nc, err := nats.Connect(srv.URL, nats.RetryOnFailedConnect(true), nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	e.nc = nc
	id := e.product(t, 10_000, 0)
	stop := e.relay(t)
	defer stop()

	var sold atomic.Int64
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range 300 {
			e.sell(t, id, 1)
			sold.Add(1)
			time.Sleep(time.Millisecond)
		}
	}()
	for sold.Load() < 100 {
		time.Sleep(5 * time.Millisecond)
	}
	srv.Kill(t)
	time.Sleep(300 * time.Millisecond) // sales go on while the broker is away
	srv.Restart(t)
	<-done
	want := e.ledger(t)
	stock := e.stream(t, len(want))
	if fmt.Sprint(stock) != fmt.Sprint(want) {
		t.Fatalf("stream holds %d events, ledger %d:\nstream %v\nledger %v", len(stock), len(want), stock, want)
	}
}
