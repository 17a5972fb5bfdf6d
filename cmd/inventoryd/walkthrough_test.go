package main

import (
	"fmt"
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

	"github.com/shopstack/inventory/internal/gormstore"
	"github.com/shopstack/inventory/internal/testenv"
	"github.com/shopstack/inventory/internal/testenv/gormstoretest"
	"github.com/shopstack/inventory/internal/testenv/natstest"
)

// The walkthroughs are the shell blocks (```sh) of README.md and docs/*.md.
// Each is marked, on the line before it, with what the test does with it:
//
//	<!-- walkthrough: run -->    run it, and check its "# -> …" lines
//	<!-- walkthrough: start -->  start it in the background (a server, or a
//	                             stream a reader watches in another terminal),
//	                             and wait until the ports it names answer
//	<!-- walkthrough: ci -->     make targets .ci/run runs itself
//	<!-- walkthrough: helm -->   helm commands deploy/helm/charttest runs
//
// A shell block without a mark fails the test, so a new walkthrough cannot
// go untested. Text that is not meant to be pasted (a config file, output,
// a record of how a past measurement was made) goes in another kind of
// block.
var walkthroughMark = regexp.MustCompile(`^<!-- walkthrough: (run|start|ci|helm) -->$`)

// walkthrough is one shell block of a document.
type walkthrough struct {
	doc  string // relative to the repository
	line int    // of the block's first command
	mode string
	text string
}

// walkthroughs returns the shell blocks of README.md and docs/*.md, in
// reading order, and what is wrong with the marks.
func walkthroughs(t *testing.T) ([]walkthrough, []string) {
	t.Helper()
	docs, err := filepath.Glob(filepath.Join(repoRoot, "docs", "*.md"))
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(docs)
	docs = append([]string{filepath.Join(repoRoot, "README.md")}, docs...)
	var (
		out      []walkthrough
		problems []string
	)
	for _, path := range docs {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		doc, _ := filepath.Rel(repoRoot, path)
		lines := strings.Split(string(b), "\n")
		for i := 0; i < len(lines); i++ {
			fence := strings.TrimSpace(lines[i])
			if !strings.HasPrefix(fence, "```") {
				continue
			}
			lang := strings.TrimPrefix(fence, "```")
			end := i + 1
			for end < len(lines) && strings.TrimSpace(lines[end]) != "```" {
				end++
			}
			if lang == "bash" || lang == "shell" || lang == "console" {
				problems = append(problems, fmt.Sprintf("%s:%d: a %s block: write sh, so that it is run as a walkthrough", doc, i+1, lang))
			}
			if lang == "sh" {
				mark := ""
				if i > 0 {
					if m := walkthroughMark.FindStringSubmatch(strings.TrimSpace(lines[i-1])); m != nil {
						mark = m[1]
					}
				}
				if mark == "" {
					problems = append(problems, fmt.Sprintf("%s:%d: a shell block without a <!-- walkthrough: run|start|ci|helm --> mark on the line before it", doc, i+1))
				}
				out = append(out, walkthrough{doc: doc, line: i + 2, mode: mark, text: strings.Join(lines[i+1:end], "\n")})
			}
			i = end
		}
	}
	return out, problems
}

// TestWalkthroughs runs every walkthrough of the README and docs/, one
// document at a time and each document's blocks in order, in one shell (so
// a function or variable a block defines serves the blocks after it), as a
// reader would paste them: against servers the blocks start themselves,
// with the test's own ports, databases and binaries put in the place of the
// documents' (see walkthroughReplacer). Each "# -> …" line must appear in
// what its block printed, after the previous one's match. Servers a
// document started are stopped when it ends.
func TestWalkthroughs(t *testing.T) {
	for _, tool := range []string{"curl", "jq", "bash"} {
		if _, err := exec.LookPath(tool); err != nil {
			testenv.SkipOrFail(t, tool+" not installed")
		}
	}
	all, problems := walkthroughs(t)
	bin := walkthroughBin(t)
	var docs []string
	byDoc := map[string][]walkthrough{}
	for _, w := range all {
		if _, ok := byDoc[w.doc]; !ok {
			docs = append(docs, w.doc)
		}
		byDoc[w.doc] = append(byDoc[w.doc], w)
	}
	for _, doc := range docs {
		t.Run(doc, func(t *testing.T) {
			for _, p := range problems {
				if strings.HasPrefix(p, doc+":") {
					t.Error(p)
				}
			}
			var run []walkthrough
			for _, w := range byDoc[doc] {
				for word, tool := range walkthroughTools {
					if _, err := exec.LookPath(tool); err != nil && strings.Contains(w.text, word) {
						testenv.SkipOrFail(t, tool+" not installed (make test installs it under CI)")
					}
				}
				switch w.mode {
				case "ci":
					checkCIWalkthrough(t, w)
				case "helm":
					checkHelmWalkthrough(t, w)
				case "run", "start":
					run = append(run, w)
				}
			}
			if !t.Failed() && len(run) > 0 {
				runDocument(t, bin, run)
			}
		})
	}
}

