package main

import (
	"strings"
	"testing"
)

func TestAudit(t *testing.T) {
	t.Run("OK", func(t *testing.T) {
		a := audit{initial: 1000, final: 900, sold: 100, ledger: 100}
		if a.oversold() != 0 || a.ledgerMismatch() || len(a.problems()) > 0 || a.flags() != "ok" {
			t.Errorf("oversold %d, problems %v, flags %q", a.oversold(), a.problems(), a.flags())
		}
	})
	t.Run("LostUpdates", func(t *testing.T) {
		// The unsafe strategy: 100 acknowledged, every one in the ledger,
		// but concurrent writes overwrote each other and the stock lost 63.
		a := audit{initial: 1000, final: 937, sold: 100, ledger: 100}
		if a.oversold() != 37 {
			t.Errorf("oversold = %d, want 37", a.oversold())
		}
		if p := a.problems(); len(p) != 2 || !strings.Contains(p[0], "oversold 37") {
			t.Errorf("problems = %v, want the oversell and the ledger not explaining the stock", p)
		}
	})
	t.Run("UnknownOutcomesExplainTheDifference", func(t *testing.T) {
		// Two requests timed out; one of them sold.
		a := audit{initial: 1000, final: 899, sold: 100, unknown: 2, ledger: 101}
		if a.oversold() != -1 || !a.ledgerMismatch() || len(a.problems()) > 0 {
			t.Errorf("oversold %d, mismatch %v, problems %v", a.oversold(), a.ledgerMismatch(), a.problems())
		}
		if f := a.flags(); !strings.Contains(f, "ledger≠sold (+1)") || !strings.Contains(f, "2 unknown") {
			t.Errorf("flags = %q", f)
		}
	})
	t.Run("UnknownOutcomesDoNotExcuseAnOversell", func(t *testing.T) {
		a := audit{initial: 1000, final: 901, sold: 100, unknown: 5, ledger: 99}
		if a.oversold() != 1 || len(a.problems()) == 0 {
			t.Errorf("oversold %d, problems %v", a.oversold(), a.problems())
		}
	})
	t.Run("LedgerMissesASale", func(t *testing.T) {
		a := audit{initial: 1000, final: 900, sold: 100, ledger: 99}
		if p := a.problems(); len(p) != 2 || !strings.Contains(p[0], "misses 1") {
			t.Errorf("problems = %v", p)
		}
	})
	t.Run("StockVanished", func(t *testing.T) {
		a := audit{initial: 1000, final: 890, sold: 100, ledger: 100}
		if p := a.problems(); len(p) != 2 || !strings.Contains(p[0], "lost 10 more") {
			t.Errorf("problems = %v", p)
		}
	})
}

func TestResultFailed(t *testing.T) {
	oversold := &audit{initial: 100, final: 90, sold: 12, ledger: 12}
	for _, tc := range []struct {
		row  rowSpec
		want bool
	}{
		{rowSpec{name: "flash/combine", strategy: "combine"}, true},
		{rowSpec{name: "flash/unsafe", strategy: "unsafe"}, false},
	} {
		if got := (result{row: tc.row, audit: oversold}).failed(); got != tc.want {
			t.Errorf("%s with an oversell: failed = %v, want %v", tc.row.name, got, tc.want)
		}
	}
}
