package charttest

import (
	"encoding/json"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/shopstack/inventory/internal/config"
)

// The value sets CI renders; each is applied over testdata/defaults.yaml.
var valueSets = map[string][]string{
	"defaults":      nil,
	"etcd":          {"etcd.yaml"},
	"nats":          {"nats.yaml"},
	"rabbitmq":      {"rabbitmq.yaml"},
	"kafka":         {"kafka.yaml"},
	"redis-cluster": {"redis-cluster.yaml"},
	"canary":        {"canary.yaml"},
	"monitoring":    {"monitoring.yaml"},
	"autoscaling":   {"autoscaling.yaml"},
	"chart-secret":  {"chart-secret.yaml"},
	// Credentials and TLS for the lock backends, from the existing Secret
	// and from the chart-made one.
	"redis-auth-tls":             {"redis-auth-tls.yaml"},
	"etcd-auth-tls":              {"etcd-auth-tls.yaml"},
	"etcd-auth-tls-chart-secret": {"etcd-auth-tls.yaml", "chart-secret.yaml"},
	// Kafka's SASL user and password and TLS with a CA of its own, from
	// the existing Secret and from the chart-made one, and beside etcd's CA.
	"kafka-sasl-tls":              {"kafka.yaml", "kafka-sasl-tls.yaml"},
	"kafka-sasl-tls-chart-secret": {"kafka.yaml", "kafka-sasl-tls.yaml", "chart-secret.yaml"},
	"kafka-sasl-tls-etcd-tls":     {"etcd-auth-tls.yaml", "kafka.yaml", "kafka-sasl-tls.yaml"},
	"everything":                  {"nats.yaml", "canary.yaml", "monitoring.yaml", "autoscaling.yaml", "chart-secret.yaml", "redis-auth-tls.yaml"},
}

func TestLint(t *testing.T) {
	for _, name := range slices.Sorted(maps.Keys(valueSets)) {
		t.Run(name, func(t *testing.T) {
			args := append([]string{"lint", "--strict", chartDir, "--namespace", k8sNS}, valueArgs(valueSets[name]...)...)
			if out, err := runHelm(t, args...); err != nil {
				t.Fatal(err)
			} else if !strings.Contains(out, "0 chart(s) failed") {
				t.Fatalf("lint did not pass:\n%s", out)
			}
		})
	}
}

// A misspelt value is refused by values.schema.json, at any depth.
func TestLintRefusesTypos(t *testing.T) {
	for file, key := range map[string]string{"typo-top.yaml": "replicaCont", "typo-nested.yaml": "drainSecond", "typo-env.yaml": "INVENTRY_LOCK_TTL"} {
		t.Run(file, func(t *testing.T) {
			_, err := runHelm(t, append([]string{"lint", "--strict", chartDir}, valueArgs(file)...)...)
			if err == nil || !strings.Contains(err.Error(), key) {
				t.Fatalf("lint with %s: %v; want a failure naming %s", file, err, key)
			}
		})
	}
}

// server.env may not set what the chart sets from other values: every
// INVENTORY_* variable the chart renders is refused there by the schema.
func TestEnvOwnedByTheChart(t *testing.T) {
	if _, err := runHelm(t, append([]string{"lint", "--strict", chartDir}, valueArgs("env-owned.yaml")...)...); err == nil {
		t.Error("lint accepted INVENTORY_SHUTDOWN_TIMEOUT in server.env")
	}
	b, err := os.ReadFile(filepath.Join(chartDir, "values.schema.json"))
	if err != nil {
		t.Fatal(err)
	}
	var schema struct {
		Properties struct {
			Server struct {
				Properties struct {
					Env struct {
						PropertyNames struct {
							Not struct{ Enum []string }
						}
					}
				}
			}
		}
	}
	if err := json.Unmarshal(b, &schema); err != nil {
		t.Fatal(err)
	}
	refused := schema.Properties.Server.Properties.Env.PropertyNames.Not.Enum
	for _, set := range slices.Sorted(maps.Keys(valueSets)) {
		for _, d := range render(t, valueSets[set]...).deployments {
			for _, e := range d.Spec.Template.Spec.Containers[0].Env {
				fromValues := e.Name == "INVENTORY_LOCK_TTL" || e.Name == "INVENTORY_READ_MODEL_PRODUCTS" // chart-secret.yaml's server.env
				if strings.HasPrefix(e.Name, "INVENTORY_") && !fromValues && !slices.Contains(refused, e.Name) {
					t.Errorf("the chart sets %s, which values.schema.json lets server.env set too", e.Name)
				}
			}
		}
	}
}

