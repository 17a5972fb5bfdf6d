package audit

import (
	"strings"
	"testing"
)

func TestAudit(t *testing.T) {
	t.Run("OK", func(t *testing.T) {
		a := Audit{Initial: 1000, Final: 900, Sold: 100, Ledger: 100}
		if a.Oversold() != 0 || a.ledgerMismatch() || len(a.Problems()) > 0 || a.Flags() != "ok" {
			t.Errorf("oversold %d, problems %v, flags %q", a.Oversold(), a.Problems(), a.Flags())
		}
	})
	t.Run("LostUpdates", func(t *testing.T) {
		// The unsafe strategy: 100 acknowledged, every one in the ledger,
		// but concurrent writes overwrote each other and the stock lost 63.
		a := Audit{Initial: 1000, Final: 937, Sold: 100, Ledger: 100}
		if a.Oversold() != 37 {
			t.Errorf("oversold = %d, want 37", a.Oversold())
		}
		if p := a.Problems(); len(p) != 2 || !strings.Contains(p[0], "oversold 37") {
			t.Errorf("problems = %v, want the oversell and the ledger not explaining the stock", p)
		}
	})
	t.Run("UnknownOutcomesExplainTheDifference", func(t *testing.T) {
		// Two requests timed out; one of them sold.
		a := Audit{Initial: 1000, Final: 899, Sold: 100, Unknown: 2, Ledger: 101}
		if a.Oversold() != -1 || !a.ledgerMismatch() || len(a.Problems()) > 0 {
			t.Errorf("oversold %d, mismatch %v, problems %v", a.Oversold(), a.ledgerMismatch(), a.Problems())
		}
		if f := a.Flags(); !strings.Contains(f, "ledger≠sold (+1)") || !strings.Contains(f, "2 unknown") {
			t.Errorf("flags = %q", f)
		}
	})
	t.Run("UnknownOutcomesDoNotExcuseAnOversell", func(t *testing.T) {
		a := Audit{Initial: 1000, Final: 901, Sold: 100, Unknown: 5, Ledger: 99}
		if a.Oversold() != 1 || len(a.Problems()) == 0 {
			t.Errorf("oversold %d, problems %v", a.Oversold(), a.Problems())
		}
	})
	t.Run("LedgerMissesASale", func(t *testing.T) {
		a := Audit{Initial: 1000, Final: 900, Sold: 100, Ledger: 99}
		if p := a.Problems(); len(p) != 2 || !strings.Contains(p[0], "misses 1") {
			t.Errorf("problems = %v", p)
		}
	})
	t.Run("UnitsInTransitAreNotLost", func(t *testing.T) {
		a := Audit{Initial: 1000, Final: 890, InTransit: 10, Sold: 100, Ledger: 100, Transfers: &Transfers{Count: 5, ItemsChecked: 5}}
		if a.Lost() != 100 || len(a.Problems()) > 0 || a.Flags() != "ok" {
			t.Errorf("lost %d, problems %v, flags %q", a.Lost(), a.Problems(), a.Flags())
		}
	})
	t.Run("UnitsVanishedInTransit", func(t *testing.T) {
		a := Audit{Initial: 1000, Final: 890, InTransit: 5, Sold: 100, Ledger: 100, Transfers: &Transfers{Count: 5, ItemsChecked: 5}}
		if p := a.Problems(); len(p) != 2 || !strings.Contains(p[0], "lost 5 more") {
			t.Errorf("problems = %v", p)
		}
	})
	t.Run("TransfersDrift", func(t *testing.T) {
		a := Audit{Initial: 1000, Final: 900, Sold: 100, Ledger: 100, Transfers: &Transfers{Count: 3, ItemsChecked: 2,
			Negative: []string{"SHOP incoming -1"}, Drifts: []string{"SHOP: …"}, ItemDrifts: []string{"transfer 7: …"}}}
		p := a.Problems()
		if len(p) != 4 || !strings.Contains(p[0], "SHOP incoming -1") || !strings.Contains(p[2], "transfer 7") || !strings.Contains(p[3], "2 transfer items") {
			t.Errorf("problems = %v", p)
		}
		if f := a.Flags(); f != "1 negative; 1 drifts; 1 transfer drifts" {
			t.Errorf("flags = %q", f)
		}
	})
	t.Run("StockVanished", func(t *testing.T) {
		a := Audit{Initial: 1000, Final: 890, Sold: 100, Ledger: 100}
		if p := a.Problems(); len(p) != 2 || !strings.Contains(p[0], "lost 10 more") {
			t.Errorf("problems = %v", p)
		}
	})
}
