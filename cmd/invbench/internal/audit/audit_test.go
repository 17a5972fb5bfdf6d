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

func TestBundle(t *testing.T) {
	// 100 bundles of two units of product 1 and one of product 2 sold, and
	// 50 units of product 1 on their own.
	parts := func() []Part {
		return []Part{
			{ID: "1", Quantity: 2, BundleRows: 100, Audit: Audit{Initial: 1000, Final: 750, Sold: 250, Ledger: 250}},
			{ID: "2", Quantity: 1, BundleRows: 100, Audit: Audit{Initial: 1000, Final: 900, Sold: 100, Ledger: 100}},
		}
	}
	audit := func(b *Bundle) Audit {
		a := b.Total()
		a.Bundle = b
		return a
	}
	t.Run("OK", func(t *testing.T) {
		a := audit(&Bundle{ID: "3", Sold: 100, Parts: parts()})
		if a.Initial != 2000 || a.Final != 1650 || a.Sold != 350 || a.Ledger != 350 || len(a.Problems()) > 0 || a.Flags() != "ok" {
			t.Errorf("audit %+v: problems %v, flags %q", a, a.Problems(), a.Flags())
		}
	})
	t.Run("UnknownOutcomesExplainRows", func(t *testing.T) {
		// Two bundle stock-outs went unanswered; one of them sold.
		p := parts()
		for i := range p {
			p[i].BundleRows++
			p[i].Audit.Final -= p[i].Quantity
			p[i].Audit.Ledger += p[i].Quantity
			p[i].Audit.Unknown = 2 * p[i].Quantity
		}
		if a := audit(&Bundle{ID: "3", Sold: 100, Unknown: 2, Parts: p}); len(a.Problems()) > 0 {
			t.Errorf("problems %v", a.Problems())
		}
	})
	t.Run("ComponentOversold", func(t *testing.T) {
		// Product 2 lost a unit less than it sold, and product 1 one more:
		// the sum holds, the components do not.
		p := parts()
		p[0].Audit.Final--
		p[0].Audit.Ledger++
		p[1].Audit.Final++
		p[1].Audit.Ledger--
		a := audit(&Bundle{ID: "3", Sold: 100, Parts: p})
		if a.Oversold() != 0 || len(a.Problems()) == 0 || !strings.Contains(strings.Join(a.Problems(), "; "), "component 2: oversold 1") {
			t.Errorf("oversold %d, problems %v", a.Oversold(), a.Problems())
		}
		if f := a.Flags(); f != "components 1, 2 wrong" {
			t.Errorf("flags = %q", f)
		}
	})
	t.Run("SoldInPart", func(t *testing.T) {
		// A bundle stock-out without an answer took product 1's units but
		// not product 2's.
		p := parts()
		p[0].BundleRows++
		p[0].Audit.Final -= 2
		p[0].Audit.Ledger += 2
		p[0].Audit.Unknown = 2
		p[1].Audit.Unknown = 1
		a := audit(&Bundle{ID: "3", Sold: 100, Unknown: 1, Parts: p})
		if pr := a.Problems(); len(pr) != 1 || !strings.Contains(pr[0], "bundle sold in part: 101 ledger rows of component 1 name it, 100 of component 2") {
			t.Errorf("problems = %v", pr)
		}
	})
	t.Run("RowsMissing", func(t *testing.T) {
		p := parts()
		p[1].BundleRows = 99
		a := audit(&Bundle{ID: "3", Sold: 100, Parts: p})
		if pr := strings.Join(a.Problems(), "; "); !strings.Contains(pr, "component 2: 99 ledger rows name the bundle, 100 bundles sold") {
			t.Errorf("problems = %v", pr)
		}
	})
}