// walkthroughTools are the programs a walkthrough that names the key needs
// (beyond curl, jq and bash, which every one may use).
var walkthroughTools = map[string]string{"kcat": "kcat", "openssl": "openssl", "make oidc-provider": "node", "make cluster": "etcd"}

// walkthroughBin builds a directory for the front of the walkthroughs'
// PATH: inventoryd (this test binary, run as the service; see TestMain) and
// invbench, which only checks what it is asked to run.
func walkthroughBin(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	script := func(name, body string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("#!/bin/bash\n"+body+"\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	script("inventoryd", fmt.Sprintf("%s=1 exec %q \"$@\"", childEnv, exe))
	root, err := filepath.Abs(repoRoot)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("go", "build", "-o", filepath.Join(dir, "invbench-bin"), "./cmd/invbench")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/invbench: %v\n%s", err, out)
	}
	// A benchmark is not a test: invbench checks its flags and rows, and
	// says what it would run (its rows run in cmd/invbench's tests).
	script("invbench", fmt.Sprintf("exec %q -check \"$@\"", filepath.Join(dir, "invbench-bin")))
	return dir
}

// walkthroughPorts are the ports the documents use for servers they start;
// each gets a free port of the test's.
var walkthroughPorts = []string{"8080", "8081", "8082", "9000", "9094", "9400"}

// walkthroughReplacer puts the test's own in the place of what a document
// names: free ports for its servers' ports, a database of the test's for
// the local PostgreSQL's, the test's binaries for go run and make run, and one
// iteration of a Go benchmark the document runs many times. make test is the
// command running this test, so it is left out.
type walkthroughReplacer struct {
	ports     map[string]string
	namespace string // the deployment's name on the shared Redis and brokers, for their subjects and topics
	dsn       func() string
}

var (
	portRef     = regexp.MustCompile(`(:|-ports )(8080|8081|8082|9000|9094|9400)\b`)
	subject     = regexp.MustCompile(`\binventory\.(stock|alerts|command|commands|outcome|outcomes)\b`)
	postgresDSN = regexp.MustCompile(`'?postgres://postgres@127\.0\.0\.1:5432/[a-z_]+'?`)
	benchTime   = regexp.MustCompile(`-benchtime \S+`)
	makeTest    = regexp.MustCompile(`(?m)^make test( .*)?$`)
)

func (r walkthroughReplacer) replace(text string) string {
	text = portRef.ReplaceAllStringFunc(text, func(s string) string {
		m := portRef.FindStringSubmatch(s)
		return m[1] + r.ports[m[2]]
	})
	text = postgresDSN.ReplaceAllStringFunc(text, func(string) string { return "'" + r.dsn() + "'" })
	text = subject.ReplaceAllString(text, r.namespace+".$1")
	text = strings.ReplaceAll(text, r.namespace+".stock.v1", "inventory.stock.v1") // schema names, not subjects
	text = strings.ReplaceAll(text, r.namespace+".outcome.v1", "inventory.outcome.v1")
	text = benchTime.ReplaceAllString(text, "-benchtime 1x")
	text = makeTest.ReplaceAllString(text, ": make test is what runs this test")
	return strings.NewReplacer("go run ./cmd/inventoryd", "inventoryd", "make run", "inventoryd",
		"go run ./cmd/invbench", "invbench").Replace(text)
}

// startedPorts are the ports a start block's servers listen on: those it
// names, and the default address's when it starts the service without
// naming its address.
func (r walkthroughReplacer) startedPorts(text string) []string {
	var ports []string
	for _, m := range portRef.FindAllStringSubmatch(text, -1) {
		if p := r.ports[m[2]]; !slices.Contains(ports, p) {
			ports = append(ports, p)
		}
	}
	startsService := strings.Contains(text, "make run") || strings.Contains(text, "cmd/inventoryd")
	if len(ports) == 0 || startsService && !strings.Contains(text, "-addr ") && !strings.Contains(text, "INVENTORY_ADDR=") {
		ports = append(ports, r.ports["8080"])
	}
	return ports
}

