package pubsub

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc"

	"github.com/shopstack/inventory/internal/testenv"
	"github.com/shopstack/inventory/internal/testenv/etcdtest"
)

// etcdFrames are stack frames of etcd client and gRPC client goroutines;
// the embedded servers run gRPC servers, whose frames differ.
var etcdFrames = []string{"go.etcd.io/etcd/client/v3.", "google.golang.org/grpc.(*ClientConn)", "google.golang.org/grpc.(*addrConn)", "google.golang.org/grpc/internal/transport.(*http2Client)"}

// pickFirst makes a client use its first reachable endpoint for every
// call, the watch included (clientv3 balances round robin otherwise), so
// that a test knows which member to kill.
var pickFirst = []grpc.DialOption{
	grpc.WithDisableServiceConfig(),
	grpc.WithDefaultServiceConfig(`{"loadBalancingConfig": [{"pick_first": {}}]}`),
}

func newEtcd(t *testing.T, cfg EtcdConfig) *Etcd {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	e, err := NewEtcd(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.Close() })
	return e
}

func plainEtcd(t *testing.T, endpoints []string) *clientv3.Client {
	t.Helper()
	c, err := clientv3.New(clientv3.Config{Endpoints: endpoints, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// TestEtcdWakesOthers: an announcement wakes the other instance, not the
// announcer.
func TestEtcdWakesOthers(t *testing.T) {
	c := etcdtest.Start(t, 1)
	a := newEtcd(t, EtcdConfig{Endpoints: c.Endpoints()})
	b := newEtcd(t, EtcdConfig{Endpoints: c.Endpoints()})

	a.Announce(1)
	waitWake(t, "B", b, wakeTimeout)
	noWake(t, "A", a, 500*time.Millisecond)

	b.Announce(2)
	waitWake(t, "A", a, wakeTimeout)
	noWake(t, "B", b, 500*time.Millisecond)

	// An instance created now does not wake for what was announced
	// before it; one on another key hears nothing.
	late := newEtcd(t, EtcdConfig{Endpoints: c.Endpoints()})
	other := newEtcd(t, EtcdConfig{Endpoints: c.Endpoints(), Key: "/elsewhere"})
	noWake(t, "late", late, 500*time.Millisecond)
	a.Announce(3)
	waitWake(t, "late", late, wakeTimeout)
	waitWake(t, "B", b, wakeTimeout)
	noWake(t, "other", other, 500*time.Millisecond)
}

// TestEtcdBurstCoalesces: 10,000 announces become a few puts, the last of
// which carries the last sequence. A plain watch counts them.
func TestEtcdBurstCoalesces(t *testing.T) {
	c := etcdtest.Start(t, 1)
	a := newEtcd(t, EtcdConfig{Endpoints: c.Endpoints()})
	cli := plainEtcd(t, c.Endpoints())
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	wch := cli.Watch(ctx, DefaultEtcdKey, clientv3.WithCreatedNotify())
	if resp := <-wch; !resp.Created {
		t.Fatalf("watch: %+v %v", resp, resp.Err())
	}

	const n = 10000
	start := time.Now()
	for i := int64(1); i <= n; i++ {
		a.Announce(i)
	}
	t.Logf("%d announces took %v", n, time.Since(start))

	var seqs []int64
	done := false
	for !done {
		resp, ok := <-wch
		if !ok || resp.Err() != nil {
			t.Fatalf("watch ended after %v: %v", seqs, resp.Err())
		}
		for _, ev := range resp.Events {
			id, seq, ok := decode(string(ev.Kv.Value))
			if !ok || id != a.id {
				t.Fatalf("value %q, want one from A (%s)", ev.Kv.Value, a.id)
			}
			if len(seqs) > 0 && seq <= seqs[len(seqs)-1] {
				t.Fatalf("sequence %d after %v", seq, seqs)
			}
			seqs = append(seqs, seq)
			done = seq == n
		}
	}
	select {
	case resp := <-wch:
		t.Errorf("put after the last sequence: %+v", resp.Events)
	case <-time.After(300 * time.Millisecond):
	}
	t.Logf("%d announces, %d puts: %v", n, len(seqs), seqs)
	if len(seqs) > n/100 {
		t.Errorf("%d puts for %d announces: not coalesced", len(seqs), n)
	}
}

// TestEtcdClose: Close ends every goroutine and closes Wakeups.
func TestEtcdClose(t *testing.T) {
	c := etcdtest.Start(t, 1)
	// The embedded server starts some goroutines of its own lazily, once
	// it served clients: count from after a first round.
	warm := newEtcd(t, EtcdConfig{Endpoints: c.Endpoints()})
	warm.Announce(1)
	closeAndCheck(t, "warm-up", warm)
	time.Sleep(500 * time.Millisecond)

	check := leakCheck(t, 3, etcdFrames...)
	a := newEtcd(t, EtcdConfig{Endpoints: c.Endpoints()})
	b := newEtcd(t, EtcdConfig{Endpoints: c.Endpoints()})
	a.Announce(1)
	waitWake(t, "B", b, wakeTimeout)
	b.Announce(2)
	closeAndCheck(t, "A", a)
	closeAndCheck(t, "B", b)
	check()
}

// TestEtcdUnreachable: NewEtcd fails within about DialTimeout when no
// member answers, and leaves nothing behind.
func TestEtcdUnreachable(t *testing.T) {
	check := leakCheck(t, 2, etcdFrames...)
	start := time.Now()
	_, err := NewEtcd(context.Background(), EtcdConfig{Endpoints: []string{"http://127.0.0.1:1"}, DialTimeout: 500 * time.Millisecond})
	d := time.Since(start)
	if err == nil || !strings.Contains(err.Error(), "did not answer within 500ms") {
		t.Fatalf("NewEtcd = %v", err)
	}
	t.Logf("failed after %v: %v", d.Round(time.Millisecond), err)
	if d > 3*time.Second {
		t.Errorf("NewEtcd took %v to fail", d)
	}
	check()

	if _, err := NewEtcd(context.Background(), EtcdConfig{}); err == nil {
		t.Error("NewEtcd without endpoints accepted")
	}
}

// TestEtcdWatchInterrupted: B's watch is pinned to the leader, the key's
// history since B's last event is compacted away, then the leader is
// killed. B's client resumes the watch on another member, which answers
// "compacted" (or, during the election, "no leader": the watch requires a
// leader); B reads the key and watches again, and keeps waking.
func TestEtcdWatchInterrupted(t *testing.T) {
	c := etcdtest.Start(t, 3)
	eps := c.Endpoints()
	lead := c.Leader(t)
	var others []string
	for i, ep := range eps {
		if i != lead {
			others = append(others, ep)
		}
	}
	var logs logBuffer
	a := newEtcd(t, EtcdConfig{Endpoints: others})
	b := newEtcd(t, EtcdConfig{
		Endpoints:   append([]string{eps[lead]}, others...),
		Logger:      logs.logger(),
		dialOptions: pickFirst,
	})

	a.Announce(1)
	waitWake(t, "B", b, wakeTimeout)

	// Move the revision on, past B's last event, and compact there.
	cli := plainEtcd(t, others)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var rev int64
	for range 5 {
		resp, err := cli.Put(ctx, "/filler", "x")
		if err != nil {
			t.Fatal(err)
		}
		rev = resp.Header.Revision
	}
	if _, err := cli.Compact(ctx, rev, clientv3.WithCompactPhysical()); err != nil {
		t.Fatal(err)
	}
	// Every surviving member has applied the compaction.
	for _, ep := range others {
		m := plainEtcd(t, []string{ep})
		var err error
		if !testenv.Poll(testenv.Wait, func() bool {
			_, err = m.Get(ctx, "/filler", clientv3.WithRev(rev-1), clientv3.WithSerializable())
			return errors.Is(err, rpctypes.ErrCompacted)
		}) {
			t.Fatalf("%s: no compaction: %v", ep, err)
		}
	}
	noWake(t, "B", b, 200*time.Millisecond)

	start := time.Now()
	c.Kill(t, lead)
	a.Announce(2) // retried until the new leader takes it
	waitWake(t, "B", b, 15*time.Second)
	t.Logf("B woke %v after its member was killed", time.Since(start).Round(time.Millisecond))
	if l, ok := findLine(logs.String(), "compacted"); ok {
		t.Logf("B's log: %s\n%s", l, logs.String())
	} else {
		t.Errorf("B's watch did not meet the compaction; B's log:\n%s", logs.String())
	}

	// And the watch made again carries on.
	a.Announce(3)
	waitWake(t, "B", b, wakeTimeout)
	b.Announce(4)
	waitWake(t, "A", a, wakeTimeout)
	noWake(t, "B", b, 300*time.Millisecond)
}

func findLine(s, substr string) (string, bool) {
	for l := range strings.Lines(s) {
		if strings.Contains(l, substr) {
			return strings.TrimSpace(l), true
		}
	}
	return "", false
}
