// Package federationtest runs Apollo Federation v2 for tests, on Node.js:
// composition (npm @apollo/composition) of a subgraph with a catalogue
// subgraph that owns a product's catalogue fields (@apollo/subgraph and
// @apollo/server), and a gateway over the supergraph (@apollo/gateway),
// all pinned by testdata/package-lock.json and installed by
// `make federation-deps`. Servers listen on loopback only.
//
// Without node or the installed packages, tests are skipped, unless
// INVENTORY_TEST_STRICT=1, where a skip is a failure.
package federationtest

import (
	"bytes"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/shopstack/inventory/internal/testenv"
)

// CatalogueSKUs are the SKUs the catalogue subgraph knows (its data is in
// testdata/catalogue-schema.mjs).
var CatalogueSKUs = []string{"FED-MUG", "FED-TEA"}

// Dir is the directory of the npm project (the scripts, package.json, the
// lockfile, node_modules once installed).
func Dir() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "testdata")
}

// Require skips (or, strict, fails) tb unless node and the packages are
// installed.
func Require(tb testing.TB) {
	tb.Helper()
	testenv.NodePackages(tb, Dir(), "federation-deps", "@apollo/composition", "@apollo/gateway", "@apollo/server", "@apollo/subgraph")
}

// Compose composes the subgraph inventory (its SDL, served at
// inventoryURL) with the catalogue subgraph (at catalogueURL) and returns
// the supergraph SDL, or composition's errors.
func Compose(tb testing.TB, inventorySDL, inventoryURL, catalogueURL string) (string, error) {
	tb.Helper()
	sdlFile := filepath.Join(tb.TempDir(), "inventory.graphql")
	if err := os.WriteFile(sdlFile, []byte(inventorySDL), 0o600); err != nil {
		tb.Fatal(err)
	}
	cmd := exec.Command("node", filepath.Join(Dir(), "compose.mjs"))
	cmd.Env = append(os.Environ(), "INVENTORY_SDL="+sdlFile, "INVENTORY_URL="+inventoryURL, "CATALOGUE_URL="+catalogueURL)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("composition failed (%v):\n%s", err, stderr.String())
	}
	if stderr.Len() > 0 {
		tb.Logf("composition hints:\n%s", stderr.String())
	}
	return stdout.String(), nil
}

// StartCatalogue starts the catalogue subgraph on a free loopback port and
// returns its URL. It stops when the test ends.
func StartCatalogue(tb testing.TB) string {
	tb.Helper()
	return start(tb, "catalogue.mjs", "CATALOGUE_PORT")
}

// StartGateway starts a gateway over supergraph on a free loopback port
// and returns its URL. It stops when the test ends.
func StartGateway(tb testing.TB, supergraph string) string {
	tb.Helper()
	file := filepath.Join(tb.TempDir(), "supergraph.graphql")
	if err := os.WriteFile(file, []byte(supergraph), 0o600); err != nil {
		tb.Fatal(err)
	}
	return start(tb, "gateway.mjs", "GATEWAY_PORT", "SUPERGRAPH="+file)
}

// start runs script with a free port in portVar, and waits until it
// answers GraphQL there.
func start(tb testing.TB, script, portVar string, env ...string) string {
	tb.Helper()
	ports, err := testenv.FreePorts(1)
	if err != nil {
		tb.Fatal(err)
	}
	url := "http://127.0.0.1:" + strconv.Itoa(ports[0]) + "/"
	logFile, err := os.Create(filepath.Join(tb.TempDir(), script+".log"))
	if err != nil {
		tb.Fatal(err)
	}
	defer logFile.Close()
	cmd := exec.Command("node", filepath.Join(Dir(), script))
	cmd.Env = append(append(os.Environ(), portVar+"="+strconv.Itoa(ports[0])), env...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = testenv.DieWithTest()
	if err := cmd.Start(); err != nil {
		tb.Fatalf("federationtest: %v", err)
	}
	var proc testenv.Proc
	proc.Set(cmd)
	tb.Cleanup(proc.Kill)
	if !testenv.Poll(testenv.Wait, func() bool {
		resp, err := http.Post(url, "application/json", strings.NewReader(`{"query":"{ __typename }"}`))
		if err == nil {
			_ = resp.Body.Close()
		}
		return err == nil && resp.StatusCode == http.StatusOK
	}) {
		out, _ := os.ReadFile(logFile.Name())
		tb.Fatalf("federationtest: %s did not start on %s:\n%s", script, url, out)
	}
	return url
}
