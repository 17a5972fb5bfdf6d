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

// TestLockCredentials: Redis's and etcd's users and passwords reach the
// pod by reference to the Secret (the existing one, or the chart-made one
// that holds them), TLS is set as asked, and a CA file setting points at a
// file of a read-only mount of the CA's Secret.
func TestLockCredentials(t *testing.T) {
	type ca struct{ env, secret, key string }
	for _, c := range []struct {
		set    string
		secret string            // the Secret the credentials come from
		refs   map[string]string // INVENTORY_REDIS_*/INVENTORY_ETCD_* from it, by key
		plain  map[string]string // INVENTORY_REDIS_*/INVENTORY_ETCD_* set as values
		ca     *ca
	}{
		{set: "defaults", secret: "inventory-credentials", refs: map[string]string{},
			plain: map[string]string{"INVENTORY_REDIS_MODE": "standalone", "INVENTORY_REDIS_ADDRS": "redis.data.svc:6379", "INVENTORY_REDIS_TLS": "false"}},
		{set: "redis-auth-tls", secret: "inventory-credentials",
			refs:  map[string]string{"INVENTORY_REDIS_USERNAME": "redis-username", "INVENTORY_REDIS_PASSWORD": "redis-password"},
			plain: map[string]string{"INVENTORY_REDIS_MODE": "standalone", "INVENTORY_REDIS_ADDRS": "redis.data.svc:6379", "INVENTORY_REDIS_TLS": "true"},
			ca:    &ca{"INVENTORY_REDIS_CA_FILE", "redis-ca", "ca.crt"}},
		{set: "etcd-auth-tls", secret: "inventory-credentials",
			refs:  map[string]string{"INVENTORY_ETCD_USERNAME": "etcd-username", "INVENTORY_ETCD_PASSWORD": "etcd-password"},
			plain: map[string]string{"INVENTORY_ETCD_ENDPOINTS": "https://etcd-0.etcd:2379,https://etcd-1.etcd:2379,https://etcd-2.etcd:2379"},
			ca:    &ca{"INVENTORY_ETCD_CA_FILE", "etcd-tls", "ca-bundle.pem"}},
		{set: "etcd-auth-tls-chart-secret", secret: "shop-inventory",
			refs:  map[string]string{"INVENTORY_ETCD_USERNAME": "etcd-username", "INVENTORY_ETCD_PASSWORD": "etcd-password"},
			plain: map[string]string{"INVENTORY_ETCD_ENDPOINTS": "https://etcd-0.etcd:2379,https://etcd-1.etcd:2379,https://etcd-2.etcd:2379"},
			ca:    &ca{"INVENTORY_ETCD_CA_FILE", "etcd-tls", "ca-bundle.pem"}},
		// The chart-made Secret holds a Redis user and password: no
		// lock.redis.auth needed.
		{set: "chart-secret", secret: "shop-inventory",
			refs:  map[string]string{"INVENTORY_REDIS_USERNAME": "redis-username", "INVENTORY_REDIS_PASSWORD": "redis-password"},
			plain: map[string]string{"INVENTORY_REDIS_MODE": "standalone", "INVENTORY_REDIS_ADDRS": "redis.data.svc:6379", "INVENTORY_REDIS_TLS": "false"}},
		{set: "everything", secret: "shop-inventory",
			refs:  map[string]string{"INVENTORY_REDIS_USERNAME": "redis-username", "INVENTORY_REDIS_PASSWORD": "redis-password"},
			plain: map[string]string{"INVENTORY_REDIS_MODE": "standalone", "INVENTORY_REDIS_ADDRS": "redis.data.svc:6379", "INVENTORY_REDIS_TLS": "true"},
			ca:    &ca{"INVENTORY_REDIS_CA_FILE", "redis-ca", "ca.crt"}},
	} {
		t.Run(c.set, func(t *testing.T) {
			r := render(t, valueSets[c.set]...)
			if len(r.deployments) == 0 {
				t.Fatal("no Deployment")
			}
			for _, d := range r.deployments {
				checkLockSettings(t, r, d, c.secret, c.refs, c.plain)
				caVolumes := 0
				for _, v := range d.Spec.Template.Spec.Volumes {
					if v.Secret != nil {
						caVolumes++
					}
				}
				if c.ca == nil {
					if caVolumes != 0 {
						t.Errorf("%s: %d Secret volumes, want none", d.Name, caVolumes)
					}
					continue
				}
				if caVolumes != 1 {
					t.Errorf("%s: %d Secret volumes, want the CA's", d.Name, caVolumes)
				}
				checkCAFile(t, d, c.ca.env, c.ca.secret, c.ca.key)
			}
		})
	}
}

// checkLockSettings checks a Deployment's INVENTORY_REDIS_* and
// INVENTORY_ETCD_* variables: those in refs from the Secret by those keys
// (present in it when the chart makes it), those in plain with those
// values, a CA file's path aside; no other.
func checkLockSettings(t *testing.T, r *rendered, d *appsv1.Deployment, secret string, refs, plain map[string]string) {
	t.Helper()
	gotRefs, gotPlain := map[string]string{}, map[string]string{}
	for _, e := range d.Spec.Template.Spec.Containers[0].Env {
		if !strings.HasPrefix(e.Name, "INVENTORY_REDIS_") && !strings.HasPrefix(e.Name, "INVENTORY_ETCD_") || strings.HasSuffix(e.Name, "_CA_FILE") {
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

// checkCAFile checks that the CA file setting names a file the pod mounts,
// read-only, from that key of that Secret, and that no other CA setting is
// made.
func checkCAFile(t *testing.T, d *appsv1.Deployment, envName, secret, key string) {
	t.Helper()
	spec := d.Spec.Template.Spec
	e := env(spec.Containers[0])
	for _, other := range []string{"INVENTORY_REDIS_CA_FILE", "INVENTORY_ETCD_CA_FILE"} {
		if _, ok := e[other]; ok && other != envName {
			t.Errorf("%s: %s is set too", d.Name, other)
		}
	}
	path := e[envName]
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
// render a CA file without TLS, a username without a password, or mixed
// etcd schemes, among the rest.
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
