//go:build !benchstrategies

package app_test

import (
	"fmt"
	"testing"

	"github.com/shopstack/inventory/internal/app"
)

// TestShippedBinaryOnlyCombines: without the benchstrategies tag no other
// strategy exists, so no configuration can choose one that oversells.
func TestShippedBinaryOnlyCombines(t *testing.T) {
	if got := fmt.Sprint(app.Strategies()); got != "[combine]" {
		t.Fatalf("strategies %s, want only combine", got)
	}
	for _, st := range []app.Strategy{"unsafe", "rowlock", "lock-per-request"} {
		if st.Valid() {
			t.Errorf("%s is valid in a shipped binary", st)
		}
	}
}
