package main

import (
	"testing"

	"github.com/shopstack/inventory/cmd/invbench/internal/audit"
)

func TestResultFailed(t *testing.T) {
	oversold := &audit.Audit{Initial: 100, Final: 90, Sold: 12, Ledger: 12}
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
