package natsbroker_test

import (
	"fmt"
	"net"
	"os/exec"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/shopstack/inventory/internal/testenv"
)

// ownServer is a nats-server process of the test's own, which it may kill
// and start again on the same port and store.
type ownServer struct {
	bin, dir string
	port     int
	cmd      *exec.Cmd
}

func startOwnServer(t *testing.T) *ownServer {
	t.Helper()
	bin, err := exec.LookPath("nats-server")
	if err != nil {
		testenv.SkipOrFail(t, "no nats-server binary (apt-get install nats-server)")
		return nil
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	_ = ln.Close()
	s := &ownServer{bin: bin, dir: t.TempDir(), port: port}
	s.start(t)
	t.Cleanup(func() { s.kill() })
	return s
}

func (s *ownServer) url() string { return "nats://127.0.0.1:" + strconv.Itoa(s.port) }

func (s *ownServer) start(t *testing.T) {
	t.Helper()
	s.cmd = exec.Command(s.bin, "-a", "127.0.0.1", "-p", strconv.Itoa(s.port), "-js", "-sd", s.dir)
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if c, err := net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(s.port)); err == nil {
			_ = c.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("nats-server did not start")
		}
	}
}

// kill stops the server outright (SIGKILL): what it acknowledged is on
// disk, nothing else is promised.
func (s *ownServer) kill() {
	if s.cmd != nil && s.cmd.Process != nil {
		_ = s.cmd.Process.Kill()
		_ = s.cmd.Wait()
	}
}

// TestEventsAcrossBrokerRestart: the broker is killed and started again
// while sales go on; every change reaches the stream once, in order.
func TestEventsAcrossBrokerRestart(t *testing.T) {
	srv := startOwnServer(t)
	t.Setenv("INVENTORY_TEST_NATS_URL", srv.url()) // newEnv's connection
	e := newEnv(t)
	e.nc.Close()
	// The relay's connection reconnects for ever, as the server's does.
	nc, err := nats.Connect(srv.url(), nats.RetryOnFailedConnect(true), nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	e.nc = nc
	id := e.product(t, 10_000, 0)
	stop := e.relay(t)
	defer stop()

	var sold atomic.Int64
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range 300 {
			e.sell(t, id, 1)
			sold.Add(1)
			time.Sleep(time.Millisecond)
		}
	}()
	for sold.Load() < 100 {
		time.Sleep(5 * time.Millisecond)
	}
	srv.kill()
	time.Sleep(300 * time.Millisecond) // sales go on while the broker is away
	srv.start(t)
	<-done
	want := e.ledger(t)
	stock, _ := e.stream(t, len(want))
	if fmt.Sprint(stock) != fmt.Sprint(want) {
		t.Fatalf("stream holds %d events, ledger %d:\nstream %v\nledger %v", len(stock), len(want), stock, want)
	}
}
