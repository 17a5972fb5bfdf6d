package main

import (
	"bytes"
	"context"
	"io"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/shopstack/inventory/cmd/invbench/internal/transport"
	"github.com/shopstack/inventory/internal/testenv/kafkatest"
)

func TestSelectRows(t *testing.T) {
	all := compareRows()
	got, err := selectRows(all, []string{"flash/combine", " ceiling"})
	if err != nil {
		t.Fatal(err)
	}
	if names := rowNames(got); !slices.Equal(names, []string{"ceiling", "flash/combine"}) {
		t.Errorf("rows = %v, want the comparison's order", names)
	}
	if _, err := selectRows(all, []string{"flash/nope"}); err == nil || !strings.Contains(err.Error(), "flash/nope") {
		t.Errorf("unknown row: err = %v", err)
	}
	if got, _ := selectRows(all, nil); len(got) != len(all) {
		t.Errorf("no names kept %d rows, want all %d", len(got), len(all))
	}
}

func TestParseConfig(t *testing.T) {
	env := func(string) string { return "" }
	for _, args := range [][]string{
		{},
		{"-compare", "-url", "http://x"},
		{"-url", "http://x", "-scenario", "nope"},
		{"-compare", "-rows", "nope"},
		{"-compare", "-format", "html"},
		{"-compare", "-clients", "0"},
		{"-url", "http://x", "-transport", "nats", "-scenario", "ceiling"},
		{"-url", "http://x", "-transport", "nats", "-scenario", "mixed"},
		{"-url", "http://x", "-transport", "rabbitmq", "-scenario", "ceiling"},
		{"-url", "http://x", "-transport", "kafka", "-kafka-brokers", "k:9092", "-scenario", "ceiling"},
		{"-url", "http://x", "-transport", "kafka"}, // where is Kafka?
		{"-url", "http://x", "-transport", "grpc", "-scenario", "bundle"},
	} {
		if _, err := parseConfig(args, env, &strings.Builder{}); err == nil {
			t.Errorf("parseConfig(%q) accepted", args)
		}
	}
	for _, args := range [][]string{{"-compare", "-rows", "flash/combine,bundle"}, {"-url", "http://x", "-scenario", "bundle"}} {
		if _, err := parseConfig(args, env, &strings.Builder{}); err != nil {
			t.Errorf("parseConfig(%q): %v", args, err)
		}
	}
	cfg, err := parseConfig([]string{"-compare", "-rows", "ceiling,flash/combine"}, func(k string) string {
		return map[string]string{"INVENTORY_TEST_POSTGRES_ADMIN_DSN": "postgres://a@b/c"}[k]
	}, &strings.Builder{})
	if err != nil || cfg.pgAdminDSN != "postgres://a@b/c" || len(cfg.rows) != 2 || cfg.clients != 64 {
		t.Errorf("cfg = %+v, err = %v", cfg, err)
	}
	cfg, err = parseConfig([]string{"-url", "http://x", "-transport", "rabbitmq", "-rabbitmq-url", "amqp://a@b/", "-namespace", "p"},
		env, &strings.Builder{})
	if err != nil || cfg.transport != transport.RabbitMQ || cfg.rabbitURL != "amqp://a@b/" || cfg.namespace != "p" {
		t.Errorf("-transport rabbitmq: cfg = %+v, err = %v", cfg, err)
	}
	cfg, err = parseConfig([]string{"-url", "http://x", "-transport", "kafka", "-kafka-brokers", "k1:9092,k2:9092", "-namespace", "p"},
		env, &strings.Builder{})
	if err != nil || cfg.transport != transport.Kafka || cfg.brokerURL(transport.Kafka) != "k1:9092,k2:9092" || cfg.namespace != "p" {
		t.Errorf("-transport kafka: cfg = %+v, err = %v", cfg, err)
	}
	if cfg, err := parseConfig([]string{"-compare"}, env, &strings.Builder{}); err != nil || cfg.kafkaBrokers != "" {
		t.Errorf("-compare: -kafka-brokers %q, err %v: want none (kfake)", cfg.kafkaBrokers, err)
	}
}

