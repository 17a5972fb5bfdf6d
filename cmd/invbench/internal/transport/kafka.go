package transport

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/shopstack/inventory/internal/broker/kafkabroker"
)

// EmulateKafka starts kfake, franz-go's emulation of a Kafka cluster, in
// this process: three brokers on free loopback ports, in memory, and
// returns a row's names on it and a func closing it. kfake speaks the
// Kafka protocol (transactions, consumer groups, read_committed) but it
// is not Kafka: one event loop serves every request, and its CPU is this
// tool's. What a row measures through it is the server's side of Kafka,
// not Kafka's performance.
func EmulateKafka() (bt Broker, stop func(), err error) {
	c, err := kfake.NewCluster(kfake.NumBrokers(3), kfake.DefaultNumPartitions(6))
	if err != nil {
		return Broker{}, nil, fmt.Errorf("kfake: %w", err)
	}
	bt = Row(Kafka, strings.Join(c.ListenAddrs(), ","))
	bt.Emulated = true
	return bt, c.Close, nil
}

// seeds are bt's seed brokers.
func (bt Broker) seeds() []string {
	var seeds []string
	for _, s := range strings.Split(bt.URL, ",") {
		if s = strings.TrimSpace(s); s != "" {
			seeds = append(seeds, s)
		}
	}
	return seeds
}

// kafkaConfig names what the server makes under bt.Namespace.
func (bt Broker) kafkaConfig() kafkabroker.Config {
	return kafkabroker.ConfigFor(bt.seeds(), bt.Namespace, nil)
}

// kafkaAdmin connects an admin client to bt's cluster; close it with
// Close.
func (bt Broker) kafkaAdmin() (*kadm.Client, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(bt.seeds()...), kgo.ClientID("invbench"), kgo.DialTimeout(2*time.Second))
	if err != nil {
		return nil, fmt.Errorf("kafka %s: %w", bt.URL, err)
	}
	return kadm.NewClient(cl), nil
}

// claimTopics checks that the cluster at bt.URL answers and returns a func
// deleting every topic under bt.Namespace (the server's, and the reply
// topics of the row's senders) and the server's consumer group.
func claimTopics(ctx context.Context, bt Broker) (cleanup func() error, err error) {
	adm, err := bt.kafkaAdmin()
	if err != nil {
		return nil, err
	}
	defer adm.Close()
	pctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	if _, err := adm.ListBrokers(pctx); err != nil {
		return nil, err
	}
	return func() error {
		// Also when the tool is interrupted.
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		return deleteNamespace(dctx, bt)
	}, nil
}

// deleteNamespace deletes the topics under bt.Namespace and the server's
// consumer group, with a client of its own: an admin client's topic list
// is its cached metadata.
func deleteNamespace(ctx context.Context, bt Broker) error {
	adm, err := bt.kafkaAdmin()
	if err != nil {
		return err
	}
	defer adm.Close()
	topics, err := adm.ListTopics(ctx)
	if err != nil {
		return fmt.Errorf("list topics: %w", err)
	}
	var names []string
	for _, t := range topics.Names() {
		if strings.HasPrefix(t, bt.Namespace+".") {
			names = append(names, t)
		}
	}
	errs := []error{deleteTopics(ctx, adm, names...)}
	group := bt.kafkaConfig().Group
	resp, err := adm.DeleteGroup(ctx, group)
	if err == nil {
		err = resp.Err
	}
	// Not found: the server never joined it.
	if err != nil && !errors.Is(err, kerr.GroupIDNotFound) {
		errs = append(errs, fmt.Errorf("delete group %s: %w", group, err))
	}
	return errors.Join(errs...)
}

// deleteTopics deletes topics; deleting one that does not exist succeeds.
func deleteTopics(ctx context.Context, adm *kadm.Client, topics ...string) error {
	if len(topics) == 0 {
		return nil
	}
	resps, err := adm.DeleteTopics(ctx, topics...)
	if err != nil {
		return fmt.Errorf("delete topics: %w", err)
	}
	var errs []error
	for _, r := range resps.Sorted() {
		if r.Err != nil && !errors.Is(r.Err, kerr.UnknownTopicOrPartition) {
			errs = append(errs, fmt.Errorf("delete topic %s: %w", r.Topic, r.Err))
		}
	}
	return errors.Join(errs...)
}

// dialKafka starts reading outcomes from a reply topic of the run's own,
// deleted when the sender closes.
func dialKafka(bt Broker) (*commandSender, error) {
	if len(bt.seeds()) == 0 {
		return nil, errors.New("kafka: no seed brokers")
	}
	cfg := bt.kafkaConfig()
	bc := kafkabroker.NewClient(cfg)
	replyTo := "invbench-" + NewID()
	return startCommands(bc, replyTo, func() {
		bc.Close()
		adm, err := bt.kafkaAdmin()
		if err != nil {
			return
		}
		defer adm.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = deleteTopics(ctx, adm, cfg.OutcomeTopic(replyTo)) // unreachable: it outlives the run
	})
}
