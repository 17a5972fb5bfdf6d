package natsbroker_test

import (
	"context"
	"encoding/json"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/shopstack/inventory/internal/broker"
	"github.com/shopstack/inventory/internal/broker/brokertest"
	"github.com/shopstack/inventory/internal/broker/natsbroker"
	"github.com/shopstack/inventory/internal/inventory"
	"github.com/shopstack/inventory/internal/testenv"
	"github.com/shopstack/inventory/internal/testenv/natstest"
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
	testenv.Eventually(t, "100 sales before the kill", func() bool { return sold.Load() >= 100 })
	srv.Kill(t)
	time.Sleep(300 * time.Millisecond) // sales go on while the broker is away
	srv.Restart(t)
	<-done
	want := brokertest.Ledger(t, e.store)
	stock := e.stream(t, len(want))
	if fmt.Sprint(stock) != fmt.Sprint(want) {
		t.Fatalf("stream holds %d events, ledger %d:\nstream %v\nledger %v", len(stock), len(want), stock, want)
	}
}

// TestCommandsAcrossBrokerRestart: the broker is killed and started again
// while an order service sends a burst of stock-outs (resending a command
// whose send failed, with the same ID); every command is answered and
// the stock sold exactly once per OK.
func TestCommandsAcrossBrokerRestart(t *testing.T) {
	const commands, units = 300, 200
	srv := natstest.Start(t)
	t.Setenv("INVENTORY_TEST_NATS_URL", srv.URL)
	e := newEnv(t)
	e.nc.Close()
	dial := func() *nats.Conn {
		nc, err := nats.Connect(srv.URL, nats.RetryOnFailedConnect(true), nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(nc.Close)
		return nc
	}
	id := e.product(t, units, 0)
	src, err := natsbroker.NewCommands(dial(), e.cfg)
	if err != nil {
		t.Fatal(err)
	}
	c := &broker.Consumer{Service: e.svc, Principal: inventory.Principal{Name: "orders", Role: inventory.RoleOperator},
		Retry: []time.Duration{50 * time.Millisecond, 100 * time.Millisecond}, InFlight: 16}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan struct{})
	go func() { defer close(done); c.Run(ctx, src) }()
	defer func() { cancel(); <-done }()

	client, err := natsbroker.NewClient(dial(), e.cfg)
	if err != nil {
		t.Fatal(err)
	}
	outcomes, err := client.Outcomes(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	var sent atomic.Int64
	go func() {
		for i := range commands {
			data, _ := json.Marshal(broker.Command{ID: fmt.Sprintf("r%d", i), Type: broker.CommandStockOut, ProductID: broker.ID(id), Quantity: 1})
			for ctx.Err() == nil {
				sctx, scancel := context.WithTimeout(ctx, 2*time.Second)
				err := client.Send(sctx, data, nil)
				scancel()
				if err == nil {
					break
				}
				time.Sleep(50 * time.Millisecond) // the broker is away: send again, same ID
			}
			sent.Add(1)
		}
	}()
	got := map[string]broker.Outcome{}
	restarted := false
	var restartedAt time.Time
	start := time.Now()
	timeout := time.After(2 * time.Minute)
	for len(got) < commands {
		select {
		case data := <-outcomes:
			var o broker.Outcome
			if err := json.Unmarshal(data, &o); err != nil {
				t.Fatal(err)
			}
			if _, dup := got[o.CommandID]; !dup {
				got[o.CommandID] = o
			}
			if !restarted && len(got) == commands/3 {
				restarted = true
				t.Logf("%d answered; killing the broker at %v", len(got), time.Since(start).Round(time.Millisecond))
				srv.Kill(t)
				time.Sleep(300 * time.Millisecond)
				srv.Restart(t)
				restartedAt = time.Now()
			}
		case <-timeout:
			t.Fatalf("%d commands of %d answered after 2 minutes (%d sent)", len(got), commands, sent.Load())
		}
	}
	t.Logf("every command answered %v after the broker came back", time.Since(restartedAt).Round(time.Millisecond))
	brokertest.WantSold(t, got, units)
	if s := brokertest.Stock(t, e.svc, id); s != 0 {
		t.Fatalf("stock %d, want 0", s)
	}
}
