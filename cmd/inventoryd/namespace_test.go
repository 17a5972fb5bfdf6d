package main

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/redis/go-redis/v9"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/shopstack/inventory/internal/gormstore"
	"github.com/shopstack/inventory/internal/testenv"
	"github.com/shopstack/inventory/internal/testenv/etcdtest"
	"github.com/shopstack/inventory/internal/testenv/gormstoretest"
	"github.com/shopstack/inventory/internal/testenv/redistest"
)

// TestNamespacesShareNothing: two deployments, two replicas each, on one
// lock backend (one Redis, or one etcd) and one NATS, with different
// INVENTORY_NAMESPACEs. Each elects its own reaper and event publisher
// (exactly one replica of each deployment leads each duty), each stream
// holds its own ledger and nothing else, and every key in Redis or etcd
// belongs to one namespace.
func TestNamespacesShareNothing(t *testing.T) {
	for _, backend := range []struct {
		name string
		// start starts the shared backend; env configures a deployment
		// on it, keys lists every key it holds.
		start func(t *testing.T) (env func(dsn string) map[string]string, keys func() []string)
		sep   string // between the namespace and the rest of a key
	}{
		{"redis", func(t *testing.T) (func(string) map[string]string, func() []string) {
			r := redistest.Start(t)
			return func(dsn string) map[string]string { return redsyncEnv(dsn, r.Addr) }, func() []string {
				rc := redis.NewClient(&redis.Options{Addr: r.Addr})
				defer rc.Close()
				keys, err := rc.Keys(context.Background(), "*").Result()
				if err != nil {
					t.Fatal(err)
				}
				return keys
			}
		}, ":"},
		{"etcd", func(t *testing.T) (func(string) map[string]string, func() []string) {
			endpoints := etcdtest.Start(t, 1).Endpoints()
			return func(dsn string) map[string]string { return etcdEnv(dsn, endpoints) }, func() []string {
				c, err := clientv3.New(clientv3.Config{Endpoints: endpoints, DialTimeout: 2 * time.Second})
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close()
				resp, err := c.Get(context.Background(), "", clientv3.WithFromKey(), clientv3.WithKeysOnly())
				if err != nil {
					t.Fatal(err)
				}
				var keys []string
				for _, kv := range resp.Kvs {
					keys = append(keys, strings.TrimPrefix(string(kv.Key), "/"))
				}
				return keys
			}
		}, "/"},
	} {
		t.Run(backend.name, func(t *testing.T) {
			envOn, keys := backend.start(t)
			type deployment struct {
				names    natsNames
				replicas []*server
				sales    int
			}
			var deps []*deployment
			var nc *nats.Conn
			for i, sales := range []int{3, 5} {
				var url string
				var names natsNames
				url, nc, names = natsForTestNamed(t, testNamespace(fmt.Sprintf("ns%d", i)))
				env := envOn(gormstoretest.DSN(t, gormstore.Postgres))
				env["INVENTORY_NAMESPACE"], env["INVENTORY_LOCK_TTL"] = names.namespace, "2s"
				env["INVENTORY_BROKER"], env["INVENTORY_NATS_URL"], env["INVENTORY_BROKER_COMMANDS"] = "nats", url, "false"
				d := &deployment{names: names, sales: sales}
				for range 2 {
					d.replicas = append(d.replicas, startServer(t, env))
				}
				deps = append(deps, d)
			}
			for _, d := range deps {
				id := d.replicas[0].createProduct(t, "NS-"+d.names.namespace, 100)
				for i := range d.sales {
					d.replicas[i%2].graphql(t, fmt.Sprintf(`mutation { stockOut(input: {productId: %q, quantity: 1}) { movement { sequence } } }`, id), nil, nil)
				}
			}
			for _, d := range deps {
				for _, duty := range []string{"reaper", "events"} {
					testenv.Eventually(t, d.names.namespace+": one replica to lead "+duty, func() bool {
						leaders := 0
						for _, s := range d.replicas {
							_, body := get(t, s.url+"/metrics")
							if strings.Contains(body, `inventory_duty_leading{duty="`+duty+`"} 1`) {
								leaders++
							}
						}
						return leaders == 1
					})
				}
				wantBrokerIsLedger(t, natsPublished(t, nc, d.names.Stream), d.replicas[0])
			}
			all := keys()
			if len(all) == 0 {
				t.Fatal("no keys in the lock backend: the deployments did not lock through it")
			}
			for _, k := range all {
				if !strings.HasPrefix(k, deps[0].names.namespace+backend.sep) && !strings.HasPrefix(k, deps[1].names.namespace+backend.sep) {
					t.Errorf("key %q belongs to neither namespace", k)
				}
			}
			t.Logf("%d keys, each in its deployment's namespace", len(all))
		})
	}
}