// Without the values that have no sane default, rendering fails and says
// which value to set.
func TestRequiredValues(t *testing.T) {
	const chartMade = "lock.redis.addrs={r:6379},secrets.values.databaseDSN=postgres://h/db,auth.allowAnonymous=true"
	for _, c := range []struct{ set, want string }{
		{"secrets.existingSecret=x", "lock.redis.addrs"},
		{"lock.redis.addrs={r:6379}", "database DSN"},
		{"lock.redis.addrs={r:6379},secrets.values.databaseDSN=postgres://h/db", "secrets.values.authTokens"},
		{"secrets.existingSecret=x,lock.backend=local", "lock.backend local"},
		// What the server would refuse at start, refused at install.
		{"secrets.existingSecret=x,lock.redis.addrs={r:6379},lock.redis.caSecret.name=ca", "lock.redis.tls=true"},
		{"secrets.existingSecret=x,lock.backend=etcd,lock.etcd.endpoints={e:2379},lock.etcd.caSecret.name=ca", "needs https://"},
		{"secrets.existingSecret=x,lock.backend=etcd,lock.etcd.endpoints={https://e0:2379,e1:2379}", "mixed"},
		{chartMade + ",secrets.values.redisUsername=u", "needs secrets.values.redisPassword"},
		{chartMade + ",lock.redis.auth=password", "lock.redis.auth is password"},
		{chartMade + ",lock.redis.auth=usernamePassword,secrets.values.redisPassword=p", "lock.redis.auth is usernamePassword"},
		{chartMade + ",secrets.values.etcdPassword=p", "go together"},
		{chartMade + ",lock.etcd.auth=usernamePassword", "lock.etcd.auth"},
		// The schema: the credentials' settings take no other value or key.
		{"secrets.existingSecret=x,lock.redis.addrs={r:6379},lock.redis.auth=token", "at '/lock/redis/auth'"},
		{"secrets.existingSecret=x,lock.redis.addrs={r:6379},lock.etcd.auth=password", "at '/lock/etcd/auth'"},
		{"secrets.existingSecret=x,lock.redis.addrs={r:6379},lock.redis.caSecret.secretName=ca", "'secretName' not allowed"},
		{"secrets.existingSecret=x,lock.redis.addrs={r:6379},secrets.keys.redisPasword=p", "'redisPasword' not allowed"},
		{"secrets.existingSecret=x,lock.redis.addrs={r:6379},lock.redis.tls=yes", "at '/lock/redis/tls'"},
		// Kafka: the brokers, and the SASL credentials with their
		// mechanism, both or neither; a CA only with TLS.
		{"secrets.existingSecret=x,lock.redis.addrs={r:6379},broker.type=kafka", "broker.type kafka needs broker.kafka.brokers"},
		{chartMade + ",broker.type=kafka,broker.kafka.brokers={k:9092},broker.kafka.saslMechanism=PLAIN",
			"broker.kafka.saslMechanism PLAIN needs secrets.values.kafkaUsername and secrets.values.kafkaPassword"},
		{chartMade + ",broker.type=kafka,broker.kafka.brokers={k:9092},broker.kafka.saslMechanism=SCRAM-SHA-256,secrets.values.kafkaUsername=u",
			"broker.kafka.saslMechanism SCRAM-SHA-256 needs secrets.values.kafkaUsername and secrets.values.kafkaPassword"},
		{chartMade + ",broker.type=kafka,broker.kafka.brokers={k:9092},secrets.values.kafkaPassword=p", "need broker.kafka.saslMechanism"},
		{"secrets.existingSecret=x,lock.redis.addrs={r:6379},broker.type=kafka,broker.kafka.brokers={k:9092},broker.kafka.caSecret.name=ca", "broker.kafka.tls=true"},
		// The schema: the broker, the mechanism, the topics' settings.
		{"secrets.existingSecret=x,lock.redis.addrs={r:6379},broker.type=pulsar", "at '/broker/type': value must be one of"},
		{"secrets.existingSecret=x,lock.redis.addrs={r:6379},broker.kafka.saslMechanism=GSSAPI", "at '/broker/kafka/saslMechanism'"},
		{"secrets.existingSecret=x,lock.redis.addrs={r:6379},broker.kafka.brokers={kafka}", "at '/broker/kafka/brokers/0'"},
		{"secrets.existingSecret=x,lock.redis.addrs={r:6379},broker.kafka.brokers={k:9092,k:9092}", "items at 0 and 1 are equal"},
		{"secrets.existingSecret=x,lock.redis.addrs={r:6379},broker.kafka.partitions=0", "at '/broker/kafka/partitions'"},
		{"secrets.existingSecret=x,lock.redis.addrs={r:6379},broker.kafka.replicationFactor=0", "at '/broker/kafka/replicationFactor'"},
		{"secrets.existingSecret=x,lock.redis.addrs={r:6379},broker.kafka.replicationFactor=-2", "at '/broker/kafka/replicationFactor'"},
		{"secrets.existingSecret=x,lock.redis.addrs={r:6379},broker.kafka.partitions=null", "missing property 'partitions'"},
		{"secrets.existingSecret=x,lock.redis.addrs={r:6379},broker.kafka.tls=yes", "at '/broker/kafka/tls'"},
		{"secrets.existingSecret=x,lock.redis.addrs={r:6379},broker.kafka.caSecret.secretName=ca", "'secretName' not allowed"},
		{"secrets.existingSecret=x,lock.redis.addrs={r:6379},broker.kafka.sasl=PLAIN", "'sasl' not allowed"},
		{"secrets.existingSecret=x,lock.redis.addrs={r:6379},secrets.keys.kafkaUser=u", "'kafkaUser' not allowed"},
	} {
		_, err := runHelm(t, "template", release, chartDir, "--set", c.set)
		if err == nil {
			t.Errorf("--set %s: rendered; want an error naming %q", c.set, c.want)
			continue
		}
		// What helm says, after the command line (which names the values).
		if _, said, _ := strings.Cut(err.Error(), "\n"); !strings.Contains(said, c.want) {
			t.Errorf("--set %s: %v; want an error naming %q", c.set, err, c.want)
		}
	}
}

