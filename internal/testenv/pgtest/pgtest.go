// Package pgtest runs a PostgreSQL server of the test's own, for tests that
// kill and restart the database: initdb'd in a temporary directory, on a
// free loopback port, trust authentication, and stopped when the test
// ends. It keeps fsync and synchronous_commit on, so what it acknowledged
// before a Kill is there after the Restart, as on a production server.
//
// Tests that do not need to kill the database use the machine's server
// through gormstoretest. Without PostgreSQL's server binaries
// (/usr/lib/postgresql/<version>/bin, or initdb and postgres in PATH)
// tests are skipped, unless INVENTORY_TEST_STRICT=1, where a skip is a
// failure.
package pgtest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/shopstack/inventory/internal/testenv"
)

const (
	// sharedPort is the machine's own PostgreSQL, which tests never touch.
	sharedPort   = 5432
	startTries   = 5
	readyTimeout = 60 * time.Second // crash recovery under load included
)

// Server is one PostgreSQL server: a postmaster and its backends.
type Server struct {
	// Addr is 127.0.0.1:port; it stays the same across Restart.
	Addr string
	// DSN connects to its postgres database as the postgres superuser.
	DSN string

	bin  string // the directory of initdb and postgres
	data string
	log  string
	// cred runs the server as the postgres OS user when the test runs as
	// root, which PostgreSQL refuses; nil otherwise.
	cred *syscall.Credential

	mu   sync.Mutex
	proc *process // nil while stopped
}

// process is one run of the postmaster; exited is closed when it has
// exited.
type process struct {
	cmd    *exec.Cmd
	exited chan struct{}
}

// Start initializes a database cluster, starts its server on a free port
// and waits until it accepts connections. It is stopped when the test ends.
func Start(tb testing.TB) *Server {
	tb.Helper()
	bin, err := binDir()
	if err != nil {
		testenv.SkipOrFail(tb, "pgtest: "+err.Error())
		return nil
	}
	s := &Server{bin: bin}
	dir := s.dir(tb)
	s.data, s.log = filepath.Join(dir, "data"), filepath.Join(dir, "postgres.log")
	s.initdb(tb)
	tb.Cleanup(s.stop)
	var errs []error
	for range startTries {
		ports, err := testenv.FreePorts(1, sharedPort)
		if err != nil {
			tb.Fatalf("pgtest: %v", err)
		}
		port := ports[0]
		s.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		s.DSN = "postgres://postgres@" + s.Addr + "/postgres?sslmode=disable"
		// Another process may take the port between FreePorts and the
		// server's bind; the server then exits and we try another port.
		if err := s.start(); err != nil {
			errs = append(errs, err)
			continue
		}
		return s
	}
	tb.Fatalf("pgtest: start postgres: %v", errors.Join(errs...))
	return nil
}

// Kill ends the postmaster and every backend with SIGKILL, as a crash of
// the machine's database would, and waits until they are gone: clients'
// connections break, transactions in flight are lost, and what was
// committed is on disk for Restart to recover.
func (s *Server) Kill(tb testing.TB) {
	tb.Helper()
	s.mu.Lock()
	p := s.proc
	s.proc = nil
	s.mu.Unlock()
	if p == nil {
		tb.Fatalf("pgtest: kill %s: not running", s.Addr)
	}
	p.kill()
}

// Restart starts the server again on the same port and data directory,
// killing it first if it still runs, and waits until it has recovered and
// accepts connections.
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
	tb.Fatalf("pgtest: restart %s: %v", s.Addr, errors.Join(errs...))
}

// dir makes the server's directory, owned by the user the server runs as.
// It is not under tb.TempDir: the test's temporary directory is private
// to the user running the test, and the postgres user could not reach a
// directory inside it.
func (s *Server) dir(tb testing.TB) string {
	tb.Helper()
	dir, err := os.MkdirTemp("", "pgtest-")
	if err != nil {
		tb.Fatalf("pgtest: %v", err)
	}
	tb.Cleanup(func() { _ = os.RemoveAll(dir) })
	if os.Geteuid() != 0 {
		return dir
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		testenv.SkipOrFail(tb, "pgtest: PostgreSQL refuses to run as root, and there is no postgres user to run it as: "+err.Error())
	}
	uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
	gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
	if err := errors.Join(err1, err2); err != nil {
		tb.Fatalf("pgtest: postgres user: %v", err)
	}
	s.cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
	if err := os.Chown(dir, int(uid), int(gid)); err != nil {
		tb.Fatalf("pgtest: %v", err)
	}
	return dir
}

