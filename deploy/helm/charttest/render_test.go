package charttest

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	"sigs.k8s.io/yaml"

	"github.com/shopstack/inventory/internal/testenv"
)

const (
	chartDir = "../inventory"
	repoRoot = "../../.."
	release  = "shop"
	k8sNS    = "retail"
)

// helm returns the helm binary: on PATH, or where `go install` puts it.
func helm(t *testing.T) string {
	t.Helper()
	if p, err := exec.LookPath("helm"); err == nil {
		return p
	}
	if p := gopathBin("helm"); p != "" {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	testenv.SkipOrFail(t, "helm is not installed (make helm; make test does under CI)")
	return ""
}

// gopathBin is the path of the named binary in GOPATH/bin, where the
// Makefile installs the tools these tests run; "" if go cannot say.
func gopathBin(name string) string {
	out, err := exec.Command("go", "env", "GOPATH").Output()
	if err != nil {
		return ""
	}
	return filepath.Join(strings.TrimSpace(string(out)), "bin", name)
}

// runHelm runs helm with args and returns its standard output; on failure
// the error carries standard error.
func runHelm(t *testing.T, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(helm(t), args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("helm %s: %w\n%s%s", strings.Join(args, " "), err, stdout.String(), stderr.String())
	}
	return stdout.String(), nil
}

// valueArgs are -f flags for the value files, defaults.yaml first.
func valueArgs(files ...string) []string {
	args := []string{"-f", "testdata/defaults.yaml"}
	for _, f := range files {
		args = append(args, "-f", filepath.Join("testdata", f))
	}
	return args
}

// rendered is what helm template made of one value set, each document
// decoded into its API type.
type rendered struct {
	deployments map[string]*appsv1.Deployment
	services    map[string]*corev1.Service
	secrets     map[string]*corev1.Secret
	configMaps  map[string]*corev1.ConfigMap
	pdbs        []*policyv1.PodDisruptionBudget
	hpas        []*autoscalingv2.HorizontalPodAutoscaler
	netpols     []*networkingv1.NetworkPolicy
	accounts    []*corev1.ServiceAccount
	monitors    []*monitoringv1.ServiceMonitor
	rules       []*monitoringv1.PrometheusRule
	kinds       map[string]int
}

// render runs helm template with the value files (after defaults.yaml)
// and decodes every document strictly: an unknown or misplaced field, a
// wrong type or an unknown kind fails the test.
func render(t *testing.T, files ...string) *rendered {
	t.Helper()
	return decode(t, template(t, files...))
}

// template returns what helm template makes of the value files (after
// defaults.yaml): the YAML documents as helm install would send them.
func template(t *testing.T, files ...string) string {
	t.Helper()
	out, err := runHelm(t, append([]string{"template", release, chartDir, "--namespace", k8sNS, "--kube-version", "1.30.0"}, valueArgs(files...)...)...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// documents splits helm template's output into its YAML documents, those
// that are only comments left out.
func documents(out string) []string {
	var docs []string
	for _, doc := range strings.Split(out, "\n---\n") {
		doc = strings.TrimPrefix(strings.TrimSpace(doc), "---")
		var head struct{ Kind string }
		if err := yaml.Unmarshal([]byte(doc), &head); err == nil && head.Kind == "" {
			continue
		}
		docs = append(docs, doc)
	}
	return docs
}

// decode decodes helm template's output strictly.
func decode(t *testing.T, out string) *rendered {
	t.Helper()
	r := &rendered{deployments: map[string]*appsv1.Deployment{}, services: map[string]*corev1.Service{},
		secrets: map[string]*corev1.Secret{}, configMaps: map[string]*corev1.ConfigMap{}, kinds: map[string]int{}}
	for _, doc := range documents(out) {
		var head struct{ APIVersion, Kind string }
		if err := yaml.Unmarshal([]byte(doc), &head); err != nil {
			t.Fatalf("%v\n%s", err, doc)
		}
		obj, keep := r.slot(head.APIVersion + " " + head.Kind)
		if obj == nil {
			t.Fatalf("rendered %s %s, which the test does not know: add its API type", head.APIVersion, head.Kind)
		}
		if err := yaml.UnmarshalStrict([]byte(doc), obj); err != nil {
			t.Fatalf("%s does not decode strictly into its API type: %v\n%s", head.Kind, err, doc)
		}
		keep()
		r.kinds[head.Kind]++
	}
	return r
}

// slot returns a new object of the API type for "apiVersion kind", and a
// function that files it once decoded.
func (r *rendered) slot(key string) (any, func()) {
	switch key {
	case "apps/v1 Deployment":
		o := &appsv1.Deployment{}
		return o, func() { r.deployments[o.Name] = o }
	case "v1 Service":
		o := &corev1.Service{}
		return o, func() { r.services[o.Name] = o }
	case "v1 Secret":
		o := &corev1.Secret{}
		return o, func() { r.secrets[o.Name] = o }
	case "v1 ConfigMap":
		o := &corev1.ConfigMap{}
		return o, func() { r.configMaps[o.Name] = o }
	case "v1 ServiceAccount":
		o := &corev1.ServiceAccount{}
		return o, func() { r.accounts = append(r.accounts, o) }
	case "policy/v1 PodDisruptionBudget":
		o := &policyv1.PodDisruptionBudget{}
		return o, func() { r.pdbs = append(r.pdbs, o) }
	case "autoscaling/v2 HorizontalPodAutoscaler":
		o := &autoscalingv2.HorizontalPodAutoscaler{}
		return o, func() { r.hpas = append(r.hpas, o) }
	case "networking.k8s.io/v1 NetworkPolicy":
		o := &networkingv1.NetworkPolicy{}
		return o, func() { r.netpols = append(r.netpols, o) }
	case "monitoring.coreos.com/v1 ServiceMonitor":
		o := &monitoringv1.ServiceMonitor{}
		return o, func() { r.monitors = append(r.monitors, o) }
	case "monitoring.coreos.com/v1 PrometheusRule":
		o := &monitoringv1.PrometheusRule{}
		return o, func() { r.rules = append(r.rules, o) }
	}
	return nil, nil
}

// stable is the stable track's Deployment.
func (r *rendered) stable(t *testing.T) *appsv1.Deployment {
	t.Helper()
	d := r.deployments["shop-inventory"]
	if d == nil {
		t.Fatalf("no Deployment shop-inventory; have %v", keys(r.deployments))
	}
	return d
}

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// env returns a container's plain environment values by name.
func env(c corev1.Container) map[string]string {
	out := map[string]string{}
	for _, e := range c.Env {
		out[e.Name] = e.Value
	}
	return out
}
