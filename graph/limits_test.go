package graph_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/shopstack/inventory/graph"
	"github.com/shopstack/inventory/internal/app"
	"github.com/shopstack/inventory/internal/gormstore"
	"github.com/shopstack/inventory/internal/testenv/gormstoretest"
	"github.com/shopstack/inventory/internal/testenv/inventorytest"
)

func limitedEnv(t *testing.T, l graph.Limits) env {
	t.Helper()
	st := gormstoretest.Open(t, gormstore.SQLite)
	svc := inventorytest.Start(t, st, app.Config{PollInterval: 50 * time.Millisecond})
	return env{h: newHandler(svc, graph.Options{Limits: l})}
}

func TestRequestLimits(t *testing.T) {
	e := limitedEnv(t, graph.Limits{})
	for name, c := range map[string]struct {
		query, code string
	}{
		"a page of 100 products":   {`{ products(first: 100) { totalCount edges { node { id sku name price stock reserved available levels { stock location { code } } } } } }`, ""},
		"GraphiQL's introspection": {`{ __schema { types { name fields { name type { name ofType { name ofType { name ofType { name ofType { name ofType { name ofType { name } } } } } } } } } } }`, ""},
		"too deep":                 {`{ products { edges { node { movements { edges { node { product { movements { edges { node { product { sku } } } } } } } } } } } }`, "DEPTH_LIMIT_EXCEEDED"},
		"pages in pages":           {`{ products(first: 100) { edges { node { movements(first: 100) { edges { node { id delta } } } } } } }`, "COMPLEXITY_LIMIT_EXCEEDED"},
	} {
		status, errs := e.raw(t, `{"query": `+quote(c.query)+`}`)
		switch {
		case c.code == "" && len(errs) > 0:
			t.Errorf("%s: refused: %+v", name, errs)
		case c.code != "" && (len(errs) != 1 || errs[0].Extensions["code"] != c.code):
			t.Errorf("%s: HTTP %d %+v, want %s", name, status, errs, c.code) // nothing ran: no data
		}
	}

	big := `{"query": "{ products { totalCount } }", "variables": {"pad": "` + strings.Repeat("x", graph.MaxBodyBytes) + `"}}`
	if status, _ := e.raw(t, big); status != http.StatusRequestEntityTooLarge {
		t.Errorf("a body over 1 MiB: HTTP %d, want 413", status)
	}

	off := limitedEnv(t, graph.Limits{NoIntrospection: true})
	if _, errs := off.raw(t, `{"query": "{ __schema { queryType { name } } }"}`); len(errs) == 0 {
		t.Error("introspection answered with it switched off")
	}
	if _, errs := off.raw(t, `{"query": "{ products { totalCount } }"}`); len(errs) > 0 {
		t.Errorf("a plain query with introspection off: %+v", errs)
	}
}

func quote(s string) string {
	return `"` + strings.ReplaceAll(strings.ReplaceAll(s, `\`, `\\`), `"`, `\"`) + `"`
}