// initdb creates the database cluster: trust authentication for the
// postgres superuser, UTF-8, C locale.
func (s *Server) initdb(tb testing.TB) {
	tb.Helper()
	cmd := s.command("initdb", "-D", s.data, "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-locale", "--no-sync")
	if out, err := cmd.CombinedOutput(); err != nil {
		tb.Fatalf("pgtest: initdb: %v\n%s", err, out)
	}
}

// command runs one of PostgreSQL's programs as the server's user.
func (s *Server) command(name string, args ...string) *exec.Cmd {
	cmd := exec.Command(filepath.Join(s.bin, name), args...)
	cmd.Dir = filepath.Dir(s.data)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "LC_ALL=C"}
	cmd.SysProcAttr = sysProcAttr()
	cmd.SysProcAttr.Credential = s.cred
	return cmd
}

// start runs the postmaster on s.Addr and waits until it accepts
// connections. Durability stays as in production (fsync and synchronous
// commits on); memory is small, and no Unix socket is made.
func (s *Server) start() error {
	_, port, _ := net.SplitHostPort(s.Addr)
	cmd := s.command("postgres", "-D", s.data, "-p", port,
		"-c", "listen_addresses=127.0.0.1",
		"-c", "unix_socket_directories=",
		"-c", "fsync=on",
		"-c", "synchronous_commit=on",
		"-c", "full_page_writes=on",
		"-c", "shared_buffers=16MB",
		"-c", "max_connections=100",
	)
	log, err := os.OpenFile(s.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer log.Close() // the child has its own descriptor
	cmd.Stdout, cmd.Stderr = log, log
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

// stop kills the server if it runs.
func (s *Server) stop() {
	s.mu.Lock()
	p := s.proc
	s.proc = nil
	s.mu.Unlock()
	if p != nil {
		p.kill()
	}
}

// kill stops the postmaster first, so that it forks no backend meanwhile,
// then SIGKILLs its process group and its children (each backend is a
// session of its own, out of the postmaster's group), and waits until all
// are gone: a backend left behind would keep the shared memory that a
// restarted server refuses to share.
func (p *process) kill() {
	pid := p.cmd.Process.Pid
	_ = syscall.Kill(pid, syscall.SIGSTOP)
	children := childrenOf(pid)
	_ = syscall.Kill(-pid, syscall.SIGKILL)
	for _, c := range children {
		_ = syscall.Kill(c, syscall.SIGKILL)
	}
	<-p.exited
	for _, c := range children {
		for alive(c) {
			time.Sleep(5 * time.Millisecond)
		}
	}
}

// waitReady connects until the server answers a query, the postmaster
// exits, or readyTimeout passes.
func (s *Server) waitReady(exited <-chan struct{}) error {
	deadline := time.Now().Add(readyTimeout)
	var err error
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			return errors.New("postgres exited during start")
		default:
		}
		if err = s.ping(time.Second); err == nil {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("no answer after %v: %w", readyTimeout, err)
}

// ping runs SELECT 1 over a new connection within timeout.
func (s *Server) ping(timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	conn, err := pgx.Connect(ctx, s.DSN)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	var one int
	return conn.QueryRow(ctx, "SELECT 1").Scan(&one)
}

// binDir finds the directory of initdb and postgres: the newest version
// installed the Debian way (/usr/lib/postgresql/<version>/bin), else
// PATH's.
func binDir() (string, error) {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	dirs = slices.DeleteFunc(dirs, func(d string) bool {
		return !executable(filepath.Join(d, "initdb")) || !executable(filepath.Join(d, "postgres"))
	})
	version := func(d string) float64 {
		v, _ := strconv.ParseFloat(filepath.Base(filepath.Dir(d)), 64)
		return v
	}
	slices.SortFunc(dirs, func(a, b string) int { return int(version(b)*100) - int(version(a)*100) })
	if len(dirs) > 0 {
		return dirs[0], nil
	}
	initdb, err := exec.LookPath("initdb")
	if err != nil {
		return "", errors.New("no PostgreSQL server binaries in /usr/lib/postgresql/*/bin or PATH (apt-get install postgresql)")
	}
	dir := filepath.Dir(initdb)
	if !executable(filepath.Join(dir, "postgres")) {
		return "", fmt.Errorf("%s has initdb but no postgres", dir)
	}
	return dir, nil
}

func executable(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0
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
	return "\npostgres log:\n" + strings.TrimSpace(string(b))
}
