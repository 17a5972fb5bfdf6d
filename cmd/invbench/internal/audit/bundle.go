package audit

import (
	"fmt"
	"strings"
)

// Bundle is what a run that sells a bundle beside its components adds to
// its audit: each component's own audit, and the component's ledger rows
// that name the bundle. A bundle's sale takes its components' units all or
// nothing, with one row on each component's ledger, so every component
// has as many such rows as any other, and as many as bundles sold (give
// or take the unknown outcomes).
type Bundle struct {
	ID string
	// Sold counts the OK stock-outs of one bundle, Unknown those without
	// an answer.
	Sold, Unknown int64
	Parts         []Part
}

// Part is one component of the bundle.
type Part struct {
	ID string
	// Quantity is its units in one bundle.
	Quantity int64
	// Audit is the component's own: its stock, the units promised of it
	// (Quantity a bundle sold, and its own sales) and its ledger's units.
	Audit Audit
	// BundleRows counts its ledger's OUT rows that name the bundle.
	BundleRows int64
}

// Total sums the components' audits: the run's.
func (b *Bundle) Total() Audit {
	var t Audit
	for _, p := range b.Parts {
		a := p.Audit
		t.Initial, t.Final, t.Sold, t.Unknown, t.Ledger = t.Initial+a.Initial, t.Final+a.Final, t.Sold+a.Sold, t.Unknown+a.Unknown, t.Ledger+a.Ledger
	}
	return t
}

func (b *Bundle) problems() []string {
	var p []string
	for i, part := range b.Parts {
		for _, q := range part.Audit.Problems() {
			p = append(p, "component "+part.ID+": "+q)
		}
		if part.BundleRows < b.Sold {
			p = append(p, fmt.Sprintf("component %s: %d ledger rows name the bundle, %d bundles sold", part.ID, part.BundleRows, b.Sold))
		}
		if extra := part.BundleRows - b.Sold; extra > b.Unknown {
			p = append(p, fmt.Sprintf("component %s: %d ledger rows name the bundle nobody was told about (%d outcomes unknown)", part.ID, extra, b.Unknown))
		}
		if first := b.Parts[0]; i > 0 && part.BundleRows != first.BundleRows {
			p = append(p, fmt.Sprintf("bundle sold in part: %d ledger rows of component %s name it, %d of component %s",
				first.BundleRows, first.ID, part.BundleRows, part.ID))
		}
	}
	return p
}

// flags names the components whose own audit has a problem.
func (b *Bundle) flags() []string {
	var bad []string
	for _, part := range b.Parts {
		if len(part.Audit.Problems()) > 0 || part.BundleRows != b.Parts[0].BundleRows {
			bad = append(bad, part.ID)
		}
	}
	if len(bad) == 0 {
		return nil
	}
	return []string{"components " + strings.Join(bad, ", ") + " wrong"}
}
