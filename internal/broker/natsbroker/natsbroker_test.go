package natsbroker_test

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/shopstack/inventory/internal/app"
	"github.com/shopstack/inventory/internal/broker"
	"github.com/shopstack/inventory/internal/broker/brokertest"
	"github.com/shopstack/inventory/internal/broker/natsbroker"
	"github.com/shopstack/inventory/internal/gormstore"
	"github.com/shopstack/inventory/internal/inventory"
	"github.com/shopstack/inventory/internal/testenv"
	"github.com/shopstack/inventory/internal/testenv/gormstoretest"
	"github.com/shopstack/inventory/internal/testenv/inventorytest"
	"github.com/shopstack/inventory/internal/testenv/natstest"
)

// natsURL is the JetStream server the tests use, with stream names unique
// to each test.
func natsURL() string { return natstest.URL() }

type env struct {
	svc   *app.Service
	store *gormstore.Store
	nc    *nats.Conn
	cfg   natsbroker.Config
}

func newEnv(t *testing.T) env {
	t.Helper()
	nc, err := nats.Connect(natsURL(), nats.Timeout(2*time.Second))
	if err != nil {
		testenv.SkipOrFail(t, "NATS is not reachable at "+natsURL()+": "+err.Error())
		return env{}
	}
	t.Cleanup(nc.Close)
	name := fmt.Sprintf("INVTEST_%d_%d", os.Getpid(), time.Now().UnixNano())
	cfg := natsbroker.Config{Stream: name, Prefix: strings.ToLower(name)}
	t.Cleanup(func() {
		js, _ := jetstream.New(nc)
		_ = js.DeleteStream(context.Background(), name)
	})
	st := gormstoretest.Open(t, gormstore.SQLite)
	svc := inventorytest.Start(t, st, app.Config{})
	return env{svc: svc, store: st, nc: nc, cfg: cfg}
}

// relay starts a relay with a publisher of its own; stop ends it.
func (e env) relay(t *testing.T) (stop func()) {
	t.Helper()
	p, err := natsbroker.New(e.nc, e.cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &broker.Relay{Ledger: e.store, Publisher: p, Poll: 5 * time.Millisecond}
	done := make(chan struct{})
	go func() { defer close(done); r.Run(ctx) }()
	return func() { cancel(); <-done }
}

func (e env) sell(t *testing.T, id int64, n int) {
	t.Helper()
	for range n {
		if _, err := e.svc.StockOut(context.Background(), inventory.StockChange{ProductID: id, Quantity: 1}); err != nil {
			t.Fatal(err)
		}
	}
}

// stream returns the stream's stock events' sequences, in order, once it
// holds want of them (or 30 s have passed).
func (e env) stream(t *testing.T, want int) []int64 {
	t.Helper()
	var seqs []int64
	testenv.Poll(30*time.Second, func() bool {
		seqs = natstest.StockSequences(t, e.nc, e.cfg.Stream)
		return len(seqs) >= want
	})
	return seqs
}

func (e env) product(t *testing.T, stock, threshold int64) int64 {
	t.Helper()
	p, err := e.svc.CreateProduct(context.Background(), inventory.NewProduct{SKU: "NATS", Name: "N", Price: 1, InitialStock: stock, Threshold: threshold})
	if err != nil {
		t.Fatal(err)
	}
	return p.Product.ID
}

// TestEventsAcrossLedgerGaps: on PostgreSQL a sequence taken by a writer
// that rolled back never appears in the ledger; the relay, which reads
// what is visible and publishes only gapless runs, settles such a gap by
// the watermark and goes on.
func TestEventsAcrossLedgerGaps(t *testing.T) {
	e := newEnv(t)
	dsn := gormstoretest.DSN(t, gormstore.Postgres)
	st, err := gormstore.Open(context.Background(), gormstore.Config{Driver: gormstore.Postgres, DSN: dsn})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	svc := inventorytest.Start(t, st, app.Config{})
	e.svc, e.store = svc, st
	id := e.product(t, 100, 0)
	stop := e.relay(t)
	defer stop()
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for range 3 {
		e.sell(t, id, 2)
		// A writer that took two sequences and rolled back.
		tx, err := db.Begin()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tx.Exec("SELECT nextval('ledger_seq') FROM generate_series(1, 2)"); err != nil {
			t.Fatal(err)
		}
		_ = tx.Rollback()
	}
	e.sell(t, id, 2)
	want := brokertest.Ledger(t, e.store)
	stock := e.stream(t, len(want))
	if fmt.Sprint(stock) != fmt.Sprint(want) {
		t.Fatalf("stream %v,\nledger %v", stock, want)
	}
	if want[len(want)-1] < int64(len(want))+6 {
		t.Fatalf("ledger %v has no gaps: the test burnt no sequence", want)
	}
}

// countingLedger counts the reads of a real store's ledger.
type countingLedger struct {
	broker.Ledger
	reads atomic.Int64
}

func (l *countingLedger) Movements(ctx context.Context, q inventory.MovementQuery) (inventory.MovementPage, error) {
	l.reads.Add(1)
	return l.Ledger.Movements(ctx, q)
}

// TestRelayReadsAgainAfterPoll: after a page shorter than its batch the
// relay reads the ledger again only once Poll has passed, so that under
// a sale each read serves Poll's worth of changes; after a full page it
// reads on at once. With Poll an hour, a change made after a short page
// waits, while a backlog of many batches is published without waiting.
func TestRelayReadsAgainAfterPoll(t *testing.T) {
	e := newEnv(t)
	id := e.product(t, 100, 0)
	e.sell(t, id, 4) // 5 ledger rows with the initial stock: two full pages of 2 and a short one
	p, err := natsbroker.New(e.nc, e.cfg)
	if err != nil {
		t.Fatal(err)
	}
	ledger := &countingLedger{Ledger: e.store}
	ctx, cancel := context.WithCancel(context.Background())
	r := &broker.Relay{Ledger: ledger, Publisher: p, Batch: 2, Poll: time.Hour}
	done := make(chan struct{})
	go func() { defer close(done); r.Run(ctx) }()
	defer func() { cancel(); <-done }()

	if seqs := e.stream(t, 5); len(seqs) != 5 {
		t.Fatalf("published %v, want the 5 rows of the backlog without waiting for Poll", seqs)
	}
	if n := ledger.reads.Load(); n != 3 {
		t.Fatalf("%d reads for pages of 2, 2 and 1, want 3", n)
	}
	e.sell(t, id, 1)
	// The relay is in its Poll (an hour) after the short page: nothing
	// reads the new row until then.
	time.Sleep(300 * time.Millisecond)
	if n := ledger.reads.Load(); n != 3 {
		t.Fatalf("%d reads, want still 3: after a short page the relay waits for Poll", n)
	}
	if seqs := natstest.StockSequences(t, e.nc, e.cfg.Stream); len(seqs) != 5 {
		t.Fatalf("published %d events, want 5 until Poll has passed", len(seqs))
	}
}
