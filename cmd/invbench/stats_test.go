package main

import (
	"math/rand/v2"
	"testing"
	"time"
)

func TestPercentiles(t *testing.T) {
	t.Run("OneToHundred", func(t *testing.T) {
		lat := make([]time.Duration, 100)
		for i := range lat {
			lat[i] = time.Duration(i + 1)
		}
		rand.Shuffle(len(lat), func(i, j int) { lat[i], lat[j] = lat[j], lat[i] })
		got := percentiles(lat, 50, 95, 99, 100)
		for i, want := range []time.Duration{50, 95, 99, 100} {
			if got[i] != want {
				t.Errorf("percentile %d = %v, want %v", i, got[i], want)
			}
		}
	})
	t.Run("NearestRank", func(t *testing.T) {
		// Ten values: p50 is the 5th, p95 and p99 the 10th.
		lat := []time.Duration{10, 9, 8, 7, 6, 5, 4, 3, 2, 1}
		got := percentiles(lat, 50, 95, 99)
		if got[0] != 5 || got[1] != 10 || got[2] != 10 {
			t.Errorf("got %v, want [5 10 10]", got)
		}
	})
	t.Run("One", func(t *testing.T) {
		got := percentiles([]time.Duration{7}, 50, 99)
		if got[0] != 7 || got[1] != 7 {
			t.Errorf("got %v, want [7 7]", got)
		}
	})
	t.Run("None", func(t *testing.T) {
		if got := percentiles(nil, 50); got[0] != 0 {
			t.Errorf("got %v, want 0", got)
		}
	})
}

func TestTally(t *testing.T) {
	var a, b tally
	a.record(time.Millisecond, kindStockOut, outcomeOK)
	a.record(time.Millisecond, kindStockOut, "INSUFFICIENT_STOCK")
	a.record(time.Millisecond, kindRead, outcomeOK)
	b.record(time.Millisecond, kindStockOut, outcomeTransport)
	b.record(time.Millisecond, kindStockOut, outcomeOK)
	b.record(time.Millisecond, kindRead, outcomeTransport)
	a.merge(&b)
	if a.requests() != 6 || a.sold != 2 || a.unknown != 1 {
		t.Errorf("requests %d, sold %d, unknown %d; want 6, 2, 1", a.requests(), a.sold, a.unknown)
	}
	if got := formatCounts(a.errors()); got != "transport 2, INSUFFICIENT_STOCK 1" {
		t.Errorf("errors = %q", got)
	}
}

func TestThousands(t *testing.T) {
	for n, want := range map[int64]string{0: "0", 999: "999", 1000: "1,000", 10_000_000: "10,000,000", -1234: "-1,234"} {
		if got := thousands(n); got != want {
			t.Errorf("thousands(%d) = %q, want %q", n, got, want)
		}
	}
}
