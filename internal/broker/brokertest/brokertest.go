// Package brokertest is the conformance suite for brokers: the events a
// broker.Publisher stores and the commands a broker.CommandSource delivers,
// checked against a real service on SQLite and the real broker.
package brokertest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/shopstack/inventory/internal/app"
	"github.com/shopstack/inventory/internal/broker"
	"github.com/shopstack/inventory/internal/gormstore"
	"github.com/shopstack/inventory/internal/inventory"
	"github.com/shopstack/inventory/internal/testenv/gormstoretest"
	"github.com/shopstack/inventory/internal/testenv/inventorytest"
)

// Backend describes the broker under test.
type Backend struct {
	// New returns names on the broker of t's own (streams, exchanges,
	// queues), deleted when t ends.
	New func(t *testing.T) Namespace
	// Dedupes says the broker drops a second copy of an event itself
	// (JetStream's message-ID window); without it, consumers drop events
	// whose sequence they have seen, and the suite does so too.
	Dedupes bool
}

// Namespace is the adapter under test and a client of the broker, on one
// test's names.
type Namespace interface {
	// Publisher returns a new publisher, as a restarted replica makes.
	Publisher(t *testing.T) broker.Publisher
	// Commands returns a new command source, as a restarted replica makes.
	Commands(t *testing.T) broker.CommandSource
	// Events returns every event a consumer of all events has received
	// from the start, in the order received, once at least n are stock
	// events (not alerts) or 30 s have passed.
	Events(t *testing.T, n int) []Received
	// Send publishes a command to the command subject or queue, as an
	// order service would, with header as message headers.
	Send(t *testing.T, data []byte, header map[string]string)
	// Outcomes delivers the outcomes published to the default reply
	// destination, from the first; call it once per namespace.
	Outcomes(t *testing.T) <-chan []byte
	// DeadLetters delivers the dead letters, from the first; call it once
	// per namespace.
	DeadLetters(t *testing.T) <-chan broker.DeadLetter
}

// Open returns what open delivers, reading until t ends; an error fails
// t. Namespaces implement Outcomes and DeadLetters with it.
func Open[T any](t *testing.T, open func(context.Context) (<-chan T, error)) <-chan T {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	ch, err := open(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return ch
}

// Received is an event as a consumer got it.
type Received struct {
	// Alert is true for the copy published as a low-stock alert.
	Alert bool
	// ID is the broker message ID.
	ID   string
	Data []byte
}

// Run checks a broker.
func Run(t *testing.T, b Backend) {
	t.Run("Events/InOrderAcrossPublisherRestart", func(t *testing.T) { testEventsAcrossRestart(t, b) })
	t.Run("Events/TwoPublishersAtOnce", func(t *testing.T) { testTwoPublishers(t, b) })
	t.Run("Commands/Outcomes", func(t *testing.T) { testOutcomes(t, b) })
	t.Run("Commands/TransientFailureAppliedOnce", func(t *testing.T) { testTransient(t, b) })
	t.Run("Commands/PoisonToDeadLetters", func(t *testing.T) { testPoison(t, b) })
	t.Run("Commands/RedeliveredAfterConsumerDies", func(t *testing.T) { testConsumerDies(t, b) })
	t.Run("Commands/TraceContext", func(t *testing.T) { testTraceContext(t, b) })
	t.Run("Commands/HotSKUBurst", func(t *testing.T) { testBurst(t, b) })
	t.Run("Commands/StateCommands", func(t *testing.T) { testStateCommands(t, b) })
	t.Run("Commands/TransferCommands", func(t *testing.T) { testTransferCommands(t, b) })
}

// env is a service on SQLite and a namespace.
type env struct {
	b     Backend
	ns    Namespace
	svc   *app.Service
	store *gormstore.Store
}

func newEnv(t *testing.T, b Backend) *env {
	t.Helper()
	st := gormstoretest.Open(t, gormstore.SQLite)
	svc := inventorytest.Start(t, st, app.Config{})
	return &env{b: b, ns: b.New(t), svc: svc, store: st}
}

func (e *env) product(t *testing.T, sku string, stock, threshold int64) int64 {
	t.Helper()
	p, err := e.svc.CreateProduct(context.Background(), inventory.NewProduct{SKU: sku, Name: sku, Price: 1, InitialStock: stock, Threshold: threshold})
	if err != nil {
		t.Fatal(err)
	}
	return p.Product.ID
}

func (e *env) sell(t *testing.T, id int64, n int) {
	t.Helper()
	for range n {
		if _, err := e.svc.StockOut(context.Background(), inventory.StockChange{ProductID: id, Quantity: 1}); err != nil {
			t.Fatal(err)
		}
	}
}

func (e *env) stock(t *testing.T, id int64) int64 { return Stock(t, e.svc, id) }

// Stock returns a product's units on hand, over its levels.
func Stock(t testing.TB, svc *app.Service, id int64) int64 {
	t.Helper()
	ps, err := svc.ProductStock(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	var n int64
	for _, l := range ps.Levels {
		n += l.Stock
	}
	return n
}

// relay runs a relay with a new publisher until the returned stop.
func (e *env) relay(t *testing.T) (stop func()) {
	t.Helper()
	r := &broker.Relay{Ledger: e.store, Publisher: e.ns.Publisher(t), Poll: 5 * time.Millisecond}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); r.Run(ctx) }()
	return func() { cancel(); <-done }
}

