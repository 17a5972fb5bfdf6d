package charttest

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
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
	"syscall"
	"testing"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/shopstack/inventory/internal/testenv"
	"github.com/shopstack/inventory/internal/testenv/etcdtest"
)

// kubeAPIServerEnv names a kube-apiserver binary to use instead of the one
// `make kube-apiserver` builds.
const kubeAPIServerEnv = "INVENTORY_TEST_KUBE_APISERVER"

// TestAPIServerDryRun applies the chart to a real kube-apiserver (with etcd,
// no nodes) as a server-side dry run: every document each value set renders
// is POSTed with dryRun=All&fieldValidation=Strict, so the server decodes it
// strictly, defaults it, validates it and runs its admission, and persists
// nothing. The Prometheus Operator's CRDs (testdata/crds) are created first,
// so ServiceMonitor and PrometheusRule are checked against their schemas.
func TestAPIServerDryRun(t *testing.T) {
	api := startAPIServer(t, kubeAPIServer(t))
	api.createCRDs(t, "testdata/crds")

	for _, name := range slices.Sorted(maps.Keys(valueSets)) {
		t.Run(name, func(t *testing.T) {
			accepted := map[string]int{}
			for _, doc := range documents(template(t, valueSets[name]...)) {
				h := head(t, doc)
				if res := api.dryRun(t, doc); res.code != http.StatusCreated {
					t.Errorf("%s %s refused (%d): %s", h.Kind, h.Metadata.Name, res.code, res.message)
					continue
				} else if len(res.warnings) > 0 {
					t.Errorf("%s %s accepted with warnings: %q", h.Kind, h.Metadata.Name, res.warnings)
				}
				accepted[h.Kind]++
			}
			t.Logf("accepted %v", accepted)
			if len(accepted) == 0 {
				t.Error("nothing rendered")
			}
		})
	}

	// The server refuses what the chart must never render, so the dry runs
	// above can fail.
	docs := documents(template(t, valueSets["everything"]...))
	for _, c := range []struct {
		name, kind string
		change     func(obj map[string]any)
		code       int
		want       string
	}{
		{"unknown field", "Deployment", func(o map[string]any) { container(o)["livenessProbes"] = container(o)["livenessProbe"] },
			http.StatusBadRequest, `unknown field "spec.template.spec.containers[0].livenessProbes"`},
		{"invalid value", "Deployment", func(o map[string]any) { o["spec"].(map[string]any)["replicas"] = -1 },
			http.StatusUnprocessableEntity, "spec.replicas: Invalid value: -1"},
		{"unknown field in a custom resource", "ServiceMonitor", func(o map[string]any) {
			o["spec"].(map[string]any)["endpoints"].([]any)[0].(map[string]any)["intervall"] = "30s"
		}, http.StatusBadRequest, `unknown field "spec.endpoints[0].intervall"`},
	} {
		t.Run("refuses "+c.name, func(t *testing.T) {
			i := slices.IndexFunc(docs, func(doc string) bool { return head(t, doc).Kind == c.kind })
			if i < 0 {
				t.Fatalf("no %s rendered", c.kind)
			}
			var obj map[string]any
			if err := yaml.Unmarshal([]byte(docs[i]), &obj); err != nil {
				t.Fatal(err)
			}
			c.change(obj)
			doc, err := yaml.Marshal(obj)
			if err != nil {
				t.Fatal(err)
			}
			if res := api.dryRun(t, string(doc)); res.code != c.code || !strings.Contains(res.message, c.want) {
				t.Errorf("dry run: %d %s; want %d naming %s", res.code, res.message, c.code, c.want)
			}
		})
	}
}

func container(deployment map[string]any) map[string]any {
	pod := deployment["spec"].(map[string]any)["template"].(map[string]any)["spec"].(map[string]any)
	return pod["containers"].([]any)[0].(map[string]any)
}

// docHead is what the dry run needs to know of a document.
type docHead struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Metadata   struct {
		Name      string `json:"name"`
		Namespace string `json:"namespace"`
	} `json:"metadata"`
}

func head(t *testing.T, doc string) docHead {
	t.Helper()
	var h docHead
	if err := yaml.Unmarshal([]byte(doc), &h); err != nil {
		t.Fatalf("%v\n%s", err, doc)
	}
	return h
}

