package charttest

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestReadmeCommands runs the helm commands of docs/OPERATIONS.md's "Deploy on
// Kubernetes" in order: lint as written, install and upgrade through helm
// template, each upgrade with the values of those before it (as
// --reuse-values keeps them). What each renders is checked like any value
// set, and the gray release's steps must do what their comments say.
func TestReadmeCommands(t *testing.T) {
	cmds := readmeHelmCommands(t)
	if len(cmds) < 6 {
		t.Fatalf("found %d helm commands in docs/OPERATIONS.md's Deploy on Kubernetes", len(cmds))
	}
	var kept []string // the values so far, as --reuse-values keeps them
	canaryPods := []int32{}
	for _, args := range cmds {
		switch args[1] {
		case "lint":
			if _, err := runHelm(t, inRepo(args[1:])...); err != nil {
				t.Fatalf("%s: %v", strings.Join(args, " "), err)
			}
			continue
		case "install", "upgrade":
		default:
			t.Fatalf("docs/OPERATIONS.md runs helm %s, which this test does not know how to check", args[1])
		}
		var flags []string
		for _, a := range args[4:] {
			if a != "--reuse-values" {
				flags = append(flags, a)
			}
		}
		if args[1] == "install" {
			kept = nil
		}
		kept = append(kept, flags...)
		out, err := runHelm(t, append([]string{"template", args[2], filepath.Join(repoRoot, args[3])}, kept...)...)
		if err != nil {
			t.Fatalf("%s: %v", strings.Join(args, " "), err)
		}
		r := decode(t, out)
		for _, d := range r.deployments {
			checkPod(t, d)
			checkSelectors(t, r, d)
		}
		var n int32
		if c := r.deployments["shop-inventory-canary"]; c != nil {
			n = *c.Spec.Replicas
		}
		canaryPods = append(canaryPods, n)
	}
	// install, upgrade, canary 1, canary 2, promote, back out.
	if got := canaryPods; len(got) != 6 || got[2] != 1 || got[3] != 2 || got[4] != 0 || got[5] != 0 {
		t.Errorf("canary pods after each install or upgrade: %v", got)
	}
}

// inRepo makes the chart path of helm arguments relative to this package.
func inRepo(args []string) []string {
	out := append([]string(nil), args...)
	for i, a := range out {
		if strings.HasPrefix(a, "deploy/helm/") {
			out[i] = filepath.Join(repoRoot, a)
		}
	}
	return out
}

// readmeHelmCommands returns the helm command lines of docs/OPERATIONS.md's
// "Deploy on Kubernetes" shell block, split into words.
func readmeHelmCommands(t *testing.T) [][]string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot, "docs/OPERATIONS.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(b), "\n## Deploy on Kubernetes\n")
	if !ok {
		t.Fatal(`no "## Deploy on Kubernetes" in docs/OPERATIONS.md`)
	}
	section, _, _ = strings.Cut(section, "\n## ")
	_, block, ok := strings.Cut(section, "```sh\n")
	if !ok {
		t.Fatal("no shell block in docs/OPERATIONS.md's Deploy on Kubernetes")
	}
	block, _, _ = strings.Cut(block, "```")
	var cmds [][]string
	for _, line := range strings.Split(strings.ReplaceAll(block, "\\\n", " "), "\n") {
		if line = strings.TrimSpace(line); strings.HasPrefix(line, "helm ") {
			cmds = append(cmds, shellWords(t, line))
		}
	}
	return cmds
}

// shellWords splits a command line as sh would, for the quoting the
// docs/OPERATIONS.md uses (single and double quotes, no expansions).
func shellWords(t *testing.T, line string) []string {
	t.Helper()
	var words []string
	var cur strings.Builder
	inWord := false
	var quote rune
	for _, c := range line {
		switch {
		case quote != 0 && c == quote:
			quote = 0
		case quote != 0:
			cur.WriteRune(c)
		case c == '\'' || c == '"':
			quote, inWord = c, true
		case c == ' ' || c == '\t':
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		default:
			if c == '$' || c == '`' || c == '#' {
				t.Fatalf("%q: unquoted %q, which this test does not expand", line, c)
			}
			cur.WriteRune(c)
			inWord = true
		}
	}
	if quote != 0 {
		t.Fatalf("%q: unterminated quote", line)
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words
}
