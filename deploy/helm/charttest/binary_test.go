package charttest

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"encoding/json"
	"io"
	"maps"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"

	"github.com/shopstack/inventory/internal/testenv"
)

// buildServer builds cmd/inventoryd (as the fault suite does, to share
// the build cache; the Dockerfile's static build differs only in linking).
func buildServer(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "inventoryd")
	build := exec.Command("go", "build", "-o", bin, "github.com/shopstack/inventory/cmd/inventoryd")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build inventoryd: %v\n%s", err, out)
	}
	return bin
}

// knownSettings are the environment variables the binary reads, from the
// table --help prints.
func knownSettings(t *testing.T, bin string) map[string]bool {
	t.Helper()
	out, err := exec.Command(bin, "--help").CombinedOutput()
	if err != nil {
		t.Fatalf("inventoryd --help: %v\n%s", err, out)
	}
	known := map[string]bool{}
	for _, line := range strings.Split(string(out), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && strings.HasPrefix(f[0], "-") && strings.HasPrefix(f[1], "INVENTORY_") {
			known[f[1]] = true
		}
	}
	if !known["INVENTORY_ADDR"] || !known["INVENTORY_SHUTDOWN_TIMEOUT"] {
		t.Fatalf("no settings table in --help:\n%s", out)
	}
	return known
}

// TestBinary runs the binary with the environment the chart gives the
// pod (the database swapped for SQLite and the lock for the in-process
// one; the ports for free loopback ones), then holds the chart to it:
// every setting of every value set is one the binary knows, the probes' paths answer, the
// alerts query metrics it reports, and SIGTERM makes it unready at once
// and stops it within the grace period. It does so without a broker, and
// with Kafka over SASL and TLS (kfake, as the pod's settings ask for it):
// the broker answers the pod with the Secret's user and the mounted CA,
// and the pod publishes the events the broker alerts watch.
func TestBinary(t *testing.T) {
	bin := buildServer(t)
	known := knownSettings(t, bin)
	// Every value set's settings, each a setting of the binary's.
	for _, name := range slices.Sorted(maps.Keys(valueSets)) {
		for _, d := range render(t, valueSets[name]...).deployments {
			for _, e := range d.Spec.Template.Spec.Containers[0].Env {
				if strings.HasPrefix(e.Name, "INVENTORY_") && !known[e.Name] {
					t.Errorf("%s: the chart sets %s, which inventoryd does not know (inventoryd --help)", name, e.Name)
				}
			}
		}
	}

	for _, set := range []string{"chart-secret", "kafka-sasl-tls-chart-secret"} {
		t.Run(set, func(t *testing.T) { runPod(t, bin, valueSets[set]...) })
	}
}

