package main

import "testing"

// TestFormatCounts: the errors column lists the most frequent outcome
// first, ties by name, with thousands separators; none is "-".
func TestFormatCounts(t *testing.T) {
	for _, tc := range []struct {
		m    map[string]int64
		want string
	}{
		{map[string]int64{"transport": 2, "INSUFFICIENT_STOCK": 1}, "transport 2, INSUFFICIENT_STOCK 1"},
		{map[string]int64{"RATE_LIMITED": 1500, "UNAVAILABLE": 3, "CONFLICT": 3}, "RATE_LIMITED 1,500, CONFLICT 3, UNAVAILABLE 3"},
		{nil, "-"},
	} {
		if got := formatCounts(tc.m); got != tc.want {
			t.Errorf("formatCounts(%v) = %q, want %q", tc.m, got, tc.want)
		}
	}
}

func TestThousands(t *testing.T) {
	for n, want := range map[int64]string{0: "0", 999: "999", 1000: "1,000", 10_000_000: "10,000,000", -1234: "-1,234"} {
		if got := thousands(n); got != want {
			t.Errorf("thousands(%d) = %q, want %q", n, got, want)
		}
	}
}