// Every value set renders documents that decode strictly into their API
// types, and the pod is built the same way in each.
func TestRender(t *testing.T) {
	for _, name := range slices.Sorted(maps.Keys(valueSets)) {
		t.Run(name, func(t *testing.T) {
			r := render(t, valueSets[name]...)
			if len(r.deployments) == 0 || len(r.services) == 0 || len(r.pdbs) != 1 || len(r.netpols) != 1 || len(r.accounts) != 1 {
				t.Fatalf("rendered %v", r.kinds)
			}
			for _, d := range r.deployments {
				checkPod(t, d)
				checkSelectors(t, r, d)
			}
		})
	}
}

// checkPod checks what every pod of the chart must be.
func checkPod(t *testing.T, d *appsv1.Deployment) {
	t.Helper()
	spec := d.Spec.Template.Spec
	if len(spec.Containers) != 1 {
		t.Fatalf("%s: %d containers", d.Name, len(spec.Containers))
	}
	c := spec.Containers[0]
	e := env(c)
	ports := map[string]int32{}
	for _, p := range c.Ports {
		ports[p.Name] = p.ContainerPort
	}
	// The server listens where the ports say.
	if got := portOf(t, e["INVENTORY_ADDR"]); got != ports["http"] {
		t.Errorf("%s: INVENTORY_ADDR %q, container port http %d", d.Name, e["INVENTORY_ADDR"], ports["http"])
	}
	if g, ok := e["INVENTORY_GRPC_ADDR"]; ok != (ports["grpc"] != 0) || (ok && portOf(t, g) != ports["grpc"]) {
		t.Errorf("%s: INVENTORY_GRPC_ADDR %q, container port grpc %d", d.Name, g, ports["grpc"])
	}
	// Probes: the paths the binary serves (TestBinary GETs them), on its port.
	for name, p := range map[string]*corev1.Probe{"startup": c.StartupProbe, "liveness": c.LivenessProbe, "readiness": c.ReadinessProbe} {
		want := map[string]string{"startup": "/healthz", "liveness": "/healthz", "readiness": "/readyz"}[name]
		if p == nil || p.HTTPGet == nil || p.HTTPGet.Path != want || p.HTTPGet.Port != intstr.FromString("http") {
			t.Errorf("%s: %s probe %+v, want GET %s on port http", d.Name, name, p, want)
		}
	}
	// Non-root as the image's user, nothing writable, nothing privileged.
	if sc := spec.SecurityContext; sc == nil || sc.RunAsUser == nil || *sc.RunAsUser != imageUser(t) || sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot ||
		sc.SeccompProfile == nil || sc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("%s: pod security context %+v", d.Name, sc)
	}
	if sc := c.SecurityContext; sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem || sc.AllowPrivilegeEscalation == nil ||
		*sc.AllowPrivilegeEscalation || sc.Capabilities == nil || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) || len(sc.Capabilities.Add) > 0 {
		t.Errorf("%s: container security context %+v", d.Name, sc)
	}
	// The grace period holds the drain and the whole shutdown.
	drain := int64(-1)
	if l := c.Lifecycle; l != nil && l.PreStop != nil && l.PreStop.Sleep != nil {
		drain = l.PreStop.Sleep.Seconds
	}
	// The server's own drain (INVENTORY_SHUTDOWN_DRAIN) comes before the timeout.
	shutdown := duration(t, e["INVENTORY_SHUTDOWN_DRAIN"]) + duration(t, e["INVENTORY_SHUTDOWN_TIMEOUT"])
	if drain < 1 || spec.TerminationGracePeriodSeconds == nil ||
		time.Duration(*spec.TerminationGracePeriodSeconds-drain)*time.Second < shutdown+time.Second {
		t.Errorf("%s: grace period %v, pre-stop sleep %ds, then the server's drain and shutdown timeout %v", d.Name, spec.TerminationGracePeriodSeconds, drain, shutdown)
	}
	seen := map[string]bool{}
	for _, v := range c.Env {
		if seen[v.Name] {
			t.Errorf("%s: %s is set twice", d.Name, v.Name)
		}
		seen[v.Name] = true
		// A credential is read from a Secret, never written into the pod spec.
		if credentialVar.MatchString(v.Name) && (v.Value != "" || v.ValueFrom == nil || v.ValueFrom.SecretKeyRef == nil) {
			t.Errorf("%s: %s is not read from a Secret: %+v", d.Name, v.Name, v)
		}
	}
	// What is mounted from Secrets (the CAs) is mounted read-only.
	for _, m := range c.VolumeMounts {
		if vol := volume(spec, m.Name); vol != nil && vol.Secret != nil && !m.ReadOnly {
			t.Errorf("%s: Secret volume %s mounted writable at %s", d.Name, m.Name, m.MountPath)
		}
	}
	if len(spec.TopologySpreadConstraints) != 2 {
		t.Errorf("%s: %d topology spread constraints, want nodes and zones", d.Name, len(spec.TopologySpreadConstraints))
	}
	if e["INVENTORY_DB_DRIVER"] != "postgres" || c.Resources.Requests.Cpu().IsZero() {
		t.Errorf("%s: driver %q, requests %v", d.Name, e["INVENTORY_DB_DRIVER"], c.Resources.Requests)
	}
}

