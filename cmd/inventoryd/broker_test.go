package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/shopstack/inventory/internal/broker"
	"github.com/shopstack/inventory/internal/broker/brokertest"
	"github.com/shopstack/inventory/internal/broker/kafkabroker"
	"github.com/shopstack/inventory/internal/broker/natsbroker"
	"github.com/shopstack/inventory/internal/broker/rabbitbroker"
	"github.com/shopstack/inventory/internal/gormstore"
	"github.com/shopstack/inventory/internal/testenv"
	"github.com/shopstack/inventory/internal/testenv/gormstoretest"
	"github.com/shopstack/inventory/internal/testenv/kafkatest"
	"github.com/shopstack/inventory/internal/testenv/natstest"
	"github.com/shopstack/inventory/internal/testenv/redistest"
)

// natsForTest connects to the tests' shared JetStream (natstest.URL) and
// names a namespace of the test's own, whose
// streams are deleted when it ends.
func natsForTest(t *testing.T) (url string, nc *nats.Conn, ns natsNames) {
	t.Helper()
	return natsForTestNamed(t, testNamespace("srv"))
}

// testNamespace is an INVENTORY_NAMESPACE no other test run uses.
func testNamespace(what string) string {
	return "invtest-" + what + "-" + strconv.Itoa(os.Getpid()) + "-" + strconv.FormatInt(time.Now().UnixNano(), 36)
}

// natsForTestNamed is natsForTest in the given namespace.
func natsForTestNamed(t *testing.T, namespace string) (url string, nc *nats.Conn, ns natsNames) {
	t.Helper()
	url = natstest.URL()
	nc, err := nats.Connect(url, nats.Timeout(2*time.Second))
	if err != nil {
		testenv.SkipOrFail(t, "NATS is not reachable at "+url+": "+err.Error())
		return "", nil, natsNames{}
	}
	t.Cleanup(nc.Close)
	ns.namespace = namespace
	ns.Config = natsbroker.ConfigFor(ns.namespace, nil)
	js, _ := jetstream.New(nc)
	t.Cleanup(func() {
		for _, s := range ns.Streams() {
			_ = js.DeleteStream(context.Background(), s)
		}
	})
	return url, nc, ns
}

// natsNames is a test's namespace (INVENTORY_NAMESPACE) and the names the
// server makes on NATS in it.
type natsNames struct {
	namespace string
	natsbroker.Config
}

// TestEventsToNATS: with INVENTORY_BROKER=nats the server publishes every
// committed change to JetStream, in order, and /metrics says how far.
func TestEventsToNATS(t *testing.T) {
	url, nc, names := natsForTest(t)
	js, _ := jetstream.New(nc)
	env := envFor(t, gormstore.SQLite)
	env["INVENTORY_BROKER"] = "nats"
	env["INVENTORY_NATS_URL"] = url
	env["INVENTORY_NAMESPACE"] = names.namespace
	s := startServer(t, env)
	id := s.createProduct(t, "EVENTS", 10)
	for range 3 {
		s.graphql(t, fmt.Sprintf(`mutation { stockOut(input: {productId: %q, quantity: 1}) { movement { sequence } } }`, id), nil, nil)
	}
	// The creation's IN and three OUTs.
	var last uint64
	testenv.Poll(30*time.Second, func() bool {
		if st, err := js.Stream(context.Background(), names.Stream); err == nil {
			if info, err := st.Info(context.Background()); err == nil {
				last = info.State.LastSeq
			}
		}
		return last >= 4
	})
	if last != 4 {
		t.Fatalf("the stream holds %d messages, want 4", last)
	}
	_, body := get(t, s.url+"/metrics")
	parser := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := parser.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if got, ok := sample(mfs["inventory_events_published_sequence"], nil); !ok || got != 4 {
		t.Errorf("inventory_events_published_sequence = %v (found %v), want 4", got, ok)
	}
	// /readyz reports the broker, which it does not require.
	if code, body := get(t, s.url+"/readyz"); code != 200 || !strings.Contains(body, `"broker":"ok"`) {
		t.Errorf("/readyz = %d %s, want ready with the broker ok", code, body)
	}
}

