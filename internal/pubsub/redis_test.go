package pubsub

import (
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/shopstack/inventory/internal/testenv"
	"github.com/shopstack/inventory/internal/testenv/redistest"
)

// redisFrames are stack frames of go-redis goroutines.
var redisFrames = []string{"github.com/redis/go-redis/v9"}

func newRedis(t *testing.T, cfg RedisConfig) *Redis {
	t.Helper()
	r, err := NewRedis(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Close() })
	return r
}

// plainRedis is a go-redis client of the test's own.
func plainRedis(t *testing.T, addr string) *redis.Client {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: addr, DialTimeout: time.Second, MaxRetries: -1})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// waitSubscribers waits until the channel has n subscribers on addr: a
// message published before a subscriber is subscribed is lost to it.
func waitSubscribers(t *testing.T, addr, channel string, n int64) {
	t.Helper()
	c := plainRedis(t, addr)
	defer c.Close()
	var got int64
	if !testenv.Poll(10*time.Second, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		m, err := c.PubSubNumSub(ctx, channel).Result()
		if err == nil {
			got = m[channel]
		}
		return err == nil && got == n
	}) {
		t.Fatalf("%s: %d subscribers of %s after 10s, want %d", addr, got, channel, n)
	}
}

// TestRedisWakesOthers: an announcement wakes the other instance, not the
// announcer.
func TestRedisWakesOthers(t *testing.T) {
	srv := redistest.Start(t)
	a := newRedis(t, RedisConfig{Addrs: []string{srv.Addr}})
	b := newRedis(t, RedisConfig{Addrs: []string{srv.Addr}})
	waitSubscribers(t, srv.Addr, DefaultRedisChannel, 2)

	a.Announce(1)
	waitWake(t, "B", b, wakeTimeout)
	noWake(t, "A", a, 500*time.Millisecond)

	b.Announce(2)
	waitWake(t, "A", a, wakeTimeout)
	noWake(t, "B", b, 500*time.Millisecond)

	// An instance on another channel hears nothing.
	c := newRedis(t, RedisConfig{Addrs: []string{srv.Addr}, Channel: "elsewhere"})
	waitSubscribers(t, srv.Addr, "elsewhere", 1)
	a.Announce(3)
	waitWake(t, "B", b, wakeTimeout)
	noWake(t, "C", c, 500*time.Millisecond)
}

// TestRedisBurstCoalesces: 10,000 announces become a few PUBLISHes, the
// last of which carries the last sequence. A plain subscriber counts them.
func TestRedisBurstCoalesces(t *testing.T) {
	srv := redistest.Start(t)
	a := newRedis(t, RedisConfig{Addrs: []string{srv.Addr}})
	// Subscribed before A announces: the first message answers SUBSCRIBE.
	sub := plainRedis(t, srv.Addr).Subscribe(context.Background(), DefaultRedisChannel)
	defer sub.Close()
	if _, err := sub.ReceiveTimeout(context.Background(), 5*time.Second); err != nil {
		t.Fatalf("subscribe: %v", err)
	}
	waitSubscribers(t, srv.Addr, DefaultRedisChannel, 2)

	const n = 10000
	start := time.Now()
	for i := int64(1); i <= n; i++ {
		a.Announce(i)
	}
	t.Logf("%d announces took %v", n, time.Since(start))

	var seqs []int64
	for {
		m, err := sub.ReceiveTimeout(context.Background(), 5*time.Second)
		if err != nil {
			t.Fatalf("after %d messages %v: %v", len(seqs), seqs, err)
		}
		msg, ok := m.(*redis.Message)
		if !ok {
			continue
		}
		id, seq, ok := decode(msg.Payload)
		if !ok || id != a.id {
			t.Fatalf("message %q, want one from A (%s)", msg.Payload, a.id)
		}
		if len(seqs) > 0 && seq <= seqs[len(seqs)-1] {
			t.Fatalf("sequence %d after %v", seq, seqs)
		}
		seqs = append(seqs, seq)
		if seq == n {
			break
		}
	}
	// Nothing after the last value: it is not sent twice.
	if m, err := sub.ReceiveTimeout(context.Background(), 300*time.Millisecond); err == nil {
		t.Errorf("message after the last sequence: %v", m)
	}
	t.Logf("%d announces, %d messages: %v", n, len(seqs), seqs)
	if len(seqs) > n/100 {
		t.Errorf("%d messages for %d announces: not coalesced", len(seqs), n)
	}
}