// runDocument runs a document's run and start blocks in one shell, in a
// directory of the test's own that links to the repository's files (so a
// file a walkthrough writes lands there).
func runDocument(t *testing.T, bin string, blocks []walkthrough) {
	dir := t.TempDir()
	// Readable by others, as a reader's checkout is: make cluster's
	// PostgreSQL runs as postgres when the tests run as root.
	for _, d := range []string{dir, filepath.Dir(dir)} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	root, err := filepath.Abs(repoRoot)
	if err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(root)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.Name() == ".git" || strings.HasSuffix(e.Name(), ".db") {
			continue
		}
		if err := os.Symlink(filepath.Join(root, e.Name()), filepath.Join(dir, e.Name())); err != nil {
			t.Fatal(err)
		}
	}
	r := walkthroughReplacer{ports: map[string]string{}, namespace: fmt.Sprintf("walkthrough-%d", time.Now().UnixNano()%1e9)}
	free, err := testenv.FreePorts(len(walkthroughPorts) + 3)
	if err != nil {
		t.Fatal(err)
	}
	for i, p := range walkthroughPorts {
		r.ports[p] = strconv.Itoa(free[i])
	}
	var dsn string
	r.dsn = func() string {
		if dsn == "" {
			dsn = gormstoretest.DSN(t, gormstore.Postgres)
		}
		return dsn
	}
	var script strings.Builder
	script.WriteString(`set -eu # as a reader's shell, a pipeline is judged by its last command
walkthrough_wait() { for p in "$@"; do for i in $(seq 1 600); do (exec 3<>/dev/tcp/127.0.0.1/$p) 2>/dev/null && continue 2; sleep 0.1; done; echo "nothing listens on port $p after 60 s" >&2; exit 1; done; }
`)
	for i, w := range blocks {
		fmt.Fprintf(&script, "echo '@@walkthrough %d@@'\n", i)
		text := r.replace(w.text)
		switch w.mode {
		case "run":
			script.WriteString(text + "\n")
		case "start":
			fmt.Fprintf(&script, "{\n%s\n} > start-%d.log 2>&1 &\nwalkthrough_wait %s\n", text, i, strings.Join(r.startedPorts(w.text), " "))
		}
	}
	script.WriteString("echo '@@walkthrough end@@'\n")
	out, err := os.Create(filepath.Join(dir, "walkthrough.out"))
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	cmd := exec.Command("bash", "-c", script.String())
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Env = append(os.Environ(),
		"PATH="+bin+string(os.PathListSeparator)+os.Getenv("PATH"),
		"GOBIN="+bin,
		"INVENTORY_ADDR=127.0.0.1:"+r.ports["8080"],
		"INVENTORY_URL=http://127.0.0.1:"+r.ports["8080"], // make demo-data's server
		// make cluster's replicas, PostgreSQL, etcd and etcd's peers.
		fmt.Sprintf("INVENTORY_CLUSTER_PORTS=%s %s %d %d %d", r.ports["8081"], r.ports["8082"], free[len(free)-3], free[len(free)-2], free[len(free)-1]),
		"OIDC_PORT="+r.ports["9400"],
		"INVENTORY_NAMESPACE="+r.namespace,
		// The NATS the blocks use, the server's and the nats CLI's: the
		// tests' shared one, which is the machine's unless the test script
		// started one of its own.
		"INVENTORY_NATS_URL="+natstest.URL(),
		"NATS_URL="+natstest.URL(),
	)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	runErr := cmd.Wait()
	// Stop what the blocks started: the whole process group.
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
	time.Sleep(500 * time.Millisecond)
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	b, err := os.ReadFile(out.Name())
	if err != nil {
		t.Fatal(err)
	}
	printed := string(b)
	logs := func() string {
		var s strings.Builder
		paths, _ := filepath.Glob(filepath.Join(dir, "start-*.log"))
		for _, p := range paths {
			l, _ := os.ReadFile(p)
			fmt.Fprintf(&s, "--- %s (last 3000 bytes):\n%s\n", filepath.Base(p), tail(string(l), 3000))
		}
		return s.String()
	}
	if runErr != nil {
		last := strings.LastIndex(printed, "@@walkthrough ")
		w := blocks[0]
		if last >= 0 {
			if n, err := strconv.Atoi(strings.TrimSuffix(strings.Fields(printed[last:])[1], "@@")); err == nil {
				w = blocks[n]
			}
		}
		t.Fatalf("%s:%d: the walkthrough failed (%v); it printed:\n%s\n%s", w.doc, w.line, runErr, tail(printed, 6000), logs())
	}
	for i, w := range blocks {
		_, after, _ := strings.Cut(printed, fmt.Sprintf("@@walkthrough %d@@\n", i))
		rest, _, _ := strings.Cut(after, "@@walkthrough ")
		own := rest
		for _, line := range strings.Split(w.text, "\n") {
			want, ok := strings.CutPrefix(strings.TrimSpace(line), "# -> ")
			if !ok {
				continue
			}
			// "…" stands for what the document leaves out.
			for _, part := range strings.Split(r.replace(want), "…") {
				j := strings.Index(rest, part)
				if j < 0 {
					t.Errorf("%s:%d: the output does not show %s where the document says it does; the block printed:\n%s\n%s", w.doc, w.line, part, tail(own, 4000), logs())
					return
				}
				rest = rest[j+len(part):]
			}
		}
	}
}

