package main

import (
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/shopstack/inventory/internal/gormstore"
	"github.com/shopstack/inventory/internal/testenv"
)

// TestGraphiQLWorksOffline loads the GraphiQL page in headless Chromium with
// every host but the server's unreachable: the page must render the editor
// (so its scripts came from the binary and passed their integrity checks)
// with the example operations in it.
func TestGraphiQLWorksOffline(t *testing.T) {
	browser := ""
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			browser = p
			break
		}
	}
	if browser == "" {
		testenv.SkipOrFail(t, "no Chromium to load GraphiQL in (apt-get install chromium)")
		return
	}
	s := startServer(t, envFor(t, gormstore.SQLite))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	// --virtual-time-budget lets the page's scripts run to quiet before
	// the DOM is dumped, however slow the machine.
	cmd := exec.CommandContext(ctx, browser, "--headless", "--no-sandbox", "--disable-background-networking", "--disable-gpu",
		"--disable-dev-shm-usage", "--user-data-dir="+t.TempDir(),
		"--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
		"--virtual-time-budget=20000", "--dump-dom", s.url+"/")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("chromium: %v", err)
	}
	dom := string(out)
	for _, want := range []string{`class="graphiql-container"`, `aria-label="Execute query`, "Catalogue", "AddMug", "stockChanged"} {
		if !strings.Contains(dom, want) {
			t.Errorf("the page has no %q; it did not render (%d bytes of DOM)", want, len(dom))
		}
	}
	if strings.Contains(dom, "Loading GraphiQL") {
		t.Error("the page is still loading: its scripts did not run")
	}
}
