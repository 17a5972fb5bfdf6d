package config_test

import (
	"bytes"
	"errors"
	"log/slog"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/shopstack/inventory/internal/config"
)

func env(kv map[string]string) func(string) string {
	return func(k string) string { return kv[k] }
}

func TestDefaults(t *testing.T) {
	c, err := config.Load(nil, env(nil), nil)
	if err != nil {
		t.Fatal(err)
	}
	want := config.Config{Addr: "127.0.0.1:8080", DBDriver: "sqlite", DBDSN: "inventory.db", DBMaxConns: 16,
		LockBackend: "local", Broker: "none", NATSURL: "nats://127.0.0.1:4222", RabbitMQURL: "amqp://guest:guest@127.0.0.1:5672/", Namespace: "inventory", RedisMode: "standalone",
		KafkaBrokers: []string{"127.0.0.1:9092"}, KafkaPartitions: 6, KafkaReplicationFactor: -1, PersistedQueries: 1000, HTTPCacheMaxAge: 5 * time.Second,
		BrokerCommands: true, BrokerActor: "broker", BrokerInFlight: 64, BrokerRetry: []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second},
		RedisAddrs: []string{"127.0.0.1:6379"}, EtcdEndpoints: []string{"127.0.0.1:2379"},
		LockTTL: 8 * time.Second, LockTimeout: 10 * time.Second, LeaseIdle: 5 * time.Second, LockRetryMin: 5 * time.Millisecond, LockRetryMax: 100 * time.Millisecond,
		StockStrategy: "combine", CombineMaxBatch: 256, CombineMaxWaiting: 10_000,
		ReservationMaxTTL: 24 * time.Hour, ReapInterval: time.Second, EventPollInterval: time.Second, ReadModelProducts: 100_000, AnswerCacheMB: 32, GCPercent: 400, FlowCheckInterval: time.Second,
		LogLevel: slog.LevelInfo, ShutdownTimeout: 30 * time.Second, Introspection: true, MaxQueryDepth: 10, MaxQueryComplexity: 10000}
	if !reflect.DeepEqual(c, want) {
		t.Fatalf("defaults = %+v, want %+v", c, want)
	}
}