func TestServerEnvBroker(t *testing.T) {
	rows, err := selectRows(compareRows(), []string{"flash/combine", "flash/combine/events", "flash/combine/nats",
		"flash/combine/events/rabbitmq", "flash/combine/rabbitmq", "flash/combine/events/kafka", "flash/combine/kafka"})
	if err != nil {
		t.Fatal(err)
	}
	targets := map[string]transport.Broker{
		brokerNATS:     {Kind: brokerNATS, URL: "nats://n:4222", Namespace: "invbench-1-2"},
		brokerRabbitMQ: {Kind: brokerRabbitMQ, URL: "amqp://g:g@r:5672/", Namespace: "invbench-1-3"},
		brokerKafka:    {Kind: brokerKafka, URL: "k1:9092,k2:9092", Namespace: "invbench-1-4"},
	}
	db := &database{driver: "postgres", dsn: "postgres://x"}
	for _, r := range rows {
		bt := targets[r.broker]
		env := r.serverEnv(db, "r:6379", "e:2379", bt)
		if r.broker == "" {
			for _, k := range []string{"INVENTORY_BROKER", "INVENTORY_NATS_URL", "INVENTORY_RABBITMQ_URL", "INVENTORY_KAFKA_BROKERS", "INVENTORY_NAMESPACE"} {
				if _, ok := env[k]; ok {
					t.Errorf("%s: %s set without a broker", r.name, k)
				}
			}
			continue
		}
		want := map[string]string{"INVENTORY_BROKER": r.broker, "INVENTORY_NAMESPACE": bt.Namespace,
			"INVENTORY_BROKER_COMMANDS": strconv.FormatBool(r.transport != ""),
			"INVENTORY_LOCK_BACKEND":    "redsync", "INVENTORY_REDIS_ADDRS": "r:6379", "INVENTORY_STOCK_STRATEGY": "combine",
			"INVENTORY_DB_DRIVER": "postgres"}
		for _, kind := range transport.Brokers() {
			k := brokerURLEnv(kind)
			if kind == r.broker {
				want[k] = bt.URL
			} else if _, ok := env[k]; ok {
				t.Errorf("%s: %s set for a %s broker", r.name, k, r.broker)
			}
		}
		for k, v := range want {
			if env[k] != v {
				t.Errorf("%s: %s = %q, want %q", r.name, k, env[k], v)
			}
		}
	}
	for i, want := range []string{"", "", transport.NATS, "", transport.RabbitMQ, "", transport.Kafka} {
		if rows[i].transport != want || rows[i].commands() != (want != "") {
			t.Errorf("%s speaks %q (commands %v), want %q", rows[i].name, rows[i].transport, rows[i].commands(), want)
		}
	}
	cfg := config{natsURL: "nats://n", rabbitURL: "amqp://r", kafkaBrokers: "k:9092"}
	for _, kind := range transport.Brokers() {
		if bt := rowBroker(kind, cfg); bt.Kind != kind || bt.URL != cfg.brokerURL(kind) || bt.URL == "" || bt.Emulated {
			t.Errorf("row broker %+v: want a %s at its flag's URL", bt, kind)
		}
	}
}

// TestClaimBrokerKafka: without -kafka-brokers a kafka row runs on kfake,
// started for the row and closed by its clean-up; with it, on the cluster
// it names.
func TestClaimBrokerKafka(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	bt, cleanup, err := claimBroker(ctx, brokerKafka, config{})
	if err != nil {
		t.Fatal(err)
	}
	if !bt.Emulated || bt.Kind != brokerKafka || bt.URL == "" {
		t.Errorf("broker %+v: want kfake", bt)
	}
	if err := cleanup(); err != nil {
		t.Fatal(err)
	}
	if _, err := bt.Claim(ctx); err == nil {
		t.Error("kfake answers after the row's clean-up")
	}

	brokers := strings.Join(kafkatest.Start(t).Addrs, ",")
	bt, cleanup, err = claimBroker(ctx, brokerKafka, config{kafkaBrokers: brokers})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := cleanup(); err != nil {
			t.Error(err)
		}
	}()
	if bt.Emulated || bt.URL != brokers {
		t.Errorf("broker %+v: want the cluster at %s", bt, brokers)
	}
}

// TestCheck: -check says what would run and runs nothing; an unknown row
// fails it as it would fail the run.
func TestCheck(t *testing.T) {
	var out bytes.Buffer
	err := run(context.Background(), []string{"invbench", "-check", "-compare", "-rows", "flash/combine,reserve", "-duration", "8s"},
		func(string) string { return "" }, &out, io.Discard)
	if err != nil || out.String() != "invbench: would compare 2 rows (flash/combine,reserve), 8s each, 64 clients\n" {
		t.Errorf("-check = %q, %v", out.String(), err)
	}
	err = run(context.Background(), []string{"invbench", "-check", "-compare", "-rows", "flash/nope"},
		func(string) string { return "" }, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "flash/nope") {
		t.Errorf("-check with an unknown row: %v", err)
	}
}
