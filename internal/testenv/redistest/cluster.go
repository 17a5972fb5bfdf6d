package redistest

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"

	"github.com/shopstack/inventory/internal/testenv"
)

const (
	// ClusterNodeTimeout is the cluster nodes' cluster-node-timeout: a
	// master silent that long is failed over to its replica, about two
	// node timeouts after it died.
	ClusterNodeTimeout = time.Second
	clusterMasters     = 3
	slotCount          = 16384
	// clusterTimeout bounds the creation of a cluster and a failover.
	clusterTimeout = 30 * time.Second
)

// Cluster is a Redis Cluster of real redis-server processes on loopback:
// three masters with a replica each, the cluster bus on ports of their
// own, a short node timeout and otherwise Redis's defaults (so while a
// master is failing over, the whole cluster refuses commands: full
// coverage is required). Nodes keep their cluster configuration across
// Restart, and so rejoin the cluster (a restarted master as a replica of
// the node that took over its slots).
type Cluster struct {
	Nodes []*Server
}

// StartCluster starts six nodes, creates the cluster with redis-cli and
// waits until it is healthy (see WaitHealthy). The nodes are stopped when
// the test ends. Without redis-server and redis-cli in PATH the test is
// skipped (failed under INVENTORY_TEST_STRICT=1).
func StartCluster(tb testing.TB) *Cluster {
	tb.Helper()
	cli, err := exec.LookPath("redis-cli")
	if err != nil {
		testenv.SkipOrFail(tb, "redis-cli is not in PATH")
	}
	c := &Cluster{}
	for range 2 * clusterMasters {
		c.Nodes = append(c.Nodes, start(tb, func(_ int, dir string, bus int) []string {
			return []string{
				"--cluster-enabled", "yes",
				"--cluster-config-file", filepath.Join(dir, "nodes.conf"),
				"--cluster-node-timeout", strconv.FormatInt(ClusterNodeTimeout.Milliseconds(), 10),
				"--cluster-port", strconv.Itoa(bus),
			}
		}))
	}
	ctx, cancel := context.WithTimeout(context.Background(), clusterTimeout)
	defer cancel()
	args := append([]string{"--cluster", "create"}, c.Addrs()...)
	args = append(args, "--cluster-replicas", "1", "--cluster-yes")
	if out, err := exec.CommandContext(ctx, cli, args...).CombinedOutput(); err != nil {
		tb.Fatalf("redistest: redis-cli --cluster create: %v\n%s", err, out)
	}
	c.WaitHealthy(tb)
	return c
}

// Addrs are the addresses of every node, for clients' seed lists.
func (c *Cluster) Addrs() []string {
	addrs := make([]string, len(c.Nodes))
	for i, n := range c.Nodes {
		addrs[i] = n.Addr
	}
	return addrs
}

// WaitHealthy waits until every running node says cluster_state:ok, every
// one maps all slots to the same running masters, and every running
// replica's link to its master is up (so it can take over).
func (c *Cluster) WaitHealthy(tb testing.TB) {
	tb.Helper()
	var why error
	if !testenv.Poll(clusterTimeout, func() bool { why = c.healthy(); return why == nil }) {
		tb.Fatalf("redistest: cluster not healthy after %v: %v", clusterTimeout, why)
	}
}

