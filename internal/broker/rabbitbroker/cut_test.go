package rabbitbroker_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shopstack/inventory/internal/app"
	"github.com/shopstack/inventory/internal/broker"
	"github.com/shopstack/inventory/internal/broker/brokertest"
	"github.com/shopstack/inventory/internal/broker/rabbitbroker"
	"github.com/shopstack/inventory/internal/gormstore"
	"github.com/shopstack/inventory/internal/inventory"
	"github.com/shopstack/inventory/internal/testenv"
	"github.com/shopstack/inventory/internal/testenv/gormstoretest"
	"github.com/shopstack/inventory/internal/testenv/inventorytest"
)

// viaProxy returns cfg reaching the broker through a proxy of t's own,
// which the test may cut.
func viaProxy(t *testing.T, cfg rabbitbroker.Config) (rabbitbroker.Config, *testenv.Proxy) {
	t.Helper()
	u, err := url.Parse(cfg.URL)
	if err != nil {
		t.Fatal(err)
	}
	target := u.Host
	if u.Port() == "" {
		target = net.JoinHostPort(u.Hostname(), "5672")
	}
	proxy, err := testenv.NewProxy(target)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(proxy.Close)
	u.Host = proxy.Addr()
	cfg.URL = u.String()
	return cfg, proxy
}

func newService(t *testing.T) (*app.Service, *gormstore.Store) {
	t.Helper()
	st := gormstoretest.Open(t, gormstore.SQLite)
	svc := inventorytest.Start(t, st, app.Config{})
	return svc, st
}

func newProduct(t *testing.T, svc *app.Service, stock int64) int64 {
	t.Helper()
	p, err := svc.CreateProduct(context.Background(), inventory.NewProduct{SKU: "RMQ", Name: "R", Price: 1, InitialStock: stock})
	if err != nil {
		t.Fatal(err)
	}
	return p.Product.ID
}

func newClient(t *testing.T, cfg rabbitbroker.Config) *rabbitbroker.Client {
	t.Helper()
	c, err := rabbitbroker.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// warnings counts the records logged at Warn or above.
type warnings struct{ n atomic.Int64 }

func (w *warnings) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelWarn }
func (w *warnings) Handle(context.Context, slog.Record) error    { w.n.Add(1); return nil }
func (w *warnings) WithAttrs([]slog.Attr) slog.Handler           { return w }
func (w *warnings) WithGroup(string) slog.Handler                { return w }

// run runs fn until the returned stop.
func run(fn func(ctx context.Context)) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); fn(ctx) }()
	return func() { cancel(); <-done }
}

// TestEventsAcrossConnectionCut: the publisher's connection is cut while
// sales go on; after the consumer's dedupe, the events are the ledger.
func TestEventsAcrossConnectionCut(t *testing.T) {
	cfg := mustConfig(t)
	pcfg, proxy := viaProxy(t, cfg)
	svc, st := newService(t)
	id := newProduct(t, svc, 10_000)
	pub, err := rabbitbroker.New(pcfg)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = pub.Close() }()
	var failures warnings
	r := &broker.Relay{Ledger: st, Publisher: pub, Poll: 5 * time.Millisecond, Log: slog.New(&failures)}
	stop := run(r.Run)
	defer stop()

	var sold atomic.Int64
	done := make(chan error, 1)
	go func() {
		for range 300 {
			if _, err := svc.StockOut(context.Background(), inventory.StockChange{ProductID: id, Quantity: 1}); err != nil {
				done <- err
				return
			}
			sold.Add(1)
			time.Sleep(time.Millisecond)
		}
		done <- nil
	}()
	testenv.Eventually(t, "100 sales before the cut", func() bool { return sold.Load() >= 100 })
	proxy.Cut()
	time.Sleep(300 * time.Millisecond) // sales go on while the broker is out of reach
	proxy.Restore()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	page, err := st.Movements(context.Background(), inventory.MovementQuery{HasAfter: true, Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	var want []int64
	for _, m := range page.Movements {
		want = append(want, m.Seq)
	}
	got, received := readEvents(t, newClient(t, cfg), len(want))
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("events (deduplicated) %d, ledger %d:\nevents %v\nledger %v", len(got), len(want), got, want)
	}
	if failures.n.Load() == 0 {
		t.Fatal("the relay never failed: the cut missed it")
	}
	t.Logf("%d events received for %d changes; the relay failed %d times", received, len(want), failures.n.Load())
}

// readEvents reads the events queue until it has want distinct stock
// events (or 30 s pass) and returns their sequences as a consumer that
// drops what it has seen keeps them, and how many it received.
func readEvents(t *testing.T, c *rabbitbroker.Client, want int) (seqs []int64, received int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	msgs, err := c.Events(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	var seen int64
	for m := range msgs {
		received++
		var ev struct{ Sequence int64 }
		if err := json.Unmarshal(m.Data, &ev); err != nil || m.ID != strconv.FormatInt(ev.Sequence, 10) {
			t.Fatalf("event %q: %s (%v)", m.ID, m.Data, err)
		}
		if ev.Sequence > seen {
			seen = ev.Sequence
			seqs = append(seqs, ev.Sequence)
		}
		if len(seqs) == want {
			break
		}
	}
	return seqs, received
}

// TestCommandsAcrossConnectionCut: the consumer's connection is cut while
// it handles a burst; every command is answered, and stock is exact.
func TestCommandsAcrossConnectionCut(t *testing.T) {
	const commands, units = 300, 200
	cfg := mustConfig(t)
	ccfg, proxy := viaProxy(t, cfg)
	svc, _ := newService(t)
	id := newProduct(t, svc, units)
	client := newClient(t, cfg)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	outcomes, err := client.Outcomes(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	src, err := rabbitbroker.NewCommands(ccfg)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = src.Close() }()
	var failures warnings
	c := &broker.Consumer{Service: svc, Principal: inventory.Principal{Name: "orders", Role: inventory.RoleOperator},
		Retry: cfg.Retry, InFlight: 16, Log: slog.New(&failures)}
	stop := run(func(ctx context.Context) { c.Run(ctx, src) })
	defer stop()

	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := w; i < commands; i += 4 {
				data, _ := json.Marshal(broker.Command{ID: "k" + strconv.Itoa(i), Type: broker.CommandStockOut, ProductID: broker.ID(id), Quantity: 1})
				if err := client.Send(ctx, data, nil); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	got := map[string]broker.Outcome{}
	received := 0
	timeout := time.After(60 * time.Second)
	for len(got) < commands {
		select {
		case data := <-outcomes:
			received++
			var o broker.Outcome
			if err := json.Unmarshal(data, &o); err != nil {
				t.Fatalf("outcome %s: %v", data, err)
			}
			if prev, dup := got[o.CommandID]; dup && (prev.OK != o.OK || prev.Code != o.Code) {
				t.Fatalf("command %s answered %+v, then %+v", o.CommandID, prev, o)
			}
			got[o.CommandID] = o
			if len(got) == commands/3 && failures.n.Load() == 0 {
				proxy.Cut()
				time.Sleep(300 * time.Millisecond)
				proxy.Restore()
			}
		case <-timeout:
			t.Fatalf("%d commands of %d answered after 60s", len(got), commands)
		}
	}
	wg.Wait()
	brokertest.WantSold(t, got, units)
	if s := brokertest.Stock(t, svc, id); s != 0 {
		t.Fatalf("stock %d left, want 0", s)
	}
	if failures.n.Load() == 0 {
		t.Fatal("the consumer never failed: the cut missed it")
	}
	t.Logf("%d outcomes for %d commands; the consumer failed %d times", received, commands, failures.n.Load())
}
