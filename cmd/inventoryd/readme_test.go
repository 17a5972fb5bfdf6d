package main

import (
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/shopstack/inventory/internal/gormstore"
	"github.com/shopstack/inventory/internal/testenv"
	"github.com/shopstack/inventory/internal/testenv/gormstoretest"
	"github.com/shopstack/inventory/internal/testenv/oidctest"
)

// TestReadmeWalkthroughs runs the README's curl walkthroughs against a
// server of the test's own, in the README's order, as a reader would paste
// them: "Try it", then "Warehouse stock", then "Selling beyond the shelf". Each "# -> …" line must appear in
// what the commands before it printed, after the previous one's match.
func TestReadmeWalkthroughs(t *testing.T) {
	if _, err := exec.LookPath("curl"); err != nil {
		testenv.SkipOrFail(t, "curl not installed")
	}
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	readme := string(b)
	s := startServer(t, map[string]string{"INVENTORY_DB_DRIVER": gormstore.SQLite, "INVENTORY_DB_DSN": gormstoretest.DSN(t, gormstore.SQLite)})
	t.Cleanup(s.stop)
	host := strings.TrimPrefix(s.url, "http://")
	for _, section := range []string{"## Try it", "## Warehouse stock", "## Selling beyond the shelf"} {
		block := firstShellBlock(t, readme, section)
		if section != "## Try it" {
			block = firstShellBlock(t, readme, "## Try it") + "\n" + block // q comes from there
		}
		runWalkthrough(t, section, block, strings.NewReplacer("localhost:8080", host))
	}
}

// runWalkthrough runs block in bash with replace's substitutions (the
// README's addresses for the test's), and checks that each "# -> …" line
// appears in what the commands before it printed, after the previous
// one's match.
func runWalkthrough(t *testing.T, section, block string, replace *strings.Replacer) {
	t.Helper()
	out, err := exec.Command("bash", "-c", "set -euo pipefail\n"+replace.Replace(block)).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", section, err, out)
	}
	rest := string(out)
	for _, line := range strings.Split(block, "\n") {
		want, ok := strings.CutPrefix(strings.TrimSpace(line), "# -> ")
		if !ok || strings.HasPrefix(want, `"extensions"`) { // an error's shape, abridged in prose
			continue
		}
		i := strings.Index(rest, want)
		if i < 0 {
			t.Errorf("%s: the output does not show %s where the README says it does; it printed:\n%s", section, want, out)
			break
		}
		rest = rest[i+len(want):]
	}
}

// TestReadmeOIDCWalkthrough runs the README's walkthrough of access tokens
// from an OpenID provider, against a provider (with the demo clients of
// make oidc-provider) and a server of the test's own.
func TestReadmeOIDCWalkthrough(t *testing.T) {
	for _, tool := range []string{"curl", "jq"} {
		if _, err := exec.LookPath(tool); err != nil {
			testenv.SkipOrFail(t, tool+" not installed")
		}
	}
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	p := oidctest.Start(t)
	env := envFor(t, gormstore.SQLite)
	env["INVENTORY_OIDC_ISSUER"], env["INVENTORY_OIDC_AUDIENCE"] = p.Issuer, p.Audience
	s := startServer(t, env)
	t.Cleanup(s.stop)
	// The commands after the one that starts the server.
	block := firstShellBlock(t, string(b), "Then, with curl and jq")
	runWalkthrough(t, "Tokens from your OpenID provider", block, strings.NewReplacer(
		"localhost:8080", strings.TrimPrefix(s.url, "http://"), "http://127.0.0.1:9400", p.Issuer))
}

// firstShellBlock returns the first ```sh block after heading in readme.
func firstShellBlock(t *testing.T, readme, heading string) string {
	t.Helper()
	_, after, ok := strings.Cut(readme, "\n"+heading)
	if !ok {
		t.Fatalf("README has no %q", heading)
	}
	_, after, ok = strings.Cut(after, "```sh\n")
	block, _, ok2 := strings.Cut(after, "```")
	if !ok || !ok2 {
		t.Fatalf("README's %q has no sh block", heading)
	}
	return block
}