func (c *Cluster) healthy() error {
	var masters map[int]string // first slot of a range -> master
	for _, n := range c.running() {
		info, err := command(n.Addr, "CLUSTER", "INFO")
		if err != nil {
			return fmt.Errorf("%s: %w", n.Addr, err)
		}
		if !strings.Contains(info.(string), "cluster_state:ok") {
			return fmt.Errorf("%s: cluster state not ok", n.Addr)
		}
		slots, err := clusterSlots(n.Addr)
		if err != nil {
			return err
		}
		covered, m := 0, map[int]string{}
		for _, s := range slots {
			covered += int(s.End - s.Start + 1)
			m[s.Start] = s.Nodes[0].Addr
			if c.node(s.Nodes[0].Addr) == nil || !c.node(s.Nodes[0].Addr).up() {
				return fmt.Errorf("%s: slots %d-%d on %s, which is down", n.Addr, s.Start, s.End, s.Nodes[0].Addr)
			}
		}
		if covered != slotCount {
			return fmt.Errorf("%s: %d of %d slots covered", n.Addr, covered, slotCount)
		}
		if masters != nil && !maps.Equal(masters, m) {
			return fmt.Errorf("%s: its slot map differs from another node's", n.Addr)
		}
		masters = m
		repl, err := command(n.Addr, "INFO", "replication")
		if err != nil {
			return fmt.Errorf("%s: %w", n.Addr, err)
		}
		if r := repl.(string); strings.Contains(r, "role:slave") && !strings.Contains(r, "master_link_status:up") {
			return fmt.Errorf("%s: replica not linked to its master", n.Addr)
		}
	}
	return nil
}

// MasterOf returns the node serving the slot of key, as a running node
// sees it.
func (c *Cluster) MasterOf(tb testing.TB, key string) *Server {
	tb.Helper()
	for _, n := range c.running() {
		slot, err := command(n.Addr, "CLUSTER", "KEYSLOT", key)
		if err != nil {
			continue
		}
		slots, err := clusterSlots(n.Addr)
		if err != nil {
			continue
		}
		for _, s := range slots {
			if int64(s.Start) <= slot.(int64) && slot.(int64) <= int64(s.End) {
				if m := c.node(s.Nodes[0].Addr); m != nil {
					return m
				}
			}
		}
	}
	tb.Fatalf("redistest: no node knows the master of %q", key)
	return nil
}

// KillMasterOf kills (SIGKILL) the master of key's slot and returns it. Its
// replica takes over about two node timeouts later; see WaitFailover.
func (c *Cluster) KillMasterOf(tb testing.TB, key string) *Server {
	tb.Helper()
	m := c.MasterOf(tb, key)
	m.Kill(tb)
	return m
}

// WaitFailover waits until another node than old serves key's slot and the
// cluster is healthy again, and returns the new master.
func (c *Cluster) WaitFailover(tb testing.TB, key string, old *Server) *Server {
	tb.Helper()
	var m *Server
	var why error
	if !testenv.Poll(clusterTimeout, func() bool {
		if why = c.healthy(); why != nil {
			return false
		}
		m = c.MasterOf(tb, key)
		return m != old
	}) {
		tb.Fatalf("redistest: %s not failed over after %v: %v", old.Addr, clusterTimeout, why)
	}
	return m
}

func (c *Cluster) running() []*Server {
	return slices.DeleteFunc(slices.Clone(c.Nodes), func(n *Server) bool { return !n.up() })
}

func (c *Cluster) node(addr string) *Server {
	for _, n := range c.Nodes {
		if n.Addr == addr {
			return n
		}
	}
	return nil
}

func (s *Server) up() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.proc != nil
}

// command runs one command on addr over a connection of its own.
func command(addr string, args ...any) (any, error) {
	rdb := client(addr)
	defer rdb.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	return rdb.Do(ctx, args...).Result()
}

func clusterSlots(addr string) ([]redis.ClusterSlot, error) {
	rdb := client(addr)
	defer rdb.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	slots, err := rdb.ClusterSlots(ctx).Result()
	if err != nil {
		return nil, fmt.Errorf("%s: CLUSTER SLOTS: %w", addr, err)
	}
	for _, s := range slots {
		if len(s.Nodes) == 0 {
			return nil, errors.New(addr + ": CLUSTER SLOTS: a range without nodes")
		}
	}
	return slots, nil
}

// client is a plain client of one node, for the cluster's own checks.
func client(addr string) *redis.Client {
	return redis.NewClient(&redis.Options{Addr: addr, DialTimeout: time.Second, ReadTimeout: time.Second, MaxRetries: -1,
		Protocol: 2, DisableIdentity: true, MaintNotificationsConfig: &maintnotifications.Config{Mode: maintnotifications.ModeDisabled}})
}