// kubeAPIServer returns the kube-apiserver binary: $INVENTORY_TEST_KUBE_APISERVER,
// or the one `make kube-apiserver` builds for the version
// deploy/helm/apiserver/go.mod pins.
func kubeAPIServer(t *testing.T) string {
	t.Helper()
	if p := os.Getenv(kubeAPIServerEnv); p != "" {
		return p
	}
	version := pinnedKubeVersion(t)
	p := gopathBin("kube-apiserver-" + version)
	if _, err := os.Stat(p); err != nil {
		testenv.SkipOrFail(t, fmt.Sprintf("kube-apiserver %s is not built (make kube-apiserver, a one-off 10-25 minutes; make test does it under CI), or set %s", version, kubeAPIServerEnv))
	}
	return p
}

// pinnedKubeVersion is the k8s.io/kubernetes version deploy/helm/apiserver/go.mod requires.
func pinnedKubeVersion(t *testing.T) string {
	t.Helper()
	return required(t, "../apiserver/go.mod", "k8s.io/kubernetes")
}

// required is the version of module that the go.mod file requires.
func required(t *testing.T, goMod, module string) string {
	t.Helper()
	b, err := os.ReadFile(goMod)
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^\s*(?:require\s+)?` + regexp.QuoteMeta(module) + `\s+(v\S+)(?:\s*//.*)?$`).FindSubmatch(b)
	if m == nil {
		t.Fatalf("%s requires no %s", goMod, module)
	}
	return string(m[1])
}

// apiServer is a running kube-apiserver that the test's token administers.
type apiServer struct {
	base   string // https://127.0.0.1:port
	token  string
	client *http.Client
	// resources maps "apiVersion kind" to the collection path and whether
	// it is namespaced, from API discovery.
	resources map[string]resource
	// namespaces are those created for the namespaced dry runs.
	namespaces map[string]bool
}

type resource struct {
	path       string // /api/v1/services, /apis/apps/v1/deployments: namespace inserted where namespaced
	group      string // /api/v1, /apis/apps/v1
	namespaced bool
}

// startAPIServer starts embedded etcd and kube-apiserver on free loopback
// ports, waits until the server is ready, and stops it (before etcd) when
// the test ends.
func startAPIServer(t *testing.T, bin string) *apiServer {
	t.Helper()
	dir := t.TempDir()
	token := make([]byte, 16)
	_, _ = rand.Read(token)
	api := &apiServer{token: hex.EncodeToString(token), resources: map[string]resource{}, namespaces: map[string]bool{}}
	writeFile(t, filepath.Join(dir, "tokens.csv"), api.token+",charttest,charttest,system:masters\n")
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "sa.key"), string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})))
	writeFile(t, filepath.Join(dir, "sa.pub"), string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub})))

	etcd := etcdtest.Start(t, 1) // stopped at cleanup, after the apiserver (cleanups run last first)

	// The port is found free and closed again, so another process may take
	// it first: retry on a clash.
	for attempt := 1; ; attempt++ {
		port := freePort(t)
		certDir := filepath.Join(dir, "certs")
		logPath := filepath.Join(dir, "apiserver.log")
		cmd := exec.Command(bin,
			"--etcd-servers="+strings.Join(etcd.Endpoints(), ","),
			"--bind-address=127.0.0.1", "--secure-port="+strconv.Itoa(port), "--cert-dir="+certDir,
			"--authorization-mode=AlwaysAllow", "--token-auth-file="+filepath.Join(dir, "tokens.csv"),
			"--service-account-issuer=https://kubernetes.default.svc",
			"--service-account-key-file="+filepath.Join(dir, "sa.pub"),
			"--service-account-signing-key-file="+filepath.Join(dir, "sa.key"),
			"--service-cluster-ip-range=10.96.0.0/12",
		)
		logFile, err := os.Create(logPath)
		if err != nil {
			t.Fatal(err)
		}
		cmd.Stdout, cmd.Stderr = logFile, logFile
		if err := cmd.Start(); err != nil {
			logFile.Close()
			t.Fatalf("start %s: %v", bin, err)
		}
		exited := make(chan struct{})
		go func() { _ = cmd.Wait(); logFile.Close(); close(exited) }()
		stop := func() {
			// SIGTERM lets it shut down; it is given a while, then killed.
			_ = cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-exited:
			case <-time.After(10 * time.Second):
				_ = cmd.Process.Kill()
				<-exited
			}
		}
		api.base = fmt.Sprintf("https://127.0.0.1:%d", port)
		err = api.waitReady(certDir, exited)
		if err == nil {
			t.Cleanup(stop)
			break
		}
		stop()
		log, _ := os.ReadFile(logPath)
		if attempt < 3 && bytes.Contains(log, []byte("address already in use")) {
			continue
		}
		t.Fatalf("kube-apiserver: %v; its log ends:\n%s", err, tail(log, 30))
	}

	var version struct{ GitVersion string }
	if code, body := api.do(t, http.MethodGet, "/version", "", nil); code != http.StatusOK || json.Unmarshal(body, &version) != nil {
		t.Fatalf("GET /version: %d %s", code, body)
	}
	if want := pinnedKubeVersion(t); os.Getenv(kubeAPIServerEnv) == "" && version.GitVersion != want {
		t.Fatalf("kube-apiserver reports %s, want %s (deploy/helm/apiserver/go.mod)", version.GitVersion, want)
	}
	t.Logf("kube-apiserver %s ready at %s", version.GitVersion, api.base)
	return api
}

