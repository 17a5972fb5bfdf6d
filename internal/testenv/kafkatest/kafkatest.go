// Package kafkatest runs Kafka for tests: franz-go's kfake, which speaks
// the Kafka protocol (transactions, consumer groups, leader epochs,
// persistence), because no Kafka broker can be installed on the machines
// the tests run on (it needs a JVM and registries they cannot reach).
//
// Start runs a three-broker cluster in the test's process, with a store in
// a temporary directory so Restart brings it back with what it held;
// StartProcess runs one as a process of its own (kfakeserver), for tests
// that stop and restart it beside other processes.
package kafkatest

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/shopstack/inventory/internal/testenv"
)

// Cluster is an in-process cluster.
type Cluster struct {
	// Addrs are the brokers' host:port; they stay the same across Restart.
	Addrs []string

	dir   string
	ports []int

	mu sync.Mutex
	c  *kfake.Cluster
}

// Start starts a three-broker cluster on free loopback ports.
func Start(tb testing.TB) *Cluster {
	tb.Helper()
	ports, err := testenv.FreePorts(3)
	if err != nil {
		tb.Fatal(err)
	}
	c := &Cluster{dir: tb.TempDir(), ports: ports}
	for _, p := range ports {
		c.Addrs = append(c.Addrs, "127.0.0.1:"+strconv.Itoa(p))
	}
	c.start(tb)
	tb.Cleanup(c.stop)
	return c
}

func (c *Cluster) start(tb testing.TB) {
	tb.Helper()
	kc, err := kfake.NewCluster(kfake.NumBrokers(len(c.ports)), kfake.Ports(c.ports...), kfake.DataDir(c.dir),
		kfake.DefaultNumPartitions(6))
	if err != nil {
		tb.Fatalf("kafkatest: %v", err)
	}
	c.mu.Lock()
	c.c = kc
	c.mu.Unlock()
}

func (c *Cluster) stop() {
	c.mu.Lock()
	kc := c.c
	c.c = nil
	c.mu.Unlock()
	if kc != nil {
		kc.Close()
	}
}

// Restart stops every broker and starts them again on the same ports and
// store, after down.
func (c *Cluster) Restart(tb testing.TB, down time.Duration) {
	tb.Helper()
	c.stop()
	time.Sleep(down)
	c.start(tb)
}

// Fake returns the running cluster, to move leaders and inject faults.
func (c *Cluster) Fake() *kfake.Cluster {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.c
}

// MoveLeader moves a partition's leadership to another broker and
// returns the new leader.
func (c *Cluster) MoveLeader(tb testing.TB, topic string, partition int32) int32 {
	tb.Helper()
	kc := c.Fake()
	next := (kc.LeaderFor(topic, partition) + 1) % int32(len(c.ports))
	if err := kc.MoveTopicPartition(topic, partition, next); err != nil {
		tb.Fatalf("kafkatest: move %s[%d] to %d: %v", topic, partition, next, err)
	}
	return next
}

// Process is a kfakeserver process.
type Process struct {
	// Addrs are the brokers' host:port; they stay the same across Restart.
	Addrs []string

	bin, dir string
	ports    []int
	proc     testenv.Proc
}

var (
	buildOnce sync.Once
	buildBin  string
	buildErr  error
)

// StartProcess builds kfakeserver (once per test binary) and starts it
// with three brokers on free loopback ports and a store every write of
// which is synced.
func StartProcess(tb testing.TB) *Process {
	tb.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "kfakeserver")
		if err != nil {
			buildErr = err
			return
		}
		buildBin = filepath.Join(dir, "kfakeserver")
		out, err := exec.Command("go", "build", "-o", buildBin, "github.com/shopstack/inventory/internal/testenv/kafkatest/kfakeserver").CombinedOutput()
		if err != nil {
			buildErr = &buildError{err: err, out: string(out)}
		}
	})
	if buildErr != nil {
		tb.Fatalf("kafkatest: build kfakeserver: %v", buildErr)
	}
	ports, err := testenv.FreePorts(3)
	if err != nil {
		tb.Fatal(err)
	}
	p := &Process{bin: buildBin, dir: tb.TempDir(), ports: ports}
	for _, port := range ports {
		p.Addrs = append(p.Addrs, "127.0.0.1:"+strconv.Itoa(port))
	}
	tb.Cleanup(p.stop)
	p.start(tb)
	return p
}

type buildError struct {
	err error
	out string
}

func (e *buildError) Error() string { return e.err.Error() + ": " + e.out }

func (p *Process) start(tb testing.TB) {
	tb.Helper()
	var ports []string
	for _, n := range p.ports {
		ports = append(ports, strconv.Itoa(n))
	}
	cmd := exec.Command(p.bin, "-ports", strings.Join(ports, ","), "-data-dir", p.dir)
	out, err := cmd.StdoutPipe()
	if err != nil {
		tb.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	cmd.SysProcAttr = testenv.DieWithTest()
	if err := cmd.Start(); err != nil {
		tb.Fatalf("kafkatest: %v", err)
	}
	// It prints its addresses once it listens.
	sc := bufio.NewScanner(out)
	for range p.ports {
		if !sc.Scan() {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
			tb.Fatal("kafkatest: kfakeserver ended before listening")
		}
	}
	p.proc.Set(cmd)
}

// Stop stops the process with SIGTERM: every broker stops at once,
// closing its store.
//
// There is no Kill: killed mid-commit (SIGKILL), kfake treats a
// transaction whose markers it had written to only some of its
// partitions as aborted on the others (its persist.go: "Implicitly abort
// in-flight transactions"), so a transaction is no longer atomic, which
// Kafka's transaction coordinator guarantees (it completes a prepared
// commit when it recovers). A test killing kfake would test kfake.
func (p *Process) Stop(tb testing.TB) {
	tb.Helper()
	if !p.proc.Stop(syscall.SIGTERM, 30*time.Second) {
		tb.Fatal("kafkatest: kfakeserver did not stop within 30s of SIGTERM")
	}
}

// Restart starts the process again on the same ports and store, after
// stopping it if it runs.
func (p *Process) Restart(tb testing.TB) {
	tb.Helper()
	p.Stop(tb)
	p.start(tb)
}

func (p *Process) stop() { p.proc.Kill() }
