package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"maps"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/shopstack/inventory/internal/gormstore"
	"github.com/shopstack/inventory/internal/testenv"
	"github.com/shopstack/inventory/internal/testenv/etcdtest"
	"github.com/shopstack/inventory/internal/testenv/gormstoretest"
	"github.com/shopstack/inventory/internal/testenv/redistest"
)

// TestEtcdWithAuthAndTLS: a managed etcd asks for TLS and a user. The
// service connects with INVENTORY_ETCD_CA_FILE, INVENTORY_ETCD_USERNAME
// and INVENTORY_ETCD_PASSWORD as a user allowed nothing outside
// /<namespace>/ (so every key it uses lies there), and sells; a wrong
// password or an untrusted server fails start-up.
func TestEtcdWithAuthAndTLS(t *testing.T) {
	certs := testenv.NewCerts(t)
	c := etcdtest.StartTLS(t, 1, certs)
	ns := testNamespace("etcd")
	pem, err := os.ReadFile(certs.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	admin, err := clientv3.New(clientv3.Config{Endpoints: c.Endpoints(), TLS: &tls.Config{RootCAs: pool}, DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	prefix := "/" + ns + "/"
	for _, step := range []func() error{
		func() error { _, err := admin.UserAdd(ctx, "root", "root-password"); return err },
		func() error { _, err := admin.UserGrantRole(ctx, "root", "root"); return err },
		func() error { _, err := admin.RoleAdd(ctx, "inventory"); return err },
		func() error {
			_, err := admin.RoleGrantPermission(ctx, "inventory", prefix, clientv3.GetPrefixRangeEnd(prefix), clientv3.PermissionType(clientv3.PermReadWrite))
			return err
		},
		func() error { _, err := admin.UserAdd(ctx, "inventory", "the-password"); return err },
		func() error { _, err := admin.UserGrantRole(ctx, "inventory", "inventory"); return err },
		func() error { _, err := admin.AuthEnable(ctx); return err },
	} {
		if err := step(); err != nil {
			t.Fatalf("set up etcd authentication: %v", err)
		}
	}

	env := etcdEnv(gormstoretest.DSN(t, gormstore.SQLite), c.Endpoints())
	env["INVENTORY_DB_DRIVER"] = gormstore.SQLite
	env["INVENTORY_NAMESPACE"] = ns
	env["INVENTORY_ETCD_CA_FILE"] = certs.CAFile
	env["INVENTORY_ETCD_USERNAME"], env["INVENTORY_ETCD_PASSWORD"] = "inventory", "the-password"
	sellsAndIsReady(t, env)

	for name, c := range map[string]struct {
		change map[string]string
		want   string
	}{
		// Time enough to connect under load: a refused password ends it.
		"wrong password": {map[string]string{"INVENTORY_ETCD_PASSWORD": "not-the-password", "INVENTORY_LOCK_TIMEOUT": "20s"}, "authentication failed"},
		"untrusted CA":   {map[string]string{"INVENTORY_ETCD_CA_FILE": "", "INVENTORY_LOCK_TIMEOUT": "2s"}, "certificate signed by unknown authority"},
	} {
		err := startWith(t, env, c.change)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: run = %v, want a start-up error mentioning %q", name, err, c.want)
		}
	}
}

// TestRedisWithAuthAndTLS: a managed Redis asks for TLS and a password.
// The service connects with INVENTORY_REDIS_TLS, INVENTORY_REDIS_CA_FILE
// and INVENTORY_REDIS_PASSWORD, sells, and listens for other replicas'
// commits on the same Redis; a wrong password or an untrusted server fails
// start-up.
func TestRedisWithAuthAndTLS(t *testing.T) {
	certs := testenv.NewCerts(t)
	addr, plain := redistest.StartSecure(t, "the-redis-password", certs)
	env := redsyncEnv(gormstoretest.DSN(t, gormstore.SQLite), addr)
	env["INVENTORY_DB_DRIVER"] = gormstore.SQLite
	env["INVENTORY_REDIS_TLS"], env["INVENTORY_REDIS_CA_FILE"] = "true", certs.CAFile
	env["INVENTORY_REDIS_PASSWORD"] = "the-redis-password"
	sellsAndIsReady(t, env)
	rc := redis.NewClient(&redis.Options{Addr: plain.Addr, Password: "the-redis-password"})
	defer rc.Close()
	testenv.Eventually(t, "the fan-out to subscribe", func() bool {
		n, err := rc.PubSubNumSub(t.Context(), "inventory:ledger").Result()
		return err == nil && n["inventory:ledger"] == 1
	})

	for name, c := range map[string]struct {
		change map[string]string
		want   string
	}{
		"wrong password": {map[string]string{"INVENTORY_REDIS_PASSWORD": "not-the-password", "INVENTORY_LOCK_TIMEOUT": "2s"}, "WRONGPASS"},
		"untrusted CA":   {map[string]string{"INVENTORY_REDIS_CA_FILE": "", "INVENTORY_LOCK_TIMEOUT": "2s"}, "certificate"},
		"no TLS":         {map[string]string{"INVENTORY_REDIS_TLS": "false", "INVENTORY_REDIS_CA_FILE": "", "INVENTORY_LOCK_TIMEOUT": "2s"}, "lock backend redsync"},
	} {
		err := startWith(t, env, c.change)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: run = %v, want a start-up error mentioning %q", name, err, c.want)
		}
	}
}

// sellsAndIsReady starts a server on env, sells a unit through it and
// checks it is ready.
func sellsAndIsReady(t *testing.T, env map[string]string) {
	t.Helper()
	s := startServer(t, env)
	id := s.createProduct(t, "ACCESS-"+strings.ToUpper(env["INVENTORY_LOCK_BACKEND"]), 3)
	if code, msg := s.stockOut(id, "access-1"); code != "OK" {
		t.Fatalf("stockOut: %s %s", code, msg)
	}
	if code, body := get(t, s.url+"/readyz"); code != 200 {
		t.Fatalf("/readyz: %d %s", code, body)
	}
}

// startWith runs the server on env with change applied, for a start-up
// that must fail, and returns why it did not start (nil: it started, and
// stopped a minute later).
func startWith(t *testing.T, env, change map[string]string) error {
	t.Helper()
	c := maps.Clone(env)
	maps.Copy(c, change)
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	return run(ctx, []string{"inventoryd", "-addr", "127.0.0.1:0"}, func(k string) string { return c[k] }, io.Discard, io.Discard)
}
