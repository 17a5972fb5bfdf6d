package transport

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/shopstack/inventory/internal/broker/natsbroker"
)

// natsConfig names what the server makes in bt's namespace.
func (bt Broker) natsConfig() natsbroker.Config { return natsbroker.ConfigFor(bt.Namespace, nil) }

// claimStreams checks that JetStream answers at bt.URL and returns a func
// deleting bt's three streams.
func claimStreams(ctx context.Context, bt Broker) (cleanup func() error, err error) {
	nc, err := nats.Connect(bt.URL, nats.Name("invbench"), nats.Timeout(2*time.Second))
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
	return func() error {
		defer nc.Close()
		// Also when the tool is interrupted.
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		var errs []error
		for _, s := range bt.natsConfig().Streams() {
			// Not found: the server never made it.
			if err := js.DeleteStream(dctx, s); err != nil && !errors.Is(err, jetstream.ErrStreamNotFound) {
				errs = append(errs, fmt.Errorf("delete stream %s: %w", s, err))
			}
		}
		return errors.Join(errs...)
	}, nil
}

// dialNATS connects to bt's server and starts reading outcomes, which come
// on a subject of the run's own, read by one ordered consumer.
func dialNATS(bt Broker) (*commandSender, error) {
	nc, err := nats.Connect(bt.URL, nats.Name("invbench"), nats.Timeout(2*time.Second))
	if err != nil {
		return nil, fmt.Errorf("nats %s: %w", bt.URL, err)
	}
	bc, err := natsbroker.NewClient(nc, bt.natsConfig())
	if err != nil {
		nc.Close()
		return nil, err
	}
	return startCommands(bc, "invbench-"+NewID(), nc.Close)
}
