// Package server builds inventoryd and runs it as a child process of the
// tool: on a loopback port of its own, with the environment a row asks for,
// stopped gracefully at the end (and by the kernel if the tool dies first).
package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Server start and stop limits: start-up may wait for the lock backend (the
// server's lock timeout), and shutdown lets in-flight requests finish.
const (
	startTimeout = 60 * time.Second
	stopTimeout  = 40 * time.Second
)

// Build builds ./cmd/inventoryd of the module in the current directory
// into dir and returns the binary's path.
func Build(ctx context.Context, dir string) (string, error) {
	root, err := exec.CommandContext(ctx, "go", "list", "-m", "-f", "{{.Dir}}").Output()
	if err != nil {
		return "", fmt.Errorf("find module root (run from the repository): %w", err)
	}
	bin := filepath.Join(dir, "inventoryd")
	// The comparison's other strategies exist only in such a build.
	cmd := exec.CommandContext(ctx, "go", "build", "-tags", "benchstrategies", "-o", bin, "./cmd/inventoryd")
	cmd.Dir = strings.TrimSpace(string(root))
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build inventoryd: %w\n%s", err, out)
	}
	return bin, nil
}

// Process is an inventoryd child process.
type Process struct {
	// URL is the server's base URL (http://127.0.0.1:port).
	URL string
	// GRPCAddr is grpc-go's address (INVENTORY_GRPC_ADDR), if it serves one.
	GRPCAddr string
	cmd      *exec.Cmd
	logs     *logTail
	done     chan error // Wait's result, once
}

// Start runs bin on 127.0.0.1:0 with env (INVENTORY_* settings, which
// replace any inherited ones) and waits for its "listening" log line.
func Start(ctx context.Context, bin string, env map[string]string) (*Process, error) {
	cmd := exec.CommandContext(ctx, bin, "-addr", "127.0.0.1:0")
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "INVENTORY_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	s := &Process{cmd: cmd, logs: newLogTail(), done: make(chan error, 1)}
	cmd.Stdout, cmd.Stderr = s.logs, s.logs
	cmd.SysProcAttr = procAttr()
	// Interrupting the tool stops the server gracefully too.
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = stopTimeout
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start inventoryd: %w", err)
	}
	go func() { s.done <- cmd.Wait() }()
	timer := time.NewTimer(startTimeout)
	defer timer.Stop()
	select {
	case addr := <-s.logs.listening:
		s.URL = "http://" + addr
		s.GRPCAddr = s.logs.grpcAddress()
		return s, nil
	case err := <-s.done:
		s.done <- err
		return nil, fmt.Errorf("inventoryd exited before listening (%v):\n%s", err, s.logs.tail())
	case <-timer.C:
		_ = s.Stop()
		return nil, fmt.Errorf("inventoryd did not listen within %v:\n%s", startTimeout, s.logs.tail())
	}
}

// PID is the server's process ID.
func (s *Process) PID() int { return s.cmd.Process.Pid }

// Stop sends SIGTERM and waits for a graceful exit, killing the server if it
// takes longer than stopTimeout.
func (s *Process) Stop() error {
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	timer := time.NewTimer(stopTimeout)
	defer timer.Stop()
	var err error
	select {
	case err = <-s.done:
	case <-timer.C:
		_ = s.cmd.Process.Kill()
		err = <-s.done
		if err == nil {
			err = errors.New("killed")
		}
	}
	s.done <- err
	if err != nil {
		return fmt.Errorf("stop inventoryd: %w\n%s", err, s.logs.tail())
	}
	return nil
}

// logTail keeps the last lines the server printed, for error messages, and
// spots the "listening" line. exec calls Write from one goroutine at a time
// (stdout and stderr are the same writer), but tail reads from another.
type logTail struct {
	mu        sync.Mutex
	partial   []byte
	lines     []string
	listening chan string
	grpcAddr  string // from the "gRPC listening" line, logged before "listening"
}

func (l *logTail) grpcAddress() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.grpcAddr
}

const tailLines = 20

func newLogTail() *logTail { return &logTail{listening: make(chan string, 1)} }

func (l *logTail) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.partial = append(l.partial, p...)
	for {
		line, rest, ok := bytes.Cut(l.partial, []byte("\n"))
		if !ok {
			break
		}
		l.line(line)
		l.partial = append(l.partial[:0], rest...)
	}
	if len(l.partial) > 64<<10 { // a line this long is not a log line
		l.line(l.partial)
		l.partial = l.partial[:0]
	}
	return len(p), nil
}

func (l *logTail) line(b []byte) {
	var entry struct{ Msg, Addr string }
	if bytes.Contains(b, []byte(`"gRPC listening"`)) && json.Unmarshal(b, &entry) == nil {
		l.grpcAddr = entry.Addr
	}
	if bytes.Contains(b, []byte(`"listening"`)) && json.Unmarshal(b, &entry) == nil && entry.Msg == "listening" {
		select {
		case l.listening <- entry.Addr:
		default:
		}
	}
	if len(l.lines) == tailLines {
		l.lines = append(l.lines[:0], l.lines[1:]...)
	}
	l.lines = append(l.lines, string(b))
}

func (l *logTail) tail() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return "  | " + strings.Join(l.lines, "\n  | ")
}
