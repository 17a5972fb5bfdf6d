package etcdlock_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/shopstack/inventory/internal/lock"
	"github.com/shopstack/inventory/internal/lock/etcdlock"
	"github.com/shopstack/inventory/internal/lock/locktest"
	"github.com/shopstack/inventory/internal/testenv"
	"github.com/shopstack/inventory/internal/testenv/etcdtest"
)

// TestElectorConformance runs the shared Elector suite, each elector its
// own Locker (own client and session, like another replica).
func TestElectorConformance(t *testing.T) {
	c := etcdtest.Start(t, 1)
	locktest.RunElector(t,
		func(t *testing.T) lock.Elector { return mustNew(t, c, etcdlock.Config{}) },
		testTTL,
		func(_ *testing.T, le lock.Lease) { etcdlock.AbandonLeader(le) })
}

// waitGateEmpty waits until l's gate is empty: cleanups of election keys
// finish in the background.
func waitGateEmpty(t *testing.T, l *etcdlock.Locker, within time.Duration) {
	t.Helper()
	if !testenv.Poll(within, func() bool { return l.GateLen() == 0 }) {
		t.Errorf("%d keys still in the gate after %v", l.GateLen(), within)
	}
}

// electKeys returns the election keys and values in etcd.
func electKeys(t *testing.T, cli *clientv3.Client) map[string]string {
	t.Helper()
	resp, err := cli.Get(context.Background(), "/inventory/lock.elect/", clientv3.WithPrefix())
	if err != nil {
		t.Fatal(err)
	}
	kvs := map[string]string{}
	for _, kv := range resp.Kvs {
		kvs[string(kv.Key)] = string(kv.Value)
	}
	return kvs
}

// TestCampaignKeys checks where election keys live and what they say, and
// that a campaign that gives up leaves no key behind.
func TestCampaignKeys(t *testing.T) {
	c := etcdtest.Start(t, 1)
	cli := mustClient(t, c)
	leaderL, waiterL := mustNew(t, c, etcdlock.Config{}), mustNew(t, c, etcdlock.Config{})
	ctx := context.Background()
	leader, err := leaderL.Campaign(ctx, "sweep/expired")
	if err != nil {
		t.Fatal(err)
	}
	// Not under the lock prefix; the name is path-escaped.
	want := fmt.Sprintf("/inventory/lock.elect/sweep%%2Fexpired/%x", etcdlock.LeaderLeaseID(leader))
	host, _ := os.Hostname()
	if got := electKeys(t, cli); len(got) != 1 || !strings.HasPrefix(got[want], host+":") {
		t.Errorf("election keys %q, want only %s = %s:<pid>", got, want, host)
	}
	if resp, err := cli.Get(ctx, "/inventory/lock/", clientv3.WithPrefix(), clientv3.WithCountOnly()); err != nil {
		t.Fatal(err)
	} else if resp.Count != 0 {
		t.Errorf("%d keys under the lock prefix after a campaign", resp.Count)
	}
	// A lock on "elect/…" or on the name itself is not held up by the
	// election.
	for _, k := range []string{"sweep/expired", "elect/sweep/expired"} {
		lctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		le, err := leaderL.Lock(lctx, k)
		cancel()
		if err != nil {
			t.Fatalf("Lock(%q) while leading: %v", k, err)
		}
		_ = le.Unlock(ctx)
	}

	for _, d := range []time.Duration{0, 10 * time.Millisecond, 200 * time.Millisecond} {
		cctx, cancel := context.WithTimeout(ctx, d)
		_, err := waiterL.Campaign(cctx, "sweep/expired")
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Campaign with timeout %v = %v, want context.DeadlineExceeded", d, err)
		}
	}
	waitGateEmpty(t, waiterL, 5*time.Second)
	if got := electKeys(t, cli); len(got) != 1 {
		t.Errorf("election keys after cancelled campaigns: %q, want only the leader's", got)
	}
	if err := leader.Unlock(ctx); err != nil {
		t.Fatal(err)
	}
	if got := electKeys(t, cli); len(got) != 0 {
		t.Errorf("election keys after resigning: %q", got)
	}
	if n := leaderL.GateLen(); n != 0 {
		t.Errorf("%d keys left in the leader's gate", n)
	}
}

// TestCampaignSameLocker campaigns twice for one name through one Locker
// (one session, so one election key): the second waits for the first to
// resign.
func TestCampaignSameLocker(t *testing.T) {
	c := etcdtest.Start(t, 1)
	l := mustNew(t, c, etcdlock.Config{})
	ctx := context.Background()
	first, err := l.Campaign(ctx, "duty")
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan lock.Lease, 1)
	go func() {
		cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		le, err := l.Campaign(cctx, "duty")
		if err != nil {
			t.Error(err)
		}
		got <- le
	}()
	select {
	case <-got:
		t.Fatal("second campaign through the same Locker won while the first leads")
	case <-time.After(300 * time.Millisecond):
	}
	// Another name is independent.
	other, err := l.Campaign(ctx, "other")
	if err != nil {
		t.Fatal(err)
	}
	_ = other.Unlock(ctx)
	if err := first.Unlock(ctx); err != nil {
		t.Fatal(err)
	}
	second := <-got
	if second == nil {
		return
	}
	if second.Token() <= first.Token() {
		t.Errorf("token %d after %d", second.Token(), first.Token())
	}
	if err := second.Unlock(ctx); err != nil {
		t.Fatal(err)
	}
	if err := second.Unlock(ctx); err != nil {
		t.Errorf("second Unlock = %v, want the first result", err)
	}
}

