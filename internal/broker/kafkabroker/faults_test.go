package kafkabroker_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/shopstack/inventory/internal/app"
	"github.com/shopstack/inventory/internal/broker"
	"github.com/shopstack/inventory/internal/broker/brokertest"
	"github.com/shopstack/inventory/internal/broker/kafkabroker"
	"github.com/shopstack/inventory/internal/gormstore"
	"github.com/shopstack/inventory/internal/inventory"
	"github.com/shopstack/inventory/internal/testenv"
	"github.com/shopstack/inventory/internal/testenv/gormstoretest"
	"github.com/shopstack/inventory/internal/testenv/inventorytest"
	"github.com/shopstack/inventory/internal/testenv/kafkatest"
)

// env is a service on SQLite and a namespace on a cluster.
type env struct {
	*namespace
	svc   *app.Service
	store *gormstore.Store
}

func newEnv(t *testing.T, addrs []string) *env {
	t.Helper()
	st := gormstoretest.Open(t, gormstore.SQLite)
	return &env{namespace: newNamespace(t, addrs), svc: inventorytest.Start(t, st, app.Config{}), store: st}
}

// onePartition makes every topic the test's client creates one
// partition.
func (e *env) onePartition(t *testing.T) {
	e.cfg.Partitions = 1
	e.client = kafkabroker.NewClient(e.cfg)
	t.Cleanup(e.client.Close)
}

func (e *env) admin(t *testing.T, addrs []string) *kadm.Client {
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return kadm.NewClient(cl)
}

// ledger is every sequence of the ledger, in order.
func (e *env) ledger(t *testing.T) []int64 {
	t.Helper()
	var seqs []int64
	for after := int64(0); ; {
		page, err := e.store.Movements(context.Background(), inventory.MovementQuery{After: after, HasAfter: true, Limit: 1000})
		if err != nil {
			t.Fatal(err)
		}
		if len(page.Movements) == 0 {
			return seqs
		}
		for _, m := range page.Movements {
			seqs = append(seqs, m.Seq)
		}
		after = seqs[len(seqs)-1]
	}
}

func (e *env) products(t *testing.T, n int, stock int64) []int64 {
	t.Helper()
	var ids []int64
	for i := range n {
		sku := fmt.Sprintf("K%d", i)
		p, err := e.svc.CreateProduct(context.Background(), inventory.NewProduct{SKU: sku, Name: sku, Price: 1, InitialStock: stock})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, p.Product.ID)
	}
	return ids
}

// sellInBackground sells one unit at a time, round the products, until
// the returned stop.
func (e *env) sellInBackground(t *testing.T, ids []int64) (sold *atomic.Int64, stop func()) {
	sold = new(atomic.Int64)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; ctx.Err() == nil; i++ {
			if _, err := e.svc.StockOut(ctx, inventory.StockChange{ProductID: ids[i%len(ids)], Quantity: 1}); err != nil && ctx.Err() == nil {
				t.Error(err)
				return
			}
			sold.Add(1)
			time.Sleep(time.Millisecond)
		}
	}()
	return sold, func() { cancel(); <-done }
}

func (e *env) relay(t *testing.T) (stop func()) {
	r := &broker.Relay{Ledger: e.store, Publisher: e.Publisher(t), Poll: 5 * time.Millisecond}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); r.Run(ctx) }()
	return func() { cancel(); <-done }
}

