package redistest

import (
	"bufio"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"
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
	if err := ping(s.Addr, time.Second); err == nil {
		t.Fatal("a killed server answers PING")
	}

	s.Restart(t)
	if got := do(t, s.Addr, "GET", "k"); got != "_" && got != "$-1" {
		t.Fatalf("GET after restart = %q, want nil: the data must be gone", got)
	}

	s.Pause(t)
	if err := ping(s.Addr, 200*time.Millisecond); err == nil {
		t.Fatal("a paused server answers PING")
	}
	s.Resume(t)
	if err := ping(s.Addr, time.Second); err != nil {
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