// commandClient is an order service's side of a broker.
type commandClient interface {
	Send(ctx context.Context, data []byte, header map[string]string) error
	Outcomes(ctx context.Context, replyTo string) (<-chan []byte, error)
}

// brokerForTest returns the server environment of a broker (names of the
// test's own, deleted when it ends), a client of it and a reply
// destination for the client's outcomes.
//
// events counts the stock events the broker holds.
func brokerForTest(t *testing.T, kind string) (env map[string]string, client commandClient, replyTo string, events func() int) {
	t.Helper()
	switch kind {
	case "nats":
		url, nc, names := natsForTest(t)
		c, err := natsbroker.NewClient(nc, names.Config)
		if err != nil {
			t.Fatal(err)
		}
		return map[string]string{"INVENTORY_BROKER": "nats", "INVENTORY_NATS_URL": url, "INVENTORY_NAMESPACE": names.namespace}, c, "orders",
			func() int { return len(natstest.StockSequences(t, nc, names.Stream)) }
	case "rabbitmq":
		url := os.Getenv("INVENTORY_TEST_RABBITMQ_URL")
		if url == "" {
			url = "amqp://guest:guest@127.0.0.1:5672/"
		}
		admin, err := amqp.DialConfig(url, amqp.Config{Dial: amqp.DefaultDial(2 * time.Second)})
		if err != nil {
			testenv.SkipOrFail(t, "RabbitMQ is not reachable: "+err.Error())
			return nil, nil, "", nil
		}
		prefix := "invtest-srv-" + strconv.Itoa(os.Getpid()) + "-" + strconv.FormatInt(time.Now().UnixNano(), 36)
		cfg := rabbitbroker.ConfigFor(url, prefix, nil)
		replyTo = prefix + ".orders"
		t.Cleanup(func() {
			defer admin.Close()
			for _, q := range append(cfg.Queues(), replyTo) {
				if ch, err := admin.Channel(); err == nil {
					_, _ = ch.QueueDelete(q, false, false, false)
					_ = ch.Close()
				}
			}
			if ch, err := admin.Channel(); err == nil {
				_ = ch.ExchangeDelete(cfg.Exchange, false, false)
				_ = ch.Close()
			}
		})
		c, err := rabbitbroker.NewClient(cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Close() })
		var seenOnce sync.Once
		var seen sync.Map
		return map[string]string{"INVENTORY_BROKER": "rabbitmq", "INVENTORY_RABBITMQ_URL": url, "INVENTORY_NAMESPACE": prefix}, c, replyTo,
			func() int {
				// Consumed once, then counted: distinct sequences of
				// stock events (a RabbitMQ consumer's dedupe).
				seenOnce.Do(func() {
					ctx, cancel := context.WithCancel(context.Background())
					t.Cleanup(cancel)
					msgs, err := c.Events(ctx, "")
					if err != nil {
						t.Error(err)
						return
					}
					go func() {
						for m := range msgs {
							if !strings.HasPrefix(m.ID, "alert-") {
								seen.Store(m.ID, true)
							}
						}
					}()
				})
				n := 0
				seen.Range(func(any, any) bool { n++; return true })
				return n
			}
	case "kafka":
		// kfake, franz-go's Kafka cluster, in the test's process: no Kafka
		// broker can be installed here.
		k := kafkatest.Start(t)
		namespace := testNamespace("srv")
		c := kafkabroker.NewClient(kafkabroker.ConfigFor(k.Addrs, namespace, nil))
		t.Cleanup(c.Close)
		var seenOnce sync.Once
		var seen sync.Map
		return map[string]string{"INVENTORY_BROKER": "kafka", "INVENTORY_KAFKA_BROKERS": strings.Join(k.Addrs, ","), "INVENTORY_NAMESPACE": namespace}, c, "orders",
			func() int {
				// Read once, then counted: distinct sequences of stock
				// events (read_committed holds each once).
				seenOnce.Do(func() {
					ctx, cancel := context.WithCancel(context.Background())
					t.Cleanup(cancel)
					evs, err := c.Events(ctx)
					if err != nil {
						t.Error(err)
						return
					}
					go func() {
						for e := range evs {
							if !e.Alert {
								if _, dup := seen.LoadOrStore(e.Seq, true); dup {
									t.Errorf("event %d read twice", e.Seq)
								}
							}
						}
					}()
				})
				n := 0
				seen.Range(func(any, any) bool { n++; return true })
				return n
			}
	}
	t.Fatalf("no broker %s", kind)
	return nil, nil, "", nil
}