// wantTopicIsLedger reads the committed events until they cover the
// ledger and checks each change is there once, in order within its
// partition (so per product), and nothing else is.
func (e *env) wantTopicIsLedger(t *testing.T) {
	t.Helper()
	ledger := e.ledger(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch, err := e.client.Events(ctx)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[int64]int{}
	last := map[int32]int64{}
	misordered := 0
	deadline := time.After(time.Minute)
	for len(seen) < len(ledger) {
		select {
		case ev := <-ch:
			if ev.Alert {
				continue
			}
			seen[ev.Seq]++
			if ev.Seq <= last[ev.Partition] {
				misordered++
			}
			last[ev.Partition] = ev.Seq
		case <-deadline:
			t.Fatalf("%d of the ledger's %d changes in the topic after a minute", len(seen), len(ledger))
		}
	}
	// A duplicate would come within a moment.
	for quiet := time.After(500 * time.Millisecond); ; {
		select {
		case ev := <-ch:
			if !ev.Alert {
				seen[ev.Seq]++
			}
			continue
		case <-quiet:
		}
		break
	}
	dups, missing := 0, 0
	for _, seq := range ledger {
		switch seen[seq] {
		case 0:
			missing++
		case 1:
		default:
			dups++
		}
	}
	if dups+missing+misordered > 0 || len(seen) != len(ledger) {
		t.Fatalf("ledger %d changes, topic %d: %d missing, %d duplicated, %d out of order", len(ledger), len(seen), missing, dups, misordered)
	}
	t.Logf("the topic holds the ledger's %d changes, each once, in order per partition", len(ledger))
}

// TestEventsAcrossClusterRestart: every broker of the cluster stops and
// starts again on its store while sales go on and the relay publishes;
// the topic still equals the ledger.
func TestEventsAcrossClusterRestart(t *testing.T) {
	c := kafkatest.Start(t)
	e := newEnv(t, c.Addrs)
	ids := e.products(t, 8, 100_000)
	stop := e.relay(t)
	defer stop()
	sold, stopSales := e.sellInBackground(t, ids)
	testenv.Eventually(t, "100 sales before the restart", func() bool { return sold.Load() >= 100 })
	c.Restart(t, 500*time.Millisecond)
	n := sold.Load()
	testenv.Eventually(t, "100 sales after the restart", func() bool { return sold.Load() >= n+100 })
	stopSales()
	e.wantTopicIsLedger(t)
}

// TestLeaderChanges: the leaders of the event, checkpoint and command
// partitions move to other brokers while the relay publishes and a burst
// of commands runs; the topic equals the ledger, and every command is
// answered with the stock sold exactly.
func TestLeaderChanges(t *testing.T) {
	c := kafkatest.Start(t)
	e := newEnv(t, c.Addrs)
	ids := e.products(t, 4, 100_000)
	stop := e.relay(t)
	defer stop()
	sold, stopSales := e.sellInBackground(t, ids)

	const commands, units = 2000, 700
	hot, err := e.svc.CreateProduct(context.Background(), inventory.NewProduct{SKU: "HOT", Name: "HOT", Price: 1, InitialStock: units})
	if err != nil {
		t.Fatal(err)
	}
	outcomes := e.Outcomes(t)
	defer brokertest.Consume(e.svc, e.Commands(t), []time.Duration{50 * time.Millisecond, 100 * time.Millisecond, 200 * time.Millisecond})()
	send := func(from, to int) {
		for i := from; i < to; i++ {
			cmd := broker.Command{ID: "l" + strconv.Itoa(i), Type: broker.CommandStockOut, ProductID: broker.ID(hot.Product.ID), Quantity: 1}
			data, _ := json.Marshal(cmd)
			e.Send(t, data, nil)
		}
	}
	// Half the commands before the moves, half during them.
	send(0, commands/2)
	var senders sync.WaitGroup
	senders.Go(func() { send(commands/2, commands) })
	testenv.Eventually(t, "100 sales before the moves", func() bool { return sold.Load() >= 100 })
	moved := 0
	for _, topic := range []string{e.cfg.Prefix + ".stock", e.cfg.Prefix + ".stock.last", e.cfg.Prefix + ".commands", e.cfg.Prefix + ".outcomes"} {
		for _, p := range c.Fake().PartitionInfos(topic) {
			c.MoveLeader(t, topic, p.Partition)
			moved++
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("moved %d partition leaders", moved)
	n := sold.Load()
	testenv.Eventually(t, "100 sales after the moves", func() bool { return sold.Load() >= n+100 })
	stopSales()
	got := collect(t, outcomes, commands)
	senders.Wait()
	brokertest.WantSold(t, got, units)
	if s := brokertest.Stock(t, e.svc, hot.Product.ID); s != 0 {
		t.Fatalf("HOT stock %d, want 0", s)
	}
	e.wantTopicIsLedger(t)
}

// collect reads n outcomes by command ID; a second outcome for a command
// is allowed only if it is the same (at least once).
func collect(t *testing.T, outcomes <-chan []byte, n int) map[string]broker.Outcome {
	t.Helper()
	got := map[string]broker.Outcome{}
	timeout := time.After(2 * time.Minute)
	for len(got) < n {
		select {
		case data := <-outcomes:
			var o broker.Outcome
			if err := json.Unmarshal(data, &o); err != nil {
				t.Fatalf("outcome %s: %v", data, err)
			}
			if prev, dup := got[o.CommandID]; dup && prev.OK != o.OK {
				t.Fatalf("two different outcomes for %s: %+v and %+v", o.CommandID, prev, o)
			}
			got[o.CommandID] = o
		case <-timeout:
			t.Fatalf("%d outcomes of %d after 2 minutes", len(got), n)
		}
	}
	return got
}

// TestCrashedConsumerCounted: a replica that died handling records (its
// committed offset's metadata says it started on them) is not trusted
// to have done them: the next owner runs them as second deliveries, and
// a record delivered again past the attempts a command has (one that
// kills its consumer each time) is dead-lettered, not run.
func TestCrashedConsumerCounted(t *testing.T) {
	c := kafkatest.Start(t)
	e := newEnv(t, c.Addrs)
	e.onePartition(t) // so offsets are the order sent
	id := e.products(t, 1, 10)[0]
	outcomes, dead := e.Outcomes(t), e.DeadLetters(t)
	send := func(cid string) {
		data, _ := json.Marshal(broker.Command{ID: cid, Type: broker.CommandStockOut, ProductID: broker.ID(id), Quantity: 1})
		e.Send(t, data, nil)
	}
	adm := e.admin(t, c.Addrs)
	send("poison") // offset 0
	send("again")  // offset 1
	send("fresh")  // offset 2
	// What replicas that died on offset 0 four times, the last having
	// started on 0 and 1, left: the offset 0 committed, started 1,
	// delivered again 3 times. The Consumer's attempts are 3 (two
	// retries), and it runs a delivery past them (a retry's copy may be
	// delivered twice) but not two.
	commitAs(t, adm, e.cfg.Group, e.cfg.Prefix+".commands", 0, "1/3")

	defer brokertest.Consume(e.svc, e.Commands(t), []time.Duration{50 * time.Millisecond, 100 * time.Millisecond})()
	got := collect(t, outcomes, 3)
	if o := got["poison"]; o.OK || !o.DeadLettered || o.Code != string(inventory.CodeInternal) || o.Attempts != 5 {
		t.Errorf("poison: %+v, want dead-lettered at its 5th delivery without running", o)
	}
	if o := got["again"]; !o.OK || o.Attempts != 2 {
		t.Errorf("again: %+v, want OK at its second delivery", o)
	}
	if o := got["fresh"]; !o.OK || o.Attempts != 1 {
		t.Errorf("fresh: %+v, want OK at its first delivery", o)
	}
	select {
	case d := <-dead:
		var cmd broker.Command
		if err := json.Unmarshal(d.Data, &cmd); err != nil || cmd.ID != "poison" || d.Attempts != 5 {
			t.Errorf("dead letter %s (%d attempts)", d.Data, d.Attempts)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("no dead letter")
	}
	if s := brokertest.Stock(t, e.svc, id); s != 8 {
		t.Errorf("stock %d, want 8 (the poison command not run)", s)
	}
}

// commitAs commits an offset with metadata for a group no member holds.
func commitAs(t *testing.T, adm *kadm.Client, group, topic string, offset int64, meta string) {
	t.Helper()
	var os kadm.Offsets
	os.Add(kadm.Offset{Topic: topic, Partition: 0, At: offset, LeaderEpoch: -1, Metadata: meta})
	resp, err := adm.CommitOffsets(context.Background(), group, os)
	if err == nil {
		err = resp.Error()
	}
	if err != nil {
		t.Fatal(err)
	}
}

// TestRetryDoesNotHoldThePartition: a command failing transiently waits
// for its retry in a retry topic while the commands after it in the same
// partition are answered and the partition's offset moves past it.
func TestRetryDoesNotHoldThePartition(t *testing.T) {
	c := kafkatest.Start(t)
	e := newEnv(t, c.Addrs)
	e.cfg.Retry = []time.Duration{time.Hour}
	id := e.products(t, 1, 10)[0]
	e.onePartition(t)
	outcomes := e.Outcomes(t)
	adm := e.admin(t, c.Addrs)
	svc := &failing{Service: e.svc, key: "slow"}
	defer brokertest.Consume(svc, e.Commands(t), e.cfg.Retry)()
	for _, cid := range []string{"slow", "a", "b", "c"} {
		data, _ := json.Marshal(broker.Command{ID: cid, Type: broker.CommandStockOut, ProductID: broker.ID(id), Quantity: 1})
		e.Send(t, data, nil)
	}
	got := collect(t, outcomes, 3)
	if _, ok := got["slow"]; ok {
		t.Fatalf("slow answered: %+v", got["slow"])
	}
	for _, cid := range []string{"a", "b", "c"} {
		if !got[cid].OK {
			t.Errorf("%s: %+v", cid, got[cid])
		}
	}
	testenv.Eventually(t, "the commands' offset past every command", func() bool {
		offs, err := adm.FetchOffsets(context.Background(), e.cfg.Group)
		if err != nil {
			return false
		}
		o, ok := offs.Lookup(e.cfg.Prefix+".commands", 0)
		return ok && o.At == 4
	})
	// The retry waits in the first retry topic, due in an hour.
	ends, err := adm.ListEndOffsets(context.Background(), e.cfg.Prefix+".commands.retry.1")
	if err != nil {
		t.Fatal(err)
	}
	total := int64(0)
	ends.Each(func(o kadm.ListedOffset) { total += o.Offset })
	if total != 1 {
		t.Fatalf("the retry topic holds %d records, want 1", total)
	}
}

// failing fails the stock-outs with key, transiently.
type failing struct {
	*app.Service
	key string
}

func (f *failing) StockOut(ctx context.Context, in inventory.StockChange) (inventory.StockResult, error) {
	if in.IdempotencyKey == f.key {
		return inventory.StockResult{}, inventory.Unavailable("the database is away", context.DeadlineExceeded)
	}
	return f.Service.StockOut(ctx, in)
}

// TestSASL: the adapter authenticates with SCRAM-SHA-256 to a cluster
// that requires SASL, and events and commands flow.
func TestSASL(t *testing.T) {
	ports, err := testenv.FreePorts(1)
	if err != nil {
		t.Fatal(err)
	}
	kc, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.Ports(ports...), kfake.EnableSASL(),
		kfake.Superuser("SCRAM-SHA-256", "inventory", "s3cret"))
	if err != nil {
		t.Fatal(err)
	}
	defer kc.Close()
	addrs := kc.ListenAddrs()
	e := newEnv(t, addrs)
	e.cfg.SASL = kafkabroker.SASL{Mechanism: kafkabroker.SASLScramSHA256, User: "inventory", Password: "s3cret"}
	e.client = kafkabroker.NewClient(e.cfg)
	t.Cleanup(e.client.Close)
	e.products(t, 2, 10)
	stop := e.relay(t)
	defer stop()
	e.wantTopicIsLedger(t)

	bad := e.cfg
	bad.SASL.Password = "wrong"
	p, err := kafkabroker.New(bad)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := p.Last(ctx); err == nil {
		t.Fatal("a wrong password published")
	}
}

// TestRefusedReplyTopic: a command naming a reply topic the cluster
// refuses to create (here: not authorized) is answered on the default
// outcome topic rather than blocking its partition; a reply topic that
// can be made gets its outcome.
func TestRefusedReplyTopic(t *testing.T) {
	c := kafkatest.Start(t)
	e := newEnv(t, c.Addrs)
	id := e.products(t, 1, 10)[0]
	forbidden := e.cfg.OutcomeTopic("forbidden")
	c.Fake().ControlKey(int16(kmsg.CreateTopics), func(req kmsg.Request) (kmsg.Response, error, bool) {
		c.Fake().KeepControl()
		creq := req.(*kmsg.CreateTopicsRequest)
		if len(creq.Topics) != 1 || creq.Topics[0].Topic != forbidden {
			return nil, nil, false
		}
		resp := creq.ResponseKind().(*kmsg.CreateTopicsResponse)
		rt := kmsg.NewCreateTopicsResponseTopic()
		rt.Topic, rt.ErrorCode = forbidden, kerr.TopicAuthorizationFailed.Code
		resp.Topics = append(resp.Topics, rt)
		return resp, nil, true
	})
	outcomes := e.Outcomes(t)
	orders := brokertest.Open(t, func(ctx context.Context) (<-chan []byte, error) { return e.client.Outcomes(ctx, "orders") })
	defer brokertest.Consume(e.svc, e.Commands(t), []time.Duration{50 * time.Millisecond})()
	for _, cmd := range []broker.Command{
		{ID: "f1", Type: broker.CommandStockOut, ProductID: broker.ID(id), Quantity: 1, ReplyTo: "forbidden"},
		{ID: "o1", Type: broker.CommandStockOut, ProductID: broker.ID(id), Quantity: 1, ReplyTo: "orders"},
	} {
		data, _ := json.Marshal(cmd)
		e.Send(t, data, nil)
	}
	if o := collect(t, outcomes, 1)["f1"]; !o.OK {
		t.Errorf("f1 on the default topic: %+v", o)
	}
	if o := collect(t, orders, 1)["o1"]; !o.OK {
		t.Errorf("o1 on its reply topic: %+v", o)
	}
}
