package charttest

import (
	"io"
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"

	"github.com/shopstack/inventory/internal/config"
)

// ca is where a CA file setting's file comes from: a key of a Secret.
type ca struct{ secret, key string }

// TestLockCredentials: Redis's and etcd's users and passwords reach the
// pod by reference to the Secret (the existing one, or the chart-made one
// that holds them), TLS is set as asked, and a CA file setting points at a
// file of a read-only mount of the CA's Secret.
func TestLockCredentials(t *testing.T) {
	for _, c := range []struct {
		set    string
		secret string            // the Secret the credentials come from
		refs   map[string]string // INVENTORY_REDIS_*/INVENTORY_ETCD_* from it, by key
		plain  map[string]string // INVENTORY_REDIS_*/INVENTORY_ETCD_* set as values
		cas    map[string]ca     // the CA file settings, by variable
	}{
		{set: "defaults", secret: "inventory-credentials", refs: map[string]string{},
			plain: map[string]string{"INVENTORY_REDIS_MODE": "standalone", "INVENTORY_REDIS_ADDRS": "redis.data.svc:6379", "INVENTORY_REDIS_TLS": "false"}},
		{set: "redis-auth-tls", secret: "inventory-credentials",
			refs:  map[string]string{"INVENTORY_REDIS_USERNAME": "redis-username", "INVENTORY_REDIS_PASSWORD": "redis-password"},
			plain: map[string]string{"INVENTORY_REDIS_MODE": "standalone", "INVENTORY_REDIS_ADDRS": "redis.data.svc:6379", "INVENTORY_REDIS_TLS": "true"},
			cas:   map[string]ca{"INVENTORY_REDIS_CA_FILE": {"redis-ca", "ca.crt"}}},
		{set: "etcd-auth-tls", secret: "inventory-credentials",
			refs:  map[string]string{"INVENTORY_ETCD_USERNAME": "etcd-username", "INVENTORY_ETCD_PASSWORD": "etcd-password"},
			plain: map[string]string{"INVENTORY_ETCD_ENDPOINTS": "https://etcd-0.etcd:2379,https://etcd-1.etcd:2379,https://etcd-2.etcd:2379"},
			cas:   map[string]ca{"INVENTORY_ETCD_CA_FILE": {"etcd-tls", "ca-bundle.pem"}}},
		{set: "etcd-auth-tls-chart-secret", secret: "shop-inventory",
			refs:  map[string]string{"INVENTORY_ETCD_USERNAME": "etcd-username", "INVENTORY_ETCD_PASSWORD": "etcd-password"},
			plain: map[string]string{"INVENTORY_ETCD_ENDPOINTS": "https://etcd-0.etcd:2379,https://etcd-1.etcd:2379,https://etcd-2.etcd:2379"},
			cas:   map[string]ca{"INVENTORY_ETCD_CA_FILE": {"etcd-tls", "ca-bundle.pem"}}},
		// The chart-made Secret holds a Redis user and password: no
		// lock.redis.auth needed.
		{set: "chart-secret", secret: "shop-inventory",
			refs:  map[string]string{"INVENTORY_REDIS_USERNAME": "redis-username", "INVENTORY_REDIS_PASSWORD": "redis-password"},
			plain: map[string]string{"INVENTORY_REDIS_MODE": "standalone", "INVENTORY_REDIS_ADDRS": "redis.data.svc:6379", "INVENTORY_REDIS_TLS": "false"}},
		{set: "everything", secret: "shop-inventory",
			refs:  map[string]string{"INVENTORY_REDIS_USERNAME": "redis-username", "INVENTORY_REDIS_PASSWORD": "redis-password"},
			plain: map[string]string{"INVENTORY_REDIS_MODE": "standalone", "INVENTORY_REDIS_ADDRS": "redis.data.svc:6379", "INVENTORY_REDIS_TLS": "true"},
			cas:   map[string]ca{"INVENTORY_REDIS_CA_FILE": {"redis-ca", "ca.crt"}}},
	} {
		t.Run(c.set, func(t *testing.T) {
			r := render(t, valueSets[c.set]...)
			if len(r.deployments) == 0 {
				t.Fatal("no Deployment")
			}
			for _, d := range r.deployments {
				checkSettings(t, r, d, []string{"INVENTORY_REDIS_", "INVENTORY_ETCD_"}, c.secret, c.refs, c.plain)
				checkCAFiles(t, d, c.cas)
			}
		})
	}
}