// TestRedisClose: Close ends every goroutine, even with a server down and
// sends being retried, and closes Wakeups.
func TestRedisClose(t *testing.T) {
	up, down := redistest.Start(t), redistest.Start(t)
	down.Kill(t)
	check := leakCheck(t, 2, redisFrames...)

	a := newRedis(t, RedisConfig{Addrs: []string{up.Addr, down.Addr}})
	b := newRedis(t, RedisConfig{Addrs: []string{up.Addr, down.Addr}})
	waitSubscribers(t, up.Addr, DefaultRedisChannel, 2)
	a.Announce(7)
	waitWake(t, "B", b, wakeTimeout)
	b.Announce(8) // B's sender is retrying on the down server when closed
	time.Sleep(200 * time.Millisecond)

	closeAndCheck(t, "A", a)
	closeAndCheck(t, "B", b)
	check()
}

// TestRedisCloseRightAway: Close right after NewRedis, with subscriptions
// still being made, leaves nothing behind either.
func TestRedisCloseRightAway(t *testing.T) {
	srv := redistest.Start(t)
	check := leakCheck(t, 2, redisFrames...)
	for range 5 {
		r, err := NewRedis(RedisConfig{Addrs: []string{srv.Addr, "127.0.0.1:1"}})
		if err != nil {
			t.Fatal(err)
		}
		r.Announce(1)
		closeAndCheck(t, "R", r)
	}
	check()
}

// TestRedisRestart: B still wakes after the server was killed and started
// again (empty, without the subscriptions): both instances reconnect and
// subscribe again by themselves.
func TestRedisRestart(t *testing.T) {
	srv := redistest.Start(t)
	a := newRedis(t, RedisConfig{Addrs: []string{srv.Addr}})
	b := newRedis(t, RedisConfig{Addrs: []string{srv.Addr}})
	waitSubscribers(t, srv.Addr, DefaultRedisChannel, 2)
	a.Announce(1)
	waitWake(t, "B", b, wakeTimeout)

	srv.Kill(t)
	a.Announce(2) // fails and is retried meanwhile
	time.Sleep(500 * time.Millisecond)
	srv.Restart(t)
	start := time.Now()
	waitSubscribers(t, srv.Addr, DefaultRedisChannel, 2)
	t.Logf("resubscribed %v after the restart", time.Since(start).Round(time.Millisecond))
	drain(b) // A's retried 2 may or may not have reached B

	a.Announce(3)
	waitWake(t, "B", b, wakeTimeout)
	b.Announce(4)
	waitWake(t, "A", a, wakeTimeout)
}

// TestRedisOneServerDown: with three servers, one of them down from the
// start, wake-ups flow through the two others; the third is subscribed to
// once it comes up, and then carries wake-ups alone.
func TestRedisOneServerDown(t *testing.T) {
	s1, s2, s3 := redistest.Start(t), redistest.Start(t), redistest.Start(t)
	s3.Kill(t)
	addrs := []string{s1.Addr, s2.Addr, s3.Addr}
	a := newRedis(t, RedisConfig{Addrs: addrs})
	b := newRedis(t, RedisConfig{Addrs: addrs})
	waitSubscribers(t, s1.Addr, DefaultRedisChannel, 2)
	waitSubscribers(t, s2.Addr, DefaultRedisChannel, 2)

	for seq := int64(1); seq <= 3; seq++ {
		start := time.Now()
		a.Announce(seq)
		waitWake(t, "B", b, wakeTimeout)
		// The dead server must not hold the others up.
		if d := time.Since(start); d > time.Second {
			t.Errorf("wake-up %d took %v with one server down", seq, d)
		}
		noWake(t, "B", b, 100*time.Millisecond) // one wake-up, not one per server
	}

	s3.Restart(t)
	waitSubscribers(t, s3.Addr, DefaultRedisChannel, 2)
	s1.Kill(t)
	s2.Kill(t)
	drain(b)
	a.Announce(10)
	waitWake(t, "B", b, wakeTimeout)
	b.Announce(11)
	waitWake(t, "A", a, wakeTimeout)
}

