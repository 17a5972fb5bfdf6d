package transport

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/shopstack/inventory/internal/broker"
	"github.com/shopstack/inventory/internal/broker/kafkabroker"
	"github.com/shopstack/inventory/internal/broker/natsbroker"
	"github.com/shopstack/inventory/internal/broker/rabbitbroker"
)

// Broker is where a server's broker lives and what its names are.
type Broker struct {
	Kind string // INVENTORY_BROKER: NATS, RabbitMQ or Kafka
	// URL is NATS's or RabbitMQ's URL, or Kafka's seed brokers
	// (host:port, comma-separated).
	URL string
	// Namespace is the server's INVENTORY_NAMESPACE, which names its
	// streams and subjects, exchanges and queues, or topics.
	Namespace string
	// Emulated says the broker is kfake in this process (see
	// EmulateKafka), not the real thing.
	Emulated bool
}

// Row names a broker of kind at url with names of the row run's own
// (streams and subjects, exchanges and queues, or topics and a group), so
// rows and runs never read each other's commands or events.
func Row(kind, url string) Broker {
	ns := "invbench-" + strconv.Itoa(os.Getpid()) + "-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	return Broker{Kind: kind, URL: url, Namespace: ns}
}

// Where is bt's URL without its password, for the report.
func (bt Broker) Where() string {
	if u, err := url.Parse(bt.URL); err == nil {
		return u.Redacted()
	}
	return bt.URL
}

// Claim checks that the broker answers and returns a func deleting what
// the server makes under bt's names, for after the row, so runs leave
// nothing behind.
func (bt Broker) Claim(ctx context.Context) (cleanup func() error, err error) {
	switch bt.Kind {
	case RabbitMQ:
		return claimQueues(bt)
	case Kafka:
		return claimTopics(ctx, bt)
	}
	return claimStreams(ctx, bt)
}

// dial connects to the broker and starts reading the outcomes of the
// commands sent through it.
func (bt Broker) dial() (*commandSender, error) {
	switch bt.Kind {
	case RabbitMQ:
		return dialRabbitMQ(bt)
	case Kafka:
		return dialKafka(bt)
	}
	return dialNATS(bt)
}

// commandClient is an order service's side of a broker's commands.
type commandClient interface {
	Send(ctx context.Context, data []byte, header map[string]string) error
	Outcomes(ctx context.Context, replyTo string) (<-chan []byte, error)
}

var (
	_ commandClient = (*natsbroker.Client)(nil)
	_ commandClient = (*rabbitbroker.Client)(nil)
	_ commandClient = (*kafkabroker.Client)(nil)
)

// commandSender sends the timed stock-outs as broker commands and hands
// each outcome to the worker waiting for it. Its outcomes come to a reply
// destination of its own (replyTo), read by one reader.
type commandSender struct {
	client     commandClient
	replyTo    string
	waiting    waiters
	stop       context.CancelFunc
	done       chan struct{} // closed when the reader stops
	disconnect func()
}

// startCommands starts reading client's outcomes for replyTo; disconnect,
// called once reading stopped (or failed to start), releases the client.
func startCommands(client commandClient, replyTo string, disconnect func()) (*commandSender, error) {
	ctx, cancel := context.WithCancel(context.Background())
	outcomes, err := client.Outcomes(ctx, replyTo)
	if err != nil {
		cancel()
		disconnect()
		return nil, fmt.Errorf("read outcomes: %w", err)
	}
	s := &commandSender{client: client, replyTo: replyTo, stop: cancel, done: make(chan struct{}), disconnect: disconnect}
	go s.read(ctx, outcomes)
	return s, nil
}

// close stops reading outcomes and disconnects.
func (s *commandSender) close() {
	s.stop()
	<-s.done
	s.disconnect()
}

func (s *commandSender) read(ctx context.Context, outcomes <-chan []byte) {
	defer close(s.done)
	for {
		select {
		case <-ctx.Done():
			return
		case data, ok := <-outcomes:
			if !ok { // the connection is gone: the waiting give up
				return
			}
			var o broker.Outcome
			if json.Unmarshal(data, &o) == nil {
				s.waiting.deliver(o)
			}
		}
	}
}

// sendCommand sends a stock-out as a command, its idempotency key as the
// command ID, and waits for its outcome: the time measured is an order
// service's, from sending to knowing.
func (c *Client) sendCommand(ctx context.Context, productID, key string) string {
	s := c.commands
	cmd, err := json.Marshal(broker.Command{Schema: broker.CommandSchemaV1, ID: key, Type: broker.CommandStockOut,
		ProductID: broker.ID(DatabaseID(productID)), Quantity: 1, ReplyTo: s.replyTo})
	if err != nil {
		return BadAnswer
	}
	ctx, cancel := context.WithTimeout(ctx, c.http.Timeout)
	defer cancel()
	return s.send(ctx, key, cmd)
}

// send sends command id and classifies its outcome.
func (s *commandSender) send(ctx context.Context, id string, cmd []byte) string {
	ch := s.waiting.add(id) // before sending: the outcome may beat the acknowledgement
	if err := s.client.Send(ctx, cmd, nil); err != nil {
		// Stored or not, the tool cannot tell; unless its outcome came.
		return s.waiting.give(id, ch, NoAnswer)
	}
	select {
	case o := <-ch:
		return commandOutcome(o)
	case <-ctx.Done():
	case <-s.done: // no reader: no outcome will come
	}
	return s.waiting.give(id, ch, NoAnswer)
}

// commandOutcome is OK (with the movement's sequence, else BadAnswer, as
// over gRPC) or the outcome's code.
func commandOutcome(o broker.Outcome) string {
	switch {
	case o.OK && o.Sequence == 0:
		return BadAnswer
	case o.OK:
		return OK
	case o.Code != "":
		return o.Code
	}
	return "error"
}

// waiters are the commands waiting for their outcome, by ID.
type waiters struct {
	mu sync.Mutex
	m  map[string]chan broker.Outcome
}

// add registers a command; its outcome will come on the returned channel.
func (ws *waiters) add(id string) chan broker.Outcome {
	ch := make(chan broker.Outcome, 1)
	ws.mu.Lock()
	defer ws.mu.Unlock()
	if ws.m == nil {
		ws.m = map[string]chan broker.Outcome{}
	}
	ws.m[id] = ch
	return ch
}

// deliver hands o to the command waiting for it. An outcome no one waits
// for (an unknown ID, a duplicate, one given up on) is dropped: false.
func (ws *waiters) deliver(o broker.Outcome) bool {
	ws.mu.Lock()
	ch, ok := ws.m[o.CommandID]
	delete(ws.m, o.CommandID)
	ws.mu.Unlock()
	if ok {
		ch <- o // buffered: one outcome per registration
	}
	return ok
}

// give gives up waiting for id, returning otherwise; if the outcome was
// delivered meanwhile, it is what it says instead.
func (ws *waiters) give(id string, ch chan broker.Outcome, otherwise string) string {
	ws.mu.Lock()
	_, waiting := ws.m[id]
	delete(ws.m, id)
	ws.mu.Unlock()
	if waiting {
		return otherwise
	}
	return commandOutcome(<-ch) // deliver took it and is sending it
}