// TestLeaderSessionLost revokes the leader's session lease: its Done fires,
// its Unlock reports the loss, a waiting replica takes over at once, and
// the old leader's Locker can campaign again through a new session.
func TestLeaderSessionLost(t *testing.T) {
	c := etcdtest.Start(t, 1)
	cli := mustClient(t, c)
	leaderL, waiterL := mustNew(t, c, etcdlock.Config{}), mustNew(t, c, etcdlock.Config{})
	ctx := context.Background()
	leader, err := leaderL.Campaign(ctx, "duty")
	if err != nil {
		t.Fatal(err)
	}
	next := make(chan lock.Lease, 1)
	go func() {
		cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		le, err := waiterL.Campaign(cctx, "duty")
		if err != nil {
			t.Error(err)
		}
		next <- le
	}()
	time.Sleep(200 * time.Millisecond) // let the waiter queue up
	id := etcdlock.LeaderLeaseID(leader)
	start := time.Now()
	if _, err := cli.Revoke(ctx, id); err != nil {
		t.Fatal(err)
	}
	waiter := <-next
	if waiter == nil {
		return
	}
	t.Logf("waiter led %v after the leader's session was revoked", time.Since(start).Round(time.Millisecond))
	if waiter.Token() <= leader.Token() {
		t.Errorf("token %d after %d", waiter.Token(), leader.Token())
	}
	select {
	case <-leader.Done():
	case <-time.After(2*testTTL + 5*time.Second):
		t.Fatal("Done did not fire after the leader's session was revoked")
	}
	if err := leader.Unlock(ctx); !errors.Is(err, lock.ErrLeaseLost) {
		t.Errorf("Unlock after session loss = %v, want lock.ErrLeaseLost", err)
	}
	if err := waiter.Unlock(ctx); err != nil {
		t.Fatal(err)
	}
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	again, err := leaderL.Campaign(cctx, "duty")
	if err != nil {
		t.Fatalf("Campaign after session loss: %v", err)
	}
	if etcdlock.LeaderLeaseID(again) == id {
		t.Error("won through the revoked session")
	}
	if again.Token() <= waiter.Token() {
		t.Errorf("token %d after %d", again.Token(), waiter.Token())
	}
	if err := again.Unlock(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestCampaignClusterDown checks that campaigns end with their context
// while etcd is down, both one that was waiting when it went down and one
// started after, and that the leader's lease is lost. OpTimeout is long, so
// that a campaign blocked in a request would show.
func TestCampaignClusterDown(t *testing.T) {
	c := etcdtest.Start(t, 1)
	cfg := etcdlock.Config{OpTimeout: 5 * time.Second}
	leaderL, waiterL, freshL := mustNew(t, c, cfg), mustNew(t, c, cfg), mustNew(t, c, cfg)
	ctx := context.Background()
	leader, err := leaderL.Campaign(ctx, "duty")
	if err != nil {
		t.Fatal(err)
	}
	waitCtx, cancelWait := context.WithCancel(ctx)
	defer cancelWait()
	waitErr := make(chan error, 1)
	go func() {
		le, err := waiterL.Campaign(waitCtx, "duty")
		if err == nil {
			_ = le.Unlock(ctx)
		}
		waitErr <- err
	}()
	time.Sleep(200 * time.Millisecond) // let the waiter queue up

	c.Kill(t, 0)
	const slack = time.Second

	// The waiter's context ends while it waits, before its session lapses
	// (2s): it returns at once, not after a resignation that cannot reach
	// etcd.
	time.Sleep(500 * time.Millisecond)
	cancelWait()
	start := time.Now()
	select {
	case err := <-waitErr:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("waiting Campaign = %v, want context.Canceled", err)
		}
		t.Logf("waiting campaign returned %v after cancel: %v", time.Since(start).Round(time.Millisecond), err)
	case <-time.After(slack):
		t.Fatalf("waiting Campaign still blocked %v after its context was cancelled", slack)
	}

	// A fresh campaign keeps trying until its context ends.
	const timeout = 3 * time.Second
	start = time.Now()
	cctx, cancel := context.WithTimeout(ctx, timeout)
	_, err = freshL.Campaign(cctx, "duty")
	cancel()
	d := time.Since(start)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Campaign with etcd down = %v, want context.DeadlineExceeded", err)
	}
	if d < timeout || d > timeout+slack {
		t.Errorf("Campaign with etcd down returned after %v, want its %v timeout", d.Round(time.Millisecond), timeout)
	}
	t.Logf("fresh campaign returned %v after its %v timeout: %v", (d - timeout).Round(time.Millisecond), timeout, err)

	select {
	case <-leader.Done():
	case <-time.After(2*testTTL + 5*time.Second):
		t.Fatal("leader's Done did not fire with etcd down")
	}
	if err := leader.Unlock(ctx); !errors.Is(err, lock.ErrLeaseLost) {
		t.Errorf("Unlock with etcd down = %v, want lock.ErrLeaseLost", err)
	}
	// Each Close may wait OpTimeout to revoke its session: close at once.
	var wg sync.WaitGroup
	for _, l := range []*etcdlock.Locker{leaderL, waiterL, freshL} {
		wg.Go(func() { _ = l.Close() })
	}
	wg.Wait()
	for _, l := range []*etcdlock.Locker{leaderL, waiterL, freshL} {
		waitGateEmpty(t, l, 5*time.Second)
	}
}