// credentialVar matches the settings that hold credentials: a DSN, the
// tokens, the brokers' URLs (which may hold a password), Redis's and etcd's
// users and passwords.
var credentialVar = regexp.MustCompile(`^INVENTORY_(DB_DSN|AUTH_TOKENS|NATS_URL|RABBITMQ_URL|[A-Z]+_USERNAME|[A-Z]+_PASSWORD)$`)

// volume is the pod's volume of that name, or nil.
func volume(spec corev1.PodSpec, name string) *corev1.Volume {
	for i := range spec.Volumes {
		if spec.Volumes[i].Name == name {
			return &spec.Volumes[i]
		}
	}
	return nil
}

// checkSelectors checks that the Service, the PDB and the NetworkPolicy
// cover the Deployment's pods, and that its Service ports reach its
// container ports.
func checkSelectors(t *testing.T, r *rendered, d *appsv1.Deployment) {
	t.Helper()
	pod := labels.Set(d.Spec.Template.Labels)
	svc := r.services["shop-inventory"]
	if svc == nil || !labels.SelectorFromSet(svc.Spec.Selector).Matches(pod) {
		t.Fatalf("the Service does not select %s's pods", d.Name)
	}
	names := map[string]bool{}
	for _, p := range d.Spec.Template.Spec.Containers[0].Ports {
		names[p.Name] = true
	}
	for _, p := range svc.Spec.Ports {
		if p.TargetPort.Type != intstr.String || !names[p.TargetPort.StrVal] || p.Name != p.TargetPort.StrVal || p.AppProtocol == nil {
			t.Errorf("Service port %+v: want a named target port of the container, and an appProtocol", p)
		}
	}
	for _, sel := range []struct {
		what string
		ls   *metav1.LabelSelector
	}{{"PDB", r.pdbs[0].Spec.Selector}, {"NetworkPolicy", &r.netpols[0].Spec.PodSelector}} {
		s := mustSelector(t, sel.ls)
		if !s.Matches(pod) {
			t.Errorf("the %s does not select %s's pods", sel.what, d.Name)
		}
	}
}