func (e *env) ledger(t *testing.T) []int64 { return Ledger(t, e.store) }

// Ledger returns every sequence of a ledger (up to 1,000), in order.
func Ledger(t testing.TB, l broker.Ledger) []int64 {
	t.Helper()
	page, err := l.Movements(context.Background(), inventory.MovementQuery{HasAfter: true, Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	var seqs []int64
	for _, m := range page.Movements {
		seqs = append(seqs, m.Seq)
	}
	return seqs
}

// events reads the broker until it holds want stock events and returns
// their sequences (deduplicated by sequence when the broker does not) and
// the alerts'. Every event must be SchemaV1 with its sequence as its ID.
func (e *env) events(t *testing.T, want int) (stock, alerts []int64) {
	t.Helper()
	var seen int64
	for _, r := range e.ns.Events(t, want) {
		var ev struct {
			Schema   string
			Sequence int64
		}
		if err := json.Unmarshal(r.Data, &ev); err != nil || ev.Schema != broker.SchemaV1 {
			t.Fatalf("event %s: %s (%v)", r.ID, r.Data, err)
		}
		wantID := strconv.FormatInt(ev.Sequence, 10)
		if r.Alert {
			wantID = "alert-" + wantID
		}
		if r.ID != wantID {
			t.Fatalf("event of sequence %d has message ID %q, want %q", ev.Sequence, r.ID, wantID)
		}
		if r.Alert {
			alerts = append(alerts, ev.Sequence)
			continue
		}
		if !e.b.Dedupes && ev.Sequence <= seen {
			continue // a consumer's dedupe: seen already
		}
		seen = ev.Sequence
		stock = append(stock, ev.Sequence)
	}
	return stock, alerts
}

// testEventsAcrossRestart: every committed change reaches the broker once,
// in sequence order, across a publisher restart with changes committed
// while none runs; the alert goes to the alerts too.
func testEventsAcrossRestart(t *testing.T, b Backend) {
	e := newEnv(t, b)
	id := e.product(t, "EVT", 100, 90)
	stop := e.relay(t)
	e.sell(t, id, 20) // the 11th sale takes available below 90: one alert
	e.events(t, 21)
	stop()
	e.sell(t, id, 15) // committed while no one publishes
	stop = e.relay(t)
	defer stop()
	e.sell(t, id, 5)
	want := e.ledger(t)
	stock, alerts := e.events(t, len(want))
	if fmt.Sprint(stock) != fmt.Sprint(want) {
		t.Fatalf("broker %v,\nledger %v", stock, want)
	}
	if len(alerts) != 1 || alerts[0] != want[11] {
		t.Fatalf("alerts %v, want [%d]", alerts, want[11])
	}
}

// testTwoPublishers: two relays at once (a leader change that overlaps)
// still give each change once, in order, after the dedupe that holds.
func testTwoPublishers(t *testing.T, b Backend) {
	e := newEnv(t, b)
	id := e.product(t, "TWO", 1000, 0)
	var wg sync.WaitGroup
	wg.Go(func() { e.sell(t, id, 200) })
	stopA, stopB := e.relay(t), e.relay(t)
	wg.Wait()
	want := e.ledger(t)
	stock, _ := e.events(t, len(want))
	stopA()
	stopB()
	if fmt.Sprint(stock) != fmt.Sprint(want) {
		t.Fatalf("broker holds %d events, ledger %d:\nbroker %v\nledger %v", len(stock), len(want), stock, want)
	}
}

// consumer runs a broker.Consumer on svc with a new command source until
// the returned stop.
func (e *env) consumer(t *testing.T, svc broker.Service) (stop func()) {
	t.Helper()
	return Consume(svc, e.ns.Commands(t), []time.Duration{50 * time.Millisecond, 100 * time.Millisecond})
}

// Consume runs a broker.Consumer acting as an operator on svc, with the
// retry schedule retry, on src until the returned stop.
func Consume(svc broker.Service, src broker.CommandSource, retry []time.Duration) (stop func()) {
	c := &broker.Consumer{Service: svc, Principal: inventory.Principal{Name: "orders", Role: inventory.RoleOperator}, Retry: retry}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); c.Run(ctx, src) }()
	return func() { cancel(); <-done }
}

