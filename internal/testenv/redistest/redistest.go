// Package redistest runs real redis-server processes for tests: each on a
// free loopback port, without persistence, in a temporary directory, and
// stopped when the test ends. Tests can kill, restart, pause and resume
// them to play a crash, a data loss or a stalled server.
//
// Without a redis-server binary in PATH tests are skipped, unless
// INVENTORY_TEST_STRICT=1, where a skip is a failure.
package redistest

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/shopstack/inventory/internal/testenv"
)

const (
	// sharedPort is the developer's own Redis, which tests never touch.
	sharedPort   = 6379
	startTries   = 5
	readyTimeout = 10 * time.Second
)

// Server is one redis-server process.
type Server struct {
	// Addr is the server's address, 127.0.0.1:port. It stays the same
	// across Restart.
	Addr string

	bin string
	dir string
	log string
	// args are more redis-server arguments (a cluster node's).
	args []string
	// password is the server's, if it asks for one (StartSecure).
	password string

	mu   sync.Mutex
	proc *process // nil while stopped
}

// process is one run of redis-server; exited is closed when it has exited.
type process struct {
	cmd    *exec.Cmd
	exited chan struct{}
}

// Start starts a redis-server on a free port and waits until it answers
// PING. It is stopped when the test ends.
func Start(tb testing.TB) *Server {
	tb.Helper()
	return start(tb, nil)
}

// StartSecure starts a redis-server as managed ones run: it asks for
// password, and clients reach it over TLS, with certs (see
// testenv.NewCerts), at tlsAddr. Debian's redis-server is built without
// TLS, so a TLS terminator of Go's in the test process stands in front of
// it (testenv.NewTLSProxy); s.Addr is the server's own, plain address.
func StartSecure(tb testing.TB, password string, certs testenv.Certs) (tlsAddr string, s *Server) {
	tb.Helper()
	s = newServer(tb)
	s.password = password
	s.startOnFreePort(tb, func(int, string, int) []string { return []string{"--requirepass", password} })
	p, err := testenv.NewTLSProxy(s.Addr, certs)
	if err != nil {
		tb.Fatalf("redistest: TLS proxy: %v", err)
	}
	tb.Cleanup(p.Close)
	return p.Addr(), s
}

// start starts a redis-server with more arguments: those args returns for
// the server's port, directory and a second free port.
func start(tb testing.TB, args func(port int, dir string, port2 int) []string) *Server {
	tb.Helper()
	return newServer(tb).startOnFreePort(tb, args)
}

// newServer is a Server not yet started, stopped when the test ends.
func newServer(tb testing.TB) *Server {
	tb.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		testenv.SkipOrFail(tb, "redis-server is not in PATH")
	}
	dir := tb.TempDir()
	s := &Server{bin: bin, dir: dir, log: filepath.Join(dir, "redis.log")}
	tb.Cleanup(s.stop)
	return s
}

func (s *Server) startOnFreePort(tb testing.TB, args func(port int, dir string, port2 int) []string) *Server {
	tb.Helper()
	dir := s.dir
	var errs []error
	for range startTries {
		ports, err := testenv.FreePorts(2, sharedPort) // the second for args
		if err != nil {
			tb.Fatalf("redistest: %v", err)
		}
		port := ports[0]
		s.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		if args != nil {
			s.args = args(port, dir, ports[1])
		}
		// Another process may take the port between FreePorts and the
		// server's bind; the server then exits and we try another port.
		if err := s.start(); err != nil {
			errs = append(errs, err)
			continue
		}
		return s
	}
	tb.Fatalf("redistest: start redis-server: %v", errors.Join(errs...))
	return nil
}

// Kill stops the server with SIGKILL, as in a crash, and waits until it
// has exited.
func (s *Server) Kill(tb testing.TB) {
	tb.Helper()
	s.mu.Lock()
	p := s.proc
	s.proc = nil
	s.mu.Unlock()
	if p == nil {
		tb.Fatalf("redistest: kill %s: not running", s.Addr)
	}
	p.kill()
}