func mustSelector(t *testing.T, ls *metav1.LabelSelector) labels.Selector {
	t.Helper()
	s, err := metav1.LabelSelectorAsSelector(ls)
	if err != nil || s.Empty() {
		t.Fatalf("selector %+v: %v", ls, err)
	}
	return s
}

func portOf(t *testing.T, addr string) int32 {
	t.Helper()
	_, p, ok := strings.Cut(addr, ":")
	n, err := strconv.Atoi(p)
	if !ok || err != nil {
		t.Fatalf("address %q has no port", addr)
	}
	return int32(n)
}

// duration parses a setting's duration; a missing one fails the test.
func duration(t *testing.T, v string) time.Duration {
	t.Helper()
	d, err := time.ParseDuration(v)
	if err != nil {
		t.Fatalf("%q is not a duration", v)
	}
	return d
}

// imageUser is the user the Dockerfile's final stage runs as. distroless
// images name theirs: nonroot is 65532.
func imageUser(t *testing.T) int64 {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	var base, user string
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) >= 2 && strings.EqualFold(f[0], "FROM"):
			base, user = f[1], "root"
		case len(f) == 2 && strings.EqualFold(f[0], "USER"):
			user, _, _ = strings.Cut(f[1], ":")
		}
	}
	if n, err := strconv.ParseInt(user, 10, 64); err == nil {
		return n
	}
	distroless := map[string]int64{"root": 0, "nonroot": 65532}
	if n, ok := distroless[user]; ok && strings.HasPrefix(base, "gcr.io/distroless/") {
		return n
	}
	t.Fatalf("the Dockerfile runs as %q on %s: which uid is that?", user, base)
	return 0
}

