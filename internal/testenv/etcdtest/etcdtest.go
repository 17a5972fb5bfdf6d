// Package etcdtest runs real etcd clusters inside the test process, for
// tests of code that talks to etcd. The servers are etcd's own (embed), so
// nothing needs to be installed and no test is skipped.
package etcdtest

import (
	"crypto/rand"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"go.etcd.io/etcd/client/pkg/v3/transport"
	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/shopstack/inventory/internal/testenv"
)

// startTimeout bounds how long a cluster may take to become ready and
// elect a leader; generous because tests may run under -race on 2 cores.
const startTimeout = 30 * time.Second

// Cluster is a running etcd cluster of embedded members on loopback ports.
type Cluster struct {
	scheme  string // of the client URLs
	mu      sync.Mutex
	members []*member
}

type member struct {
	etcd    *embed.Etcd
	proxy   *testenv.Proxy // in front of the client URL; see Kill
	stopped bool
	// stopping silences the member's logger: a stopping server logs its
	// closed listeners as errors.
	stopping *atomic.Bool
}

// Start starts a cluster of the given number of members, each with its own
// data directory under tb.TempDir(), waits until every member is ready and
// a leader is elected, and stops the cluster at tb.Cleanup.
func Start(tb testing.TB, members int) *Cluster {
	tb.Helper()
	return startWith(tb, members, nil)
}

// StartTLS is Start with clients served over TLS with certs (see
// testenv.NewCerts): Endpoints are https:// URLs, and clients must trust
// certs.CAFile.
func StartTLS(tb testing.TB, members int, certs testenv.Certs) *Cluster {
	tb.Helper()
	return startWith(tb, members, &certs)
}

func startWith(tb testing.TB, members int, certs *testenv.Certs) *Cluster {
	tb.Helper()
	if members < 1 {
		tb.Fatalf("etcdtest: %d members, want at least 1", members)
	}
	// Free ports are found by listening on port 0 and closing again, so
	// another process may take one before etcd binds it: retry on a clash.
	var err error
	for range 5 {
		var c *Cluster
		c, err = start(tb, members, certs)
		if err == nil {
			tb.Cleanup(c.stopAll)
			c.waitLeader(tb)
			return c
		}
		if !errors.Is(err, syscall.EADDRINUSE) {
			break
		}
	}
	tb.Fatalf("etcdtest: start %d members: %v", members, err)
	return nil
}

func start(tb testing.TB, members int, certs *testenv.Certs) (*Cluster, error) {
	ports, err := testenv.FreePorts(2 * members)
	if err != nil {
		return nil, err
	}
	token := make([]byte, 8)
	_, _ = rand.Read(token)
	peers := make([]string, members)
	cfgs := make([]*embed.Config, members)
	stoppings := make([]*atomic.Bool, members)
	for i := range members {
		cfg := embed.NewConfig()
		cfg.Name = fmt.Sprintf("m%d", i)
		cfg.Dir = tb.TempDir()
		clientURL := url.URL{Scheme: "http", Host: fmt.Sprintf("127.0.0.1:%d", ports[2*i])}
		if certs != nil {
			clientURL.Scheme = "https"
			cfg.ClientTLSInfo = transport.TLSInfo{CertFile: certs.CertFile, KeyFile: certs.KeyFile}
		}
		peerURL := url.URL{Scheme: "http", Host: fmt.Sprintf("127.0.0.1:%d", ports[2*i+1])}
		cfg.ListenClientUrls = []url.URL{clientURL}
		cfg.AdvertiseClientUrls = []url.URL{clientURL}
		cfg.ListenPeerUrls = []url.URL{peerURL}
		cfg.AdvertisePeerUrls = []url.URL{peerURL}
		// A token of its own gives every cluster a distinct cluster ID even
		// when ports are reused.
		cfg.InitialClusterToken = fmt.Sprintf("etcdtest-%x", token)
		cfg.LogLevel = "error"
		stopping := new(atomic.Bool)
		cfg.ZapLoggerBuilder = embed.NewZapLoggerBuilder(quietLogger(stopping))
		// Test data is thrown away; fsync only slows the tests down.
		cfg.UnsafeNoFsync = true
		peers[i] = cfg.Name + "=" + peerURL.String()
		cfgs[i] = cfg
		stoppings[i] = stopping
	}
	c := &Cluster{scheme: "http"}
	if certs != nil {
		c.scheme = "https"
	}
	for i, cfg := range cfgs {
		cfg.InitialCluster = strings.Join(peers, ",")
		e, err := embed.StartEtcd(cfg)
		if err != nil {
			c.stopAll()
			return nil, fmt.Errorf("start %s: %w", cfg.Name, err)
		}
		m := &member{etcd: e, stopping: stoppings[i]}
		c.members = append(c.members, m)
		if m.proxy, err = testenv.NewProxy(cfg.ListenClientUrls[0].Host); err != nil {
			c.stopAll()
			return nil, fmt.Errorf("proxy for %s: %w", cfg.Name, err)
		}
	}
	timeout := time.After(startTimeout)
	for _, m := range c.members {
		select {
		case <-m.etcd.Server.ReadyNotify():
		case err := <-m.etcd.Err():
			c.stopAll()
			return nil, fmt.Errorf("member %s: %w", m.etcd.Config().Name, err)
		case <-timeout:
			c.stopAll()
			return nil, fmt.Errorf("members not ready after %v", startTimeout)
		}
	}
	return c, nil
}

