package transport

import (
	"context"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/shopstack/inventory/internal/broker"
)

// TestWaiters: each outcome reaches the command waiting for it, once; an
// outcome for an unknown command, a duplicate, or one for a command given
// up on is dropped, and a command given up on just as its outcome arrives
// still gets it.
func TestWaiters(t *testing.T) {
	var ws waiters
	a, b := ws.add("a"), ws.add("b")
	if ws.deliver(broker.Outcome{CommandID: "nope", OK: true, Sequence: 1}) {
		t.Error("an outcome for an unknown command was delivered")
	}
	if !ws.deliver(broker.Outcome{CommandID: "b", Code: "INSUFFICIENT_STOCK"}) {
		t.Fatal("b's outcome was dropped")
	}
	if ws.deliver(broker.Outcome{CommandID: "b", OK: true, Sequence: 2}) {
		t.Error("a duplicate outcome was delivered")
	}
	if got := commandOutcome(<-b); got != "INSUFFICIENT_STOCK" {
		t.Errorf("b: %s, want INSUFFICIENT_STOCK", got)
	}
	if len(b) != 0 {
		t.Error("b got a second outcome")
	}
	if got := ws.give("a", a, NoAnswer); got != NoAnswer {
		t.Errorf("a given up on: %s, want %s", got, NoAnswer)
	}
	if ws.deliver(broker.Outcome{CommandID: "a", OK: true, Sequence: 3}) {
		t.Error("an outcome for a command given up on was delivered")
	}

	c := ws.add("c")
	ws.deliver(broker.Outcome{CommandID: "c", OK: true, Sequence: 4})
	if got := ws.give("c", c, NoAnswer); got != OK {
		t.Errorf("c, delivered as it was given up on: %s, want OK", got)
	}
}

func TestCommandOutcome(t *testing.T) {
	for _, tc := range []struct {
		o    broker.Outcome
		want string
	}{
		{broker.Outcome{OK: true, Sequence: 7}, OK},
		{broker.Outcome{OK: true}, BadAnswer},
		{broker.Outcome{Code: "INSUFFICIENT_STOCK"}, "INSUFFICIENT_STOCK"},
		{broker.Outcome{Code: "UNAVAILABLE", DeadLettered: true}, "UNAVAILABLE"},
		{broker.Outcome{}, "error"},
	} {
		if got := commandOutcome(tc.o); got != tc.want {
			t.Errorf("commandOutcome(%+v) = %q, want %q", tc.o, got, tc.want)
		}
	}
}

// lostBroker stores every command and then loses its connection: its
// outcomes channel closes, as a RabbitMQ client's does.
type lostBroker struct{ outcomes chan []byte }

func (b lostBroker) Send(context.Context, []byte, map[string]string) error { return nil }

func (b lostBroker) Outcomes(context.Context, string) (<-chan []byte, error) { return b.outcomes, nil }

// TestCommandSenderLost: when the outcomes stop coming (the reader's
// channel closed), a command waiting gives up at once, as transport,
// instead of waiting out its timeout; and the reader stops, so close
// returns.
func TestCommandSenderLost(t *testing.T) {
	b := lostBroker{outcomes: make(chan []byte)}
	disconnected := false
	s, err := startCommands(b, "r", func() { disconnected = true })
	if err != nil {
		t.Fatal(err)
	}
	close(b.outcomes)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	start := time.Now()
	if got := s.send(ctx, "a", []byte(`{}`)); got != NoAnswer {
		t.Errorf("outcome %q, want %q", got, NoAnswer)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("gave up after %v", d)
	}
	s.close()
	if !disconnected {
		t.Error("close did not disconnect")
	}
}

// TestRowBrokers: each row run gets names of its own on its broker, and a
// broker's password never shows in the report.
func TestRowBrokers(t *testing.T) {
	valid := regexp.MustCompile(`^[a-z][a-z0-9-]{0,39}$`) // INVENTORY_NAMESPACE's form
	for _, kind := range Brokers() {
		a, b := Row(kind, "u"), Row(kind, "u")
		if a.Namespace == b.Namespace || !valid.MatchString(a.Namespace) || !strings.HasPrefix(a.Namespace, "invbench-") || a.Kind != kind || a.URL != "u" {
			t.Errorf("%s: row brokers %+v and %+v: want unique valid namespaces, invbench-*", kind, a, b)
		}
	}
	if got := (Broker{URL: "amqp://guest:secret@r:5672/"}).Where(); strings.Contains(got, "secret") {
		t.Errorf("Where() = %q: the password shows", got)
	}
}