// waitReady waits until GET /readyz answers 200, trusting the certificate
// the server generates into certDir.
func (api *apiServer) waitReady(certDir string, exited <-chan struct{}) error {
	deadline := time.Now().Add(2 * testenv.Wait)
	for {
		select {
		case <-exited:
			return errors.New("exited before it was ready")
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not ready after %v", 2*testenv.Wait)
		}
		if api.client == nil {
			if pemCerts, err := os.ReadFile(filepath.Join(certDir, "apiserver.crt")); err == nil {
				pool := x509.NewCertPool()
				if !pool.AppendCertsFromPEM(pemCerts) {
					return errors.New("no certificate in apiserver.crt")
				}
				api.client = &http.Client{Timeout: testenv.Wait, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
			}
		}
		if api.client != nil {
			if req, err := api.request(http.MethodGet, "/readyz", ""); err == nil {
				if resp, err := api.client.Do(req); err == nil {
					resp.Body.Close()
					if resp.StatusCode == http.StatusOK {
						return nil
					}
				}
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (api *apiServer) request(method, path, yamlBody string) (*http.Request, error) {
	var body io.Reader
	if yamlBody != "" {
		body = strings.NewReader(yamlBody)
	}
	req, err := http.NewRequest(method, api.base+path, body)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+api.token)
	req.Header.Set("Accept", "application/json")
	if yamlBody != "" {
		req.Header.Set("Content-Type", "application/yaml")
	}
	return req, nil
}

// do sends a request with a YAML body (if any) and returns the status and
// body; warnings collects the Warning headers.
func (api *apiServer) do(t *testing.T, method, path, yamlBody string, warnings *[]string) (int, []byte) {
	t.Helper()
	req, err := api.request(method, path, yamlBody)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := api.client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	if warnings != nil {
		*warnings = append(*warnings, resp.Header.Values("Warning")...)
	}
	return resp.StatusCode, body
}

// createCRDs creates every CustomResourceDefinition in dir for real and
// waits until each is established and its kind is served.
func (api *apiServer) createCRDs(t *testing.T, dir string) {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no CRDs in %s: %v", dir, err)
	}
	crds := "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var crd struct {
			Metadata struct{ Name string }
			Spec     struct {
				Group    string
				Names    struct{ Kind string }
				Versions []struct {
					Name   string
					Served bool
				}
			}
		}
		if err := yaml.Unmarshal(b, &crd); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if code, body := api.do(t, http.MethodPost, crds+"?fieldValidation=Strict", string(b), nil); code != http.StatusCreated {
			t.Fatalf("create %s: %d %s", crd.Metadata.Name, code, message(body))
		}
		testenv.Eventually(t, crd.Metadata.Name+" established", func() bool {
			var got struct {
				Status struct {
					Conditions []struct{ Type, Status string }
				}
			}
			code, body := api.do(t, http.MethodGet, crds+"/"+crd.Metadata.Name, "", nil)
			if code != http.StatusOK || json.Unmarshal(body, &got) != nil {
				return false
			}
			return slices.ContainsFunc(got.Status.Conditions, func(c struct{ Type, Status string }) bool {
				return c.Type == "Established" && c.Status == "True"
			})
		})
		for _, v := range crd.Spec.Versions {
			if v.Served {
				testenv.Eventually(t, crd.Spec.Names.Kind+" served", func() bool {
					_, ok := api.discover(t, crd.Spec.Group+"/"+v.Name, crd.Spec.Names.Kind)
					return ok
				})
			}
		}
	}
}

// discover finds the collection of apiVersion's kind by API discovery.
func (api *apiServer) discover(t *testing.T, apiVersion, kind string) (resource, bool) {
	t.Helper()
	if r, ok := api.resources[apiVersion+" "+kind]; ok {
		return r, true
	}
	group := "/apis/" + apiVersion
	if apiVersion == "v1" {
		group = "/api/v1"
	}
	code, body := api.do(t, http.MethodGet, group, "", nil)
	if code != http.StatusOK {
		return resource{}, false
	}
	var list struct {
		Resources []struct {
			Name, Kind string
			Namespaced bool
		}
	}
	if err := json.Unmarshal(body, &list); err != nil {
		t.Fatalf("discovery of %s: %v", group, err)
	}
	for _, r := range list.Resources {
		if r.Kind == kind && !strings.Contains(r.Name, "/") { // not a subresource
			res := resource{path: group + "/" + r.Name, group: group, namespaced: r.Namespaced}
			api.resources[apiVersion+" "+kind] = res
			return res, true
		}
	}
	return resource{}, false
}

// dryRunResult is the server's answer to a dry run.
type dryRunResult struct {
	code     int
	message  string
	warnings []string
}

// dryRun POSTs the YAML document to its collection as a strict server-side
// dry run. The object's namespace (the release's, if it names none) is
// created for real first: a namespaced dry run needs it.
func (api *apiServer) dryRun(t *testing.T, doc string) dryRunResult {
	t.Helper()
	h := head(t, doc)
	r, ok := api.discover(t, h.APIVersion, h.Kind)
	if !ok {
		t.Fatalf("the server serves no %s %s (%s)", h.APIVersion, h.Kind, h.Metadata.Name)
	}
	path := r.path
	if r.namespaced {
		ns := h.Metadata.Namespace
		if ns == "" {
			ns = k8sNS // where helm install --namespace puts it
		}
		api.createNamespace(t, ns)
		path = r.group + "/namespaces/" + ns + strings.TrimPrefix(r.path, r.group)
	}
	var res dryRunResult
	var body []byte
	res.code, body = api.do(t, http.MethodPost, path+"?dryRun=All&fieldValidation=Strict", doc, &res.warnings)
	if res.code != http.StatusCreated {
		res.message = message(body)
	}
	return res
}

func (api *apiServer) createNamespace(t *testing.T, ns string) {
	t.Helper()
	if api.namespaces[ns] {
		return
	}
	code, body := api.do(t, http.MethodPost, "/api/v1/namespaces", "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: "+ns+"\n", nil)
	if code != http.StatusCreated && code != http.StatusConflict {
		t.Fatalf("create namespace %s: %d %s", ns, code, message(body))
	}
	api.namespaces[ns] = true
}

// message is the message of a Status the server answered, or the body.
func message(body []byte) string {
	var status struct{ Message string }
	if json.Unmarshal(body, &status) == nil && status.Message != "" {
		return status.Message
	}
	return string(body)
}

// The CRDs in testdata/crds are generated from the Prometheus Operator
// version go.mod requires (whose types TestRender decodes into).
func TestCRDsMatchGoMod(t *testing.T) {
	const module = "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring"
	version := required(t, filepath.Join(repoRoot, "go.mod"), module)
	readme, err := os.ReadFile("testdata/crds/README.md")
	if err != nil {
		t.Fatal(err)
	}
	if want := module + "@" + version; !strings.Contains(string(readme), want) {
		t.Errorf("testdata/crds/README.md does not name %s: regenerate the CRDs as it says", want)
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

// tail is the last n lines of b.
func tail(b []byte, n int) string {
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