func TestBackends(t *testing.T) {
	for _, c := range []struct {
		set  string
		want map[string]string // "" means absent
	}{
		{"defaults", map[string]string{"INVENTORY_LOCK_BACKEND": "redsync", "INVENTORY_REDIS_MODE": "standalone", "INVENTORY_REDIS_ADDRS": "redis.data.svc:6379",
			"INVENTORY_ETCD_ENDPOINTS": "", "INVENTORY_BROKER": "none", "INVENTORY_BROKER_COMMANDS": "", "INVENTORY_KAFKA_BROKERS": "",
			"INVENTORY_NAMESPACE": release, "INVENTORY_GRPC_ADDR": ":9090"}},
		{"etcd", map[string]string{"INVENTORY_LOCK_BACKEND": "etcd", "INVENTORY_REDIS_ADDRS": "", "INVENTORY_REDIS_MODE": "",
			"INVENTORY_ETCD_ENDPOINTS": "etcd-0.etcd:2379,etcd-1.etcd:2379,http://etcd-2.etcd:2379"}},
		{"redis-cluster", map[string]string{"INVENTORY_REDIS_MODE": "cluster", "INVENTORY_REDIS_ADDRS": "redis-0.redis:6379,redis-1.redis:6379,redis-2.redis:6379"}},
		{"nats", map[string]string{"INVENTORY_BROKER": "nats", "INVENTORY_BROKER_COMMANDS": "true", "INVENTORY_RABBITMQ_URL": "", "INVENTORY_KAFKA_BROKERS": ""}},
		{"rabbitmq", map[string]string{"INVENTORY_BROKER": "rabbitmq", "INVENTORY_BROKER_COMMANDS": "false", "INVENTORY_NATS_URL": "", "INVENTORY_KAFKA_BROKERS": ""}},
		// Without SASL, nothing of Kafka's comes from the Secret.
		{"kafka", map[string]string{"INVENTORY_BROKER": "kafka", "INVENTORY_BROKER_COMMANDS": "true", "INVENTORY_NATS_URL": "", "INVENTORY_RABBITMQ_URL": "",
			"INVENTORY_KAFKA_BROKERS": "kafka-0.kafka:9092,kafka-1.kafka:9092,kafka-2.kafka:9092", "INVENTORY_KAFKA_SASL_MECHANISM": "",
			"INVENTORY_KAFKA_USERNAME": "", "INVENTORY_KAFKA_PASSWORD": "", "INVENTORY_KAFKA_TLS": "false", "INVENTORY_KAFKA_CA_FILE": "",
			"INVENTORY_KAFKA_PARTITIONS": "6", "INVENTORY_KAFKA_REPLICATION_FACTOR": "-1"}},
	} {
		t.Run(c.set, func(t *testing.T) {
			d := render(t, valueSets[c.set]...).stable(t)
			e := env(d.Spec.Template.Spec.Containers[0])
			for k, want := range c.want {
				if got, ok := e[k]; want == "" && ok || want != "" && got != want {
					t.Errorf("%s = %q (set: %v), want %q", k, got, ok, want)
				}
			}
			// Credentials come from the Secret, by reference.
			refs := secretRefs(d)
			wantRefs := []string{"INVENTORY_AUTH_TOKENS", "INVENTORY_DB_DSN"}
			switch c.set {
			case "nats":
				wantRefs = append(wantRefs, "INVENTORY_NATS_URL")
			case "rabbitmq":
				wantRefs = append(wantRefs, "INVENTORY_RABBITMQ_URL")
			}
			slices.Sort(wantRefs)
			if got := slices.Sorted(maps.Keys(refs)); !slices.Equal(got, wantRefs) {
				t.Errorf("from the Secret: %v, want %v", got, wantRefs)
			}
			for k, ref := range refs {
				if ref.Name != "inventory-credentials" {
					t.Errorf("%s from Secret %q, want the existing one", k, ref.Name)
				}
			}
		})
	}
}

// secretRefs are the variables the container reads from Secrets.
func secretRefs(d *appsv1.Deployment) map[string]*corev1.SecretKeySelector {
	out := map[string]*corev1.SecretKeySelector{}
	for _, e := range d.Spec.Template.Spec.Containers[0].Env {
		if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
			out[e.Name] = e.ValueFrom.SecretKeyRef
		}
	}
	return out
}

