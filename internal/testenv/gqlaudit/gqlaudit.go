// Package gqlaudit runs the GraphQL-over-HTTP spec's audit suite, the npm
// package graphql-http (pinned in testdata/package-lock.json, installed by
// `make graphql-http-deps`, which `make test` runs), against a server's
// GraphQL endpoint, with testdata/audit.mjs on node.
//
// Without node or the installed package, tests are skipped, unless
// INVENTORY_TEST_STRICT=1, where a skip is a failure.
package gqlaudit

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/shopstack/inventory/internal/testenv"
)

// Result is the outcome of one audit.
type Result struct {
	ID   string `json:"id"`
	Name string `json:"name"` // starts with its requirement: MUST, SHOULD or MAY
	// Status is "ok"; else "error" for a MUST, "warn" for a SHOULD,
	// "notice" for a MAY.
	Status string `json:"status"`
	Reason string `json:"reason"`
	// The answer that failed the audit.
	ResponseStatus      int    `json:"responseStatus"`
	ResponseContentType string `json:"responseContentType"`
	ResponseBody        string `json:"responseBody"`
}

// Dir is the directory of the audit's npm project (audit.mjs,
// package.json, the lockfile, node_modules once installed).
func Dir() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "testdata")
}

// Run audits the GraphQL endpoint at url (http://host:port/query),
// sending headers with every request, and returns every audit's result.
func Run(tb testing.TB, url string, headers map[string]string) []Result {
	tb.Helper()
	if !testenv.NodePackages(tb, Dir(), "graphql-http-deps", "graphql-http") {
		return nil
	}
	h, err := json.Marshal(headers)
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", filepath.Join(Dir(), "audit.mjs"), url)
	cmd.Env = append(os.Environ(), "AUDIT_HEADERS="+string(h))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		tb.Fatalf("node audit.mjs %s: %v\n%s", url, err, stderr.Bytes())
	}
	var results []Result
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(nil, 16<<20)
	for sc.Scan() {
		var r Result
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			tb.Fatalf("audit output %q: %v", sc.Text(), err)
		}
		results = append(results, r)
	}
	if len(results) == 0 {
		tb.Fatalf("the audit reported nothing: %s", stderr.Bytes())
	}
	return results
}