// Restart starts the server again on the same port, killing it first if it
// still runs, and waits until it answers. Its data is gone.
func (s *Server) Restart(tb testing.TB) {
	tb.Helper()
	s.mu.Lock()
	p := s.proc
	s.proc = nil
	s.mu.Unlock()
	if p != nil {
		p.kill()
	}
	var errs []error
	for range startTries {
		err := s.start()
		if err == nil {
			return
		}
		// Another process may have taken the port meanwhile; it may
		// also be a passing clash, so try again shortly.
		errs = append(errs, err)
		time.Sleep(100 * time.Millisecond)
	}
	tb.Fatalf("redistest: restart %s: %v", s.Addr, errors.Join(errs...))
}

// Pause stops the server with SIGSTOP: it keeps its port and connections
// but answers nothing until Resume.
func (s *Server) Pause(tb testing.TB) {
	tb.Helper()
	s.signal(tb, syscall.SIGSTOP)
}

// Resume continues a paused server with SIGCONT.
func (s *Server) Resume(tb testing.TB) {
	tb.Helper()
	s.signal(tb, syscall.SIGCONT)
}

func (s *Server) signal(tb testing.TB, sig syscall.Signal) {
	tb.Helper()
	s.mu.Lock()
	p := s.proc
	s.mu.Unlock()
	if p == nil {
		tb.Fatalf("redistest: signal %v to %s: not running", sig, s.Addr)
	}
	if err := p.cmd.Process.Signal(sig); err != nil {
		tb.Fatalf("redistest: signal %v to %s: %v", sig, s.Addr, err)
	}
}

// start runs redis-server on s.Addr and waits until it answers PING.
func (s *Server) start() error {
	_, port, _ := net.SplitHostPort(s.Addr)
	cmd := exec.Command(s.bin,
		"--port", port,
		"--bind", "127.0.0.1",
		"--save", "",
		"--appendonly", "no",
		"--dir", s.dir,
		"--logfile", s.log,
	)
	cmd.Args = append(cmd.Args, s.args...)
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		return err
	}
	p := &process{cmd: cmd, exited: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		close(p.exited)
	}()
	if err := s.waitReady(p.exited); err != nil {
		p.kill()
		return fmt.Errorf("%s: %w%s", s.Addr, err, s.logTail())
	}
	s.mu.Lock()
	s.proc = p
	s.mu.Unlock()
	return nil
}

// stop kills the server if it runs; a paused server dies as well.
func (s *Server) stop() {
	s.mu.Lock()
	p := s.proc
	s.proc = nil
	s.mu.Unlock()
	if p != nil {
		p.kill()
	}
}

func (p *process) kill() {
	_ = p.cmd.Process.Kill()
	<-p.exited
}

// waitReady polls addr with PING until it answers PONG, the process exits
// or readyTimeout passes.
func (s *Server) waitReady(exited <-chan struct{}) error {
	deadline := time.Now().Add(readyTimeout)
	var err error
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			return errors.New("redis-server exited during start")
		default:
		}
		if err = s.ping(time.Second); err == nil {
			return nil
		}
		time.Sleep(10 * time.Millisecond)
	}
	return fmt.Errorf("no answer after %v: %w", readyTimeout, err)
}

// ping sends one PING to s over a new connection (AUTH first if s asks
// for a password) and expects PONG within timeout.
func (s *Server) ping(timeout time.Duration) error {
	conn, err := net.DialTimeout("tcp", s.Addr, timeout)
	if err != nil {
		return err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(timeout))
	r := bufio.NewReader(conn)
	if s.password != "" {
		if _, err := fmt.Fprintf(conn, "*2\r\n$4\r\nAUTH\r\n$%d\r\n%s\r\n", len(s.password), s.password); err != nil {
			return err
		}
		if line, err := r.ReadString('\n'); err != nil || line != "+OK\r\n" {
			return fmt.Errorf("AUTH answered %q: %v", strings.TrimSpace(line), err)
		}
	}
	if _, err := conn.Write([]byte("*1\r\n$4\r\nPING\r\n")); err != nil {
		return err
	}
	line, err := r.ReadString('\n')
	if err != nil {
		return err
	}
	if line != "+PONG\r\n" {
		return fmt.Errorf("PING answered %q", strings.TrimSpace(line))
	}
	return nil
}

// logTail returns the end of the server log, for start errors.
func (s *Server) logTail() string {
	b, err := os.ReadFile(s.log)
	if err != nil || len(b) == 0 {
		return ""
	}
	const max = 2000
	if len(b) > max {
		b = b[len(b)-max:]
	}
	return "\nredis-server log:\n" + string(b)
}