func TestFlagBeatsEnv(t *testing.T) {
	c, err := config.Load([]string{"-addr", ":0", "--log-level=debug"},
		env(map[string]string{"INVENTORY_ADDR": "127.0.0.1:9999", "INVENTORY_DB_DSN": "/tmp/x.db", "INVENTORY_LOCK_TIMEOUT": "250ms"}), nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.Addr != ":0" || c.DBDSN != "/tmp/x.db" || c.LockTimeout != 250*time.Millisecond || c.LogLevel != slog.LevelDebug {
		t.Fatalf("got %+v", c)
	}
}

func TestBadValues(t *testing.T) {
	for name, tc := range map[string]struct {
		args []string
		env  map[string]string
		want string
	}{
		"driver":      {env: map[string]string{"INVENTORY_DB_DRIVER": "mysql"}, want: "INVENTORY_DB_DRIVER"},
		"pg dsn":      {env: map[string]string{"INVENTORY_DB_DRIVER": "postgres"}, want: "INVENTORY_DB_DSN"},
		"lock":        {env: map[string]string{"INVENTORY_LOCK_BACKEND": "zookeeper"}, want: "INVENTORY_LOCK_BACKEND"},
		"duration":    {env: map[string]string{"INVENTORY_LOCK_TIMEOUT": "ten"}, want: "INVENTORY_LOCK_TIMEOUT"},
		"addr":        {args: []string{"-addr", "8080"}, want: "INVENTORY_ADDR"},
		"conns":       {args: []string{"-db-max-conns", "0"}, want: "INVENTORY_DB_MAX_CONNS"},
		"level":       {env: map[string]string{"INVENTORY_LOG_LEVEL": "loud"}, want: "INVENTORY_LOG_LEVEL"},
		"unknown":     {args: []string{"-nope"}, want: "nope"},
		"extra args":  {args: []string{"serve"}, want: "serve"},
		"neg timeout": {env: map[string]string{"INVENTORY_SHUTDOWN_TIMEOUT": "-1s"}, want: "INVENTORY_SHUTDOWN_TIMEOUT"},
		"redis addr":  {env: map[string]string{"INVENTORY_REDIS_ADDRS": "127.0.0.1:6379,redis"}, want: "INVENTORY_REDIS_ADDRS"},
		"redis twice": {env: map[string]string{"INVENTORY_REDIS_ADDRS": "a:1, a:1"}, want: "listed twice"},
		"etcd addr":   {env: map[string]string{"INVENTORY_ETCD_ENDPOINTS": "http://e1"}, want: "INVENTORY_ETCD_ENDPOINTS"},
		"etcd scheme": {env: map[string]string{"INVENTORY_ETCD_ENDPOINTS": "unix://e1:2379"}, want: "INVENTORY_ETCD_ENDPOINTS"},
		"etcd ttl":    {env: map[string]string{"INVENTORY_LOCK_BACKEND": "etcd", "INVENTORY_LOCK_TTL": "500ms"}, want: "INVENTORY_LOCK_TTL"},
		"tiny ttl":    {env: map[string]string{"INVENTORY_LOCK_TTL": "1ms"}, want: "INVENTORY_LOCK_TTL"},
		"lease idle":  {env: map[string]string{"INVENTORY_LEASE_IDLE": "0s"}, want: "INVENTORY_LEASE_IDLE"},
		"strategy":    {env: map[string]string{"INVENTORY_STOCK_STRATEGY": "yolo"}, want: "INVENTORY_STOCK_STRATEGY"},
		"batch":       {env: map[string]string{"INVENTORY_COMBINE_MAX_BATCH": "0"}, want: "INVENTORY_COMBINE_MAX_BATCH"},
		"namespace":   {env: map[string]string{"INVENTORY_NAMESPACE": "Shop.A"}, want: "INVENTORY_NAMESPACE"},
		"long ns":     {env: map[string]string{"INVENTORY_NAMESPACE": strings.Repeat("a", 41)}, want: "INVENTORY_NAMESPACE"},
		"redis mode":  {env: map[string]string{"INVENTORY_REDIS_MODE": "sentinel"}, want: "INVENTORY_REDIS_MODE"},
		"redis ca":    {env: map[string]string{"INVENTORY_REDIS_CA_FILE": "/ca.pem"}, want: "INVENTORY_REDIS_TLS"},
		"redis user":  {env: map[string]string{"INVENTORY_REDIS_USERNAME": "app"}, want: "INVENTORY_REDIS_PASSWORD"},
		"etcd user":   {env: map[string]string{"INVENTORY_ETCD_PASSWORD": "pw"}, want: "INVENTORY_ETCD_USERNAME"},
		"etcd mixed":  {env: map[string]string{"INVENTORY_ETCD_ENDPOINTS": "https://e1:2379,e2:2379"}, want: "mixed"},
		"etcd ca":     {env: map[string]string{"INVENTORY_ETCD_CA_FILE": "/ca.pem"}, want: "INVENTORY_ETCD_CA_FILE"},
		"retry order": {env: map[string]string{"INVENTORY_LOCK_RETRY_MIN": "1s", "INVENTORY_LOCK_RETRY_MAX": "10ms"}, want: "INVENTORY_LOCK_RETRY_MAX"},
		"oidc no aud": {env: map[string]string{"INVENTORY_OIDC_ISSUER": "https://id.example.com"}, want: "INVENTORY_OIDC_AUDIENCE"},
		"oidc url":    {env: map[string]string{"INVENTORY_OIDC_ISSUER": "id.example.com", "INVENTORY_OIDC_AUDIENCE": "inv"}, want: "INVENTORY_OIDC_ISSUER"},
		"oidc alone":  {env: map[string]string{"INVENTORY_OIDC_ROLES_CLAIM": "roles"}, want: "INVENTORY_OIDC_ISSUER"},
		"broker":      {env: map[string]string{"INVENTORY_BROKER": "kinesis"}, want: "INVENTORY_BROKER"},
		"kafka addr":  {env: map[string]string{"INVENTORY_KAFKA_BROKERS": "kafka"}, want: "INVENTORY_KAFKA_BROKERS"},
		"kafka sasl":  {env: map[string]string{"INVENTORY_KAFKA_SASL_MECHANISM": "GSSAPI", "INVENTORY_KAFKA_USERNAME": "app"}, want: "INVENTORY_KAFKA_SASL_MECHANISM"},
		"kafka pass":  {env: map[string]string{"INVENTORY_KAFKA_SASL_MECHANISM": "PLAIN", "INVENTORY_KAFKA_USERNAME": "app"}, want: "INVENTORY_KAFKA_PASSWORD"},
		"kafka user":  {env: map[string]string{"INVENTORY_KAFKA_SASL_MECHANISM": "PLAIN"}, want: "INVENTORY_KAFKA_USERNAME"},
		"kafka ca":    {env: map[string]string{"INVENTORY_KAFKA_CA_FILE": "/ca.pem"}, want: "INVENTORY_KAFKA_TLS"},
		"kafka parts": {env: map[string]string{"INVENTORY_KAFKA_PARTITIONS": "0"}, want: "INVENTORY_KAFKA_PARTITIONS"},
		"kafka rf":    {env: map[string]string{"INVENTORY_KAFKA_REPLICATION_FACTOR": "0"}, want: "INVENTORY_KAFKA_REPLICATION_FACTOR"},
	} {
		_, err := config.Load(tc.args, env(tc.env), nil)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want one naming %s", name, err, tc.want)
		}
	}
}

func TestLockBackends(t *testing.T) {
	c, err := config.Load([]string{"-lock-backend", "redsync"},
		env(map[string]string{"INVENTORY_REDIS_ADDRS": "10.0.0.1:6379, 10.0.0.2:6379,10.0.0.3:6379", "INVENTORY_LOCK_TTL": "3s"}), nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.LockBackend != config.LockRedsync || !slices.Equal(c.RedisAddrs, []string{"10.0.0.1:6379", "10.0.0.2:6379", "10.0.0.3:6379"}) || c.LockTTL != 3*time.Second {
		t.Fatalf("got %+v", c)
	}
	c, err = config.Load(nil, env(map[string]string{"INVENTORY_LOCK_BACKEND": "etcd", "INVENTORY_ETCD_ENDPOINTS": "e1:2379,http://e2:2379"}), nil)
	if err != nil || c.LockBackend != config.LockEtcd || !slices.Equal(c.EtcdEndpoints, []string{"e1:2379", "http://e2:2379"}) {
		t.Fatalf("etcd: %+v, %v", c, err)
	}
}

func TestHelp(t *testing.T) {
	var out bytes.Buffer
	_, err := config.Load([]string{"--help"}, env(nil), &out)
	if !errors.Is(err, config.ErrHelp) {
		t.Fatalf("err = %v, want ErrHelp", err)
	}
	for _, want := range []string{"INVENTORY_ADDR", "INVENTORY_DB_DSN", "-lock-backend", "127.0.0.1:8080"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("usage lacks %q:\n%s", want, out.String())
		}
	}
}
