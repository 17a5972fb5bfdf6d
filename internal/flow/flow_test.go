package flow_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/shopstack/inventory/internal/flow"
	"github.com/shopstack/inventory/internal/inventory"
	"github.com/shopstack/inventory/internal/testenv"
)

var ops = []string{"product", "products", "stockIn", "stockOut", "adjustStock", "reserveStock", "createProduct"}

// start writes rules to a file (if not empty) and starts a controller on it.
func start(t *testing.T, rules string, skus map[string]int64) (*flow.Controller, string) {
	t.Helper()
	file := ""
	if rules != "" {
		file = filepath.Join(t.TempDir(), "rules.yaml")
		writeFile(t, file, rules)
	}
	c, err := flow.New(context.Background(), flow.Config{
		RulesFile: file, Operations: ops, CheckInterval: 20 * time.Millisecond, LogDir: t.TempDir(),
		ResolveSKU: func(_ context.Context, sku string) (int64, error) {
			if id, ok := skus[sku]; ok {
				return id, nil
			}
			return 0, inventory.Errorf(inventory.CodeNotFound, "no product with SKU %s", sku)
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c, file
}

func writeFile(t *testing.T, path, data string) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil { // as editors and config maps do
		t.Fatal(err)
	}
}

// admit asks once and releases at once; it returns the refusal, if any.
func admit(c *flow.Controller, op string, ids ...int64) *inventory.Error {
	done, err := c.Admit(context.Background(), op, ids)
	if err != nil {
		var de *inventory.Error
		if !errors.As(err, &de) {
			panic(err)
		}
		return de
	}
	done(nil)
	return nil
}

func TestParse(t *testing.T) {
	good := []string{
		"operations:\n  - resource: stockOut\n    qps: 10\n",
		`{"operations": [{"resource": "stockOut", "concurrency": 5}]}`,
		"hotspot:\n  qps: 100\n  behavior: throttle\n  overrides:\n    - productId: 42\n      qps: 5\n    - productId: \"43\"\n      qps: 0\n    - sku: flash-1\n      qps: 1000\n",
		"breakers:\n  - resource: database\n    slowMs: 200\n    slowRatio: 0.5\n",
	}
	for _, g := range good {
		if _, err := flow.Parse([]byte(g), ops); err != nil {
			t.Errorf("Parse(%q): %v", g, err)
		}
	}
	bad := map[string]string{
		"operations:\n  - resource: stockout\n    qps: 10\n":                                `unknown operation "stockout"`,
		"operations:\n  - resource: stockOut\n    qsp: 10\n":                                `unknown field "qsp"`,
		"operations:\n  - resource: stockOut\n":                                             "give qps > 0, concurrency > 0, or both",
		"operations:\n  - resource: stockOut\n    qps: 1\n    behavior: queue\n":            `behavior must be "reject" or "throttle"`,
		"operations:\n  - {resource: stockOut, qps: 1}\n  - {resource: stockOut, qps: 2}\n": "a second rule for stockOut",
		"hotspot:\n  qps: 0\n":                                  "hotspot: qps must be positive",
		"hotspot:\n  qps: 5\n  operations: [products]\n":        `operation "products" does not move stock`,
		"hotspot:\n  qps: 5\n  overrides:\n    - qps: 1\n":      "name the product by productId or by sku",
		"breakers:\n  - resource: redis\n    errorRatio: 0.5\n": `resource must be "lock" or "database"`,
		"breakers:\n  - resource: lock\n    errorRatio: 1.5\n":  "ratios are between 0 and 1",
		"breakers:\n  - resource: lock\n    slowMs: 100\n":      "slowMs and slowRatio go together",
		"operations: [": "parse",
		"  \n":          "empty",
	}
	for in, want := range bad {
		_, err := flow.Parse([]byte(in), ops)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Parse(%q) = %v, want an error containing %q", in, err, want)
		}
	}
}

func TestInvalidFileFailsStartUp(t *testing.T) {
	file := filepath.Join(t.TempDir(), "rules.yaml")
	writeFile(t, file, "operations:\n  - resource: nope\n    qps: 1\n")
	_, err := flow.New(context.Background(), flow.Config{RulesFile: file, Operations: ops, LogDir: t.TempDir()})
	if err == nil || !strings.Contains(err.Error(), `unknown operation "nope"`) {
		t.Fatalf("New with an invalid file = %v", err)
	}
	_, err = flow.New(context.Background(), flow.Config{RulesFile: file + ".missing", Operations: ops, LogDir: t.TempDir()})
	if !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("New with a missing file = %v", err)
	}
}