// TestRedisPausedServer: a server that stalls (SIGSTOP: it keeps its
// connections but answers nothing) holds up neither the wake-ups through
// the other server nor Close for more than the Redis timeout.
func TestRedisPausedServer(t *testing.T) {
	s1, s2 := redistest.Start(t), redistest.Start(t)
	addrs := []string{s1.Addr, s2.Addr}
	a := newRedis(t, RedisConfig{Addrs: addrs})
	b := newRedis(t, RedisConfig{Addrs: addrs})
	waitSubscribers(t, s1.Addr, DefaultRedisChannel, 2)
	waitSubscribers(t, s2.Addr, DefaultRedisChannel, 2)

	s2.Pause(t)
	for seq := int64(1); seq <= 3; seq++ {
		start := time.Now()
		a.Announce(seq)
		waitWake(t, "B", b, wakeTimeout)
		if d := time.Since(start); d > 500*time.Millisecond {
			t.Errorf("wake-up %d took %v with one server paused", seq, d)
		}
		time.Sleep(300 * time.Millisecond) // A's send to s2 is in flight
	}
	start := time.Now()
	closeAndCheck(t, "A", a)
	closeAndCheck(t, "B", b)
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("Close took %v with a server paused", d)
	}
	s2.Resume(t)
}

func TestRedisConfig(t *testing.T) {
	for _, cfg := range []RedisConfig{
		{},
		{Addrs: []string{"localhost"}},
		{Addrs: []string{"127.0.0.1:6379", "127.0.0.1:6379"}},
	} {
		if r, err := NewRedis(cfg); err == nil {
			_ = r.Close()
			t.Errorf("NewRedis(%+v) accepted", cfg)
		}
	}
	// No server needed to start.
	r, err := NewRedis(RedisConfig{Addrs: []string{"127.0.0.1:1"}})
	if err != nil {
		t.Fatal(err)
	}
	if r.channel != DefaultRedisChannel {
		t.Errorf("channel %q", r.channel)
	}
	closeAndCheck(t, "R", r)
}

// TestRedisCluster: on a Redis Cluster an announcement wakes the other
// instance, whichever node it was published on; when the master holding
// the subscriptions (the one of the channel's slot) is killed, both
// subscribe again on the replica that took over, and wake-ups flow again.
func TestRedisCluster(t *testing.T) {
	c := redistest.StartCluster(t)
	cfg := RedisConfig{Addrs: c.Addrs(), Cluster: true, Channel: "shop:ledger"}
	a, b := newRedis(t, cfg), newRedis(t, cfg)
	old := c.MasterOf(t, cfg.Channel)
	waitSubscribers(t, old.Addr, cfg.Channel, 2)
	for i := range int64(3) {
		a.Announce(1 + i)
		waitWake(t, "B", b, wakeTimeout)
		noWake(t, "A", a, 200*time.Millisecond)
	}

	c.KillMasterOf(t, cfg.Channel)
	start := time.Now()
	m := c.WaitFailover(t, cfg.Channel, old)
	waitSubscribers(t, m.Addr, cfg.Channel, 2)
	t.Logf("both subscribed on %s %v after %s was killed", m.Addr, time.Since(start).Round(time.Millisecond), old.Addr)
	drain(a)
	drain(b)
	a.Announce(10)
	waitWake(t, "B", b, wakeTimeout)
	b.Announce(11)
	waitWake(t, "A", a, wakeTimeout)
}