// runPod runs the binary as the chart's stable pod of the value files and
// checks it as TestBinary says.
func runPod(t *testing.T, bin string, files ...string) {
	r := render(t, files...)
	d := r.stable(t)
	c := d.Spec.Template.Spec.Containers[0]

	envs := podEnv(t, r, d)
	dir := t.TempDir()
	addr, grpcAddr := freeAddr(t), freeAddr(t)
	envs["INVENTORY_DB_DRIVER"], envs["INVENTORY_DB_DSN"] = "sqlite", filepath.Join(dir, "inventory.db")
	envs["INVENTORY_LOCK_BACKEND"] = "local"
	envs["INVENTORY_ADDR"], envs["INVENTORY_GRPC_ADDR"] = addr, grpcAddr
	if p := envs["INVENTORY_FLOW_RULES"]; p != "" {
		// The ConfigMap's file, where the pod mounts it.
		cm := r.configMaps["shop-inventory-flow-rules"]
		if cm == nil || filepath.Dir(p) != mountPath(t, d, "flow-rules") {
			t.Fatalf("INVENTORY_FLOW_RULES=%s, but the rules ConfigMap is not mounted there", p)
		}
		envs["INVENTORY_FLOW_RULES"] = filepath.Join(dir, filepath.Base(p))
		if err := os.WriteFile(envs["INVENTORY_FLOW_RULES"], []byte(cm.Data[filepath.Base(p)]), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if envs["INVENTORY_BROKER"] == "kafka" {
		envs["INVENTORY_KAFKA_BROKERS"], envs["INVENTORY_KAFKA_CA_FILE"] = startKafka(t, envs, dir)
	}
	srv := startServer(t, bin, envs)
	base := "http://" + addr

	// The probes, as the kubelet sends them, within the startup probe's budget.
	sp := c.StartupProbe
	budget := time.Duration(sp.PeriodSeconds*sp.FailureThreshold) * time.Second
	if !testenv.Poll(budget, func() bool { return status(base+sp.HTTPGet.Path) == http.StatusOK }) {
		t.Fatalf("the startup probe's %s did not answer 200 within %v\n%s", sp.HTTPGet.Path, budget, srv.log())
	}
	for _, p := range []*corev1.Probe{c.LivenessProbe, c.ReadinessProbe} {
		if got := status(base + p.HTTPGet.Path); got != http.StatusOK {
			t.Errorf("GET %s: %d, want 200", p.HTTPGet.Path, got)
		}
	}
	if !strings.Contains(srv.log(), `"flowRules":"`+envs["INVENTORY_FLOW_RULES"]) {
		t.Errorf("the server did not load the rules file the chart mounts\n%s", srv.log())
	}

	if envs["INVENTORY_BROKER"] != "none" {
		// The broker answers, and this replica leads the event publisher:
		// neither InventoryNoEventPublisher's series nor the broker check
		// is missing.
		leading := `inventory_duty_leading{duty="events"}`
		if !testenv.Poll(testenv.Wait, func() bool { return readyCheck(base, "broker") == "ok" && metric(base, leading) == "1" }) {
			t.Fatalf("/readyz's broker check %q, %s %q\n%s", readyCheck(base, "broker"), leading, metric(base, leading), srv.log())
		}
	}
	checkAlertMetrics(t, r, base, tokenOf(t, envs["INVENTORY_AUTH_TOKENS"]))

	// A server-sent-events subscription, open when SIGTERM arrives: it
	// must end, not hold the shutdown.
	stream := subscribe(t, base, tokenOf(t, envs["INVENTORY_AUTH_TOKENS"]))
	grace := time.Duration(*d.Spec.Template.Spec.TerminationGracePeriodSeconds-c.Lifecycle.PreStop.Sleep.Seconds) * time.Second
	if err := srv.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if !testenv.Poll(time.Second, func() bool { return status(base+c.ReadinessProbe.HTTPGet.Path) != http.StatusOK }) {
		t.Errorf("%s still answers 200 a second after SIGTERM", c.ReadinessProbe.HTTPGet.Path)
	}
	select {
	case <-srv.exited:
	case <-time.After(grace):
		t.Fatalf("still running %v after SIGTERM (the grace period after the pre-stop sleep)\n%s", grace, srv.log())
	}
	if code := srv.cmd.ProcessState.ExitCode(); code != 0 {
		t.Errorf("exit code %d after SIGTERM\n%s", code, srv.log())
	}
	select {
	case <-stream:
	case <-time.After(time.Second):
		t.Error("the subscription did not end with the server")
	}
	t.Logf("stopped %v after SIGTERM (grace after the drain: %v)", time.Since(start).Round(time.Millisecond), grace)
}

// startKafka starts a three-broker Kafka cluster (kfake, franz-go's, in
// the test's process) as the pod's settings ask for it: SASL with the
// mechanism, user and password the pod has, from the chart-made Secret;
// TLS with a certificate signed by a CA of the test's, which it writes
// under dir with the name the pod's CA file has (the pod would find it in
// the CA Secret's mount). It returns the brokers' addresses and the CA
// file.
func startKafka(t *testing.T, envs map[string]string, dir string) (brokers, caFile string) {
	t.Helper()
	opts := []kfake.Opt{kfake.NumBrokers(3)}
	if m := envs["INVENTORY_KAFKA_SASL_MECHANISM"]; m != "" {
		opts = append(opts, kfake.EnableSASL(), kfake.Superuser(m, envs["INVENTORY_KAFKA_USERNAME"], envs["INVENTORY_KAFKA_PASSWORD"]))
	}
	if envs["INVENTORY_KAFKA_TLS"] == "true" {
		if envs["INVENTORY_KAFKA_CA_FILE"] == "" {
			t.Fatal("Kafka over TLS without a CA file: the test's CA is not the system's")
		}
		certs := testenv.NewCerts(t)
		pair, err := tls.LoadX509KeyPair(certs.CertFile, certs.KeyFile)
		if err != nil {
			t.Fatal(err)
		}
		opts = append(opts, kfake.TLS(&tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}))
		pem, err := os.ReadFile(certs.CAFile)
		if err != nil {
			t.Fatal(err)
		}
		caFile = filepath.Join(dir, "kafka-ca", filepath.Base(envs["INVENTORY_KAFKA_CA_FILE"]))
		if err := os.MkdirAll(filepath.Dir(caFile), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(caFile, pem, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	kc, err := kfake.NewCluster(opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(kc.Close)
	return strings.Join(kc.ListenAddrs(), ","), caFile
}

// readyCheck is what /readyz says of the named check ("" if nothing).
func readyCheck(base, name string) string {
	resp, err := http.Get(base + "/readyz")
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	var body struct{ Checks map[string]string }
	if json.NewDecoder(resp.Body).Decode(&body) != nil {
		return ""
	}
	return body.Checks[name]
}

// metric is the value /metrics reports for the series, as written there
// ("" if none).
func metric(base, series string) string {
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), series+" "); ok {
			return v
		}
	}
	return ""
}

// podEnv resolves the container's environment as the kubelet would, with
// the chart-made Secret's values.
func podEnv(t *testing.T, r *rendered, d *appsv1.Deployment) map[string]string {
	t.Helper()
	return resolveEnv(t, r, d, false)
}

// resolveEnv resolves the container's environment as the kubelet would:
// values from the chart-made Secret; with existing, a Secret the chart did
// not make stands for its values with "<key>-from-<name>", else it fails
// the test.
func resolveEnv(t *testing.T, r *rendered, d *appsv1.Deployment, existing bool) map[string]string {
	t.Helper()
	c := d.Spec.Template.Spec.Containers[0]
	out := map[string]string{}
	ref := regexp.MustCompile(`\$\(([A-Za-z_][A-Za-z0-9_]*)\)`)
	for _, e := range c.Env {
		v := ref.ReplaceAllStringFunc(e.Value, func(m string) string {
			if x, ok := out[m[2:len(m)-1]]; ok {
				return x
			}
			return m
		})
		switch src := e.ValueFrom; {
		case src == nil:
		case src.SecretKeyRef != nil:
			switch s := r.secrets[src.SecretKeyRef.Name]; {
			case s != nil:
				v = s.StringData[src.SecretKeyRef.Key]
			case existing:
				v = src.SecretKeyRef.Key + "-from-" + src.SecretKeyRef.Name
			default:
				t.Fatalf("%s from Secret %s, which the chart did not make", e.Name, src.SecretKeyRef.Name)
			}
		case src.FieldRef != nil && src.FieldRef.FieldPath == "metadata.name":
			v = d.Name + "-7d9f8b6c5-x2x4z"
		case src.ResourceFieldRef != nil:
			q := c.Resources.Limits[corev1.ResourceName(strings.TrimPrefix(src.ResourceFieldRef.Resource, "limits."))]
			v = strconv.FormatInt(q.Value(), 10)
		default:
			t.Fatalf("%s: a source the test cannot resolve: %+v", e.Name, src)
		}
		out[e.Name] = v
	}
	return out
}

func mountPath(t *testing.T, d *appsv1.Deployment, volume string) string {
	t.Helper()
	for _, m := range d.Spec.Template.Spec.Containers[0].VolumeMounts {
		if m.Name == volume {
			return m.MountPath
		}
	}
	t.Fatalf("no mount of volume %s", volume)
	return ""
}

// tokenOf returns the first token of an INVENTORY_AUTH_TOKENS list.
func tokenOf(t *testing.T, tokens string) string {
	t.Helper()
	first, _, _ := strings.Cut(tokens, ",")
	parts := strings.Split(first, ":")
	if len(parts) != 3 {
		t.Fatalf("tokens %q are not name:role:token", tokens)
	}
	return parts[2]
}

// metricRef finds the metric names in a PromQL expression.
var metricRef = regexp.MustCompile(`\b(inventory_[a-z_]+?)(?:_bucket|_sum|_count)?\b`)

// checkAlertMetrics checks that each metric the PrometheusRule queries is
// one the running binary reports, after a request has been counted.
func checkAlertMetrics(t *testing.T, r *rendered, base, token string) {
	t.Helper()
	if len(r.rules) != 1 {
		t.Fatalf("%d PrometheusRules", len(r.rules))
	}
	req, _ := http.NewRequest(http.MethodPost, base+"/query", strings.NewReader(`{"query":"{ locations { code } }"}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("a query with the chart's token: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	reported := map[string]bool{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		if f := strings.Fields(sc.Text()); len(f) >= 3 && f[0] == "#" && f[1] == "TYPE" {
			reported[f[2]] = true
		}
	}
	for _, g := range r.rules[0].Spec.Groups {
		for _, rule := range g.Rules {
			for _, m := range metricRef.FindAllStringSubmatch(rule.Expr.String(), -1) {
				if !reported[m[1]] {
					t.Errorf("alert %s queries %s, which /metrics does not report", rule.Alert, m[1])
				}
			}
		}
	}
}

// subscribe opens a stockChanged subscription over server-sent events; the
// channel is closed when the stream ends.
func subscribe(t *testing.T, base, token string) <-chan struct{} {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, base+"/query", strings.NewReader(`{"query":"subscription { stockChanged { sequence } }"}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("subscribe: %v %v", resp, err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer resp.Body.Close()
		_, _ = io.Copy(io.Discard, resp.Body)
	}()
	return done
}

func status(url string) int {
	c := http.Client{Timeout: 3 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// server is a running inventoryd.
type server struct {
	cmd    *exec.Cmd
	out    *syncBuffer
	exited chan struct{}
}

func (s *server) log() string { return s.out.String() }

func startServer(t *testing.T, bin string, envs map[string]string) *server {
	t.Helper()
	cmd := exec.Command(bin)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir()}
	for _, k := range slices.Sorted(maps.Keys(envs)) {
		cmd.Env = append(cmd.Env, k+"="+envs[k])
	}
	s := &server{cmd: cmd, out: &syncBuffer{}, exited: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = s.out, s.out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = cmd.Wait(); close(s.exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-s.exited
	})
	return s
}

// syncBuffer is a bytes.Buffer the process writes while the test reads.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