func (e *env) send(t *testing.T, cmd broker.Command, header map[string]string) {
	t.Helper()
	data, err := json.Marshal(cmd)
	if err != nil {
		t.Fatal(err)
	}
	e.ns.Send(t, data, header)
}

// collect reads n outcomes, by command ID; a second outcome for a command
// fails the test.
func collect(t *testing.T, outcomes <-chan []byte, n int) map[string]broker.Outcome {
	t.Helper()
	got := make(map[string]broker.Outcome, n)
	timeout := time.After(60 * time.Second)
	for len(got) < n {
		select {
		case data := <-outcomes:
			var o broker.Outcome
			if err := json.Unmarshal(data, &o); err != nil || o.Schema != broker.OutcomeSchemaV1 {
				t.Fatalf("outcome %s (%v)", data, err)
			}
			if prev, dup := got[o.CommandID]; dup {
				t.Fatalf("two outcomes for command %s: %+v and %+v", o.CommandID, prev, o)
			}
			got[o.CommandID] = o
		case <-timeout:
			t.Fatalf("%d outcomes of %d after 60s", len(got), n)
		}
	}
	return got
}

// testOutcomes: applied, replayed, permanent failures answered at once,
// malformed commands answered or dead-lettered.
func testOutcomes(t *testing.T, b Backend) {
	e := newEnv(t, b)
	outcomes, dead := e.ns.Outcomes(t), e.ns.DeadLetters(t)
	id := e.product(t, "OUT", 3, 0)
	defer e.consumer(t, e.svc)()

	e.send(t, broker.Command{ID: "c1", Type: broker.CommandStockOut, ProductID: broker.ID(id), Quantity: 2}, nil)
	o := collect(t, outcomes, 1)["c1"]
	if !o.OK || o.Replayed || o.QuantityAfter != 1 || o.Sequence == 0 || o.Attempts != 1 {
		t.Fatalf("c1: %+v", o)
	}
	e.send(t, broker.Command{ID: "c1", Type: broker.CommandStockOut, ProductID: broker.ID(id), Quantity: 2}, nil)
	if r := collect(t, outcomes, 1)["c1"]; !r.OK || !r.Replayed || r.Sequence != o.Sequence {
		t.Fatalf("c1 again: %+v, want the first outcome replayed", r)
	}
	e.send(t, broker.Command{ID: "c2", Type: broker.CommandStockOut, ProductID: broker.ID(id), Quantity: 5}, nil)
	e.send(t, broker.Command{ID: "c3", Type: "teleport", ProductID: broker.ID(id)}, nil)
	e.ns.Send(t, []byte(`{"id":"c4","type":"stockOut","productId":"x1","quantity":1}`), nil)
	e.ns.Send(t, []byte(`not json`), nil)
	got := collect(t, outcomes, 3)
	for cid, want := range map[string]string{"c2": "INSUFFICIENT_STOCK", "c3": "BAD_USER_INPUT", "c4": "BAD_USER_INPUT"} {
		if o := got[cid]; o.OK || o.Code != want || o.Attempts != 1 || o.DeadLettered {
			t.Errorf("%s: %+v, want %s at the first attempt", cid, o, want)
		}
	}
	select {
	case d := <-dead:
		if string(d.Data) != "not json" || d.Reason == "" {
			t.Fatalf("dead letter %q (%s)", d.Data, d.Reason)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the malformed message did not reach the dead letters")
	}
	if s := e.stock(t, id); s != 1 {
		t.Fatalf("stock %d, want 1", s)
	}
}

// faulty fails commands of the service as a test asks.
type faulty struct {
	*app.Service
	mu sync.Mutex
	// commitThenFail: the first run of a stock-out with this key commits,
	// then answers UNAVAILABLE (the answer lost, not the change).
	commitThenFail map[string]bool
	// failAlways: stock-outs with this key always fail UNAVAILABLE.
	failAlways map[string]int
	// block: the first stock-out with this key waits until its context
	// ends (the consumer died handling it).
	block   map[string]chan struct{}
	blocked chan string
}

func (f *faulty) StockOut(ctx context.Context, in inventory.StockChange) (inventory.StockResult, error) {
	f.mu.Lock()
	fail, always, block := f.commitThenFail[in.IdempotencyKey], false, f.block[in.IdempotencyKey]
	if _, ok := f.failAlways[in.IdempotencyKey]; ok {
		f.failAlways[in.IdempotencyKey]++
		always = true
	}
	delete(f.commitThenFail, in.IdempotencyKey)
	delete(f.block, in.IdempotencyKey)
	f.mu.Unlock()
	if always {
		return inventory.StockResult{}, inventory.Unavailable("the database is away", errors.New("test fault"))
	}
	if block != nil {
		f.blocked <- in.IdempotencyKey
		<-ctx.Done()
		return inventory.StockResult{}, ctx.Err()
	}
	r, err := f.Service.StockOut(ctx, in)
	if fail && err == nil {
		return inventory.StockResult{}, inventory.Unavailable("the commit's answer was lost", errors.New("test fault"))
	}
	return r, err
}

// testTransient: a command whose first attempt committed but answered a
// transient failure is retried after the backoff and applied once.
func testTransient(t *testing.T, b Backend) {
	e := newEnv(t, b)
	outcomes := e.ns.Outcomes(t)
	id := e.product(t, "TRN", 10, 0)
	f := &faulty{Service: e.svc, commitThenFail: map[string]bool{"t1": true}}
	defer e.consumer(t, f)()
	start := time.Now()
	e.send(t, broker.Command{ID: "t1", Type: broker.CommandStockOut, ProductID: broker.ID(id), Quantity: 3}, nil)
	o := collect(t, outcomes, 1)["t1"]
	if !o.OK || !o.Replayed || o.Attempts != 2 || o.QuantityAfter != 7 {
		t.Fatalf("t1: %+v, want OK replayed at the second attempt", o)
	}
	if waited := time.Since(start); waited < 50*time.Millisecond {
		t.Fatalf("retried after %v, before the first backoff step (50ms)", waited)
	}
	if s := e.stock(t, id); s != 7 {
		t.Fatalf("stock %d, want 7: applied more than once", s)
	}
}

// testPoison: a command failing on every attempt reaches the dead letters
// after them, with its reason, and its outcome says so.
func testPoison(t *testing.T, b Backend) {
	e := newEnv(t, b)
	outcomes, dead := e.ns.Outcomes(t), e.ns.DeadLetters(t)
	id := e.product(t, "PSN", 10, 0)
	f := &faulty{Service: e.svc, failAlways: map[string]int{"p1": 0}}
	defer e.consumer(t, f)()
	e.send(t, broker.Command{ID: "p1", Type: broker.CommandStockOut, ProductID: broker.ID(id), Quantity: 1}, nil)
	o := collect(t, outcomes, 1)["p1"]
	if o.OK || !o.DeadLettered || o.Code != "UNAVAILABLE" || o.Attempts != 3 {
		t.Fatalf("p1: %+v, want dead-lettered UNAVAILABLE after 3 attempts", o)
	}
	select {
	case d := <-dead:
		var cmd broker.Command
		if err := json.Unmarshal(d.Data, &cmd); err != nil || cmd.ID != "p1" || d.Reason == "" || d.Attempts != 3 {
			t.Fatalf("dead letter %s (%q, %d attempts, %v)", d.Data, d.Reason, d.Attempts, err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("no dead letter")
	}
	f.mu.Lock()
	runs := f.failAlways["p1"]
	f.mu.Unlock()
	if runs != 3 {
		t.Fatalf("run %d times, want 3", runs)
	}
}

// testConsumerDies: a command being handled when its consumer stops (a
// replica dying) is delivered again to the next consumer and applied
// once.
func testConsumerDies(t *testing.T, b Backend) {
	e := newEnv(t, b)
	outcomes := e.ns.Outcomes(t)
	id := e.product(t, "DIE", 10, 0)
	f := &faulty{Service: e.svc, block: map[string]chan struct{}{"d1": make(chan struct{})}, blocked: make(chan string, 1)}
	stop := e.consumer(t, f)
	e.send(t, broker.Command{ID: "d1", Type: broker.CommandStockOut, ProductID: broker.ID(id), Quantity: 4}, nil)
	select {
	case <-f.blocked:
	case <-time.After(30 * time.Second):
		t.Fatal("the command was not delivered")
	}
	stop()
	defer e.consumer(t, f)()
	o := collect(t, outcomes, 1)["d1"]
	if !o.OK || o.Attempts < 2 || o.QuantityAfter != 6 {
		t.Fatalf("d1: %+v, want OK on a later delivery", o)
	}
	if s := e.stock(t, id); s != 6 {
		t.Fatalf("stock %d, want 6", s)
	}
}

var tracingOnce sync.Once

// testTraceContext: the span of a command continues the trace context its
// message carries.
func testTraceContext(t *testing.T, b Backend) {
	tracingOnce.Do(func() {
		otel.SetTracerProvider(sdktrace.NewTracerProvider())
		otel.SetTextMapPropagator(propagation.TraceContext{})
	})
	e := newEnv(t, b)
	outcomes := e.ns.Outcomes(t)
	id := e.product(t, "TRC", 10, 0)
	defer e.consumer(t, e.svc)()
	ctx, span := otel.Tracer("brokertest").Start(context.Background(), "order")
	span.End()
	header := map[string]string{}
	otel.GetTextMapPropagator().Inject(ctx, propagation.MapCarrier(header))
	e.send(t, broker.Command{ID: "tr1", Type: broker.CommandStockOut, ProductID: broker.ID(id), Quantity: 1}, header)
	o := collect(t, outcomes, 1)["tr1"]
	if want := trace.SpanContextFromContext(ctx).TraceID().String(); o.TraceID != want {
		t.Fatalf("outcome trace %q, want the sender's %q", o.TraceID, want)
	}
}

// testBurst: an order service's burst of deductions on one hot SKU through
// the broker sells exactly the stock: as many OK as units, the rest
// INSUFFICIENT_STOCK, each command answered once.
func testBurst(t *testing.T, b Backend) {
	const commands, units = 1000, 300
	e := newEnv(t, b)
	outcomes := e.ns.Outcomes(t)
	id := e.product(t, "HOT", units, 0)
	defer e.consumer(t, e.svc)()
	var sent atomic.Int64
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := w; i < commands; i += 4 {
				e.send(t, broker.Command{ID: "b" + strconv.Itoa(i), Type: broker.CommandStockOut, ProductID: broker.ID(id), Quantity: 1}, nil)
				sent.Add(1)
			}
		})
	}
	got := collect(t, outcomes, commands)
	wg.Wait()
	WantSold(t, got, units)
	if s := e.stock(t, id); s != 0 {
		t.Fatalf("stock %d, want 0", s)
	}
}

// WantSold checks the outcomes of a burst of one-unit stock-outs on a
// product with units in stock, by command ID: units of them OK, every
// other INSUFFICIENT_STOCK.
func WantSold(t testing.TB, outcomes map[string]broker.Outcome, units int) {
	t.Helper()
	codes := map[string]int{}
	for _, o := range outcomes {
		if o.OK {
			codes["OK"]++
		} else {
			codes[o.Code]++
		}
	}
	if codes["OK"] != units || codes["INSUFFICIENT_STOCK"] != len(outcomes)-units {
		t.Fatalf("outcomes %v, want %d OK and %d INSUFFICIENT_STOCK", codes, units, len(outcomes)-units)
	}
}