func TestCanary(t *testing.T) {
	r := render(t, "canary.yaml")
	stable, canary := r.stable(t), r.deployments["shop-inventory-canary"]
	if canary == nil {
		t.Fatalf("no canary Deployment: %v", keys(r.deployments))
	}
	image := func(d *appsv1.Deployment) string { return d.Spec.Template.Spec.Containers[0].Image }
	if image(stable) != "inventory:0.1.0" || image(canary) != "inventory:0.2.0-rc.1" || *canary.Spec.Replicas != 1 || *stable.Spec.Replicas != 2 {
		t.Errorf("stable %s ×%d, canary %s ×%d", image(stable), *stable.Spec.Replicas, image(canary), *canary.Spec.Replicas)
	}
	// Two Deployments whose selectors overlap would fight over pods.
	if mustSelector(t, stable.Spec.Selector).Matches(labels.Set(canary.Spec.Template.Labels)) ||
		mustSelector(t, canary.Spec.Selector).Matches(labels.Set(stable.Spec.Template.Labels)) {
		t.Error("the tracks' selectors overlap")
	}
	// The same data and elections: only the image differs.
	se, ce := env(stable.Spec.Template.Spec.Containers[0]), env(canary.Spec.Template.Spec.Containers[0])
	delete(se, "OTEL_RESOURCE_ATTRIBUTES")
	delete(ce, "OTEL_RESOURCE_ATTRIBUTES")
	if !maps.Equal(se, ce) {
		t.Errorf("the tracks' settings differ:\nstable %v\ncanary %v", se, ce)
	}
	// The per-track Services select one track each.
	for track, d := range map[string]*appsv1.Deployment{"stable": stable, "canary": canary} {
		svc := r.services["shop-inventory-"+track]
		if svc == nil {
			t.Fatalf("no %s Service: %v", track, keys(r.services))
		}
		sel := labels.SelectorFromSet(svc.Spec.Selector)
		if !sel.Matches(labels.Set(d.Spec.Template.Labels)) {
			t.Errorf("Service %s does not select its track", svc.Name)
		}
		for other, od := range map[string]*appsv1.Deployment{"stable": stable, "canary": canary} {
			if other != track && sel.Matches(labels.Set(od.Spec.Template.Labels)) {
				t.Errorf("Service %s selects the %s track too", svc.Name, other)
			}
		}
	}
}

func TestAutoscaling(t *testing.T) {
	r := render(t, "autoscaling.yaml")
	if len(r.hpas) != 1 {
		t.Fatalf("%d HPAs", len(r.hpas))
	}
	h, d := r.hpas[0], r.stable(t)
	if h.Spec.ScaleTargetRef.Kind != "Deployment" || h.Spec.ScaleTargetRef.Name != d.Name || d.Spec.Replicas != nil {
		t.Errorf("HPA targets %+v; Deployment replicas %v (the HPA owns them)", h.Spec.ScaleTargetRef, d.Spec.Replicas)
	}
	var types []string
	for _, m := range h.Spec.Metrics {
		types = append(types, string(m.Type))
	}
	if !slices.Equal(types, []string{"Resource", "Pods"}) || h.Spec.Metrics[1].Pods.Metric.Name != "inventory_requests_per_second" {
		t.Errorf("HPA metrics %v", types)
	}
	np := r.netpols[0]
	if len(np.Spec.PolicyTypes) != 2 || len(np.Spec.Egress) != 2 || len(np.Spec.Ingress[0].From) != 1 {
		t.Errorf("NetworkPolicy %+v", np.Spec)
	}
}

