package redistest

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/shopstack/inventory/internal/testenv"
)

func TestServer(t *testing.T) {
	s := Start(t)
	if strings.HasSuffix(s.Addr, fmt.Sprintf(":%d", sharedPort)) {
		t.Fatalf("started on the shared Redis port: %s", s.Addr)
	}
	if got := do(t, s.Addr, "SET", "k", "v"); got != "+OK" {
		t.Fatalf("SET = %q", got)
	}

	s.Kill(t)
	if err := s.ping(time.Second); err == nil {
		t.Fatal("a killed server answers PING")
	}

	s.Restart(t)
	if got := do(t, s.Addr, "GET", "k"); got != "_" && got != "$-1" {
		t.Fatalf("GET after restart = %q, want nil: the data must be gone", got)
	}

	s.Pause(t)
	if err := s.ping(200 * time.Millisecond); err == nil {
		t.Fatal("a paused server answers PING")
	}
	s.Resume(t)
	if err := s.ping(time.Second); err != nil {
		t.Fatalf("PING after resume: %v", err)
	}
}

// TestServersAreDistinct starts two servers: each gets its own port.
func TestServersAreDistinct(t *testing.T) {
	a, b := Start(t), Start(t)
	if a.Addr == b.Addr {
		t.Fatalf("two servers on %s", a.Addr)
	}
}

// do sends one command and returns the first line of the reply.
func do(t *testing.T, addr string, args ...string) string {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(time.Second))
	var b strings.Builder
	fmt.Fprintf(&b, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
	}
	if _, err := conn.Write([]byte(b.String())); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(line)
}

// TestCluster creates a cluster, writes through a cluster client, kills
// the master of a key and waits for its replica to take over with the key.
func TestCluster(t *testing.T) {
	c := StartCluster(t)
	for _, a := range c.Addrs() {
		if strings.HasSuffix(a, fmt.Sprintf(":%d", sharedPort)) {
			t.Fatalf("a node on the shared Redis port: %s", a)
		}
	}
	rdb := redis.NewClusterClient(&redis.ClusterOptions{Addrs: c.Addrs()})
	defer rdb.Close()
	ctx := context.Background()
	if err := rdb.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	// WAIT for the replica: the write must survive the failover.
	old := c.MasterOf(t, "k")
	if n, err := client(old.Addr).Do(ctx, "WAIT", 1, 2000).Int(); err != nil || n != 1 {
		t.Fatalf("WAIT 1 = %d, %v", n, err)
	}
	start := time.Now()
	if c.KillMasterOf(t, "k") != old {
		t.Fatal("KillMasterOf killed another node than MasterOf named")
	}
	m := c.WaitFailover(t, "k", old)
	t.Logf("%s took over from %s in %v", m.Addr, old.Addr, time.Since(start).Round(time.Millisecond))
	if got, err := client(m.Addr).Get(ctx, "k").Result(); err != nil || got != "v" {
		t.Fatalf("GET k on the new master = %q, %v", got, err)
	}
	// The old master comes back as a replica.
	old.Restart(t)
	c.WaitHealthy(t)
	if c.MasterOf(t, "k") != m {
		t.Fatal("the restarted master took its slots back")
	}
}

// TestStartSecure: a secure server answers over TLS with its password,
// and to nothing else.
func TestStartSecure(t *testing.T) {
	certs := testenv.NewCerts(t)
	tlsAddr, _ := StartSecure(t, "a-password-of-the-test", certs)
	pem, err := os.ReadFile(certs.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	for name, c := range map[string]struct {
		opts *redis.Options
		ok   bool
	}{
		"TLS and password": {&redis.Options{Addr: tlsAddr, Password: "a-password-of-the-test", TLSConfig: &tls.Config{RootCAs: pool}}, true},
		"no TLS":           {&redis.Options{Addr: tlsAddr, Password: "a-password-of-the-test"}, false},
		"wrong password":   {&redis.Options{Addr: tlsAddr, Password: "wrong", TLSConfig: &tls.Config{RootCAs: pool}}, false},
		"untrusted":        {&redis.Options{Addr: tlsAddr, Password: "a-password-of-the-test", TLSConfig: &tls.Config{}}, false},
	} {
		c.opts.MaxRetries, c.opts.DialTimeout, c.opts.ReadTimeout = -1, time.Second, time.Second
		rc := redis.NewClient(c.opts)
		err := rc.Ping(t.Context()).Err()
		_ = rc.Close()
		if (err == nil) != c.ok {
			t.Errorf("%s: PING: %v, want success %v", name, err, c.ok)
		}
	}
}