// TestKafkaSettings: Kafka's brokers, TLS and topic settings are set as
// asked; its SASL user and password reach the pod by reference to the
// Secret (the existing one, or the chart-made one that holds them), only
// with a mechanism; a CA file setting points at a file of a read-only
// mount of the CA's Secret, beside the lock backend's; no Kafka setting
// is made for another broker.
func TestKafkaSettings(t *testing.T) {
	saslTLS := map[string]string{"INVENTORY_KAFKA_BROKERS": "events-kafka-bootstrap.kafka:9093", "INVENTORY_KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
		"INVENTORY_KAFKA_TLS": "true", "INVENTORY_KAFKA_PARTITIONS": "12", "INVENTORY_KAFKA_REPLICATION_FACTOR": "3"}
	users := map[string]string{"INVENTORY_KAFKA_USERNAME": "kafka-username", "INVENTORY_KAFKA_PASSWORD": "kafka-password"}
	kafkaCA := ca{"events-cluster-ca-cert", "ca.crt"}
	for _, c := range []struct {
		set    string
		secret string            // the Secret the credentials come from
		refs   map[string]string // INVENTORY_KAFKA_* from it, by key
		plain  map[string]string // INVENTORY_KAFKA_* set as values
		cas    map[string]ca     // the CA file settings, by variable
	}{
		{set: "kafka", secret: "inventory-credentials", refs: map[string]string{},
			plain: map[string]string{"INVENTORY_KAFKA_BROKERS": "kafka-0.kafka:9092,kafka-1.kafka:9092,kafka-2.kafka:9092", "INVENTORY_KAFKA_TLS": "false",
				"INVENTORY_KAFKA_PARTITIONS": "6", "INVENTORY_KAFKA_REPLICATION_FACTOR": "-1"}},
		{set: "kafka-sasl-tls", secret: "inventory-credentials", refs: users, plain: saslTLS,
			cas: map[string]ca{"INVENTORY_KAFKA_CA_FILE": kafkaCA}},
		{set: "kafka-sasl-tls-chart-secret", secret: "shop-inventory", refs: users, plain: saslTLS,
			cas: map[string]ca{"INVENTORY_KAFKA_CA_FILE": kafkaCA}},
		{set: "kafka-sasl-tls-etcd-tls", secret: "inventory-credentials", refs: users, plain: saslTLS,
			cas: map[string]ca{"INVENTORY_KAFKA_CA_FILE": kafkaCA, "INVENTORY_ETCD_CA_FILE": {"etcd-tls", "ca-bundle.pem"}}},
		// Another broker: no Kafka setting, though the chart-made Secret
		// holds Kafka's user.
		{set: "everything", secret: "shop-inventory", refs: map[string]string{}, plain: map[string]string{},
			cas: map[string]ca{"INVENTORY_REDIS_CA_FILE": {"redis-ca", "ca.crt"}}},
	} {
		t.Run(c.set, func(t *testing.T) {
			r := render(t, valueSets[c.set]...)
			if len(r.deployments) == 0 {
				t.Fatal("no Deployment")
			}
			for _, d := range r.deployments {
				checkSettings(t, r, d, []string{"INVENTORY_KAFKA_"}, c.secret, c.refs, c.plain)
				checkCAFiles(t, d, c.cas)
			}
		})
	}
}

