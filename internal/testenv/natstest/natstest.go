// Package natstest runs a nats-server process with JetStream for tests
// that kill and restart the broker: on a free loopback port, its store in
// a temporary directory, stopped when the test ends. Tests that do not
// need to kill it use the shared server (URL) with names of their own. It
// also reads a stream back, as tests check it.
//
// Without a nats-server binary in PATH tests are skipped, unless
// INVENTORY_TEST_STRICT=1, where a skip is a failure.
package natstest

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/shopstack/inventory/internal/testenv"
)

// URL is the shared JetStream server of tests that do not kill it:
// INVENTORY_TEST_NATS_URL (scripts/test.sh starts one of its own and sets
// it), else the machine's on 127.0.0.1:4222.
func URL() string {
	if u := os.Getenv("INVENTORY_TEST_NATS_URL"); u != "" {
		return u
	}
	return nats.DefaultURL
}

// Server is one nats-server with JetStream.
type Server struct {
	// URL is nats://127.0.0.1:port; it stays the same across Restart.
	URL string

	bin, dir string
	port     int
	proc     testenv.Proc
}

// Start starts a nats-server on a free port and waits until it accepts
// connections.
func Start(tb testing.TB) *Server {
	tb.Helper()
	bin, err := exec.LookPath("nats-server")
	if err != nil {
		testenv.SkipOrFail(tb, "no nats-server binary in PATH (apt-get install nats-server)")
		return nil
	}
	ports, err := testenv.FreePorts(1)
	if err != nil {
		tb.Fatal(err)
	}
	port := ports[0]
	s := &Server{bin: bin, dir: tb.TempDir(), port: port, URL: "nats://127.0.0.1:" + strconv.Itoa(port)}
	tb.Cleanup(s.stop)
	s.start(tb)
	return s
}

// Kill stops the server with SIGKILL, as in a crash: what it acknowledged
// is in its store, nothing else is promised.
func (s *Server) Kill(tb testing.TB) {
	tb.Helper()
	s.stop()
}

// Restart starts the server again on the same port and store.
func (s *Server) Restart(tb testing.TB) {
	tb.Helper()
	s.stop()
	s.start(tb)
}

func (s *Server) start(tb testing.TB) {
	tb.Helper()
	cmd := exec.Command(s.bin, "-a", "127.0.0.1", "-p", strconv.Itoa(s.port), "-js", "-sd", s.dir)
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		tb.Fatalf("natstest: %v", err)
	}
	s.proc.Set(cmd)
	if !testenv.Poll(10*time.Second, func() bool {
		c, err := net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(s.port))
		if err == nil {
			_ = c.Close()
		}
		return err == nil
	}) {
		tb.Fatalf("natstest: nats-server did not start on port %d", s.port)
	}
}

func (s *Server) stop() { s.proc.Kill() }

// Message is one message a stream holds.
type Message struct {
	Subject string
	// ID is its Nats-Msg-Id.
	ID   string
	Data []byte
}

// ReadStream returns every message the stream holds, in order (none if
// it does not exist).
func ReadStream(tb testing.TB, nc *nats.Conn, stream string) []Message {
	tb.Helper()
	js, err := jetstream.New(nc)
	if err != nil {
		tb.Fatal(err)
	}
	st, err := js.Stream(context.Background(), stream)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil
	}
	if err != nil {
		tb.Fatal(err)
	}
	info, err := st.Info(context.Background())
	if err != nil {
		tb.Fatal(err)
	}
	var out []Message
	for seq := info.State.FirstSeq; seq > 0 && seq <= info.State.LastSeq; seq++ {
		m, err := st.GetMsg(context.Background(), seq)
		if err != nil {
			tb.Fatal(err)
		}
		out = append(out, Message{Subject: m.Subject, ID: m.Header.Get(jetstream.MsgIDHeader), Data: m.Data})
	}
	return out
}

// StockSequences returns the sequence of every stock event (not alert)
// the stream holds, in order.
func StockSequences(tb testing.TB, nc *nats.Conn, stream string) []int64 {
	tb.Helper()
	var seqs []int64
	for _, m := range ReadStream(tb, nc, stream) {
		if strings.Contains(m.Subject, ".alert.") {
			continue
		}
		var ev struct{ Sequence int64 }
		if err := json.Unmarshal(m.Data, &ev); err != nil {
			tb.Fatalf("message %s: %v", m.ID, err)
		}
		seqs = append(seqs, ev.Sequence)
	}
	return seqs
}
