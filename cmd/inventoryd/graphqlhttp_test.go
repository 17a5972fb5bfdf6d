package main

import (
	"testing"

	"github.com/shopstack/inventory/internal/gormstore"
	"github.com/shopstack/inventory/internal/testenv/gqlaudit"
)

// TestGraphQLOverHTTPAudit runs the GraphQL-over-HTTP spec's own audit
// suite (npm graphql-http) against /query of a running server: no MUST may
// fail, and no SHOULD may warn (docs/GRAPHQL_HTTP.md).
func TestGraphQLOverHTTPAudit(t *testing.T) {
	s := startServer(t, envFor(t, gormstore.SQLite))
	results := gqlaudit.Run(t, s.url+"/query", nil)
	ok := 0
	for _, r := range results {
		switch r.Status {
		case "ok":
			ok++
		case "error", "warn":
			t.Errorf("%s %s: %s\n  answered %d %s: %.500s", r.ID, r.Name, r.Reason, r.ResponseStatus, r.ResponseContentType, r.ResponseBody)
		default: // a MAY not taken
			t.Logf("%s %s: %s (%d)", r.ID, r.Name, r.Reason, r.ResponseStatus)
		}
	}
	t.Logf("%d of %d audits ok", ok, len(results))
}