// tail is the last n bytes of s.
func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}

// checkCIWalkthrough checks that each command of a ci block is one .ci/run
// runs.
func checkCIWalkthrough(t *testing.T, w walkthrough) {
	ci, err := os.ReadFile(filepath.Join(repoRoot, ".ci", "run"))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(w.text, "\n") {
		command, _, _ := strings.Cut(line, "#")
		if command = strings.TrimSpace(command); command == "" {
			continue
		}
		if !regexp.MustCompile(`(?m)^(if ! )?` + regexp.QuoteMeta(command) + `\b`).Match(ci) {
			t.Errorf("%s:%d: %q is marked as run by CI, but .ci/run does not run it", w.doc, w.line, command)
		}
	}
}

// checkHelmWalkthrough checks that a helm block is the one
// deploy/helm/charttest runs.
func checkHelmWalkthrough(t *testing.T, w walkthrough) {
	test, err := os.ReadFile(filepath.Join(repoRoot, "deploy", "helm", "charttest", "readme_test.go"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(test), `"`+w.doc+`"`) {
		t.Errorf("%s:%d: a helm block, but deploy/helm/charttest does not read %s", w.doc, w.line, w.doc)
	}
}

// TestDocumentLinks checks that every relative link of README.md and
// docs/*.md names a file that exists and, for a heading anchor in a
// Markdown file, a heading it has.
func TestDocumentLinks(t *testing.T) {
	docs, err := filepath.Glob(filepath.Join(repoRoot, "docs", "*.md"))
	if err != nil {
		t.Fatal(err)
	}
	docs = append(docs, filepath.Join(repoRoot, "README.md"))
	link := regexp.MustCompile(`\]\(([^)\s]+)\)`)
	for _, path := range docs {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		doc, _ := filepath.Rel(repoRoot, path)
		for _, m := range link.FindAllStringSubmatch(string(b), -1) {
			target := m[1]
			if strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
				continue
			}
			file, anchor, _ := strings.Cut(target, "#")
			resolved := path
			if file != "" {
				resolved = filepath.Join(filepath.Dir(path), file)
				if _, err := os.Stat(resolved); err != nil {
					t.Errorf("%s: link %s: no such file", doc, target)
					continue
				}
			}
			if anchor != "" && strings.HasSuffix(resolved, ".md") && !slices.Contains(headingAnchors(t, resolved), anchor) {
				t.Errorf("%s: link %s: %s has no such heading", doc, target, filepath.Base(resolved))
			}
		}
	}
}

// headingAnchors are the anchors GitHub gives a Markdown file's headings:
// lower case, punctuation other than '-' and '_' dropped, spaces as '-'.
func headingAnchors(t *testing.T, path string) []string {
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var anchors []string
	inCode := false
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "```") {
			inCode = !inCode
		}
		if inCode || !strings.HasPrefix(line, "#") {
			continue
		}
		heading := strings.ToLower(strings.TrimSpace(strings.TrimLeft(line, "#")))
		var a strings.Builder
		for _, r := range heading {
			switch {
			case r == ' ':
				a.WriteRune('-')
			case r == '-' || r == '_' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r > 127:
				a.WriteRune(r)
			}
		}
		anchors = append(anchors, a.String())
	}
	return anchors
}