// TestCommandsFromBroker: an order service's burst of 10,000 deductions on
// one hot SKU through each broker sells exactly the stock: every command
// is answered, as many OK as units, the ledger holds exactly the OK
// commands' IDs, and nothing drifts.
func TestCommandsFromBroker(t *testing.T) {
	for _, kind := range []string{"nats", "rabbitmq", "kafka"} {
		t.Run(kind, func(t *testing.T) { testCommandBurst(t, kind) })
	}
}

func testCommandBurst(t *testing.T, kind string) {
	const commands, units = 10_000, 4_000
	benv, client, replyTo, events := brokerForTest(t, kind)
	env := envFor(t, gormstore.SQLite)
	maps.Copy(env, benv)
	s := startServer(t, env)
	id := s.createProduct(t, "HOT", units)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	outcomes, err := client.Outcomes(ctx, replyTo)
	if err != nil {
		t.Fatal(err)
	}
	var senders sync.WaitGroup
	for w := range 16 {
		senders.Go(func() {
			for i := w; i < commands; i += 16 {
				cmd := fmt.Sprintf(`{"id":"order-%d","type":"stockOut","productId":%q,"quantity":1,"replyTo":%q}`, i, id, replyTo)
				if err := client.Send(ctx, []byte(cmd), nil); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	got := map[string]broker.Outcome{}
	timeout := time.After(5 * time.Minute)
	for len(got) < commands {
		select {
		case data := <-outcomes:
			var o broker.Outcome
			if err := json.Unmarshal(data, &o); err != nil {
				t.Fatalf("outcome %s: %v", data, err)
			}
			if _, dup := got[o.CommandID]; !dup { // a consumer dedupes by command ID
				got[o.CommandID] = o
			}
		case <-timeout:
			t.Fatalf("%d outcomes of %d after 5 minutes", len(got), commands)
		}
	}
	senders.Wait()
	brokertest.WantSold(t, got, units)
	acked := map[string]bool{}
	for cid, o := range got {
		if o.OK {
			acked[cid] = true
		}
	}
	s.audit(t, id, units, acked)
	// The creation's IN and every sale went out as events too.
	testenv.Eventually(t, "every change to reach the broker", func() bool { return events() >= units+1 })
	if n := events(); n != units+1 {
		t.Errorf("the broker holds %d events, want %d", n, units+1)
	}

	_, body := get(t, s.url+"/metrics")
	parser := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := parser.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := sample(mfs["inventory_broker_commands_total"], map[string]string{"type": "stockOut", "result": "OK"}); n != units {
		t.Errorf("inventory_broker_commands_total{stockOut,OK} = %v, want %d", n, units)
	}
	if n, _ := sample(mfs["inventory_requests_total"], map[string]string{"operation": "stockOut", "transport": "broker", "code": "OK"}); n != units {
		t.Errorf("inventory_requests_total{stockOut,broker,OK} = %v, want %d", n, units)
	}
	if code, body := get(t, s.url+"/readyz"); code != 200 || !strings.Contains(body, `"broker":"ok"`) {
		t.Errorf("/readyz = %d %s, want ready with the broker ok", code, body)
	}
}

// TestEventsAcrossReplicaKill: the replica publishing events is SIGKILLed
// right after its sales commit (on Kafka, possibly in the middle of a
// transaction, which the next publisher's fencing aborts), and later the
// next leader shuts down gracefully while another waits; after each
// takeover the broker still holds every committed change once, in order.
func TestEventsAcrossReplicaKill(t *testing.T) {
	for _, kind := range []string{"nats", "kafka"} {
		t.Run(kind, func(t *testing.T) { testEventsAcrossReplicaKill(t, kind) })
	}
}

func testEventsAcrossReplicaKill(t *testing.T, kind string) {
	env := redsyncEnv(gormstoretest.DSN(t, gormstore.Postgres), redistest.Start(t).Addr)
	var read func() []published
	switch kind {
	case "nats":
		url, nc, names := natsForTest(t)
		env["INVENTORY_BROKER"], env["INVENTORY_NATS_URL"], env["INVENTORY_NAMESPACE"] = "nats", url, names.namespace
		read = natsPublished(t, nc, names.Stream)
	case "kafka":
		k := kafkatest.Start(t)
		namespace := testNamespace("kill")
		env["INVENTORY_BROKER"], env["INVENTORY_KAFKA_BROKERS"], env["INVENTORY_NAMESPACE"] = "kafka", strings.Join(k.Addrs, ","), namespace
		read = kafkaPublished(t, kafkabroker.ConfigFor(k.Addrs, namespace, nil))
	}
	env["INVENTORY_LOCK_TTL"] = "2s"
	env["INVENTORY_BROKER_COMMANDS"] = "false"
	const leading = "event publisher: leading"

	child := startProcess(t, env)
	testenv.Eventually(t, "the child process to publish", func() bool { return child.logged(leading) })
	b := startServer(t, env)
	id, _ := b.product(t, "KILL", 100_000, 0)
	other, _ := b.product(t, "OTHER", 100_000, 0)
	// Sales on both replicas (of two products: replicas contending for
	// one lock key is another test's subject); the child is killed right
	// after one of its sales commits.
	stopB := b.sellInBackground(other, "b", newTally())
	for range 50 {
		child.sell(t, id, 1)
	}
	child.kill()
	testenv.Eventually(t, "the other replica to publish", func() bool { return b.logged(leading) })
	stopB()
	wantBrokerIsLedger(t, read, b)

	// A graceful leader change: b stops while c waits behind it.
	c := startServer(t, env)
	stopC := c.sellInBackground(other, "c", newTally())
	for range 50 {
		b.sell(t, id, 1)
	}
	b.shutdown(t)
	testenv.Eventually(t, "the third replica to publish", func() bool { return c.logged(leading) })
	stopC()
	wantBrokerIsLedger(t, read, c)
}

// natsPublished reads every stock event of a stream: one order.
func natsPublished(t *testing.T, nc *nats.Conn, stream string) func() []published {
	return func() []published {
		var out []published
		for _, seq := range natstest.StockSequences(t, nc, stream) {
			out = append(out, published{seq: seq})
		}
		return out
	}
}

// published is a stock event a broker holds: its sequence, and the unit
// within which the broker keeps order (the stream; a Kafka partition).
type published struct {
	seq   int64
	order int32
}

// kafkaPublished reads every committed stock event of cfg's topic, from
// the start, until none has come for a moment.
func kafkaPublished(t *testing.T, cfg kafkabroker.Config) func() []published {
	return func() []published {
		c := kafkabroker.NewClient(cfg)
		defer c.Close()
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		ch, err := c.Events(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var out []published
		for {
			select {
			case e := <-ch:
				if !e.Alert {
					out = append(out, published{seq: e.Seq, order: e.Partition})
				}
				continue
			case <-time.After(time.Second):
			}
			return out
		}
	}
}

// wantBrokerIsLedger waits until the broker holds as many stock events
// as the ledger has changes, then checks it holds each change once, in
// order within each ordering unit.
func wantBrokerIsLedger(t *testing.T, read func() []published, s *server) {
	t.Helper()
	want := ledgerSeqs(t, s)
	var got []published
	testenv.Poll(time.Minute, func() bool {
		got = read()
		return len(got) >= len(want)
	})
	byOrder := map[int32][]int64{}
	for _, p := range got {
		byOrder[p.order] = append(byOrder[p.order], p.seq)
	}
	var all []int64
	for order, seqs := range byOrder {
		if !slices.IsSorted(seqs) || len(slices.Compact(slices.Clone(seqs))) != len(seqs) {
			t.Fatalf("the broker's events of %d are not each once in ascending order: %v", order, seqs)
		}
		all = append(all, seqs...)
	}
	slices.Sort(all)
	if fmt.Sprint(all) != fmt.Sprint(want) {
		t.Fatalf("the broker holds %d events, the ledger %d:\nbroker %v\nledger %v", len(all), len(want), all, want)
	}
	t.Logf("the broker holds the ledger's %d changes, each once, in order", len(want))
}

// ledgerSeqs is every sequence of s's ledger, in order.
func ledgerSeqs(t *testing.T, s *server) []int64 {
	t.Helper()
	var seqs []int64
	after := ""
	for {
		var out struct {
			StockMovements struct {
				Edges    []struct{ Node struct{ Sequence int64 } }
				PageInfo struct {
					HasNextPage bool
					EndCursor   string
				}
			}
		}
		resp := s.graphql(t, `query($after: String) { stockMovements(first: 100, after: $after, order: ASC) {
			edges { node { sequence } } pageInfo { hasNextPage endCursor } } }`, map[string]any{"after": after}, &out)
		if len(resp.Errors) > 0 {
			t.Fatalf("read the ledger: %+v", resp.Errors)
		}
		for _, e := range out.StockMovements.Edges {
			seqs = append(seqs, e.Node.Sequence)
		}
		if !out.StockMovements.PageInfo.HasNextPage {
			return seqs
		}
		after = out.StockMovements.PageInfo.EndCursor
	}
}

// TestKafkaTLSAndSASL: with INVENTORY_KAFKA_TLS, INVENTORY_KAFKA_CA_FILE
// and SCRAM credentials the server reaches a cluster that requires both,
// and publishes; with a wrong password it publishes nothing, logs its
// failures and stays ready (the broker is optional), reporting the broker
// not ok.
func TestKafkaTLSAndSASL(t *testing.T) {
	certs := testenv.NewCerts(t)
	cert, err := tls.LoadX509KeyPair(certs.CertFile, certs.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	ports, err := testenv.FreePorts(1)
	if err != nil {
		t.Fatal(err)
	}
	kc, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.Ports(ports...), kfake.TLS(&tls.Config{Certificates: []tls.Certificate{cert}}),
		kfake.EnableSASL(), kfake.Superuser("SCRAM-SHA-512", "inventory", "s3cret-pass"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(kc.Close)
	namespace := testNamespace("tls")
	env := envFor(t, gormstore.SQLite)
	maps.Copy(env, map[string]string{"INVENTORY_BROKER": "kafka", "INVENTORY_KAFKA_BROKERS": kc.ListenAddrs()[0],
		"INVENTORY_NAMESPACE": namespace, "INVENTORY_KAFKA_TLS": "true", "INVENTORY_KAFKA_CA_FILE": certs.CAFile,
		"INVENTORY_KAFKA_SASL_MECHANISM": "SCRAM-SHA-512", "INVENTORY_KAFKA_USERNAME": "inventory", "INVENTORY_KAFKA_PASSWORD": "s3cret-pass"})
	s := startServer(t, env)
	s.createProduct(t, "TLS", 3)

	pem, err := os.ReadFile(certs.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	cfg := kafkabroker.ConfigFor(kc.ListenAddrs(), namespace, nil)
	cfg.TLS = &tls.Config{RootCAs: pool}
	cfg.SASL = kafkabroker.SASL{Mechanism: kafkabroker.SASLScramSHA512, User: "inventory", Password: "s3cret-pass"}
	read := kafkaPublished(t, cfg)
	var got []published
	testenv.Poll(30*time.Second, func() bool { got = read(); return len(got) >= 1 })
	if len(got) != 1 || got[0].seq != 1 {
		t.Fatalf("events %v, want the creation's (sequence 1)", got)
	}

	env["INVENTORY_KAFKA_PASSWORD"] = "wrong"
	env["INVENTORY_NAMESPACE"] = testNamespace("tlsbad")
	bad := startServer(t, env)
	testenv.Eventually(t, "the publisher and the consumer to report failing", func() bool {
		return bad.logged("event publisher: failed") && bad.logged("command consumer: broker failed")
	})
	if code, body := get(t, bad.url+"/readyz"); code != 200 || strings.Contains(body, `"broker":"ok"`) {
		t.Errorf("/readyz = %d %s, want ready (the broker is optional) with the broker not ok", code, body)
	}
}