// TestQPSLimit: 8 clients hammer stockOut for about two seconds under a
// 10-per-second rule. The window slides in halves of a second, so any two
// seconds admit 20 to 30; the bounds below leave room for a slow machine.
func TestQPSLimit(t *testing.T) {
	c, _ := start(t, "operations:\n  - resource: stockOut\n    qps: 10\n", nil)
	var admitted, refused atomic.Int64
	var wg sync.WaitGroup
	stop := time.Now().Add(2 * time.Second)
	for range 8 {
		wg.Go(func() {
			for time.Now().Before(stop) {
				switch e := admit(c, "stockOut"); {
				case e == nil:
					admitted.Add(1)
				case e.Code != inventory.CodeRateLimited || e.RetryAfter <= 0 || e.RetryAfter > time.Second:
					t.Errorf("refusal %v with retry after %v", e, e.RetryAfter)
					return
				default:
					refused.Add(1)
				}
				time.Sleep(time.Millisecond)
			}
		})
	}
	wg.Wait()
	t.Logf("2s at 8 clients: %d admitted, %d refused", admitted.Load(), refused.Load())
	if n := admitted.Load(); n < 10 || n > 40 {
		t.Errorf("admitted %d in about 2s under a 10/s rule", n)
	}
	if refused.Load() < 100 {
		t.Errorf("only %d refused: the load was not over the limit", refused.Load())
	}
	if admit(c, "products") != nil {
		t.Error("an operation without rules was refused")
	}
}

// TestHotspot: one product limited to 5 per second (by ID) and one by SKU
// to 0 while a third, under the default of 1000, flows.
func TestHotspot(t *testing.T) {
	c, _ := start(t, "hotspot:\n  qps: 1000\n  overrides:\n    - productId: 1\n      qps: 5\n    - sku: SOLD-OUT\n      qps: 0\n",
		map[string]int64{"SOLD-OUT": 7})
	var hot, hotOK, cold, coldOK int
	for range 200 {
		hot++
		if e := admit(c, "stockOut", 1); e == nil {
			hotOK++
		} else if e.Code != inventory.CodeRateLimited || !strings.Contains(e.Message, "product 1") {
			t.Fatalf("hot refusal: %v", e)
		}
		cold++
		if admit(c, "stockOut", 2) == nil {
			coldOK++
		}
	}
	t.Logf("product 1: %d of %d admitted; product 2: %d of %d", hotOK, hot, coldOK, cold)
	if hotOK < 1 || hotOK > 15 {
		t.Errorf("product 1 (limit 5/s): %d of %d admitted", hotOK, hot)
	}
	if coldOK != cold {
		t.Errorf("product 2 (limit 1000/s): %d of %d admitted", coldOK, cold)
	}
	if e := admit(c, "reserveStock", 2, 7); e == nil {
		t.Error("a reservation including the SKU limited to 0 was admitted")
	}
	if admit(c, "products", 1) != nil || admit(c, "product", 7) != nil {
		t.Error("an operation the hot-spot rule does not cover was refused")
	}
	top := c.HotProducts(2)
	if len(top) != 2 || top[0].ProductID != 2 && top[0].ProductID != 1 || top[0].Admitted+top[0].Blocked < 200 {
		t.Errorf("hot products = %+v", top)
	}
}

// TestUnresolvedSKU: an override SKU that no product has is reported, and
// the other rules still apply.
func TestUnresolvedSKU(t *testing.T) {
	c, _ := start(t, "hotspot:\n  qps: 1000\n  overrides:\n    - sku: NEW-DROP\n      qps: 1\n", nil)
	if got := c.Status().UnresolvedSKUs; len(got) != 1 || got[0] != "NEW-DROP" {
		t.Errorf("unresolved = %v", got)
	}
	if admit(c, "stockOut", 3) != nil {
		t.Error("refused under a 1000/s rule")
	}
}

// TestThrottle: queued requests are spaced at the limit instead of refused.
func TestThrottle(t *testing.T) {
	c, _ := start(t, "operations:\n  - resource: stockIn\n    qps: 20\n    behavior: throttle\n    maxQueueMs: 5000\n", nil)
	begin := time.Now()
	var wg sync.WaitGroup
	var refused atomic.Int64
	for range 10 {
		wg.Go(func() {
			if admit(c, "stockIn") != nil {
				refused.Add(1)
			}
		})
	}
	wg.Wait()
	took := time.Since(begin)
	t.Logf("10 requests at 20/s throttled: %v", took)
	if refused.Load() != 0 {
		t.Errorf("%d refused although the queue allows 5s", refused.Load())
	}
	if took < 300*time.Millisecond { // 9 gaps of 50ms
		t.Errorf("10 requests at 20/s took %v: not spaced", took)
	}
}