// checkSettings checks a Deployment's variables with those prefixes:
// those in refs from the Secret by those keys (present in it when the
// chart makes it), those in plain with those values, a CA file's path
// aside; no other.
func checkSettings(t *testing.T, r *rendered, d *appsv1.Deployment, prefixes []string, secret string, refs, plain map[string]string) {
	t.Helper()
	gotRefs, gotPlain := map[string]string{}, map[string]string{}
	for _, e := range d.Spec.Template.Spec.Containers[0].Env {
		if !slices.ContainsFunc(prefixes, func(p string) bool { return strings.HasPrefix(e.Name, p) }) || strings.HasSuffix(e.Name, "_CA_FILE") {
			continue
		}
		switch {
		case e.ValueFrom == nil:
			gotPlain[e.Name] = e.Value
		case e.ValueFrom.SecretKeyRef != nil && e.Value == "":
			ref := e.ValueFrom.SecretKeyRef
			if ref.Name != secret || (ref.Optional != nil && *ref.Optional) {
				t.Errorf("%s: %s from Secret %s (optional %v), want %s, required", d.Name, e.Name, ref.Name, ref.Optional, secret)
			}
			if s := r.secrets[ref.Name]; s != nil && s.StringData[ref.Key] == "" {
				t.Errorf("%s: %s reads key %s, which the chart-made Secret does not hold", d.Name, e.Name, ref.Key)
			}
			gotRefs[e.Name] = ref.Key
		default:
			t.Errorf("%s: %s from %+v", d.Name, e.Name, e.ValueFrom)
		}
	}
	if !maps.Equal(gotRefs, refs) {
		t.Errorf("%s: from the Secret %v, want %v", d.Name, gotRefs, refs)
	}
	if !maps.Equal(gotPlain, plain) {
		t.Errorf("%s: set %v, want %v", d.Name, gotPlain, plain)
	}
}

// checkCAFiles checks that the CA file settings are those of cas, each
// naming a file of its own read-only mount of that key of that Secret,
// and that the pod mounts no other Secret.
func checkCAFiles(t *testing.T, d *appsv1.Deployment, cas map[string]ca) {
	t.Helper()
	spec := d.Spec.Template.Spec
	var got []string
	for _, e := range spec.Containers[0].Env {
		if strings.HasSuffix(e.Name, "_CA_FILE") {
			got = append(got, e.Name)
		}
	}
	if want := slices.Sorted(maps.Keys(cas)); !slices.Equal(slices.Sorted(slices.Values(got)), want) {
		t.Errorf("%s: CA file settings %v, want %v", d.Name, got, want)
	}
	secretVolumes := 0
	for _, v := range spec.Volumes {
		if v.Secret != nil {
			secretVolumes++
		}
	}
	if secretVolumes != len(cas) {
		t.Errorf("%s: %d Secret volumes, want the CAs' (%d)", d.Name, secretVolumes, len(cas))
	}
	for name, c := range cas {
		checkCAFile(t, d, name, c.secret, c.key)
	}
}

// checkCAFile checks that the CA file setting names a file the pod mounts,
// read-only, from that key of that Secret.
func checkCAFile(t *testing.T, d *appsv1.Deployment, envName, secret, key string) {
	t.Helper()
	spec := d.Spec.Template.Spec
	path := env(spec.Containers[0])[envName]
	if !filepath.IsAbs(path) {
		t.Fatalf("%s: %s=%q, want an absolute path", d.Name, envName, path)
	}
	var mount *corev1.VolumeMount
	for i, m := range spec.Containers[0].VolumeMounts {
		if m.MountPath == filepath.Dir(path) {
			mount = &spec.Containers[0].VolumeMounts[i]
		}
	}
	if mount == nil || !mount.ReadOnly || mount.SubPath != "" {
		t.Fatalf("%s: %s=%s, but %s is not a read-only mount: %+v", d.Name, envName, path, filepath.Dir(path), mount)
	}
	vol := volume(spec, mount.Name)
	if vol == nil || vol.Secret == nil || vol.Secret.SecretName != secret ||
		!slices.Equal(vol.Secret.Items, []corev1.KeyToPath{{Key: key, Path: filepath.Base(path)}}) {
		t.Errorf("%s: volume %s is %+v, want key %s of Secret %s as %s", d.Name, mount.Name, vol, key, secret, filepath.Base(path))
	}
}

// TestServerAcceptsEnv: the settings the chart gives the pod, in every
// value set, pass the server's own validation (config.Load), with the
// existing Secret's keys standing for its values. So the chart cannot
// render a CA file without TLS, a username without a password, a Kafka
// user without a mechanism, or mixed etcd schemes, among the rest.
func TestServerAcceptsEnv(t *testing.T) {
	for _, name := range slices.Sorted(maps.Keys(valueSets)) {
		t.Run(name, func(t *testing.T) {
			r := render(t, valueSets[name]...)
			for _, d := range r.deployments {
				envs := resolveEnv(t, r, d, true)
				if _, err := config.Load(nil, func(k string) string { return envs[k] }, io.Discard); err != nil {
					t.Errorf("%s: the server refuses the chart's settings: %v", d.Name, err)
				}
			}
		})
	}
}
