package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/shopstack/inventory/internal/broker"
	"github.com/shopstack/inventory/internal/broker/natsbroker"
)

// natsTarget is where the server's broker lives: the NATS URL, its events
// stream (commands and outcomes: STREAM_COMMANDS, STREAM_OUTCOMES) and its
// subject prefix.
type natsTarget struct{ url, stream, prefix string }

// rowNATS names a JetStream stream of the row run's own, so rows and runs
// never read each other's commands or events.
func rowNATS(url string) natsTarget {
	stream := fmt.Sprintf("INVBENCH_%d_%d", os.Getpid(), time.Now().UnixNano())
	return natsTarget{url: url, stream: stream, prefix: strings.ToLower(stream)}
}

// claimStreams checks that JetStream answers at nt.url and returns a func
// deleting nt's three streams, for after the row, so runs leave nothing
// behind.
func claimStreams(ctx context.Context, nt natsTarget) (cleanup func(), err error) {
	nc, err := nats.Connect(nt.url, nats.Name("invbench"), nats.Timeout(2*time.Second))
	if err != nil {
		return nil, err
	}
	js, err := jetstream.New(nc)
	if err == nil {
		actx, cancel := context.WithTimeout(ctx, 2*time.Second)
		_, err = js.AccountInfo(actx)
		cancel()
	}
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("JetStream: %w", err)
	}
	return func() {
		// Also when the tool is interrupted.
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		for _, s := range []string{nt.stream, nt.stream + "_COMMANDS", nt.stream + "_OUTCOMES"} {
			_ = js.DeleteStream(dctx, s) // not found: the server never made it
		}
		nc.Close()
	}, nil
}

// natsSender sends the timed stock-outs as broker commands and hands each
// outcome to the worker waiting for it. Its outcomes come on a subject of
// its own (replyTo), read by one ordered consumer.
type natsSender struct {
	nc      *nats.Conn
	client  *natsbroker.Client
	replyTo string
	waiting waiters
	stop    context.CancelFunc
	done    chan struct{}
}

// dialNATS connects to nt's server and starts reading outcomes.
func dialNATS(nt natsTarget) (*natsSender, error) {
	nc, err := nats.Connect(nt.url, nats.Name("invbench"), nats.Timeout(2*time.Second))
	if err != nil {
		return nil, fmt.Errorf("nats %s: %w", nt.url, err)
	}
	bc, err := natsbroker.NewClient(nc, natsbroker.Config{Stream: nt.stream, Prefix: nt.prefix})
	if err != nil {
		nc.Close()
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &natsSender{nc: nc, client: bc, replyTo: "invbench-" + newRunID(), stop: cancel, done: make(chan struct{})}
	outcomes, err := bc.Outcomes(ctx, s.replyTo)
	if err != nil {
		cancel()
		nc.Close()
		return nil, fmt.Errorf("read outcomes: %w", err)
	}
	go s.read(ctx, outcomes)
	return s, nil
}

// close stops reading outcomes and disconnects.
func (s *natsSender) close() {
	s.stop()
	<-s.done
	s.nc.Close()
}

func (s *natsSender) read(ctx context.Context, outcomes <-chan []byte) {
	defer close(s.done)
	for {
		select {
		case <-ctx.Done():
			return
		case data := <-outcomes:
			var o broker.Outcome
			if json.Unmarshal(data, &o) == nil {
				s.waiting.deliver(o)
			}
		}
	}
}

// sendNATS sends the worker's stock-out as a command, its idempotency key
// as the command ID, and waits for its outcome: the time measured is an
// order service's, from sending to knowing.
func (c *client) sendNATS(ctx context.Context, w *workload, wk *worker) string {
	s := c.nats
	id := w.key(wk)
	pid, _ := strconv.ParseInt(w.productIDs[wk.product], 10, 64)
	cmd, err := json.Marshal(broker.Command{Schema: broker.CommandSchemaV1, ID: id, Type: broker.CommandStockOut,
		ProductID: broker.ID(pid), Quantity: 1, ReplyTo: s.replyTo})
	if err != nil {
		return outcomeBad
	}
	ctx, cancel := context.WithTimeout(ctx, c.http.Timeout)
	defer cancel()
	ch := s.waiting.add(id) // before sending: the outcome may beat the acknowledgement
	if err := s.client.Send(ctx, cmd, nil); err != nil {
		// Stored or not, the tool cannot tell; unless its outcome came.
		return s.waiting.give(id, ch, outcomeTransport)
	}
	select {
	case o := <-ch:
		return commandOutcome(o)
	case <-ctx.Done():
		return s.waiting.give(id, ch, outcomeTransport)
	}
}

// commandOutcome is OK (with the movement's sequence, else "bad
// response", as over gRPC) or the outcome's code.
func commandOutcome(o broker.Outcome) string {
	switch {
	case o.OK && o.Sequence == 0:
		return outcomeBad
	case o.OK:
		return outcomeOK
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
