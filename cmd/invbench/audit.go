package main

import (
	"fmt"
	"strings"
)

// audit checks a selling run against the database: every unit the tool was
// told it sold must have left the stock and be in the ledger.
type audit struct {
	// initial and final are the products' summed stock before and after.
	initial, final int64
	// sold is the count of OK stock-outs of one unit each.
	sold int64
	// unknown counts stock-outs without an answer: each may or may not have
	// sold, so it explains up to one unit of difference.
	unknown int64
	// ledger counts the rows of the products' ledger that took stock out
	// (OUT and COMMIT).
	ledger int64
	// reservedBefore and reservedAfter are the products' summed reserved
	// units; in a run that only holds (holds), every OK hold (held) of one
	// unit must be among them. Holds whose answer was lost are not counted
	// in held, and may explain more.
	reservedBefore, reservedAfter int64
	holds                         bool
	held                          int64
}

// lost is what the stock lost.
func (a audit) lost() int64 { return a.initial - a.final }

// oversold is the count of units promised that the stock did not lose.
func (a audit) oversold() int64 { return a.sold - a.lost() }

// ledgerMismatch reports ledger ≠ sold, whether or not unknown outcomes
// explain it.
func (a audit) ledgerMismatch() bool { return a.ledger != a.sold }

// problems lists what is wrong, for a strategy that claims to be safe. A
// difference that unknown outcomes explain is not a problem; an oversell
// always is, because an unknown outcome can only make the stock lose more.
func (a audit) problems() []string {
	var p []string
	if o := a.oversold(); o > 0 {
		p = append(p, fmt.Sprintf("oversold %d: %d sold, stock lost %d", o, a.sold, a.lost()))
	}
	if extra := a.lost() - a.sold; extra > a.unknown {
		p = append(p, fmt.Sprintf("stock lost %d more than sold (%d outcomes unknown)", extra, a.unknown))
	}
	if a.ledger < a.sold {
		p = append(p, fmt.Sprintf("ledger misses %d acknowledged sales", a.sold-a.ledger))
	}
	if extra := a.ledger - a.sold; extra > a.unknown {
		p = append(p, fmt.Sprintf("ledger has %d OUT or COMMIT rows nobody was told about (%d outcomes unknown)", extra, a.unknown))
	}
	if a.ledger != a.lost() {
		p = append(p, fmt.Sprintf("ledger (%d OUT and COMMIT) does not explain the stock change (%d)", a.ledger, a.lost()))
	}
	if gain := a.reservedAfter - a.reservedBefore; a.holds && gain < a.held {
		p = append(p, fmt.Sprintf("%d units held, but reserved grew by %d", a.held, gain))
	}
	return p
}

// flags renders the audit's warnings for the table: oversell and ledger ≠
// sold, even where unknown outcomes explain the difference.
func (a audit) flags() string {
	var f []string
	if a.oversold() != 0 {
		f = append(f, fmt.Sprintf("oversold %d", a.oversold()))
	}
	if a.ledgerMismatch() {
		f = append(f, fmt.Sprintf("ledger≠sold (%+d)", a.ledger-a.sold))
	}
	if a.unknown > 0 {
		f = append(f, fmt.Sprintf("%d unknown", a.unknown))
	}
	if len(f) == 0 {
		return "ok"
	}
	return strings.Join(f, "; ")
}
