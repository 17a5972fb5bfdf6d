package testenv

import (
	"os"
	"os/exec"
	"sync"
	"time"
)

// Proc holds the process of a server a test runs, which the test stops,
// and may start again; its zero value holds none.
type Proc struct {
	mu  sync.Mutex
	cmd *exec.Cmd
}

// Set records a started process.
func (p *Proc) Set(cmd *exec.Cmd) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cmd = cmd
}

func (p *Proc) take() *exec.Cmd {
	p.mu.Lock()
	defer p.mu.Unlock()
	cmd := p.cmd
	p.cmd = nil
	return cmd
}

// Kill stops the process with SIGKILL, if one runs, and reaps it.
func (p *Proc) Kill() {
	if cmd := p.take(); cmd != nil && cmd.Process != nil {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	}
}

// Stop sends the process sig and waits for it to end, up to within; then
// it kills it. It reports whether the process ended by itself.
func (p *Proc) Stop(sig os.Signal, within time.Duration) bool {
	cmd := p.take()
	if cmd == nil || cmd.Process == nil {
		return true
	}
	_ = cmd.Process.Signal(sig)
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	select {
	case <-done:
		return true
	case <-time.After(within):
		_ = cmd.Process.Kill()
		<-done
		return false
	}
}