// Endpoints returns the client URLs of all members that were started,
// stopped ones included, as a client configured with the whole cluster
// would list them. They lead to the members through proxies (see Kill).
func (c *Cluster) Endpoints() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	eps := make([]string, len(c.members))
	for i, m := range c.members {
		eps[i] = c.scheme + "://" + m.proxy.Addr()
	}
	return eps
}

// Kill stops member i abruptly, as a crash would: its client connections
// drop, its raft node stops without handing leadership over, then its
// listeners and files are closed. (embed.Etcd.Close alone stops gracefully:
// it transfers leadership first and lets open client streams drain for
// several seconds.)
func (c *Cluster) Kill(tb testing.TB, i int) {
	tb.Helper()
	c.mu.Lock()
	if i < 0 || i >= len(c.members) {
		c.mu.Unlock()
		tb.Fatalf("etcdtest: kill member %d of %d", i, len(c.members))
	}
	m := c.members[i]
	if m.stopped {
		c.mu.Unlock()
		return
	}
	m.stopped = true
	c.mu.Unlock()
	m.stop()
}

// stop stops the member without leadership transfer: a graceful stop of a
// leader whose peers are gone waits seconds for a transfer that cannot
// happen.
func (m *member) stop() {
	m.stopping.Store(true)
	if m.proxy != nil {
		m.proxy.Close()
	}
	m.etcd.Server.HardStop()
	m.etcd.Close()
}

// Leader returns the index of the current leader among the running
// members, waiting for an election if there is none yet.
func (c *Cluster) Leader(tb testing.TB) int {
	tb.Helper()
	return c.waitLeader(tb)
}

func (c *Cluster) waitLeader(tb testing.TB) int {
	tb.Helper()
	i := -1
	if !testenv.Poll(startTimeout, func() bool { i = c.leader(); return i >= 0 }) {
		tb.Fatalf("etcdtest: no leader after %v", startTimeout)
	}
	return i
}

// leader returns the running member that considers itself leader and that
// every other running member follows, or -1.
func (c *Cluster) leader() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	found := -1
	for i, m := range c.members {
		if m.stopped {
			continue
		}
		lead := m.etcd.Server.Leader()
		if lead == 0 {
			return -1
		}
		if lead == m.etcd.Server.MemberID() {
			found = i
		}
	}
	if found < 0 {
		return -1
	}
	want := c.members[found].etcd.Server.MemberID()
	for _, m := range c.members {
		if !m.stopped && m.etcd.Server.Leader() != want {
			return -1
		}
	}
	return found
}

func (c *Cluster) stopAll() {
	c.mu.Lock()
	var running []*member
	for _, m := range c.members {
		if !m.stopped {
			m.stopped = true
			running = append(running, m)
		}
	}
	c.mu.Unlock()
	var wg sync.WaitGroup
	for _, m := range running {
		wg.Go(m.stop)
	}
	wg.Wait()
}

// quietLogger logs errors to stderr until stopping is set.
func quietLogger(stopping *atomic.Bool) *zap.Logger {
	enc := zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig())
	core := zapcore.NewCore(enc, zapcore.Lock(os.Stderr), zap.ErrorLevel)
	return zap.New(quietCore{Core: core, stopping: stopping})
}

type quietCore struct {
	zapcore.Core
	stopping *atomic.Bool
}

func (c quietCore) With(fields []zapcore.Field) zapcore.Core {
	return quietCore{Core: c.Core.With(fields), stopping: c.stopping}
}

func (c quietCore) Check(e zapcore.Entry, ce *zapcore.CheckedEntry) *zapcore.CheckedEntry {
	if c.stopping.Load() {
		return ce
	}
	return c.Core.Check(e, ce)
}
