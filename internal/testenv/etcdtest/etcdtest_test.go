package etcdtest_test

import (
	"context"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/shopstack/inventory/internal/testenv/etcdtest"
)

// TestKillLeader starts a 3-member cluster, crashes its leader and checks
// that the others elect a new one and that a client of the whole cluster
// carries on.
func TestKillLeader(t *testing.T) {
	c := etcdtest.Start(t, 3)
	if n := len(c.Endpoints()); n != 3 {
		t.Fatalf("%d endpoints, want 3", n)
	}
	cli, err := clientv3.New(clientv3.Config{Endpoints: c.Endpoints(), DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := cli.Put(ctx, "k", "before"); err != nil {
		t.Fatal(err)
	}
	// A watch is a long-lived stream: Kill must not wait for it to drain.
	wch := cli.Watch(ctx, "k", clientv3.WithRev(1))
	<-wch

	lead := c.Leader(t)
	start := time.Now()
	c.Kill(t, lead)
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("Kill took %v", d)
	}
	next := c.Leader(t)
	if next == lead {
		t.Fatalf("killed member %d still leads", lead)
	}
	t.Logf("killed leader %d; %d leads %v later", lead, next, time.Since(start).Round(time.Millisecond))
	if _, err := cli.Put(ctx, "k", "after"); err != nil {
		t.Fatalf("put after the leader was killed: %v", err)
	}
}

func TestSingleMember(t *testing.T) {
	c := etcdtest.Start(t, 1)
	if got := c.Leader(t); got != 0 {
		t.Fatalf("Leader() = %d, want 0", got)
	}
	cli, err := clientv3.New(clientv3.Config{Endpoints: c.Endpoints(), DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := cli.Put(ctx, "k", "v"); err != nil {
		t.Fatal(err)
	}
}