// concurrencyOne reports whether stockOut is limited to one request at a
// time: it holds one and tries a second.
func concurrencyOne(t *testing.T, c *flow.Controller) bool {
	t.Helper()
	done, err := c.Admit(context.Background(), "stockOut", nil)
	if err != nil {
		t.Fatalf("first request refused: %v", err)
	}
	defer done(nil)
	e := admit(c, "stockOut")
	return e != nil && e.Code == inventory.CodeRateLimited && strings.Contains(e.Message, "in progress")
}

// TestReload: editing the file changes the rules without a restart; an
// invalid edit is refused, reported, and the rules in force stay.
func TestReload(t *testing.T) {
	c, file := start(t, "operations:\n  - resource: products\n    qps: 1000\n", nil)
	reg := prometheus.NewRegistry()
	reg.MustRegister(c)
	if concurrencyOne(t, c) {
		t.Fatal("stockOut limited before the edit")
	}
	loaded := c.Status().LoadedAt
	writeFile(t, file, "operations:\n  - resource: stockOut\n    concurrency: 1\n")
	testenv.Eventually(t, "the reload", func() bool { return c.Status().LoadedAt.After(loaded) })
	if !concurrencyOne(t, c) {
		t.Fatal("stockOut not limited after the edit")
	}
	writeFile(t, file, "operations:\n  - resource: stockOut\n    concurrency: 1\n  - resource: stokOut\n    qps: 1\n")
	testenv.Eventually(t, "the refusal", func() bool { return c.Status().LastError != "" })
	if s := c.Status(); !strings.Contains(s.LastError, `unknown operation "stokOut"`) || len(s.Rules.Operations) != 1 {
		t.Errorf("after an invalid edit: %+v", s)
	}
	if !concurrencyOne(t, c) {
		t.Fatal("the rules in force changed after an invalid edit")
	}
	if n := metricValue(t, reg, "inventory_flow_rules_reloads_total", "result", "refused"); n != 1 {
		t.Errorf("refused reloads = %v", n)
	}
	if n := metricValue(t, reg, "inventory_flow_blocked_total", "rule", "concurrency"); n != 2 {
		t.Errorf("blocked by concurrency = %v, want 2", n)
	}
	loaded = c.Status().LoadedAt
	if err := os.Remove(file); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, "the missing file reported", func() bool { return strings.Contains(c.Status().LastError, "cannot read") })
	writeFile(t, file, "breakers: []\n")
	testenv.Eventually(t, "the fixed file", func() bool { return c.Status().LoadedAt.After(loaded) })
	if s := c.Status(); s.LastError != "" || concurrencyOne(t, c) {
		t.Errorf("after the fix: %+v", s)
	}
}

// TestControllersInOneProcess: several servers in one process (as tests
// run them) keep their own rules and counts.
func TestControllersInOneProcess(t *testing.T) {
	a, _ := start(t, "operations:\n  - resource: stockOut\n    concurrency: 1\n", nil)
	b, _ := start(t, "operations:\n  - resource: products\n    qps: 1000\n", nil)
	done, err := a.Admit(context.Background(), "stockOut", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer done(nil)
	if admit(b, "stockOut") != nil {
		t.Error("b refused stockOut under a's rule")
	}
	if admit(a, "stockOut") == nil {
		t.Error("a admitted a second stockOut")
	}
}

// metricValue sums the counters of a family whose label has value.
func metricValue(t *testing.T, reg *prometheus.Registry, name, label, value string) float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var total float64
	found := false
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == label && l.GetValue() == value {
					total += m.GetCounter().GetValue()
					found = true
				}
			}
		}
	}
	if !found {
		t.Fatalf("no %s{%s=%q}", name, label, value)
	}
	return total
}

// TestExampleFile: docs/OPERATIONS.md's example rules file is valid.
func TestExampleFile(t *testing.T) {
	data, err := os.ReadFile("../../deploy/flow-rules.yaml")
	if err != nil {
		t.Fatal(err)
	}
	r, err := flow.Parse(data, ops)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Operations) != 3 || r.Hotspot == nil || len(r.Hotspot.Overrides) != 2 || len(r.Breakers) != 2 {
		t.Errorf("example rules = %+v", r)
	}
	c, _ := start(t, string(data), map[string]int64{"FLASH-2026": 9})
	if s := c.Status(); len(s.UnresolvedSKUs) != 0 {
		t.Errorf("unresolved = %v", s.UnresolvedSKUs)
	}
}

// BenchmarkAdmit is the cost flow control adds to a stock mutation: the
// hot-spot entry, the operation's entry and the hot-product count.
func BenchmarkAdmit(b *testing.B) {
	c, err := flow.New(context.Background(), flow.Config{Operations: ops, LogDir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	b.RunParallel(func(pb *testing.PB) {
		ids := []int64{1}
		for pb.Next() {
			done, err := c.Admit(context.Background(), "stockOut", ids)
			if err != nil {
				b.Fatal(err)
			}
			done(nil)
		}
	})
}
