// Package audit checks a selling run against the server: every unit the
// tool was told it sold must have left the stock and be in the ledger,
// and every unit it was told it held must be reserved; in a run that also
// moves stock between locations, every unit not sold is on hand at one of
// them or in transit, no level is negative, and reconcile finds no drift;
// in a run that sells a bundle, each component's stock and ledger hold on
// their own, and every bundle sold left one row on each component's
// ledger. It reads stock through GraphQL and counts the ledger with SQL
// when it knows the database, else through GraphQL.
package audit

import (
	"fmt"
	"strings"
)

// Audit is what a selling run's audit found, and what is wrong with it.
type Audit struct {
	// Initial and Final are the products' summed stock (on hand, over all
	// locations) before and after.
	Initial, Final int64
	// InTransit is what the run's transfers had shipped and not yet
	// received or returned at the end: no longer on hand, not sold.
	InTransit int64
	// Transfers is what a run that moves stock adds to its audit; nil if
	// it moves none.
	Transfers *Transfers
	// Bundle is what a run that sells a bundle adds to its audit; nil if
	// it sells none.
	Bundle *Bundle
	// Sold is the units the tool was told it sold: one per OK stock-out,
	// and in a bundle run, the components' units of each bundle sold.
	Sold int64
	// Unknown is the units of the stock-outs without an answer: each may
	// or may not have sold, so it explains up to its units of difference.
	Unknown int64
	// Ledger is the units the products' ledger rows took out (OUT and
	// COMMIT).
	Ledger int64
	// ReservedBefore and ReservedAfter are the products' summed reserved
	// units; in a run that only holds (Holds), every OK hold (Held) of one
	// unit must be among them. Holds whose answer was lost are not counted
	// in Held, and may explain more.
	ReservedBefore, ReservedAfter int64
	Holds                         bool
	Held                          int64
}

// Lost is what the stock lost: neither on hand nor in transit.
func (a Audit) Lost() int64 { return a.Initial - a.Final - a.InTransit }

// Oversold is the count of units promised that the stock did not lose.
func (a Audit) Oversold() int64 { return a.Sold - a.Lost() }

// ledgerMismatch reports ledger ≠ sold, whether or not unknown outcomes
// explain it.
func (a Audit) ledgerMismatch() bool { return a.Ledger != a.Sold }

// Problems lists what is wrong, for a strategy that claims to be safe. A
// difference that unknown outcomes explain is not a problem; an oversell
// always is, because an unknown outcome can only make the stock lose more.
func (a Audit) Problems() []string {
	var p []string
	if o := a.Oversold(); o > 0 {
		p = append(p, fmt.Sprintf("oversold %d: %d sold, stock lost %d", o, a.Sold, a.Lost()))
	}
	if extra := a.Lost() - a.Sold; extra > a.Unknown {
		p = append(p, fmt.Sprintf("stock lost %d more than sold (%d outcomes unknown)", extra, a.Unknown))
	}
	if a.Ledger < a.Sold {
		p = append(p, fmt.Sprintf("ledger misses %d units of acknowledged sales", a.Sold-a.Ledger))
	}
	if extra := a.Ledger - a.Sold; extra > a.Unknown {
		p = append(p, fmt.Sprintf("ledger has %d units OUT or COMMIT nobody was told about (%d units' outcomes unknown)", extra, a.Unknown))
	}
	if a.Ledger != a.Lost() {
		p = append(p, fmt.Sprintf("ledger (%d units OUT and COMMIT) does not explain the stock change (%d)", a.Ledger, a.Lost()))
	}
	if gain := a.ReservedAfter - a.ReservedBefore; a.Holds && gain < a.Held {
		p = append(p, fmt.Sprintf("%d units held, but reserved grew by %d", a.Held, gain))
	}
	if a.Transfers != nil {
		p = append(p, a.Transfers.problems()...)
	}
	if a.Bundle != nil {
		p = append(p, a.Bundle.problems()...)
	}
	return p
}

// Flags renders the audit's warnings for the table: oversell and ledger ≠
// sold, even where unknown outcomes explain the difference.
func (a Audit) Flags() string {
	var f []string
	if a.Oversold() != 0 {
		f = append(f, fmt.Sprintf("oversold %d", a.Oversold()))
	}
	if a.ledgerMismatch() {
		f = append(f, fmt.Sprintf("ledger≠sold (%+d)", a.Ledger-a.Sold))
	}
	if a.Unknown > 0 {
		f = append(f, fmt.Sprintf("%d unknown", a.Unknown))
	}
	if a.Transfers != nil {
		f = append(f, a.Transfers.flags()...)
	}
	if a.Bundle != nil {
		f = append(f, a.Bundle.flags()...)
	}
	if len(f) == 0 {
		return "ok"
	}
	return strings.Join(f, "; ")
}