func TestMonitoring(t *testing.T) {
	r := render(t, "monitoring.yaml")
	if len(r.monitors) != 1 || len(r.rules) != 1 {
		t.Fatalf("rendered %v", r.kinds)
	}
	sm := r.monitors[0]
	if sm.Labels["release"] != "kube-prometheus-stack" || len(sm.Spec.Endpoints) != 1 || sm.Spec.Endpoints[0].Port != "http" ||
		sm.Spec.Endpoints[0].Path != "/metrics" {
		t.Errorf("ServiceMonitor %+v", sm)
	}
	// It scrapes the main Service only (per-track Services would scrape
	// every pod twice).
	sel := mustSelector(t, &sm.Spec.Selector)
	for name, svc := range render(t, "monitoring.yaml", "canary.yaml").services {
		if sel.Matches(labels.Set(svc.Labels)) != (name == "shop-inventory") {
			t.Errorf("ServiceMonitor selects Service %s: %v", name, sel.Matches(labels.Set(svc.Labels)))
		}
	}
	var alerts []string
	for _, g := range r.rules[0].Spec.Groups {
		for _, rule := range g.Rules {
			alerts = append(alerts, rule.Alert)
			if !strings.Contains(rule.Expr.String(), `namespace="retail", job="shop-inventory"`) {
				t.Errorf("%s does not select this release's series: %s", rule.Alert, rule.Expr.String())
			}
		}
	}
	for _, want := range []string{"InventoryErrorRatioHigh", "InventoryLatencyP99High", "InventoryBreakerOpen", "InventoryReadModelLagging", "InventoryNoReaperLeader"} {
		if !slices.Contains(alerts, want) {
			t.Errorf("no %s alert; have %v", want, alerts)
		}
	}
	// The event publisher's alerts come with a broker, any of them, and
	// name it; without one they are absent.
	for _, b := range []string{"none", "nats", "rabbitmq", "kafka"} {
		files := []string{"monitoring.yaml"}
		if b != "none" {
			files = append(files, b+".yaml")
		}
		rules := render(t, files...).rules[0].Spec.Groups[0].Rules
		for _, want := range []string{"InventoryEventsLagging", "InventoryNoEventPublisher"} {
			i := slices.IndexFunc(rules, func(r monitoringv1.Rule) bool { return r.Alert == want })
			switch {
			case b == "none" && i >= 0:
				t.Errorf("without a broker, a %s alert", want)
			case b != "none" && i < 0:
				t.Errorf("with %s, no %s alert", b, want)
			case b != "none" && !strings.Contains(rules[i].Annotations["summary"], b):
				t.Errorf("with %s, %s's summary does not name it: %q", b, want, rules[i].Annotations["summary"])
			}
		}
	}

	// The dashboard is the compose stack's, on the data source asked for.
	cm := r.configMaps["shop-inventory-dashboard"]
	if cm == nil || cm.Labels["grafana_dashboard"] != "1" {
		t.Fatalf("dashboard ConfigMap %+v", cm)
	}
	file, err := os.ReadFile(filepath.Join(repoRoot, "deploy/helm/inventory/files/inventory.json"))
	if err != nil {
		t.Fatal(err)
	}
	want := strings.TrimSpace(strings.ReplaceAll(string(file), `"uid": "prometheus"`, `"uid": "prom-main"`))
	if got := strings.TrimSpace(cm.Data["inventory.json"]); got != want || !json.Valid([]byte(got)) {
		t.Errorf("the dashboard in the ConfigMap is not deploy/helm/inventory/files/inventory.json with uid prom-main (%d bytes, want %d)", len(got), len(want))
	}
}

func TestChartSecret(t *testing.T) {
	r := render(t, "chart-secret.yaml")
	s := r.secrets["shop-inventory"]
	if s == nil || !strings.HasPrefix(s.StringData["database-dsn"], "postgres://") || s.StringData["auth-tokens"] == "" {
		t.Fatalf("chart-made Secret %+v", s)
	}
	for k, ref := range secretRefs(r.stable(t)) {
		if _, ok := s.StringData[ref.Key]; ref.Name != s.Name || !ok {
			t.Errorf("%s reads %s/%s, which the chart did not make", k, ref.Name, ref.Key)
		}
	}
}

// TestNamespacePatternIsTheServers: helm cannot read Go, so the chart
// repeats INVENTORY_NAMESPACE's rule (the schema's pattern, and the helper
// that takes the release name when it fits); both must be the server's.
func TestNamespacePatternIsTheServers(t *testing.T) {
	want := config.NamespacePattern.String()
	b, err := os.ReadFile(filepath.Join(chartDir, "values.schema.json"))
	if err != nil {
		t.Fatal(err)
	}
	var schema struct {
		Properties struct {
			InventoryNamespace struct{ Pattern string } `json:"inventoryNamespace"`
		}
	}
	if err := json.Unmarshal(b, &schema); err != nil {
		t.Fatal(err)
	}
	// The value may also be empty (the release name, or "inventory").
	if got, wantOpt := schema.Properties.InventoryNamespace.Pattern, "^("+strings.TrimSuffix(strings.TrimPrefix(want, "^"), "$")+")?$"; got != wantOpt {
		t.Errorf("values.schema.json: inventoryNamespace pattern %q, want %q (the server's %q, or empty)", got, wantOpt, want)
	}
	helpers, err := os.ReadFile(filepath.Join(chartDir, "templates", "_helpers.tpl"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(helpers), `regexMatch "`+want+`" .Release.Name`) {
		t.Errorf("templates/_helpers.tpl does not test the release name against the server's pattern %q", want)
	}
}
