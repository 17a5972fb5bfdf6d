package transport

import (
	"errors"
	"fmt"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/shopstack/inventory/internal/broker/rabbitbroker"
)

// rabbitConfig names what the server declares under bt.Namespace. The retry
// schedule is the server's default (INVENTORY_BROKER_RETRY): the client
// declares the retry queues too, and a queue's TTL cannot change.
func (bt Broker) rabbitConfig() rabbitbroker.Config {
	return rabbitbroker.ConfigFor(bt.URL, bt.Namespace, nil)
}

// claimQueues checks that RabbitMQ answers at bt.URL and returns a func
// deleting the queues and the exchange the server declares under
// bt.Namespace.
func claimQueues(bt Broker) (cleanup func() error, err error) {
	conn, err := dialAMQP(bt.URL)
	if err != nil {
		return nil, err
	}
	_ = conn.Close()
	return func() error {
		// Also when the tool is interrupted: no context.
		cfg := bt.rabbitConfig()
		return deleteOnRabbitMQ(bt.URL, cfg.Queues(), cfg.Exchange)
	}, nil
}

// dialRabbitMQ starts reading outcomes from a reply queue of the run's
// own, deleted when the sender closes.
func dialRabbitMQ(bt Broker) (*commandSender, error) {
	bc, err := rabbitbroker.NewClient(bt.rabbitConfig())
	if err != nil {
		return nil, err
	}
	replyTo := bt.Namespace + ".invbench-" + NewID()
	return startCommands(bc, replyTo, func() {
		_ = bc.Close()
		_ = deleteOnRabbitMQ(bt.URL, []string{replyTo}, "") // unreachable: it outlives the run
	})
}

// dialAMQP connects to RabbitMQ, giving up after two seconds.
func dialAMQP(url string) (*amqp.Connection, error) {
	return amqp.DialConfig(url, amqp.Config{Dial: amqp.DefaultDial(2 * time.Second)})
}

// deleteOnRabbitMQ deletes queues and then exchange (if named), each on a
// channel of its own, since a refusal closes its channel. Deleting what
// does not exist succeeds.
func deleteOnRabbitMQ(url string, queues []string, exchange string) error {
	conn, err := dialAMQP(url)
	if err != nil {
		return fmt.Errorf("rabbitmq: %w", err)
	}
	defer conn.Close()
	onChannel := func(fn func(*amqp.Channel) error) error {
		ch, err := conn.Channel()
		if err != nil {
			return err
		}
		defer func() { _ = ch.Close() }() // closed already after a refusal
		return fn(ch)
	}
	var errs []error
	for _, q := range queues {
		if err := onChannel(func(ch *amqp.Channel) error { _, err := ch.QueueDelete(q, false, false, false); return err }); err != nil {
			errs = append(errs, fmt.Errorf("delete queue %s: %w", q, err))
		}
	}
	if exchange != "" {
		if err := onChannel(func(ch *amqp.Channel) error { return ch.ExchangeDelete(exchange, false, false) }); err != nil {
			errs = append(errs, fmt.Errorf("delete exchange %s: %w", exchange, err))
		}
	}
	return errors.Join(errs...)
}
